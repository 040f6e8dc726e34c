#!/bin/sh
# The project `make demo` works on, made from examples/demo/:
#   tools/demo-project.sh TOP
# makes TOP/repo (examples/demo/project committed on main), TOP/remote.git (a bare origin
# with main pushed) and TOP/forge/issues/7.json (issue #7, for the gh stand-in).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1/repo" "$1/forge/issues"
top=$(cd "$1" && pwd)
cp -R "$here/examples/demo/project/." "$top/repo/"
cp "$here/examples/demo/issue-7.json" "$top/forge/issues/7.json"
cd "$top/repo"
git init -q -b main .
# an identity of its own, so the demo commits on a machine where git has none configured
git config user.name "codeassist demo"
git config user.email demo@example.invalid
git add -A
git commit -qm "calc: add() and sub()"
git init -q --bare "$top/remote.git"
git remote add origin "$top/remote.git"
git push -q origin main
