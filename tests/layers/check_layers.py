#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fails if the library's source files call each other in a cycle.

src/DESIGN.md promises layers: each module calls only modules below it
(the platform seam below the shared code, the backend seam above it,
callbacks where a lower layer must reach a higher one). This reads what
each object file defines and uses (nm) and looks for strongly connected
groups of files; every such group is a place where two modules call each
other, directly or round a loop.

usage: check_layers.py NM OBJECTS   (OBJECTS joined with ':')
"""
import collections
import os
import subprocess
import sys


def symbols(nm, obj):
    defined, used = set(), set()
    out = subprocess.run([nm, obj], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TDBRV":
            defined.add(parts[2])
        elif len(parts) == 2 and parts[0] == "U":
            used.add(parts[1])
    return defined, used


def cycles(graph):
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    nm, objs = sys.argv[1], [o for o in sys.argv[2].split(":") if o]
    if not objs:
        sys.exit("check_layers: no object files given")
    name = {o: os.path.basename(o).rsplit(".", 2)[0] for o in objs}
    defs, uses = {}, {}
    for o in objs:
        defs[o], uses[o] = symbols(nm, o)
    owner = {s: o for o, d in defs.items() for s in d}
    graph = collections.defaultdict(set)
    why = collections.defaultdict(list)
    for o, used in uses.items():
        graph[o]
        for s in sorted(used):
            if s in owner and owner[s] != o:
                graph[o].add(owner[s])
                why[(o, owner[s])].append(s)
    edges = sum(len(v) for v in graph.values())
    print(f"{len(objs)} object files, {edges} calls between files")
    bad = cycles(graph)
    for group in bad:
        print("cycle:", " ".join(name[o] for o in group))
        for a in group:
            for b in group:
                if (a, b) in why:
                    print(f"  {name[a]} -> {name[b]}: {', '.join(why[(a, b)][:4])}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
