#!/usr/bin/env bash
# Build-time and binary-size figures for `agentd build` (docs/performance.md;
# ARCHITECTURE.md "Testing").
#
#   bench/build.sh
#
# Builds the compiler in release, then, against a fresh empty AGENTD_CACHE_DIR:
#   1. a cold build of workflows/hello.toml (compiles agentd-runtime and its deps),
#   2. a new workflow with a new feature set: a one-`shell_run` workflow written below
#      (runtime features `sandbox,shell`; hello's are `sandbox`), which recompiles the
#      runtime facade for that set; agentd-core and the dependencies are shared
#      (ARCHITECTURE.md, "The core and the facade"): target <= 4 s,
#   3. a new workflow whose feature set is compiled: hello with a new greeting, so a
#      new program hash and a new generated crate, three times (min and median):
#      target <= 1.0 s (issue 19),
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
cat > "$work/shell.toml" <<'TOML'
# A new feature set for the runtime: shell_run (hello has none).
name = "new_feature_set"

[policy.shell]
commands = ["/usr/bin/echo"]

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "say"

[[nodes]]
id = "say"
type = "shell_run"
command = "/usr/bin/echo"
timeout_secs = 5

[[nodes]]
id = "failed"
type = "fail"
reason = "echo failed"

[[edges]]
from = "say"
when = "error"
to = "failed"
TOML
timed new-feature-set "$work/shell.toml" -o "$work/out/new-feature-set"

for n in 1 2 3; do
    sed "s/your agent is alive/your agent is alive ($n)/" workflows/hello.toml > "$work/hello-$n.toml"
    if cmp -s workflows/hello.toml "$work/hello-$n.toml"; then
        echo "build.sh: the greeting edit did not apply; update the sed pattern" >&2
        exit 1
    fi
    timed "new-hello-$n" "$work/hello-$n.toml" -o "$work/out/hello-$n"
done
warm_new="$(printf '%s\n' "${secs[new-hello-1]}" "${secs[new-hello-2]}" "${secs[new-hello-3]}" |
    sort -n | awk 'NR == 1 { min = $1 } NR == 2 { med = $1 } END { printf "%s s (min %s s)", med, min }')"

timed hello-dynamic workflows/hello.toml --dynamic -o "$work/out/hello-dynamic"
timed hello-release-lto workflows/hello.toml --release-lto -o "$work/out/hello-lto"

linkage="$(ldd "$work/out/hello" 2>&1 || true)"

cat <<REPORT

agentd build figures ($(uname -m), $(nproc) CPUs, $("$agentd" --version))

build times (wall clock, fresh cache)
  cold build, workflows/hello.toml            ${secs[cold-hello]} s
  new workflow, new feature set (shell_run)    ${secs[new-feature-set]} s   (target <= 4 s)
  new workflow, feature set compiled (hello, new greeting; median of 3)
                                              ${warm_new}   (target <= 1.0 s)
  hello --dynamic (cold: host target dir)    ${secs[hello-dynamic]} s
  hello --release-lto (cold for that profile) ${secs[hello-release-lto]} s

binary sizes, workflows/hello.toml
  static (default)   $(size "$work/out/hello")
  --dynamic          $(size "$work/out/hello-dynamic")
  --release-lto      $(size "$work/out/hello-lto")

ldd on the static hello: ${linkage//$'\n'/ }
REPORT
