#!/usr/bin/env bash
# agentd-runtime built with each of its Cargo features alone, under clippy -D warnings
# (ARCHITECTURE.md, "Testing"). `agentd build` enables whatever set a workflow needs,
# so a warning or an error that only one feature set shows reaches users; CI's
# workspace clippy sees the default features only. About 14 minutes on two idle
# cores with a cold target dir, so it is not part of `.ci/run`.
#
#   tests/feature-sweep.sh              # every feature but default, macros, fuzzing
#   tests/feature-sweep.sh serve llm    # just these
#
# Uses its own target dir (target/feature-sweep) so the main one keeps its
# fingerprints. Exits 1 when any feature fails, after trying them all.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

features=("$@")
if [ "${#features[@]}" -eq 0 ]; then
    # The [features] table of agentd-runtime/Cargo.toml, minus the ones that
    # `agentd build` never enables on its own.
    mapfile -t features < <(sed -n '/^\[features\]/,/^\[/p' agentd-runtime/Cargo.toml |
        grep -oE '^[a-z0-9-]+ =' | sed 's/ =$//' |
        grep -vxE 'default|macros|fuzzing')
fi

failed=()
for feature in "${features[@]}"; do
    start=$SECONDS
    if CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/feature-sweep}" \
        cargo clippy --quiet -p agentd-runtime --no-default-features --features "$feature" \
        --all-targets -- -D warnings; then
        echo "ok      $feature ($((SECONDS - start)) s)"
    else
        echo "FAILED  $feature ($((SECONDS - start)) s)"
        failed+=("$feature")
    fi
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "feature-sweep: ${#failed[@]} of ${#features[@]} failed: ${failed[*]}"
    exit 1
fi
echo "feature-sweep: all ${#features[@]} features clean"
