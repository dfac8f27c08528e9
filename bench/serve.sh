#!/usr/bin/env bash
# Serve-mode throughput and latency (issue 5): a trivial `respond` route under
# wrk with 16 and 64 keep-alive connections, 10 s each. Prints requests/s, p50,
# p99, max latency and the server's CPU time per request (utime + stime from
# /proc/<pid>/stat, divided by the requests wrk completed).
#
#   bench/serve.sh                # both routes, 16 and 64 connections
#   DURATION=30s bench/serve.sh
#
# Two routes of the same workflow: GET /ping runs inline on the reactor (every
# node it can reach is pure), GET /pool is the same reply with a `retry` table,
# which sends its runs to the bounded worker pool; the difference is the cost
# of the handoff.
#
# wrk: used if installed; otherwise installed with apt-get when running as root
# (set AGENTD_BENCH_NO_INSTALL=1 to forbid that).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
duration="${DURATION:-10s}"

if ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ] && [ -z "${AGENTD_BENCH_NO_INSTALL:-}" ] && command -v apt-get >/dev/null; then
        echo "serve.sh: installing wrk with apt-get" >&2
        apt-get install -y -qq wrk >/dev/null 2>&1 || true
    fi
fi
command -v wrk >/dev/null || { echo "serve.sh: wrk is required" >&2; exit 1; }

echo "serve.sh: building the compiler (release)" >&2
cargo build --release --quiet -p agentd-compiler
agentd="$root/target/release/agentd"
export AGENTD_CACHE_DIR="${AGENTD_CACHE_DIR:-$root/target/agentd-bench-cache}"

work="$(mktemp -d "${TMPDIR:-/tmp}/agentd-serve.XXXXXX")"
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/ping.toml" <<'TOML'
name = "ping"

# Nothing touches files, env, the network or a shell.
[policy]

[[start_nodes]]
name = "ping"
source = "http"
entry_node = "pong"

[[start_nodes]]
name = "pool"
source = "http"
entry_node = "pooled"

[[http_routes]]
method = "GET"
path = "/ping"
start_node = "ping"

[[http_routes]]
method = "GET"
path = "/pool"
start_node = "pool"

[[nodes]]
id = "pong"
type = "respond"
content_type = "text/plain"
body_template = "pong\n"

# A retry table makes a route ineligible for inline runs.
[[nodes]]
id = "pooled"
type = "respond"
content_type = "text/plain"
body_template = "pong\n"
retry = { max_attempts = 1 }
TOML

echo "serve.sh: building the workflow" >&2
"$agentd" build --quiet "$work/ping.toml" -o "$work/ping"

"$work/ping" --bind 127.0.0.1:0 2>"$work/stderr" &
server=$!
for _ in $(seq 100); do
    grep -q 'listening on' "$work/stderr" 2>/dev/null && break
    sleep 0.05
done
addr="$(sed -n 's#.*listening on http://\([^/]*\)/.*#\1#p' "$work/stderr" | head -1)"
[ -n "$addr" ] || { echo "serve.sh: the server did not start:" >&2; cat "$work/stderr" >&2; exit 1; }

ticks="$(getconf CLK_TCK)"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }

# wrk prints latencies as 812.00us / 1.20ms / 2.00s; normalise to ms.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000
        printf "%.3f", n
    }'
}

printf '%-6s %5s %12s %10s %10s %10s %14s\n' route conns 'req/s' 'p50 ms' 'p99 ms' 'max ms' 'cpu µs/req'
for route in ping pool; do
    for conns in 16 64; do
        # Warm the connections and the allocator.
        wrk -t2 -c"$conns" -d1s "http://$addr/$route" >/dev/null
        before="$(cpu_ticks)"
        out="$(wrk -t2 -c"$conns" -d"$duration" --latency "http://$addr/$route")"
        after="$(cpu_ticks)"
        requests="$(echo "$out" | awk '/requests in/ {print $1}')"
        rps="$(echo "$out" | awk '/Requests\/sec/ {print $2}')"
        p50="$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")"
        p99="$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")"
        max="$(to_ms "$(echo "$out" | awk '$1 == "Latency" {print $4}')")"
        non2xx="$(echo "$out" | awk '/Non-2xx/ {print $4}')"
        cpu_us="$(awk -v d="$((after - before))" -v t="$ticks" -v r="$requests" \
            'BEGIN { printf "%.1f", (d / t) * 1e6 / r }')"
        printf '%-6s %5s %12s %10s %10s %10s %14s\n' "/$route" "$conns" "$rps" "$p50" "$p99" "$max" "$cpu_us"
        [ -z "$non2xx" ] || echo "serve.sh: $non2xx non-2xx replies on /$route at $conns connections" >&2
    done
done
echo "serve.sh: $(nproc) cores; wrk shares them with the server" >&2
