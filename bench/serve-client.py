#!/usr/bin/env python3
"""A fixed number of keep-alive HTTP/1.1 requests (bench/serve-cost.sh).

    serve-client.py HOST:PORT METHOD PATH REQUESTS CONNECTIONS [BODY [HEADER...]]

Opens CONNECTIONS connections, each one thread, and sends REQUESTS requests in
all (split evenly) one after another on each connection, reading every reply
whole before the next request. Exits 1 when a reply is not 2xx or a
connection closes early. wrk is time-based; this sends an exact count, so a
server's instructions, system calls or context switches can be divided by it.
"""

import socket
import sys
import threading


def run(addr, request, count, errors):
    host, port = addr.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    try:
        for _ in range(count):
            sock.sendall(request)
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed before a reply")
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            status = int(lines[0].split()[1])
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            while len(buf) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed inside a reply")
                buf += chunk
            buf = buf[length:]
            if not 200 <= status < 300:
                raise ValueError(f"status {status}")
    except Exception as e:  # reported by the main thread
        errors.append(str(e))
    finally:
        sock.close()


def main():
    addr, method, path, requests, conns = sys.argv[1:6]
    body = sys.argv[6].encode() if len(sys.argv) > 6 else b""
    headers = sys.argv[7:]
    requests, conns = int(requests), int(conns)
    head = f"{method} {path} HTTP/1.1\r\nHost: {addr}\r\n"
    for h in headers:
        head += h + "\r\n"
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    request = head.encode() + b"\r\n" + body
    errors = []
    share = [requests // conns + (1 if i < requests % conns else 0) for i in range(conns)]
    threads = [
        threading.Thread(target=run, args=(addr, request, n, errors)) for n in share if n
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        print(f"serve-client.py: {len(errors)} connection(s) failed: {errors[0]}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
