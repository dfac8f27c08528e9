#!/usr/bin/env bash
# Real MCP servers and the protocol's own conformance suite, for tests/mcp_e2e.rs:
# the official conformance suite (client side; 0.1.12 is the newest that runs on
# Node 20), the reference servers `everything` (stdio and Streamable HTTP) and
# `filesystem` (stdio), and the official Python SDK. Installs into
# target/test-deps/mcp/ (npm packages under node_modules/, the Python SDK under py/).
set -euo pipefail
CONFORMANCE=0.1.12
EVERYTHING=2026.8.31
FILESYSTEM=2026.8.31
PYMCP=1.30.0
# The SDK the conformance suite's test servers run on, as when 0.1.12 was published
# (2026-01-30): with SDK 1.32 its `tools_call` server refuses every request after the
# first ("Already connected to a transport"), whatever the client.
CONFORMANCE_SDK=1.25.3
dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/target/test-deps/mcp"
have() {
    node -e "process.exit(require('$dir/node_modules/$1/package.json').version === '$2' ? 0 : 1)" 2>/dev/null
}
if ! { have @modelcontextprotocol/conformance "$CONFORMANCE" \
    && have @modelcontextprotocol/conformance/node_modules/@modelcontextprotocol/sdk "$CONFORMANCE_SDK" \
    && have @modelcontextprotocol/server-everything "$EVERYTHING" \
    && have @modelcontextprotocol/server-filesystem "$FILESYSTEM"; }; then
    command -v npm >/dev/null || { echo "mcp.sh: npm is required" >&2; exit 1; }
    mkdir -p "$dir"
    cat > "$dir/package.json" <<JSON
{"name": "agentd-test-mcp", "private": true,
 "overrides": {"@modelcontextprotocol/conformance": {"@modelcontextprotocol/sdk": "$CONFORMANCE_SDK"}}}
JSON
    npm install --prefix "$dir" --no-audit --no-fund --save-exact \
        "@modelcontextprotocol/conformance@$CONFORMANCE" \
        "@modelcontextprotocol/server-everything@$EVERYTHING" \
        "@modelcontextprotocol/server-filesystem@$FILESYSTEM"
fi
if ! PYTHONPATH="$dir/py" python3 -c "import importlib.metadata as m, sys; sys.exit(0 if m.version('mcp') == '$PYMCP' else 1)" 2>/dev/null; then
    command -v python3 >/dev/null || { echo "mcp.sh: python3 is required" >&2; exit 1; }
    python3 -m pip install --quiet --disable-pip-version-check --target "$dir/py" "mcp==$PYMCP"
fi
