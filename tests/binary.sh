#!/bin/sh
# tests/binary.sh - what a reviewer can check in the built binary itself, not in
# its sources: (1) it references no function that opens a network connection,
# starts a process, or loads code at run time, and it links nothing but libc,
# libm and the compiler's OpenMP runtime; (2) with MODE "hardened" (the default
# build), its hardening: a position-independent executable, full RELRO, a
# non-executable stack, stack canaries and FORTIFY's checked functions. MODE
# "sanitized" (make asan) also allows the sanitizers' runtimes.
# Usage: sh tests/binary.sh DPO_BINARY [hardened|plain|sanitized]
BIN=$1
MODE=${2:-hardened}
fail=0
bad() { echo "FAIL: $BIN: $*"; fail=1; }

syms=$(nm -D --undefined-only "$BIN" | awk '{ print $2 }' | sed 's/@.*//' | sort -u)
# the listing works: a binary that calls malloc and fopen lists them
printf '%s\n' "$syms" | grep -qx malloc && printf '%s\n' "$syms" | grep -qx fopen || bad "nm -D lists no malloc or fopen: cannot check"
n=0
for f in socket socketpair connect bind listen accept accept4 getaddrinfo getnameinfo gethostbyname gethostbyname2 \
    gethostbyname_r gethostbyaddr getpeername getsockname setsockopt send sendto sendmsg recv recvfrom recvmsg \
    system popen fork vfork clone clone3 execve execv execvp execvpe execl execlp execle fexecve posix_spawn \
    posix_spawnp dlopen dlmopen dlsym dlvsym syscall ptrace; do
    n=$((n + 1))
    printf '%s\n' "$syms" | grep -qx "$f" && bad "references $f"
done
libs=$(readelf -d "$BIN" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
for l in $libs; do
    case $l in
        libc.so.*|libm.so.*|libgomp.so.*|libomp.so*|ld-linux*) ;;
        libasan.so*|libubsan.so*) [ "$MODE" = sanitized ] || bad "links $l: a sanitizer runtime in a $MODE build" ;;
        *) bad "links $l (only libc, libm and the OpenMP runtime are expected)" ;;
    esac
done
[ $fail -eq 0 ] && echo "binary: none of $n network, process or loader functions referenced ($(printf '%s\n' "$syms" | wc -l) symbols); links only: $libs"

if [ "$MODE" = hardened ]; then
    h=0
    readelf -h "$BIN" | grep -q 'Type:.*DYN' || { bad "not a position-independent executable"; h=1; }
    readelf -d "$BIN" | grep -Eq '\(FLAGS\).*BIND_NOW|\(FLAGS_1\).*NOW' || { bad "no BIND_NOW (full RELRO)"; h=1; }
    readelf -l "$BIN" | grep -q GNU_RELRO || { bad "no GNU_RELRO segment"; h=1; }
    readelf -lW "$BIN" | awk '$1 == "GNU_STACK" { print $7 }' | grep -q E && { bad "executable stack"; h=1; }
    readelf -lW "$BIN" | grep -q GNU_STACK || { bad "no GNU_STACK header (the stack would be executable)"; h=1; }
    printf '%s\n' "$syms" | grep -qx __stack_chk_fail || { bad "no stack protector (__stack_chk_fail)"; h=1; }
    chk=$(printf '%s\n' "$syms" | grep -c '^__.*_chk$')
    [ "$chk" -ge 1 ] || { bad "no FORTIFY checked function (__*_chk)"; h=1; }
    [ $h -eq 0 ] && echo "binary: hardened: PIE, full RELRO (BIND_NOW), non-executable stack, stack protector, $chk FORTIFY functions"
else
    echo "binary: hardening not checked ($MODE build)"
fi
exit $fail
