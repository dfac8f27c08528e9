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
# Two static floors: with +crt-static alone (the reference of issue 8, ~1.22 MB), and
# with every flag `agentd build` adds to a static build (build.rs `rustflags` and
# `final_link_args`: no unwind tables, packed relative relocations, the compact
# portable SHA-256, and the unwind data of std/libc dropped at link time by
# templates/no-unwind-data.ld), which shrink the empty program too.
# The +floor column is against the second, the stricter comparison.
empty_static() { # $1: target dir, $2...: extra rustc flags
    local dir="$1"; shift
    CARGO_ENCODED_RUSTFLAGS="$(IFS=$'\x1f'; echo "-C${IFS}target-feature=+crt-static${*:+$IFS$*}")" \
        cargo build --quiet --release --manifest-path "$work/empty/Cargo.toml" \
        --target x86_64-unknown-linux-gnu --target-dir "$dir"
    stat -c %s "$dir/x86_64-unknown-linux-gnu/release/empty"
}
floor_plain="$(empty_static "$work/empty/plain")"
floor_static="$(empty_static "$work/empty/same" -C force-unwind-tables=no \
    -C link-arg=-Wl,-z,pack-relative-relocs --cfg 'sha2_backend_soft="compact"' \
    -C link-arg=-Wl,--no-eh-frame-hdr -C link-arg=-T -C "link-arg=$root/templates/no-unwind-data.ld")"
cargo build --quiet --release --manifest-path "$work/empty/Cargo.toml" \
    --target-dir "$work/empty/target"
floor_dynamic="$(stat -c %s "$work/empty/target/release/empty")"

mb() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1000000 }'; }
delta() { awk -v b="$1" -v f="$2" 'BEGIN { printf "%+.2f", (b - f) / 1000000 }'; }

rows=()
hello_static=0
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
    if [ "$name" = hello ]; then hello_static="$s"; fi
    rows+=("$(printf '%-22s %10d  %6s  %6s   %10d  %6s  %6s' "$name" "$s" "$(mb "$s")" "$(delta "$s" "$floor_static")" "$d" "$(mb "$d")" "$(delta "$d" "$floor_dynamic")")")
done

cat <<REPORT

stripped binary sizes ($(uname -m), $("$agentd" --version); MB = 10^6 bytes; +floor = MB over the empty program)

$(printf '%-22s %10s  %6s  %6s   %10s  %6s  %6s' workflow "static B" MB "+floor" "dynamic B" MB "+floor")
$(printf '%-22s %10d  %6s  %6s   %10d  %6s  %6s' "fn main(){} (floor)" "$floor_static" "$(mb "$floor_static")" "+0.00" "$floor_dynamic" "$(mb "$floor_dynamic")" "+0.00")
$(printf '%s\n' "${rows[@]}")

fn main(){} with +crt-static alone: $floor_plain B ($(mb "$floor_plain") MB)
hello static: $(delta "$hello_static" "$floor_plain") MB over that floor, $(delta "$hello_static" "$floor_static") MB over the same-flags floor (issue 8: <= 0.40, and <= 1.65 MB; issue 17: <= 1.45 MB)
REPORT
