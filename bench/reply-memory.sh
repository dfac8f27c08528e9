#!/usr/bin/env bash
# Memory a served connection keeps after its replies (issue 19): the server's
# RSS with CONNS keep-alive connections open, each after one reply of SIZE
# bytes (a `respond` of the request's `blob`), against the idle server.
# hyper keeps a connection's buffers until it closes; this shows what that
# costs per connection for a small and a large reply.
#
#   bench/reply-memory.sh
#   CONNS=1000 SIZES="2000 600000" bench/reply-memory.sh
#   AGENTD_RUNTIME_PATH=/tmp/before/agentd-runtime AGENTD_CACHE_DIR=/tmp/before-cache \
#       bench/reply-memory.sh     # the same against another runtime tree
#
# Needs python3 (the client). Not run by CI.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
conns="${CONNS:-300}"
sizes="${SIZES:-2000 600000}"

command -v python3 >/dev/null || { echo "reply-memory.sh: python3 is required" >&2; exit 1; }
if [ -z "${AGENTD:-}" ]; then
    echo "reply-memory.sh: building the compiler (release)" >&2
    cargo build --release --quiet -p agentd-compiler
    AGENTD="$root/target/release/agentd"
fi
export AGENTD_CACHE_DIR="${AGENTD_CACHE_DIR:-$root/target/agentd-bench-cache}"

work="$(mktemp -d "${TMPDIR:-/tmp}/agentd-reply-memory.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cat > "$work/big.toml" <<'TOML'
name = "big"

[policy]

[[start_nodes]]
name = "big"
source = "http"
entry_node = "reply"

[[http_routes]]
method = "POST"
path = "/big"
start_node = "big"

[[nodes]]
id = "reply"
type = "respond"
content_type = "text/plain"
body_template = "{{blob}}"
TOML
"$AGENTD" build --quiet "$work/big.toml" -o "$work/big"

for size in $sizes; do
    python3 - "$work/big" "$conns" "$size" <<'PY'
import json, re, socket, subprocess, sys, time

binary, conns, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
server = subprocess.Popen(
    [binary, "--bind", "127.0.0.1:0", "--max-connections", str(conns + 16)],
    stderr=subprocess.PIPE, text=True)
addr = None
for _ in range(200):
    m = re.search(r"listening on http://([^/ ]+)", server.stderr.readline())
    if m:
        addr = m.group(1)
        break
if addr is None:
    sys.exit("reply-memory.sh: the server did not start")
host, port = addr.rsplit(":", 1)

def rss_kb():
    with open(f"/proc/{server.pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))

body = json.dumps({"blob": "x" * size}).encode()
request = (b"POST /big HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n" % len(body)) + body
time.sleep(0.3)
idle = rss_kb()
open_conns = []
for _ in range(conns):
    s = socket.create_connection((host, int(port)))
    s.sendall(request)
    got = b""
    while b"\r\n\r\n" not in got:
        got += s.recv(65536)
    head, rest = got.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
    while len(rest) < length:
        rest += s.recv(1 << 20)
    if length != size or len(rest) != size:
        sys.exit(f"reply-memory.sh: a reply of {len(rest)} bytes, expected {size}")
    open_conns.append(s)
time.sleep(0.5)
held = rss_kb()
print(f"{size:>8}-byte replies: idle {idle} KB; {conns} connections open after one reply each: "
      f"{held} KB (+{held - idle} KB, {(held - idle) / conns:.1f} KB per connection)")
server.terminate()
server.wait()
PY
done
