#!/bin/sh
# Installs the Debian packages codeassist needs to build and test, only those missing.
# Called by `make deps` (and by make itself when a header or tool is absent).
#   sh tools/deps.sh fuzz    also what `make fuzz` needs (clang and its libFuzzer runtime)
set -eu

# zsh and groff-base: the specs try the zsh completion and render the manual page.
PACKAGES="make gcc pkg-config git curl python3 valgrind openssl
libluajit2-5.1-dev luajit2 libcurl4-openssl-dev libyaml-dev lua-cjson-dev
lua-busted lua-argparse tmux bubblewrap zsh groff-base"
[ "${1:-}" = fuzz ] && PACKAGES="$PACKAGES clang libclang-rt-dev"

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *"ok installed"*) ;;
        *) missing="$missing $p" ;;
    esac
done

[ -z "$missing" ] && exit 0

echo "deps: installing:$missing"
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
    command -v sudo >/dev/null 2>&1 || {
        echo "deps: not root and no sudo; install as root: apt-get install$missing" >&2
        exit 2
    }
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
# A stale or empty package list makes apt-get fail to find names; refresh once.
$SUDO apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "deps: done"
