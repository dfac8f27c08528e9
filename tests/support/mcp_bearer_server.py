"""A Streamable HTTP MCP server on the official Python SDK, behind a bearer token
read from a file at every request, for tests/mcp_e2e.rs.

    python3 mcp_bearer_server.py TOKEN_FILE PORT

The tool `whoami` answers; after each answer the server writes a new token to
TOKEN_FILE (the rotation a secret manager would do), so the client's next
request must carry the new one. A wrong or missing token is a 401.
"""
import sys

import uvicorn
from mcp.server.fastmcp import FastMCP

token_file, port = sys.argv[1], int(sys.argv[2])
calls = {"n": 0}

mcp = FastMCP("bearer-test", host="127.0.0.1", port=port)


@mcp.tool()
def whoami() -> str:
    calls["n"] += 1
    with open(token_file, "w") as f:
        f.write(f"rotated-token-{calls['n']}\n")
    return f"python sdk call {calls['n']}"


class Bearer:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            with open(token_file) as f:
                want = "Bearer " + f.read().strip()
            got = dict(scope["headers"]).get(b"authorization", b"").decode()
            if got != want:
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"text/plain")]})
                await send({"type": "http.response.body", "body": b"bad token"})
                return
        await self.app(scope, receive, send)


uvicorn.run(Bearer(mcp.streamable_http_app()), host="127.0.0.1", port=port, log_level="warning")
