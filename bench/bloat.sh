#!/usr/bin/env bash
# Where the bytes of a workflow binary go (issue 17's size target): builds the
# workflow with the real `agentd build`, rebuilds its generated crate *unstripped* with
# the same profile and flags in a scratch target dir, and prints the text+data size
# per crate (from `nm -S` symbol sizes, demangled) and the largest symbols, next to the
# stripped size `agentd build` produced.
#
#   bench/bloat.sh                         # workflows/hello.toml
#   bench/bloat.sh workflows/x.toml 40     # another workflow, top 40 symbols
#
# Uses AGENTD_CACHE_DIR when set (warm builds), else a cache under target/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
workflow="${1:-workflows/hello.toml}"
top="${2:-25}"

echo "bloat.sh: building the compiler (release)" >&2
cargo build --release --quiet -p agentd-compiler
agentd="$root/target/release/agentd"
export AGENTD_CACHE_DIR="${AGENTD_CACHE_DIR:-$root/target/agentd-bench-cache}"

work="$(mktemp -d "${TMPDIR:-/tmp}/agentd-bloat.XXXXXX")"
trap 'rm -rf "$work"' EXIT

"$agentd" build --quiet "$workflow" -o "$work/stripped" >&2
# The generated crate `agentd build` used: its directory is named after the binary
# cargo linked (`<workflow>-<digest of everything written into the crate>`), which is
# the file in the cache's target dir with the same bytes as the output.
crate=""
for candidate in "$AGENTD_CACHE_DIR"/target/*/release/*; do
    if [ -f "$candidate" ] && [ -x "$candidate" ] && cmp -s "$candidate" "$work/stripped"; then
        crate="$AGENTD_CACHE_DIR/crates/$(basename "$candidate")/"
        break
    fi
done
if [ -z "$crate" ] || [ ! -d "$crate" ]; then
    echo "bloat.sh: cannot find the generated crate of $workflow under $AGENTD_CACHE_DIR/crates" >&2
    exit 1
fi
cp -r "$crate" "$work/crate"

# Same flags as a static `agentd build` (build.rs `rustflags`), without stripping, and
# the same link arguments for the binary alone (`final_link_args`: std/libc unwind
# data dropped, unless the workflow was built with --handlers).
flags=(-C target-feature=+crt-static -C force-unwind-tables=no -C link-arg=-Wl,-z,pack-relative-relocs
    --cfg 'sha2_backend_soft="compact"')
link=(-C link-arg=-Wl,--no-eh-frame-hdr -C link-arg=-T -C "link-arg=$root/templates/no-unwind-data.ld")
echo "bloat.sh: rebuilding $(basename "$crate") unstripped (own target dir)" >&2
CARGO_PROFILE_RELEASE_STRIP=false \
CARGO_ENCODED_RUSTFLAGS="$(IFS=$'\x1f'; echo "${flags[*]}")" \
    cargo rustc --quiet --release --offline --manifest-path "$work/crate/Cargo.toml" \
    --target x86_64-unknown-linux-gnu --target-dir "$work/target" -- "${link[@]}"
bin="$(find "$work/target/x86_64-unknown-linux-gnu/release" -maxdepth 1 -type f -perm -u+x | head -1)"

# The floor: an empty program built the same way, so the report shows what the
# workflow adds over what every static Rust program carries.
mkdir -p "$work/empty/src"
sed -n '/^\[profile.release\]/,/^$/p' "$work/crate/Cargo.toml" > "$work/profile.toml"
{ printf '[package]\nname = "empty"\nversion = "0.0.0"\nedition = "2024"\n[workspace]\n'; cat "$work/profile.toml"; } \
    > "$work/empty/Cargo.toml"
echo 'fn main() {}' > "$work/empty/src/main.rs"
CARGO_PROFILE_RELEASE_STRIP=false \
CARGO_ENCODED_RUSTFLAGS="$(IFS=$'\x1f'; echo "${flags[*]}")" \
    cargo rustc --quiet --release --manifest-path "$work/empty/Cargo.toml" \
    --target x86_64-unknown-linux-gnu --target-dir "$work/target-empty" -- "${link[@]}"
floor="$work/target-empty/x86_64-unknown-linux-gnu/release/empty"

printf '%-40s %10s\n' "stripped binary (bytes)" "$(stat -c %s "$work/stripped")"
for f in "$bin" "$floor"; do
    echo "sections of $(basename "$f") (unstripped)"
    size -A "$f" | awk '$1 ~ /^\.(text|rodata|data\.rel\.ro|data|got|eh_frame|eh_frame_hdr|gcc_except_table|relr\.dyn)$/ { printf "  %-38s %10d\n", $1, $2 }'
done
nm -S --size-sort -C --defined-only "$bin" > "$work/nm.txt" 2>/dev/null
nm -S --size-sort -C --defined-only "$floor" > "$work/nm-floor.txt" 2>/dev/null
python3 - "$work/nm.txt" "$work/nm-floor.txt" "$top" <<'PY'
import collections, re, sys

def load(path):
    syms = {}
    for line in open(path):
        q = line.rstrip("\n").split(" ", 3)
        if len(q) < 4 or q[2] not in "tTrRdD":
            continue
        name = re.sub(r"::h[0-9a-f]{16}$", "", q[3])
        syms[name] = syms.get(name, 0) + int(q[1], 16)
    return syms

def crate(name):
    name = re.sub(r"^<+(&mut |&|dyn |\*const |\*mut )?", "", name)
    return name.split("::", 1)[0] if "::" in name else "[C library]"

wf, floor, top = load(sys.argv[1]), load(sys.argv[2]), int(sys.argv[3])
for title, syms in (("all symbols", wf), ("symbols the empty program does not have", {n: s for n, s in wf.items() if n not in floor})):
    by = collections.Counter()
    for n, s in syms.items():
        by[crate(n)] += s
    total = sum(syms.values())
    print(f"\n{title}: {total} bytes, per crate")
    for c, s in by.most_common(20):
        print(f"{s:10d}  {100 * s / total:5.1f}%  {c}")
extra = sorted(((s, n) for n, s in wf.items() if n not in floor), reverse=True)
print(f"\nlargest {top} symbols the empty program does not have")
for s, n in extra[:top]:
    print(f"{s:10d}  {n[:140]}")
PY
