#!/bin/sh
# tests/sums.sh - the sha256 of every source file (the tracked files of a git
# checkout, else every file outside build/), then of the binary: what a
# facility compares with the reviewed release. Usage: sh tests/sums.sh DPO_BINARY
set -eu
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z | xargs -0 sha256sum
else
    find . -type f ! -path './build/*' ! -path './.git/*' ! -name dpo -print0 | sort -z | xargs -0 sha256sum
fi
sha256sum "$1"
