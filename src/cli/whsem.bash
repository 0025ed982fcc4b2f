# SPDX-License-Identifier: MIT
# bash completion for whsem(1): commands, their options, and semaphore
# names from `whsem list` (of the database of a --backend given on the line,
# else of $WHSEM_BACKEND's, else of this machine). Self-contained: it needs
# nothing from the bash-completion package, which only loads it.
# tests/cli/test_completion.py drives it, and checks that the options
# offered are those of each command's --help.

_whsem_commands="run status list rm prune name top stats help"
_whsem_global_options="-h --help -V --version"

# Options of each command; those that take a value are in
# _whsem_value_options.
_whsem_options_of()
{
    case $1 in
    run) echo "-t --timeout -E --timeout-exit-code -k --kill-after --no-kill --exact --mode --backend -h --help" ;;
    status) echo "--exact --json --backend -h --help" ;;
    rm) echo "--exact -f --force --backend -h --help" ;;
    list) echo "-l --long --json --backend -h --help" ;;
    prune) echo "-n --dry-run --backend -h --help" ;;
    name) echo "--backend -h --help" ;;
    top) echo "-d --delay -n --iterations -b --batch --backend -h --help" ;;
    stats) echo "--exact --json --plot --backend -h --help" ;;
    esac
}
# (top's -n takes a value too, but prune's -n does not; top takes no
# positional word that a value could be mistaken for.)
_whsem_value_options=" -t --timeout -E --timeout-exit-code -k --kill-after --mode --backend -d --delay --iterations --plot "

# The words of the line up to the cursor as the user typed them, into
# _whsem_words (the one under the cursor last). bash splits words at '='
# and ':' too (COMP_WORDBREAKS), so "--backend=postgresql://db/jobs" came
# in five pieces: pieces with no blank between them on the line are glued
# back together.
_whsem_rejoin()
{
    _whsem_words=()
    local line=${COMP_LINE:0:COMP_POINT} pos=0 i word rest gap
    for ((i = 0; i <= COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if [[ -z $line ]]; then
            _whsem_words+=("$word") # no line to look at: the words as given
            continue
        fi
        rest=${line:pos}
        gap=${rest%%[![:blank:]]*}
        pos=$((pos + ${#gap}))
        if ((i == 0 || ${#gap} > 0)); then
            _whsem_words+=("$word")
        else
            _whsem_words[-1]+=$word
        fi
        pos=$((pos + ${#word}))
    done
}

# A word as the shell will pass it, for the quoting a backend string
# usually has: one pair of surrounding quotes, or backslashes. Nothing is
# expanded (completing must never run what is on the line).
_whsem_unquote()
{
    local w=$1
    if [[ $w == \'*\' && ${#w} -ge 2 ]]; then
        w=${w:1:${#w}-2}
    elif [[ $w == \"*\" && ${#w} -ge 2 ]]; then
        w=${w:1:${#w}-2}
    else
        w=${w//\\/}
    fi
    printf '%s' "$w"
}

# Offers the words of $2 (a list, one per line) that begin with the word
# $1 (as typed), quoted for the shell, each cut to the part bash replaces
# (after the last COMP_WORDBREAKS character of the current word).
_whsem_offer()
{
    local cur cut=$((${#1} - ${#COMP_WORDS[COMP_CWORD]})) w q
    cur=$(_whsem_unquote "$1")
    local IFS=$'\n'
    for w in $2; do
        [[ $w == "$cur"* ]] || continue
        printf -v q '%q' "$w"
        COMPREPLY+=("${q:cut}")
    done
}

# Semaphore names without their "Global\" prefix (which means the same and
# is awkward to type), or whole with --exact ($2 not empty). $3: the
# backend given on the line (an empty one too: it overrides
# $WHSEM_BACKEND), if any.
_whsem_names()
{
    local prog=$1 exact=$2 line
    local -a args=(list)
    [[ -n ${3+set} ]] && args+=(--backend "$3")
    "$prog" "${args[@]}" 2>/dev/null | while IFS= read -r line; do
        # `whsem list` escapes control characters as \xHH: such a line is
        # not the name itself.
        [[ ${line#Global\\} == *\\* ]] && continue
        if [[ -n $exact ]]; then
            printf '%s\n' "$line"
        else
            printf '%s\n' "${line#Global\\}"
        fi
    done
}

_whsem()
{
    COMPREPLY=()
    local prog=${1:-whsem}
    [[ $prog == */* && ! -x $prog ]] && prog=whsem
    _whsem_rejoin
    local n=${#_whsem_words[@]}
    local cur=${_whsem_words[n - 1]} prev=
    ((n > 1)) && prev=${_whsem_words[n - 2]}

    # What the words before the cursor say: the command, the options that
    # matter here, the positional words, whether "--" ended the options,
    # and for run how many words of its command came already (-1: it has
    # not begun; it begins after "--", or at the third positional word).
    local cmd= exact= dashdash= cmdwords=-1 i w
    local -a backend=() # the --backend given, if any
    local -a positionals=()
    for ((i = 1; i < n - 1; i++)); do
        w=${_whsem_words[i]}
        if [[ -z $cmd ]]; then
            [[ $w == -* ]] || cmd=$w
        elif ((cmdwords >= 0)); then
            ((cmdwords++))
        elif [[ -n $dashdash || $w != -* || $w == - ]]; then
            positionals+=("$w")
            [[ $cmd == run && ${#positionals[@]} -eq 3 ]] && cmdwords=1
        elif [[ $w == -- ]]; then
            dashdash=1
            [[ $cmd == run ]] && cmdwords=0
        else
            case $w in
            --backend=*) backend=("$(_whsem_unquote "${w#--backend=}")") ;;
            --exact) exact=1 ;;
            esac
            if [[ $_whsem_value_options == *" $w "* ]] && ((i + 1 < n - 1)); then
                ((i++))
                [[ $w == --backend ]] && backend=("$(_whsem_unquote "${_whsem_words[i]}")")
            fi
        fi
    done

    if [[ -z $cmd ]]; then
        if [[ $cur == -* ]]; then
            _whsem_offer "$cur" "${_whsem_global_options// /$'\n'}"
        else
            _whsem_offer "$cur" "${_whsem_commands// /$'\n'}"
        fi
        return 0
    fi
    # run's command: a program, then its arguments.
    if ((cmdwords == 0)) || [[ $cmd == run && -z $dashdash && ${#positionals[@]} -eq 2 && $cur != -* ]]; then
        mapfile -t COMPREPLY < <(compgen -c -- "$cur")
        return 0
    fi
    if ((cmdwords > 0)); then
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        return 0
    fi
    # The value of an option: a file for --plot; nothing to offer for a
    # time, a code or a connection string.
    if [[ -z $dashdash && $prev == --plot ]]; then
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        return 0
    fi
    [[ -z $dashdash && $_whsem_value_options == *" $prev "* ]] && return 0
    if [[ -z $dashdash && $cur == -* ]]; then
        _whsem_offer "$cur" "$(_whsem_options_of "$cmd" | tr ' ' '\n')"
        return 0
    fi
    # prune takes any number of patterns, which names are; the others one name.
    ((${#positionals[@]} == 0)) || [[ $cmd == prune ]] || return 0
    case $cmd in
    help) _whsem_offer "$cur" "${_whsem_commands// /$'\n'}" ;;
    run | status | rm | prune | name | stats) _whsem_offer "$cur" "$(_whsem_names "$prog" "$exact" "${backend[@]}")" ;;
    esac
    return 0
}

complete -F _whsem whsem
