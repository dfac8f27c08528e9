#!/usr/bin/env bash
# Run-once cost of a built workflow (issue 8): wall-clock latency with hyperfine and
# instruction counts with `valgrind --tool=callgrind`, for workflows/hello.toml and
# workflows/data-pipeline.toml against an empty `fn main(){}` (same profile, static)
# as the floor.
#
#   bench/run.sh
#
# hyperfine: used if installed; otherwise installed with apt-get when running as root
# (set AGENTD_BENCH_NO_INSTALL=1 to forbid that), else the latency column is skipped.
# valgrind: required for the instruction column (skipped with a note when absent).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"

echo "run.sh: building the compiler (release)" >&2
cargo build --release --quiet -p agentd-compiler
agentd="$root/target/release/agentd"
export AGENTD_CACHE_DIR="${AGENTD_CACHE_DIR:-$root/target/agentd-bench-cache}"

work="$(mktemp -d "${TMPDIR:-/tmp}/agentd-run.XXXXXX")"
trap 'rm -rf "$work"' EXIT

if ! command -v hyperfine >/dev/null; then
    if [ "$(id -u)" = 0 ] && [ -z "${AGENTD_BENCH_NO_INSTALL:-}" ] && command -v apt-get >/dev/null; then
        echo "run.sh: installing hyperfine with apt-get" >&2
        apt-get install -y -qq hyperfine >/dev/null 2>&1 || true
    fi
fi
have_hyperfine=0; command -v hyperfine >/dev/null && have_hyperfine=1
have_valgrind=0; command -v valgrind >/dev/null && have_valgrind=1

# The floor, built like a generated crate (static, opt-level "s", stripped).
mkdir -p "$work/empty/src"
cat > "$work/empty/Cargo.toml" <<'TOML'
[package]
name = "empty"
version = "0.0.0"
edition = "2024"
publish = false
[workspace]
[profile.release]
opt-level = "s"
debug = false
strip = true
panic = "abort"
codegen-units = 1
incremental = false
TOML
echo 'fn main() {}' > "$work/empty/src/main.rs"
# The same rustc flags as a static `agentd build` (agentd-compiler/src/build.rs
# `rustflags`), so the floor differs from hello only in what the workflow brings.
CARGO_ENCODED_RUSTFLAGS="$(IFS=$'\x1f'; a=(-C target-feature=+crt-static \
    -C force-unwind-tables=no -C link-arg=-Wl,-z,pack-relative-relocs); echo "${a[*]}")" \
    cargo build --quiet --release --manifest-path "$work/empty/Cargo.toml" \
    --target x86_64-unknown-linux-gnu --target-dir "$work/empty/target"
cp "$work/empty/target/x86_64-unknown-linux-gnu/release/empty" "$work/empty-bin"

echo "run.sh: building hello and data-pipeline" >&2
"$agentd" build --quiet workflows/hello.toml -o "$work/hello"
"$agentd" build --quiet workflows/data-pipeline.toml -o "$work/data-pipeline"

export AGENTD_NAME=world
dp_input='{"raw_json":"{\"order\":{\"id\":4242,\"paid\":true,\"total\":19.99,\"currency\":\"EUR\"}}"}'

# label|command (shell words: split by `eval` for valgrind, by hyperfine -N itself)
cases=(
    "fn main(){} (floor)|$work/empty-bin"
    "hello --version|$work/hello --version"
    "hello --input '{}'|$work/hello --input '{}'"
    "hello ... --sandbox=off|$work/hello --input '{}' --sandbox=off"
    "data-pipeline --input ...|$work/data-pipeline --input '$dp_input'"
)

instructions() {
    local args
    eval "args=($1)"
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "${args[@]}" 2>&1 >/dev/null \
        | sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' | tail -1
}

latency() {
    hyperfine --style none --warmup 5 --runs 200 -N --export-json "$work/h.json" "$1" >/dev/null 2>&1 \
        || hyperfine --style none --warmup 5 --runs 200 --export-json "$work/h.json" "$1" >/dev/null
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.2f ± %.2f" % (r["mean"]*1000, r["stddev"]*1000))' "$work/h.json"
}

printf '\nrun-once cost (%s, %s CPUs, %s)\n\n' "$(uname -m)" "$(nproc)" "$("$agentd" --version)"
printf '%-26s %16s %16s\n' "program" "instructions" "wall ms (mean ± σ)"
for c in "${cases[@]}"; do
    label="${c%%|*}"
    cmd="${c#*|}"
    ins="n/a"; ms="n/a"
    [ "$have_valgrind" = 1 ] && ins="$(instructions "$cmd")"
    [ "$have_hyperfine" = 1 ] && ms="$(latency "$cmd")"
    printf '%-26s %16s %16s\n' "$label" "$ins" "$ms"
done
[ "$have_valgrind" = 1 ] || echo "note: valgrind not installed; no instruction counts"
[ "$have_hyperfine" = 1 ] || echo "note: hyperfine not installed (and not installable here); no latency figures"
