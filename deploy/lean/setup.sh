#!/usr/bin/env bash
# Sets up what stepwise's [lean] section needs for one Lean version, as python-servers/README.md
# ("Lean 4 + Mathlib + REPL") describes it by hand: the Lean toolchain through elan,
# leanprover-community/repl built at the tag of that version, a Lean project requiring Mathlib
# at the same tag with its prebuilt cache, and an `import Mathlib` through the built REPL.
# Prints the [lean] lines to paste into a stepwise config.
#
#   deploy/lean/setup.sh LEAN_VERSION DIR      e.g.  deploy/lean/setup.sh v4.24.0 ~/lean
#
# LEAN_VERSION is a Lean release both the repl and Mathlib have a tag for (vX.Y.Z or X.Y.Z;
# the repl has no tag for some releases). DIR receives DIR/repl and DIR/mathlib-project; a
# second run reuses them. Needs curl and git, and network access to GitHub and Mathlib's
# cache; downloads a few GB.
#
# Not run in stepwise's CI, nor where it was written (no network to the Lean hosts there):
# CI checks only its syntax (`bash -n`, .ci/run). Where each step comes from:
#   elan        leanprover/elan README ("Manual Installation") and elan-init.sh's usage
#               (`-y`, `--default-toolchain none`); `elan toolchain install`.
#   repl        leanprover-community/repl: tags are named after the Lean version they build
#               with (v4.24.0's lean-toolchain is leanprover/lean4:v4.24.0); its README,
#               "Using the REPL from another project": `lake build` in the checkout, then
#               `lake env ../path/to/repl/.lake/build/bin/repl` from the project.
#   Mathlib     mathlib4's wiki "Using mathlib4 as a dependency" and Lake's README: require
#               mathlib, match the project's lean-toolchain to Mathlib's, then
#               `lake exe cache get` before building (else Mathlib builds from source for
#               hours). The lakefile.toml `[[require]]` fields `git` and `rev` are Lake's
#               (Lake.Config.Dependency docs; lean4 src/lake/tests/translateConfig).
set -euo pipefail

die() {
  echo "setup.sh: $*" >&2
  exit 1
}

if [[ $# -ne 2 ]]; then
  echo "usage: $0 LEAN_VERSION DIR   (e.g. $0 v4.24.0 ~/lean)" >&2
  exit 2
fi
version=v${1#v}
[[ $version =~ ^v4\.[0-9]+\.[0-9]+(-rc[0-9]+)?$ ]] ||
  die "LEAN_VERSION must be a Lean 4 release such as v4.24.0, not '$1'"
toolchain=leanprover/lean4:$version
for cmd in curl git; do
  command -v "$cmd" >/dev/null || die "needs $cmd on PATH"
done
mkdir -p "$2"
dir=$(cd "$2" && pwd)
repl=$dir/repl
project=$dir/mathlib-project
repl_url=https://github.com/leanprover-community/repl
mathlib_url=https://github.com/leanprover-community/mathlib4

# Both tags first, so a version one of them lacks fails before any download.
for url in "$repl_url" "$mathlib_url"; do
  git ls-remote --exit-code --tags "$url" "refs/tags/$version" >/dev/null ||
    die "$url has no tag $version: pick a Lean version it has a tag for ($url/tags)"
done

echo "== 1/5 elan and $toolchain"
export PATH=${ELAN_HOME:-$HOME/.elan}/bin:$PATH
if ! command -v elan >/dev/null; then
  curl -sSf https://raw.githubusercontent.com/leanprover/elan/master/elan-init.sh |
    sh -s -- -y --default-toolchain none
fi
elan toolchain install "$toolchain"

echo "== 2/5 the REPL at $version in $repl"
[[ -d $repl/.git ]] || git clone "$repl_url" "$repl"
git -C "$repl" fetch --tags --quiet
git -C "$repl" -c advice.detachedHead=false checkout --quiet "$version"
# The REPL must run on the toolchain Mathlib's .olean files were built with.
[[ $(<"$repl/lean-toolchain") == "$toolchain" ]] ||
  die "$repl/lean-toolchain says $(<"$repl/lean-toolchain"), not $toolchain"
(cd "$repl" && lake build)
repl_bin=$repl/.lake/build/bin/repl
[[ -x $repl_bin ]] || die "lake build left no $repl_bin"

echo "== 3/5 a project requiring Mathlib $version in $project"
mkdir -p "$project"
echo "$toolchain" >"$project/lean-toolchain"
cat >"$project/lakefile.toml" <<EOF
name = "mathlib_project"

[[require]]
name = "mathlib"
git = "$mathlib_url"
rev = "$version"
EOF
(cd "$project" && lake update)
mathlib_toolchain=$(<"$project/.lake/packages/mathlib/lean-toolchain")
[[ $mathlib_toolchain == "$toolchain" ]] ||
  die "Mathlib $version wants $mathlib_toolchain, not $toolchain"

echo "== 4/5 Mathlib's prebuilt cache"
(cd "$project" && lake exe cache get)

echo "== 5/5 import Mathlib through the REPL (tens of seconds)"
# The REPL's framing: one JSON command, then a blank line.
if ! answer=$(cd "$project" && printf '{"cmd": "import Mathlib"}\n\n' | lake env "$repl_bin") ||
  ! grep -q '"env": 0' <<<"$answer" || grep -q '"severity": "error"' <<<"$answer"; then
  die "import Mathlib failed; the REPL answered: $answer"
fi

# TOML basic strings: backslashes and quotes escaped.
toml() {
  local s=${1//\\/\\\\}
  printf '"%s"' "${s//\"/\\\"}"
}
lake_bin=$(command -v lake)
cat <<EOF

Lean $version, its REPL and Mathlib are ready. Paste into the stepwise config
(absolute paths, so any working directory and Slurm job finds them; \`lake env\` puts
Mathlib's .olean files on the REPL's search path):

[lean]
command = [$(toml "$lake_bin"), "env", $(toml "$repl_bin")]
cwd = $(toml "$project")
header = "import Mathlib\\nimport Aesop\\nset_option maxHeartbeats 400000\\nopen BigOperators Real Nat Topology Rat"
EOF
