#!/usr/bin/env bash
# agentd's server against nginx on the same machine, in one run (issue 19).
#
#   bench/compare.sh                  # 10 s per row, 64 connections
#   DURATION=30s CONNS=128 bench/compare.sh
#
# Starts nginx (one worker, `return 200 "pong\n"`, plain and TLS 1.3) and two
# agentd binaries built from the workflows below, drives every row with
# `wrk -t2 -c$CONNS` on keep-alive connections (1 s warm-up, then $DURATION) and
# prints ONE table: req/s, p50/p99, server CPU µs per request (utime + stime
# of every server process from /proc/<pid>/stat, divided by the requests wrk
# completed), the server's RSS after the row, and req/s and CPU relative to
# nginx's plain-HTTP row. wrk runs on the same two cores as the servers, so the
# absolute req/s are lower bounds; compare rows of one run, not across runs.
#
# Rows:
#   nginx           one worker, fixed `return 200`
#   inline /ping    GET, one `respond` node: runs on the reactor thread
#   inline /echo    POST with a bearer token and a JSON body, a templated JSON
#                   reply (the route of the issue's first measurement): inline
#   pool /pool      /ping's reply with a `retry` table: the same run handed to
#                   the worker pool, so /pool − /ping is the handoff's cost
#   pool /write     a tiny `write_file` into tmpfs (/dev/shm), then `respond`:
#                   the pooled route kind with a real effect
#   tls /ping       /ping over TLS 1.3 (rustls); wrk keeps its connections, so
#                   the handshake (full, then resumed on reconnect) is amortised
#   nginx tls       nginx over TLS 1.3, for the TLS ratio
#
# Needs nginx and wrk: when missing they are installed from Debian's packages
# at the pinned versions below (as root, with apt-get; set
# AGENTD_BENCH_NO_INSTALL=1 to forbid that). Not run by CI.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
duration="${DURATION:-10s}"
conns="${CONNS:-64}"

# Debian 12 (bookworm) versions this script was written against.
NGINX_VERSION=1.22.1-9+deb12u12
WRK_VERSION=4.1.0-3+b2

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
install_pinned() {
    local want=() pkg ver
    for spec in "$@"; do
        pkg="${spec%%=*}"
        ver="${spec#*=}"
        if installed "$pkg" && [ "$(dpkg-query -W -f='${Version}' "$pkg")" = "$ver" ]; then
            continue
        fi
        command -v "$pkg" >/dev/null && [ -n "${AGENTD_BENCH_ANY_VERSION:-}" ] && continue
        want+=("$spec")
    done
    [ "${#want[@]}" = 0 ] && return 0
    if [ "$(id -u)" != 0 ] || [ -n "${AGENTD_BENCH_NO_INSTALL:-}" ] || ! command -v apt-get >/dev/null; then
        echo "compare.sh: needs ${want[*]} (run as root to install, or install them)" >&2
        exit 1
    fi
    echo "compare.sh: installing ${want[*]} with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -o DPkg::Lock::Timeout=300 "${want[@]}" >/dev/null
}
install_pinned "nginx=$NGINX_VERSION" "wrk=$WRK_VERSION"
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"

echo "compare.sh: building the compiler (release)" >&2
cargo build --release --quiet -p agentd-compiler
agentd="$root/target/release/agentd"
export AGENTD_CACHE_DIR="${AGENTD_CACHE_DIR:-$root/target/agentd-bench-cache}"

work="$(mktemp -d "${TMPDIR:-/tmp}/agentd-compare.XXXXXX")"
shm="$(mktemp -d /dev/shm/agentd-compare.XXXXXX)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work" "$shm"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# One self-signed P-256 certificate for both TLS servers.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

# shellcheck source=bench/workflow.sh
source "$root/bench/workflow.sh"
bench_workflow "$shm" > "$work/bench.toml"

{
    cat <<TOML
name = "bench_tls"

[policy]

[server.tls]
cert_file = "$work/cert.pem"
key_file = "$work/key.pem"

TOML
    bench_ping_route
} > "$work/bench-tls.toml"

echo "compare.sh: building the workflows" >&2
"$agentd" build --quiet "$work/bench.toml" -o "$work/bench"
"$agentd" build --quiet "$work/bench-tls.toml" -o "$work/bench-tls"

# Start an agentd binary; prints its pid and address.
start_agentd() {
    local bin="$1" log="$2"
    "$bin" --bind 127.0.0.1:0 2>"$log" &
    local pid=$!
    for _ in $(seq 200); do
        grep -q 'listening on' "$log" 2>/dev/null && break
        sleep 0.05
    done
    local addr
    addr="$(sed -n 's#.*listening on https\{0,1\}://\([^/ ]*\).*#\1#p' "$log" | head -1)"
    [ -n "$addr" ] || { echo "compare.sh: $bin did not start:" >&2; cat "$log" >&2; exit 1; }
    echo "$pid $addr"
}

plain_port="$(free_port)"
tls_port="$(free_port)"
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/nginx-body;
    proxy_temp_path $work/nginx-proxy;
    fastcgi_temp_path $work/nginx-fastcgi;
    uwsgi_temp_path $work/nginx-uwsgi;
    scgi_temp_path $work/nginx-scgi;
    server {
        listen 127.0.0.1:$plain_port;
        location / { default_type text/plain; return 200 "pong\n"; }
    }
    server {
        listen 127.0.0.1:$tls_port ssl;
        ssl_certificate $work/cert.pem;
        ssl_certificate_key $work/key.pem;
        ssl_protocols TLSv1.3;
        location / { default_type text/plain; return 200 "pong\n"; }
    }
}
CONF
"$nginx_bin" -e "$work/nginx-error.log" -p "$work" -c "$work/nginx.conf" &
nginx_pid=$!
pids+=("$nginx_pid")
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$plain_port/" 2>/dev/null && break
    sleep 0.05
done

read -r bench_pid bench_addr < <(start_agentd "$work/bench" "$work/bench.log")
pids+=("$bench_pid")
read -r tls_pid tls_addr < <(start_agentd "$work/bench-tls" "$work/bench-tls.log")
pids+=("$tls_pid")

ticks="$(getconf CLK_TCK)"
# The pid and its children (nginx's worker).
procs() { echo "$1"; pgrep -P "$1" || true; }
cpu_ticks() {
    local t=0 p
    for p in $(procs "$1"); do
        t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo "$t"
}
rss_kb() {
    local t=0 p
    for p in $(procs "$1"); do
        t=$((t + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status")))
    done
    echo "$t"
}

to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000
        printf "%.2f", n
    }'
}

echo_body="$work/echo.lua"
cat > "$echo_body" <<'LUA'
wrk.method = "POST"
wrk.body = '{"name":"bench"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench-token"
LUA

idle_agentd="$(rss_kb "$bench_pid")"
base_rps=""
base_cpu=""
printf '%-16s %10s %8s %8s %9s %9s %8s %8s\n' \
    row 'req/s' 'p50 ms' 'p99 ms' 'cpu µs/r' 'RSS KB' 'rps/ng' 'cpu/ng'
row() {
    local name="$1" pid="$2" url="$3" script="${4:-}"
    local args=(-t2 -c"$conns" --latency)
    [ -n "$script" ] && args+=(-s "$script")
    wrk "${args[@]}" -d1s "$url" >/dev/null
    local before after out
    before="$(cpu_ticks "$pid")"
    out="$(wrk "${args[@]}" -d"$duration" "$url")"
    after="$(cpu_ticks "$pid")"
    local requests rps p50 p99 non2xx cpu rss
    requests="$(echo "$out" | awk '/requests in/ {print $1}')"
    rps="$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')"
    p50="$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")"
    p99="$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")"
    non2xx="$(echo "$out" | awk '/Non-2xx/ {print $4}')"
    cpu="$(awk -v d="$((after - before))" -v t="$ticks" -v r="$requests" \
        'BEGIN { printf "%.1f", (d / t) * 1e6 / r }')"
    rss="$(rss_kb "$pid")"
    if [ -z "$base_rps" ]; then
        base_rps="$rps"
        base_cpu="$cpu"
    fi
    printf '%-16s %10s %8s %8s %9s %9s %8s %8s\n' "$name" "$rps" "$p50" "$p99" "$cpu" "$rss" \
        "$(awk -v a="$rps" -v b="$base_rps" 'BEGIN { printf "%.2f", a / b }')" \
        "$(awk -v a="$cpu" -v b="$base_cpu" 'BEGIN { printf "%.2f", a / b }')"
    [ -z "$non2xx" ] || echo "compare.sh: $non2xx non-2xx replies on $name" >&2
}

row "nginx" "$nginx_pid" "http://127.0.0.1:$plain_port/"
row "inline /ping" "$bench_pid" "http://$bench_addr/ping"
row "inline /echo" "$bench_pid" "http://$bench_addr/echo" "$echo_body"
row "pool /pool" "$bench_pid" "http://$bench_addr/pool"
row "pool /write" "$bench_pid" "http://$bench_addr/write"
row "tls /ping" "$tls_pid" "https://$tls_addr/ping"
row "nginx tls" "$nginx_pid" "https://127.0.0.1:$tls_port/"

# New TLS connections that resume a session: `openssl s_time -reuse` connects,
# GETs the path and closes, over and over, resuming the first session (a full
# handshake once, then PSK resumption). One client, so this is handshake cost,
# not throughput: connections/s and server CPU µs per connection.
handshakes() {
    local name="$1" pid="$2" hostport="$3" path="$4"
    local secs="${duration%s}" before after out n rate cpu resumed
    before="$(cpu_ticks "$pid")"
    out="$(openssl s_time -connect "$hostport" -www "$path" -reuse -time "$secs" 2>/dev/null)"
    after="$(cpu_ticks "$pid")"
    # "N connections in S real seconds, B bytes read per connection"
    n="$(echo "$out" | awk '/real seconds/ {print $1; exit}')"
    rate="$(echo "$out" | awk '/real seconds/ {printf "%.0f", $1 / $4; exit}')"
    # s_time prints `r` per resumed connection and `*` per full handshake.
    resumed="$(echo "$out" | grep -E '^[r*]+$' | tr -d '\n' |
        awk '{ n = length($0); r = gsub(/r/, ""); printf "%.0f%%", n ? 100 * r / n : 0 }')"
    cpu="$(awk -v d="$((after - before))" -v t="$ticks" -v r="$n" \
        'BEGIN { printf "%.1f", (d / t) * 1e6 / r }')"
    printf '%-16s %10s %8s %8s %9s %9s\n' "$name" "$rate" "$resumed" - "$cpu" "$(rss_kb "$pid")"
}
echo
printf '%-16s %10s %8s %8s %9s %9s\n' 'resumed TLS 1.3' 'conn/s' 'resumed' '' 'cpu µs/c' 'RSS KB'
handshakes "tls /ping" "$tls_pid" "$tls_addr" /ping
handshakes "nginx tls" "$nginx_pid" "127.0.0.1:$tls_port" /
echo "compare.sh: $conns connections, $duration per row, $(nproc) cores shared by wrk and the servers;" \
    "agentd idle RSS ${idle_agentd} KB; ratios are to the nginx row of this run" >&2
