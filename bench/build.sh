#!/usr/bin/env bash
# Build-time and binary-size figures for `agentd build` (docs/performance.md;
# ARCHITECTURE.md "Testing").
#
#   bench/build.sh
#
# Builds the compiler in release, then, against a fresh empty AGENTD_CACHE_DIR:
#   1. a cold build of workflows/hello.toml (compiles agentd-runtime and its deps),
#   2. a warm build of a different workflow, workflows/data-pipeline.toml,
#   3. a rebuild of hello after a trivial edit (the greeting text),
# and reports the sizes of hello built static (default), --dynamic and --release-lto.
# Timings on shared machines are noisy: compare figures from one run, not across runs.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"

echo "build.sh: building the compiler (release)" >&2
cargo build --release --quiet -p agentd-compiler
agentd="$root/target/release/agentd"

work="$(mktemp -d "${TMPDIR:-/tmp}/agentd-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
export AGENTD_CACHE_DIR="$work/cache"
mkdir -p "$AGENTD_CACHE_DIR" "$work/out"

now() { date +%s.%N; }

# timed LABEL ARGS... : run `agentd build ARGS...` and record its wall time in seconds.
declare -A secs
timed() {
    local label="$1"
    shift
    echo "build.sh: $label" >&2
    local t0 t1
    t0="$(now)"
    "$agentd" build --quiet "$@"
    t1="$(now)"
    secs[$label]="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')"
}

size() {
    local bytes
    bytes="$(stat -c %s "$1")"
    awk -v b="$bytes" 'BEGIN { printf "%10d bytes  %6.2f MB", b, b / 1000000 }'
}

timed cold-hello workflows/hello.toml -o "$work/out/hello"
timed warm-data-pipeline workflows/data-pipeline.toml -o "$work/out/data-pipeline"

sed 's/your agent is alive/your agent is still alive/' workflows/hello.toml > "$work/hello-edited.toml"
if cmp -s workflows/hello.toml "$work/hello-edited.toml"; then
    echo "build.sh: the greeting edit did not apply; update the sed pattern" >&2
    exit 1
fi
timed edited-hello "$work/hello-edited.toml" -o "$work/out/hello-edited"

timed hello-dynamic workflows/hello.toml --dynamic -o "$work/out/hello-dynamic"
timed hello-release-lto workflows/hello.toml --release-lto -o "$work/out/hello-lto"

linkage="$(ldd "$work/out/hello" 2>&1 || true)"

cat <<REPORT

agentd build figures ($(uname -m), $(nproc) CPUs, $("$agentd" --version))

build times (wall clock, fresh cache)
  cold build, workflows/hello.toml            ${secs[cold-hello]} s
  warm build, workflows/data-pipeline.toml    ${secs[warm-data-pipeline]} s
  rebuild of hello after editing the greeting ${secs[edited-hello]} s
  hello --dynamic (cold: host target dir)    ${secs[hello-dynamic]} s
  hello --release-lto (cold for that profile) ${secs[hello-release-lto]} s

binary sizes, workflows/hello.toml
  static (default)   $(size "$work/out/hello")
  --dynamic          $(size "$work/out/hello-dynamic")
  --release-lto      $(size "$work/out/hello-lto")

ldd on the static hello: ${linkage//$'\n'/ }
REPORT
