#!/usr/bin/env bash
# What a new runtime feature set costs to compile (issue 19; docs/performance.md,
# "The core compiled once").
#
#   bench/runtime-sets.sh                          # the default sets below
#   bench/runtime-sets.sh sandbox,shell serve      # chosen sets
#
# Compiles agentd-core once, then agentd-runtime (the facade) for each feature set,
# at the generated crate's profile (`opt-level = "s"`, one codegen unit, `panic =
# "abort"`), in its own target dir under target/. Each set gets one untimed build
# (so its dependencies are compiled), then two timed rebuilds of the crate alone
# (`touch` of its lib.rs). Prints wall and CPU (user + sys) seconds per run.
# Timings on shared machines are noisy: compare rows from one run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
sets=("$@")
if [ ${#sets[@]} -eq 0 ]; then
    sets=(none sandbox sandbox,shell sandbox,llm sandbox,serve sandbox,serve,tls,auth-hmac)
fi
export CARGO_PROFILE_RELEASE_OPT_LEVEL=s CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
    CARGO_PROFILE_RELEASE_PANIC=abort CARGO_PROFILE_RELEASE_INCREMENTAL=false \
    CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=false
target="$PWD/target/runtime-sets"

# timed LABEL CRATE-DIR CARGO-ARGS...: two rebuilds of the crate at CRATE-DIR.
timed() {
    local label="$1" dir="$2"
    shift 2
    cargo build -q --release --target-dir "$target" "$@"
    for run in 1 2; do
        touch "$dir/src/lib.rs"
        local t0 t1 usage
        usage="$(mktemp)"
        t0="$(date +%s.%N)"
        /usr/bin/time -f "%U %S" -o "$usage" cargo build -q --release --target-dir "$target" "$@"
        t1="$(date +%s.%N)"
        read -r user sys < "$usage"
        rm -f "$usage"
        awk -v l="$label" -v r="$run" -v a="$t0" -v b="$t1" -v u="$user" -v s="$sys" \
            'BEGIN { printf "%-36s run %d  %6.2f s wall  %6.2f s CPU\n", l, r, b - a, u + s }'
    done
}

timed "agentd-core (once per cache)" agentd-core -p agentd-core
for set in "${sets[@]}"; do
    features=(--no-default-features)
    [ "$set" != none ] && features+=(--features "$set")
    timed "agentd-runtime: $set" agentd-runtime -p agentd-runtime "${features[@]}"
done
