#!/usr/bin/env bash
# Fleet mode (issue 16): requests per second of an idempotent route (every request a
# new key: claim, run, record) on ONE replica — POST /orders of workflows/order-api.toml
# (input_schema, idempotency_key = "order_id", a `respond` 201) — with the local
# store (`--state-dir`: a marker file and an fsynced record per request) and with the
# Redis store (`--state-url`: two Lua scripts per request), in one run, under wrk with
# 16 keep-alive connections. The same binary (built with --fleet) serves both.
#
#   bench/fleet.sh
#   DURATION=30s CONNECTIONS=64 bench/fleet.sh
#   BINARY=./order-api-fleet bench/fleet.sh    # skip the build
#
# Needs wrk and redis-server (tests/deps/redis.sh installs the latter); as root,
# wrk is installed with apt-get when missing (AGENTD_BENCH_NO_INSTALL=1 forbids it).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
duration="${DURATION:-10s}"
connections="${CONNECTIONS:-16}"

if ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ] && [ -z "${AGENTD_BENCH_NO_INSTALL:-}" ] && command -v apt-get >/dev/null; then
        echo "fleet.sh: installing wrk with apt-get" >&2
        apt-get install -y -qq wrk >/dev/null 2>&1 || true
    fi
fi
command -v wrk >/dev/null || { echo "fleet.sh: wrk is required" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "fleet.sh: redis-server is required (tests/deps/redis.sh)" >&2; exit 1; }

# AGENTD=path uses an agentd already built (the binaries it builds are the same).
if [ -n "${BINARY:-}" ]; then
    agentd=""
elif [ -n "${AGENTD:-}" ]; then
    agentd="$AGENTD"
else
    echo "fleet.sh: building the compiler (release)" >&2
    cargo build --release --quiet -p agentd-compiler
    agentd="$root/target/release/agentd"
fi
export AGENTD_CACHE_DIR="${AGENTD_CACHE_DIR:-$root/target/agentd-bench-cache}"

work="$(mktemp -d "${TMPDIR:-/tmp}/agentd-fleet.XXXXXX")"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT


# Every request a key no other request used: the first-delivery path.
cat > "$work/keys.lua" <<'LUA'
local counter = 0
local prefix = tostring(math.random(1, 1000000000))
setup = function(thread) thread:set("tid", tostring(math.random(1, 1000000000))) end
request = function()
  counter = counter + 1
  local body = '{"order_id":"' .. prefix .. '-' .. (tid or "0") .. '-' .. counter .. '","quantity":1}'
  return wrk.format("POST", "/orders", {["Content-Type"] = "application/json"}, body)
end
LUA

# BINARY=path: a binary already built with `agentd build --fleet workflows/order-api.toml`.
if [ -n "${BINARY:-}" ]; then
    cp "$BINARY" "$work/keyed"
else
    echo "fleet.sh: agentd build --fleet" >&2
    "$agentd" build --quiet --fleet workflows/order-api.toml -o "$work/keyed" >&2
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

redis_port="$(free_port)"
mkdir -p "$work/redis"
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work/redis" --save "" \
    --appendonly no --daemonize no --logfile "$work/redis/log" &
pids+=($!)
for _ in $(seq 100); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.05
done

run() { # label, extra flags...
    local label="$1"; shift
    local port; port="$(free_port)"
    "$work/keyed" --bind "127.0.0.1:$port" --quiet "$@" 2>"$work/$label.err" &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 200); do
        curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
        sleep 0.05
    done
    local out
    out="$(wrk -t2 -c"$connections" -d"$duration" --latency -s "$work/keys.lua" "http://127.0.0.1:$port/orders")"
    local rps p50 p99
    rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
    p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
    p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
    local non2xx; non2xx="$(awk '/Non-2xx/ {print $NF}' <<<"$out")"
    printf '%-34s %10s req/s   p50 %8s   p99 %8s   non-2xx %s\n' "$label" "$rps" "$p50" "$p99" "${non2xx:-0}"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

echo "keyed route, one replica, new key per request, ${connections} connections, ${duration}:"
mkdir -p "$work/state"
run "local store (--state-dir)" --state-dir "$work/state"
run "redis store (--state-url)" --state-url "redis://127.0.0.1:$redis_port/0"
