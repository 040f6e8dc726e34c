#!/bin/sh
# `make bench`: every benchmark, each figure printed with its ratio against its baseline.
#   tests/bench/run.sh ./codeassist
set -eu
BIN=${1:-./codeassist}
case "$BIN" in /*) ;; *) BIN="$(pwd)/$BIN" ;; esac
export CODEASSIST_BIN="$BIN"
cd "$(dirname "$0")/../.."
"$BIN" run tests/bench/startup.lua
