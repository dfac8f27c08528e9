#!/usr/bin/env bash
# The README's test command: install what the tests need (tests/install-deps.sh),
# then run the whole test suite (every test binary, even after one fails, so a run
# reports every failure). Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tests/install-deps.sh
# Every `agentd build` in the tests shares one cache, so agentd-runtime and its
# dependencies are compiled once per feature set for the whole run.
export AGENTD_CACHE_DIR="${AGENTD_CACHE_DIR:-$PWD/target/agentd-cache}"
exec cargo test --workspace --no-fail-fast "$@"
