#!/usr/bin/env bash
# What one served request costs, counted rather than timed (issue 19).
#
#   bench/serve-cost.sh                       # /ping /echo /pool /write
#   REQUESTS=5000 CONNS=16 bench/serve-cost.sh ping pool
#   KEEP=/tmp/prof bench/serve-cost.sh ping   # keep the binary and callgrind's files there
#
# Builds the workflow of bench/compare.sh (same routes) with symbols kept
# (`CARGO_PROFILE_RELEASE_STRIP=false`, its own cache: the code is the shipped
# code, only the symbol table stays, so `callgrind_annotate` names functions)
# and, per route, prints:
#
#   instr/req   user-space instructions per request, every thread of the
#               server: `valgrind --tool=callgrind` over two runs of the
#               server, one serving WARMUP requests and one WARMUP + REQUESTS,
#               each ended by SIGTERM (a drain), the difference divided by
#               REQUESTS. Start-up, the first requests (threads started,
#               buffers grown) and the drain cancel out.
#   cs/req      context switches per request (voluntary + involuntary, every
#               thread, from /proc/<pid>/task/*/status) of a native run of
#               REQUESTS requests after WARMUP: each cross-thread hand-off
#               that parks a thread shows up here.
#   sys/req     system calls per request over the same REQUESTS, counted by
#               `strace -f -c` on a second native run (strace slows every
#               call, so the count is the figure, not the time).
#   cpu µs/req  utime + stime of the native cs/req run, for orientation only
#               (a short run at tick resolution; bench/compare.sh measures CPU).
#
# The client is bench/serve-client.py: CONNS keep-alive connections, one
# thread each, REQUESTS requests in all, each reply read before the next
# request. Under valgrind the server's threads run one at a time, so a
# hand-off that spins shows up as instructions, and its timing differs from a
# native run; the instruction counts are repeatable to a fraction of a
# percent (run it twice to see), the other columns to a few percent.
#
# AGENTD_RUNTIME_PATH picks the runtime to build against (e.g. a `git archive`
# of an older commit, with its own AGENTD_CACHE_DIR, for a before/after).
# Needs valgrind and strace (columns are skipped with a note when missing).
# Not run by CI.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
requests="${REQUESTS:-2000}"
conns="${CONNS:-8}"
warmup="${WARMUP:-200}"
routes=("$@")
[ "${#routes[@]}" -gt 0 ] || routes=(ping echo pool write)

echo "serve-cost.sh: building the compiler (release)" >&2
cargo build --release --quiet -p agentd-compiler
agentd="$root/target/release/agentd"
export AGENTD_CACHE_DIR="${AGENTD_CACHE_DIR:-$root/target/agentd-cost-cache}"

work="$(mktemp -d "${TMPDIR:-/tmp}/agentd-cost.XXXXXX")"
shm="$(mktemp -d /dev/shm/agentd-cost.XXXXXX)"
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work" "$shm"
}
trap cleanup EXIT

# shellcheck source=bench/workflow.sh
source "$root/bench/workflow.sh"
bench_workflow "$shm" > "$work/bench.toml"

echo "serve-cost.sh: building the workflow (symbols kept)" >&2
CARGO_PROFILE_RELEASE_STRIP=false "$agentd" build --quiet "$work/bench.toml" -o "$work/bench"
[ -n "${KEEP:-}" ] && mkdir -p "$KEEP" && cp "$work/bench" "$KEEP/bench"

have_valgrind=0; command -v valgrind >/dev/null && have_valgrind=1
have_strace=0; command -v strace >/dev/null && have_strace=1
[ "$have_valgrind" = 1 ] || echo "serve-cost.sh: no valgrind; instr/req skipped" >&2
[ "$have_strace" = 1 ] || echo "serve-cost.sh: no strace; sys/req skipped" >&2

# Start "$@" (the server, perhaps under valgrind) and set $server and $addr.
start() {
    local log="$work/server.log"
    : > "$log"
    "$@" --bind 127.0.0.1:0 2>"$log" &
    server=$!
    addr=""
    for _ in $(seq 600); do
        addr="$(sed -n 's#.*listening on http://\([^/ ]*\).*#\1#p' "$log" | head -1)"
        [ -n "$addr" ] && break
        sleep 0.05
    done
    [ -n "$addr" ] || { echo "serve-cost.sh: the server did not start:" >&2; cat "$log" >&2; exit 1; }
}

stop() {
    kill -TERM "$server"
    wait "$server" || true
    server=""
}

# drive ROUTE N: N requests of ROUTE's kind.
drive() {
    local route="$1" n="$2"
    [ "$n" -gt 0 ] || return 0
    case "$route" in
        echo) python3 bench/serve-client.py "$addr" POST /echo "$n" "$conns" '{"name":"bench"}' \
            'Content-Type: application/json' 'Authorization: Bearer bench-token' ;;
        *) python3 bench/serve-client.py "$addr" GET "/$route" "$n" "$conns" ;;
    esac
}

# Instructions of a server run that served N requests of ROUTE.
instructions() {
    local route="$1" n="$2" out="$work/cg.$1.$2"
    start valgrind --tool=callgrind --callgrind-out-file="$out" "$work/bench"
    drive "$route" "$n"
    stop
    [ -n "${KEEP:-}" ] && mkdir -p "$KEEP" && cp "$out" "$KEEP/callgrind.$route.$n"
    awk '/^(summary|totals):/ {print $2; exit}' "$out"
}

# Context switches of every thread of the server so far.
switches() {
    local t=0 f
    for f in /proc/"$server"/task/*/status; do
        t=$((t + $(awk '/ctxt_switches/ {s += $2} END {print s + 0}' "$f" 2>/dev/null || echo 0)))
    done
    echo "$t"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }

ticks="$(getconf CLK_TCK)"
printf '%-8s %12s %8s %8s %11s\n' route 'instr/req' 'cs/req' 'sys/req' 'cpu µs/req'
for route in "${routes[@]}"; do
    instr=-
    if [ "$have_valgrind" = 1 ]; then
        a="$(instructions "$route" "$warmup")"
        b="$(instructions "$route" $((warmup + requests)))"
        instr="$(awk -v a="$a" -v b="$b" -v n="$requests" 'BEGIN { printf "%.0f", (b - a) / n }')"
    fi

    start "$work/bench"
    drive "$route" "$warmup"
    cs0="$(switches)"; t0="$(cpu_ticks)"
    drive "$route" "$requests"
    cs1="$(switches)"; t1="$(cpu_ticks)"
    stop
    cs="$(awk -v a="$cs0" -v b="$cs1" -v n="$requests" 'BEGIN { printf "%.2f", (b - a) / n }')"
    cpu="$(awk -v d="$((t1 - t0))" -v t="$ticks" -v n="$requests" 'BEGIN { printf "%.1f", (d / t) * 1e6 / n }')"

    sys=-
    if [ "$have_strace" = 1 ]; then
        start "$work/bench"
        drive "$route" "$warmup"
        strace -f -c -o "$work/strace.$route" -p "$server" 2>/dev/null &
        tracer=$!
        sleep 0.5 # attached to every thread before the first request
        drive "$route" "$requests"
        kill -INT "$tracer"
        wait "$tracer" || true
        stop
        sys="$(awk -v n="$requests" '$NF == "total" {
            calls = ($4 ~ /^[0-9]+$/) ? $4 : $3; printf "%.2f", calls / n }' "$work/strace.$route")"
    fi
    printf '%-8s %12s %8s %8s %11s\n' "/$route" "$instr" "$cs" "$sys" "$cpu"
done
echo "serve-cost.sh: $requests requests after $warmup warm-up, $conns keep-alive connections," \
    "$(nproc) cores" >&2
