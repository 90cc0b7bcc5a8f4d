# tests/lint.mk - static analysis and Valgrind, included by the Makefile.
#
#   make lint        cppcheck, then clang-tidy, over every library and command
#                    source (LIB_SRC, CLI_SRC); any finding fails the target
#   make lint-cppcheck, make lint-tidy   one of them
#   make valgrind    short train, resume and sample runs of a plain -O1 -g build
#                    under memcheck (tests/valgrind.sh); any error fails it
#
# cppcheck: the checks that find defects (warning: undefined behaviour, leaks,
# bad indexing, wrong API use; portability; performance) and the style checks
# (dead conditions, redundant assignments, unused members), except two rules the
# house style breaks on purpose (tests/cppcheck.supp). -D_POSIX_C_SOURCE with
# --force: every #ifdef configuration (each SIMD kernel, OpenMP or not) is
# checked, with the POSIX declarations the build uses.
# clang-tidy: the checks listed and justified in .clang-tidy, with the build's
# own flags (this machine's kernel and OpenMP), and tests/lint_analyzer.h forced
# in front of every file but util.c (which defines what it describes).
# False positives are suppressed where they occur, with a reason:
#   grep -n 'cppcheck-suppress\|NOLINT' *.c *.h

LINT_SRC   := $(LIB_SRC) $(CLI_SRC)
LINT_JOBS  ?= $(shell nproc 2>/dev/null || echo 2)
CPPCHECK   ?= cppcheck
CLANG_TIDY ?= $(shell command -v clang-tidy-14 2>/dev/null || command -v clang-tidy 2>/dev/null || echo clang-tidy)
TIDY_FLAGS := $(CFLAGS_BASE) $(OMPFLAGS) -I.

.PHONY: lint lint-cppcheck lint-tidy valgrind

lint: lint-cppcheck lint-tidy

lint-cppcheck:
	@echo "== cppcheck ($$($(CPPCHECK) --version)) over $(words $(LINT_SRC)) files"
	@$(CPPCHECK) --std=c99 --enable=warning,style,performance,portability --inline-suppr \
	    --suppressions-list=tests/cppcheck.supp -D_POSIX_C_SOURCE=200809L --force -j $(LINT_JOBS) \
	    --error-exitcode=1 --quiet --template='{file}:{line}: {severity}: {id}: {message}' $(LINT_SRC) && \
	    echo "cppcheck: no findings"

# One clang-tidy per file, LINT_JOBS at a time: a file's diagnostics are printed
# when it has any; xargs fails when any clang-tidy does.
lint-tidy:
	@echo "== clang-tidy ($$($(CLANG_TIDY) --version | sed -n 's/.*LLVM version \([0-9.]*\).*/\1/p')) over $(words $(LINT_SRC)) files"
	@printf '%s\n' $(LINT_SRC) | xargs -P $(LINT_JOBS) -I{} sh -c \
	    'inc="-include tests/lint_analyzer.h"; [ "$$1" = util.c ] && inc=; \
	     out=$$($(CLANG_TIDY) --quiet --config-file=.clang-tidy "$$1" -- $(TIDY_FLAGS) $$inc 2>&1); rc=$$?; \
	     [ $$rc -eq 0 ] || printf "%s\n" "$$out" | grep -v "warnings\{0,1\} generated\.$$"; exit $$rc' _ {} && \
	    echo "clang-tidy: no findings"

# Valgrind: a build of its own (build/valgrind), -O1 -g, no hardening (nothing
# between the code and memcheck), with OpenMP (the runs use 2 threads, so the
# per-thread scratch and the parallel loops are checked as shipped). Kernel:
# AVX2 where the CPU has it (memcheck runs AVX2 and FMA, not AVX-512, so not
# -march=native), else the scalar one.
VG_BUILD := build/valgrind
VG_SIMD  ?= $(if $(filter x86_64,$(shell uname -m)),$(if $(shell grep -qw avx2 /proc/cpuinfo 2>/dev/null && echo y),avx2,scalar),scalar)

valgrind:
	@$(MAKE) --no-print-directory BUILD=$(VG_BUILD) OPT="-O1 -g" HARDEN=0 SIMD=$(VG_SIMD) $(VG_BUILD)/dpo
	@echo "== $$(valgrind --version) memcheck: dpo init, train, train --resume, sample ($(VG_SIMD) kernel)"
	@sh tests/valgrind.sh ./$(VG_BUILD)/dpo
