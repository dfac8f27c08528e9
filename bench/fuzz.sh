#!/usr/bin/env bash
# Fuzz every cargo-fuzz target in fuzz/ for a bounded time each.
#
#   bench/fuzz.sh                                  # every target, 60 s each
#   FUZZ_SECS=600 bench/fuzz.sh                    # longer
#   TARGETS="serve_request paths" bench/fuzz.sh    # some targets only
#
# Targets (fuzz/fuzz_targets/):
#   parse_validate   the compiler short of cargo: parse → validate → render
#                    diagnostics, then load → lower → codegen for error-free input
#   serve_request    serve mode's request path: auth, body decoding, idempotency key,
#                    traceparent
#   template_render  template splitting and both renderers
#   paths            context path resolution and policy path normalisation/matching
#   lsp_requests     the language server: an open document and every editor request
#
# Installs cargo-fuzz if missing. libFuzzer needs nightly-only rustc flags; on a stable
# toolchain we set RUSTC_BOOTSTRAP=1 to allow them. Each target runs even if an earlier
# one crashed; the script then exits non-zero naming the crashed targets. A crash leaves
# its input in fuzz/artifacts/<target>/; turn it into a regression test (see
# ARCHITECTURE.md, "Fuzzing").
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

secs="${FUZZ_SECS:-60}"
all="parse_validate serve_request template_render paths lsp_requests"
targets="${TARGETS:-$all}"

for t in $targets; do
    case " $all " in
        *" $t "*) ;;
        *) echo "fuzz.sh: unknown target \`$t\` (targets: $all)" >&2; exit 2 ;;
    esac
done

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

# Resolve the runtime's and compiler's dependencies to the versions the workspace pins.
[ -f fuzz/Cargo.lock ] || cp Cargo.lock fuzz/Cargo.lock

export RUSTC_BOOTSTRAP=1

failed=()
for t in $targets; do
    # The corpus dir is gitignored; libFuzzer adds the inputs it finds interesting to
    # it. Seeds are read-only extra corpus dirs: the shipped workflows for the front
    # end, the committed fuzz/seeds/<target>/ for the others.
    corpus="fuzz/corpus/$t"
    mkdir -p "$corpus"
    seeds=()
    if [ "$t" = parse_validate ] || [ "$t" = lsp_requests ]; then
        cp workflows/*.toml "$corpus/"
        # The dialect-1 examples too, when the compat corpus is beside the workspace.
        compat="${AGENTD_COMPAT_DIR:-../shared/compat}"
        if [ -d "$compat/examples" ]; then
            cp "$compat"/examples/*.toml "$corpus/"
        fi
    fi
    if [ -d "fuzz/seeds/$t" ]; then
        seeds+=("fuzz/seeds/$t")
    fi
    echo "fuzz.sh: $t for ${secs}s" >&2
    if ! cargo fuzz run "$t" "$corpus" ${seeds[@]+"${seeds[@]}"} -- \
        -max_total_time="$secs" -max_len=65536; then
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: crashed: ${failed[*]} (inputs in fuzz/artifacts/<target>/)" >&2
    exit 1
fi
echo "fuzz.sh: no crashes ($targets; ${secs}s each)" >&2
