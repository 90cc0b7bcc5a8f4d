#!/bin/sh
# tests/kernels.sh - build tests/kernel_check.c and dpo for every matrix kernel
# and run each where it can run (make test-kernels). Each kernel must give the
# scalar reference's bits (kernel_check), and each dpo build must save the same
# bytes as the default build after a short training run (tests/compilers.sh).
# See matmul_kernels.h. Says which kernels ran and which were only compiled;
# fails if any build or run fails.
set -eu
MAKE=${MAKE:-make}
ran=""
compiled=""
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
has() { case " $flags " in *" $1 "*) return 0 ;; esac; return 1; }
$MAKE --no-print-directory -s build/dpo

run_kernel() { # SIMD value, then whether this CPU runs it (yes/no)
    $MAKE --no-print-directory -s BUILD=build/kernel-$1 SIMD=$1 build/kernel-$1/kernel_check build/kernel-$1/dpo
    if [ "$2" = yes ]; then
        ./build/kernel-$1/kernel_check
        sh tests/compilers.sh build/dpo build/kernel-$1/dpo
        ran="$ran $1"
    else
        echo "kernel $1: compiled; this CPU cannot run it"
        compiled="$compiled $1"
    fi
}

case $(uname -m) in
x86_64)
    run_kernel scalar yes
    if has avx2 && has fma; then run_kernel avx2 yes; else run_kernel avx2 no; fi
    if has avx512f; then run_kernel avx512 yes; else run_kernel avx512 no; fi
    if command -v aarch64-linux-gnu-gcc >/dev/null 2>&1; then
        $MAKE --no-print-directory -s CC=aarch64-linux-gnu-gcc HOSTCC=cc BUILD=build/kernel-neon SIMD=neon \
            build/kernel-neon/kernel_check build/kernel-neon/dpo
        if command -v qemu-aarch64 >/dev/null 2>&1; then
            qemu-aarch64 -L /usr/aarch64-linux-gnu ./build/kernel-neon/kernel_check
            # the AArch64 dpo under qemu-user, through a one-line wrapper
            printf '#!/bin/sh\nexec qemu-aarch64 -L /usr/aarch64-linux-gnu %s/build/kernel-neon/dpo "$@"\n' \
                "$(pwd)" > build/kernel-neon/dpo-qemu
            chmod +x build/kernel-neon/dpo-qemu
            sh tests/compilers.sh build/dpo build/kernel-neon/dpo-qemu
            ran="$ran neon(qemu-user)"
        else
            echo "kernel neon: cross-compiled; no qemu-aarch64 to run it"
            compiled="$compiled neon"
        fi
    else
        echo "kernel neon: skipped (no aarch64-linux-gnu-gcc)"
    fi
    ;;
aarch64)
    run_kernel scalar yes
    run_kernel neon yes
    ;;
*)
    run_kernel scalar yes
    ;;
esac
echo "kernels run:${ran:- none}; compiled only:${compiled:- none}"
