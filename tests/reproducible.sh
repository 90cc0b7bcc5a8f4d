#!/bin/sh
# tests/reproducible.sh - two builds of the same sources with the same compiler,
# in two directories of different names and path lengths, must give
# byte-identical binaries: nothing of the build's path, date or machine state is
# inside (no __FILE__, __DATE__ or __TIME__, no debug information by default).
# Usage: sh tests/reproducible.sh [make arguments, e.g. CC=clang]
set -eu
T=$(mktemp -d /tmp/dpo-repro-XXXXXX)
trap 'rm -rf "$T"' EXIT
mkdir "$T/a" "$T/second-tree"
# the sources: the tracked files of a git checkout, else every file but build/
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z | xargs -0 tar cf "$T/src.tar"
else
    tar cf "$T/src.tar" --exclude=./build --exclude=./dpo .
fi
for d in a second-tree; do
    tar xf "$T/src.tar" -C "$T/$d"
    (cd "$T/$d" && make -j2 "$@" build/dpo >/dev/null 2>&1) || { echo "FAIL: the build in $T/$d failed"; exit 1; }
done
if cmp -s "$T/a/build/dpo" "$T/second-tree/build/dpo"; then
    echo "reproducible: two builds in $T/a and $T/second-tree are byte-identical, sha256 $(sha256sum < "$T/a/build/dpo" | cut -c1-64)"
else
    echo "FAIL: two builds of the same sources differ"
    cmp "$T/a/build/dpo" "$T/second-tree/build/dpo" || true
    exit 1
fi
