#!/usr/bin/env bash
# The fuzz -> repro -> explain loop, bounded: a short campaign with a fault injected finds a
# leak and writes each finding, shrunk, as a scenario file; the file is replayed with a
# trace; the trace tells the life of the leaked send. Each step exits 1 because it finds
# (or shows) the leak; this script exits 0 when every step did, 2 when one did not.
#   bash examples/fuzz_loop.sh [WORKDIR]     (quicsim on PATH; WORKDIR defaults to a temp dir)
set -euo pipefail
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
cd "$work"

expect_exit() {  # expect_exit STATUS COMMAND...: run COMMAND, fail unless it exits with STATUS
    local want="$1" got=0
    shift
    "$@" || got=$?
    if [ "$got" -ne "$want" ]; then
        echo "fuzz_loop: expected exit $want from '$*', got $got" >&2
        exit 2
    fi
}

# 1. fuzz: 30 seeds on the in-memory link, at most 60 s, with a fault that loses completions
expect_exit 1 quicsim fuzz --runs 30 --seed 0 --inject unstarted-stream-leak --out findings --time-budget 60
repro="$(ls findings/*.py | head -n 1)"
echo "fuzz_loop: repro file $repro"

# 2. repro: the file replays the failure exactly, keeping a trace of the run
expect_exit 1 quicsim run "$repro" --transport memory --trace traces

# 3. explain: each send's life, the leaked one first
for trace in traces/*.jsonl; do
    expect_exit 1 quicsim explain "$trace"
done
echo "fuzz_loop: found, replayed and explained the leak in $work"
