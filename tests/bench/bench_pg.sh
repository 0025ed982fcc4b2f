#!/bin/sh
# SPDX-License-Identifier: MIT
# The PostgreSQL backend's figures against a cluster of its own (started
# and stopped here, as the tests do):
#     tests/bench/bench_pg.sh [BUILD_DIR] [SECONDS]
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../../build}"
seconds="${2:-5}"
state="$(mktemp -u /tmp/whsem-bench-pg.XXXXXX).json"
python3 "$here/../pg/cluster.py" start "$state" >/dev/null
trap 'python3 "$here/../pg/cluster.py" stop "$state"' EXIT
eval "$(python3 "$here/../pg/cluster.py" env "$state")"
echo "unix socket:"
"$build/tests/bench/whsem_bench_pg" "$WHSEM_PG_SOCKET" "$seconds"
echo "TCP (127.0.0.1):"
"$build/tests/bench/whsem_bench_pg" "$WHSEM_PG_TCP" "$seconds"
