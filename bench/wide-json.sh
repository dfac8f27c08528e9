#!/usr/bin/env bash
# Reactor latency under wide JSON bodies (issue 21): what an ordinary client
# sees while other clients post 60,000-key JSON objects. Prints p50, p99 and
# max of a small inline POST, first on a quiet server, then while WIDE_CLIENTS
# clients post wide bodies back to back, in the same run, plus how many wide
# bodies were served and how many went to the worker pool
# (agentd_http_bodies_offloaded_total).
#
#   bench/wide-json.sh
#   SECS=10 WIDE_CLIENTS=4 KEYS=60000 bench/wide-json.sh
#   AGENTD=target/debug/agentd bench/wide-json.sh   # skip the release build
#
# Bodies over 64 KiB are decoded and run on the worker pool, so the wide
# bodies should cost the reactor only their socket reads; before that change
# a 60,000-key object took ~55 ms of reactor time and the quiet p50 of 0.6 ms
# became 194 ms. Needs python3 (the clients).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
secs="${SECS:-5}"
wide_clients="${WIDE_CLIENTS:-2}"
keys="${KEYS:-60000}"

command -v python3 >/dev/null || { echo "wide-json.sh: python3 is required" >&2; exit 1; }

if [ -z "${AGENTD:-}" ]; then
    echo "wide-json.sh: building the compiler (release)" >&2
    cargo build --release --quiet -p agentd-compiler
    AGENTD="$root/target/release/agentd"
fi
export AGENTD_CACHE_DIR="${AGENTD_CACHE_DIR:-$root/target/agentd-bench-cache}"

work="$(mktemp -d "${TMPDIR:-/tmp}/agentd-wide.XXXXXX")"
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/wide.toml" <<'TOML'
name = "wide"

[policy]

[[start_nodes]]
name = "echo"
source = "http"
entry_node = "reply"

[[http_routes]]
method = "POST"
path = "/echo"
start_node = "echo"

[[nodes]]
id = "reply"
type = "respond"
content_type = "text/plain"
body_template = "ok\n"
TOML

echo "wide-json.sh: building the workflow" >&2
"$AGENTD" --color=never build --quiet "$work/wide.toml" -o "$work/wide"
"$work/wide" --bind 127.0.0.1:0 --max-connections 4096 2> "$work/stderr" &
server=$!
addr=""
for _ in $(seq 1 100); do
    addr="$(sed -n 's|.*listening on http://\([^/]*\)/.*|\1|p' "$work/stderr" | head -n1)"
    [ -n "$addr" ] && break
    sleep 0.1
done
[ -n "$addr" ] || { echo "wide-json.sh: the server did not start" >&2; cat "$work/stderr" >&2; exit 1; }

python3 - "$addr" "$secs" "$wide_clients" "$keys" <<'PY'
import socket, sys, threading, time

host, port = sys.argv[1].rsplit(":", 1)
port, secs, wide_clients, keys = int(port), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

def request(body):
    head = ("POST /echo HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head + body

def exchange(sock, req):
    sock.sendall(req)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise OSError("closed")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        rest += sock.recv(65536)
    return head.split(b" ")[1]

small = request(b'{"a":1}')
wide = request(("{" + ",".join(f'"k{i}":{i}' for i in range(keys)) + "}").encode())

def latencies(duration):
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    out = []
    end = time.monotonic() + duration
    while time.monotonic() < end:
        t = time.perf_counter()
        status = exchange(sock, small)
        out.append((time.perf_counter() - t) * 1000)
        assert status == b"200", status
        time.sleep(0.002)
    sock.close()
    return sorted(out)

def summary(name, xs):
    p = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))]
    print(f"{name:<28} n={len(xs):>6}  p50={p(0.5):7.2f} ms  p99={p(0.99):7.2f} ms  max={xs[-1]:7.2f} ms")

quiet = latencies(secs)
stop = threading.Event()
served = [0]
def blaster():
    sock = socket.create_connection((host, port))
    while not stop.is_set():
        status = exchange(sock, wide)
        if status == b"200":
            served[0] += 1
    sock.close()
threads = [threading.Thread(target=blaster) for _ in range(wide_clients)]
for t in threads:
    t.start()
time.sleep(0.5)
loaded = latencies(secs)
stop.set()
for t in threads:
    t.join()
print(f"wide-json: {keys}-key bodies of {len(wide) // 1024} KiB, {wide_clients} posting clients, {secs:g} s per phase")
summary("quiet", quiet)
summary(f"while posting wide bodies", loaded)
print(f"wide bodies served: {served[0]}")
PY
python3 - "$addr" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics").read().decode()
lines = [l for l in text.splitlines() if l.startswith("agentd_http_bodies_offloaded_total")]
print(lines[0] if lines else "agentd_http_bodies_offloaded_total: absent (a runtime without off-reactor decoding)")
PY
