#!/usr/bin/env bash
# Stripped binary sizes for every workflow in workflows/ (issue 8), against the floor:
# an empty `fn main(){}` built the same way (opt-level "s", one codegen unit,
# panic = "abort", stripped; static with `-C target-feature=+crt-static`).
#
#   bench/size.sh              # static (the default of `agentd build`) and --dynamic
#
# Uses AGENTD_CACHE_DIR when set (warm builds), else a cache under target/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"

echo "size.sh: building the compiler (release)" >&2
cargo build --release --quiet -p agentd-compiler
agentd="$root/target/release/agentd"
export AGENTD_CACHE_DIR="${AGENTD_CACHE_DIR:-$root/target/agentd-bench-cache}"

work="$(mktemp -d "${TMPDIR:-/tmp}/agentd-size.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# The floor: an empty program with the generated crates' release profile.
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
echo "size.sh: building the empty floor" >&2
CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --quiet --release --manifest-path "$work/empty/Cargo.toml" \
    --target x86_64-unknown-linux-gnu --target-dir "$work/empty/target"
cargo build --quiet --release --manifest-path "$work/empty/Cargo.toml" \
    --target-dir "$work/empty/target"
floor_static="$(stat -c %s "$work/empty/target/x86_64-unknown-linux-gnu/release/empty")"
floor_dynamic="$(stat -c %s "$work/empty/target/release/empty")"

mb() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1000000 }'; }
delta() { awk -v b="$1" -v f="$2" 'BEGIN { printf "%+.2f", (b - f) / 1000000 }'; }

rows=()
for wf in workflows/*.toml; do
    name="$(basename "$wf" .toml)"
    echo "size.sh: $name" >&2
    if ! "$agentd" build --quiet "$wf" -o "$work/$name" 2>"$work/$name.err"; then
        rows+=("$(printf '%-22s %s' "$name" "(does not build alone: $(head -c 60 "$work/$name.err" | tr '\n' ' '))")")
        continue
    fi
    "$agentd" build --quiet --dynamic "$wf" -o "$work/$name-dyn"
    s="$(stat -c %s "$work/$name")"
    d="$(stat -c %s "$work/$name-dyn")"
    rows+=("$(printf '%-22s %10d  %6s  %6s   %10d  %6s  %6s' "$name" "$s" "$(mb "$s")" "$(delta "$s" "$floor_static")" "$d" "$(mb "$d")" "$(delta "$d" "$floor_dynamic")")")
done

cat <<REPORT

stripped binary sizes ($(uname -m), $("$agentd" --version); MB = 10^6 bytes; +floor = MB over the empty program)

$(printf '%-22s %10s  %6s  %6s   %10s  %6s  %6s' workflow "static B" MB "+floor" "dynamic B" MB "+floor")
$(printf '%-22s %10d  %6s  %6s   %10d  %6s  %6s' "fn main(){} (floor)" "$floor_static" "$(mb "$floor_static")" "+0.00" "$floor_dynamic" "$(mb "$floor_dynamic")" "+0.00")
$(printf '%s\n' "${rows[@]}")
REPORT
