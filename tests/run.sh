#!/usr/bin/env bash
# The README's test command: install what the tests need (tests/install-deps.sh),
# then run the whole test suite (every test binary, even after one fails, so a run
# reports every failure; the runtime's unit tests once more with every feature).
# Extra arguments go to both `cargo test`s.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tests/install-deps.sh
# Every `agentd build` in the tests shares one cache, so agentd-runtime and its
# dependencies are compiled once per feature set for the whole run.
export AGENTD_CACHE_DIR="${AGENTD_CACHE_DIR:-$PWD/target/agentd-cache}"
status=0
# The workspace build unifies the runtime's features over its users (tests/golden,
# agentd-macros, tests/mcp-double), which leaves out some (`rego`, `fleet`, `oauth`,
# the `secrets-*` sources, ...): their unit tests run here, with every feature.
cargo test -p agentd-runtime --lib --all-features --no-fail-fast "$@" || status=$?
cargo test --workspace --no-fail-fast "$@" || status=$?
exit "$status"
