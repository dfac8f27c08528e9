#!/usr/bin/env bash
# Fuzz the compiler front end (parse → validate → render) for a bounded time.
#
#   bench/fuzz.sh                 # 60 s
#   FUZZ_SECS=600 bench/fuzz.sh   # longer
#
# Installs cargo-fuzz if missing. libFuzzer needs nightly-only rustc flags; on a stable
# toolchain we set RUSTC_BOOTSTRAP=1 to allow them. A crash leaves its input in
# fuzz/artifacts/parse_validate/; turn it into a regression test (see ARCHITECTURE.md,
# "Fuzzing").
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

secs="${FUZZ_SECS:-60}"
target=parse_validate

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

# Seed corpus: the shipped workflows. The corpus dir is gitignored; libFuzzer adds
# the inputs it finds interesting to it.
corpus="fuzz/corpus/$target"
mkdir -p "$corpus"
cp workflows/*.toml "$corpus/"

# Resolve the compiler's dependencies to the versions the workspace pins.
[ -f fuzz/Cargo.lock ] || cp Cargo.lock fuzz/Cargo.lock

export RUSTC_BOOTSTRAP=1
cargo fuzz run "$target" "$corpus" -- -max_total_time="$secs" -max_len=65536
