#!/usr/bin/env bash
# Installs the tools and services the tests start themselves (redis-server,
# skopeo, MCP reference servers, ...): one script per need in tests/deps/, each
# pinned and idempotent (it does nothing when what it installs is already there).
# Run by tests/run.sh, so the README's test command works on a fresh machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/deps"
shopt -s nullglob
for script in ./*.sh; do
    echo "== tests/deps/${script#./}"
    bash "$script"
done
