#!/usr/bin/env bash
# Mermaid's own parser, for tests/graph_e2e.rs: `agentd graph --format mermaid` must
# produce charts that mermaid accepts. mermaid parses in Node with a jsdom window (no
# browser, unlike @mermaid-js/mermaid-cli). Installs into target/test-deps/mermaid/.
set -euo pipefail
MERMAID=11.12.1
JSDOM=26.1.0
dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/target/test-deps/mermaid"
have() {
    node -e "process.exit(require('$dir/node_modules/$1/package.json').version === '$2' ? 0 : 1)" 2>/dev/null
}
if have mermaid "$MERMAID" && have jsdom "$JSDOM"; then
    exit 0
fi
command -v npm >/dev/null || { echo "mermaid.sh: npm is required" >&2; exit 1; }
mkdir -p "$dir"
[ -f "$dir/package.json" ] || echo '{"name":"agentd-test-mermaid","private":true}' > "$dir/package.json"
npm install --prefix "$dir" --no-audit --no-fund --save-exact "mermaid@$MERMAID" "jsdom@$JSDOM"
