#!/bin/sh
# Make sure the Check unit-test library and pkg-config are installed.
# Installs them with apt-get when running as root (or through sudo without a
# password); otherwise prints the exact command and fails.
if pkg-config --exists check 2>/dev/null; then
    exit 0
fi
cmd="apt-get install -y check pkg-config"
if [ "$(id -u)" = "0" ]; then
    echo "Check is missing: running '$cmd'" >&2
    (apt-get install -y check pkg-config || { apt-get update && apt-get install -y check pkg-config; }) >&2
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    echo "Check is missing: running 'sudo $cmd'" >&2
    (sudo apt-get install -y check pkg-config || { sudo apt-get update && sudo apt-get install -y check pkg-config; }) >&2
else
    echo "The tests need the Check library. Install it with:" >&2
    echo "    sudo $cmd" >&2
    exit 1
fi
pkg-config --exists check || { echo "Check is still missing after '$cmd'" >&2; exit 1; }
