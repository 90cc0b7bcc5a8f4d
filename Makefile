# Makefile for dpo. `make` builds ./dpo; `make test` runs every Check suite;
# `make asan` runs them again under AddressSanitizer + UBSan; `make clean`.
#
#   CC=clang make        build with clang
#   make SIMD=native     the default: -march=native, and the best matrix kernel
#                        this machine's compiler and CPU allow (matmul_kernels.h)
#   make SIMD=avx512     force a kernel: avx512 (-mavx512f), avx2 (-mavx2 -mfma),
#   make SIMD=avx2       neon (AArch64), or scalar (portable C, no -march=native);
#   make SIMD=scalar     `dpo --version` says which kernel a binary runs
#   NO_OMP=1 make        build without OpenMP
#
# Never enable fast math (the fast-math flag, or the optimisation level that
# implies it): it turns isnan() into 0 and makes results depend on the build.

CC      ?= cc
HOSTCC  ?= $(CC)
SIMD    ?= native
BUILD   ?= build
OPT     ?= -O3
WARN    := -std=c99 -pedantic -Wall -Wextra -Werror
# -fno-math-errno only says libm need not set errno (nothing here reads it after a
# math call); it lets sqrtf vectorize. Unlike fast math it changes no result.
# -ffp-contract=off: never fuse a*b+c into one fused multiply-add unless the code
# asks for it. GCC already does not in -std=c99 mode, but clang fuses by default,
# so without it `CC=clang make` and `make` compute different bits (a training run's
# saved model differs); with it they are identical (make test-compilers checks).
CFLAGS_BASE := $(WARN) $(OPT) -fno-math-errno -ffp-contract=off -D_POSIX_C_SOURCE=200809L
ifeq ($(SIMD),native)
CFLAGS_BASE += -march=native
else ifeq ($(SIMD),avx512)
CFLAGS_BASE += -mavx512f -mavx2 -mfma -DDPO_SIMD_WANT_AVX512
else ifeq ($(SIMD),avx2)
CFLAGS_BASE += -mavx2 -mfma -DDPO_SIMD_WANT_AVX2
else ifeq ($(SIMD),neon)
CFLAGS_BASE += -DDPO_SIMD_WANT_NEON
else ifeq ($(SIMD),scalar)
CFLAGS_BASE += -DDPO_SIMD_SCALAR
else
$(error SIMD=$(SIMD): use native, avx512, avx2, neon or scalar)
endif

# OpenMP: on when the compiler can build and link with it, unless NO_OMP=1.
ifndef NO_OMP
OMP_OK := $(shell printf 'int main(void){return 0;}\n' | $(CC) -fopenmp -x c - -o /dev/null 2>/dev/null && echo yes)
ifeq ($(OMP_OK),yes)
OMPFLAGS := -fopenmp
endif
endif

ifdef SAN
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all -g
endif

# Hardening, on by default where the toolchain has it (HARDEN=0 turns it off; the
# sanitizer builds go without it, since FORTIFY's checked functions would bypass
# ASan's): a canary in every function with a local array (-fstack-protector-strong),
# glibc's checked variants of memcpy, snprintf, ... where sizes are known
# (_FORTIFY_SOURCE=2, redefined in case the compiler predefines another level), a
# position-independent executable, full RELRO (the GOT read-only once loaded:
# -z relro -z now) and a non-executable stack. tests/binary.sh checks each in the
# built binary. None of them changes a computed bit.
HARDEN ?= 1
ifeq ($(HARDEN),1)
ifndef SAN
HARDEN_CFLAGS := -fstack-protector-strong -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2 -fPIE
HARDEN_LDFLAGS := -pie -Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack
HARDEN_OK := $(shell printf 'int main(void){return 0;}\n' | $(CC) $(HARDEN_CFLAGS) $(HARDEN_LDFLAGS) -x c - -o /dev/null 2>/dev/null && echo yes)
ifneq ($(HARDEN_OK),yes)
HARDEN_CFLAGS :=
HARDEN_LDFLAGS :=
endif
endif
endif

# FAULTS=1 (make test-faults only): every source is compiled with tests/fault.h,
# which routes allocations and file writes through tests/fault.c so that a test can
# make the Nth of them fail. The shipped binary never has it.
ifdef FAULTS
FAULT_CFLAGS := -DDPO_FAULTS -include tests/fault.h
endif

CFLAGS  := $(CFLAGS_BASE) $(OMPFLAGS) $(SANFLAGS) $(HARDEN_CFLAGS) $(FAULT_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS := $(HARDEN_LDFLAGS)
LDLIBS  := -lm

LIB_SRC := util.c json.c safetensors.c matmul.c model.c model_io.c unicode.c tokenizer.c objective.c optim.c data.c ckpt.c train.c ppo.c ppo_train.c \
           sample.c eval.c vader.c reward.c svgbuf.c explain.c plot.c corpus.c selftest.c
# + the VADER lexicon as C source, generated at build time (see below)
LIB_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRC)) $(BUILD)/vader_lexicon_data.o
ifdef FAULTS
LIB_OBJ += $(BUILD)/fault.o
endif
# the command line: dpo.c (main, the first commands), cli.c (shared parts), cmd_*.c (one command each)
CLI_SRC := dpo.c cli.c $(sort $(wildcard cmd_*.c))
CLI_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(CLI_SRC))
HEADERS := $(wildcard *.h)

TEST_SRC  := $(wildcard tests/test_*.c)
TEST_BIN  := $(patsubst tests/%.c,$(BUILD)/%,$(TEST_SRC))
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null)

.PHONY: all test asan clean check-deps demo bench bench-passes bench-sample test-compilers test-kernels \
        test-reproducible sums test-faults

all: dpo

ifeq ($(BUILD),build)
dpo: $(BUILD)/dpo
	cp $< $@
endif

$(BUILD)/dpo: $(CLI_OBJ) $(LIB_OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c $(HEADERS) | $(BUILD)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD):
	mkdir -p $(BUILD)

$(BUILD)/fault.o: tests/fault.c tests/fault.h | $(BUILD)
	$(CC) $(filter-out $(FAULT_CFLAGS),$(CFLAGS)) -c -o $@ $<

$(BUILD)/test_%: tests/test_%.c tests/testutil.h $(LIB_OBJ) $(HEADERS)
	$(CC) $(CFLAGS) $(CHECK_CFLAGS) -I. -o $@ $< $(LIB_OBJ) $(CHECK_LIBS) $(LDLIBS)

# The VADER lexicon is compiled into the library, so that an installed dpo needs
# no data directory: tools/embed.c (built first, for this machine) writes the
# bytes of data/vader/vader_lexicon.txt as a C array.
# HOSTCC builds it when cross-compiling (CC=aarch64-linux-gnu-gcc HOSTCC=cc).
$(BUILD)/embed: tools/embed.c | $(BUILD)
	$(HOSTCC) $(WARN) -O2 -o $@ $<

$(BUILD)/vader_lexicon_data.c: data/vader/vader_lexicon.txt $(BUILD)/embed
	$(BUILD)/embed vader_embedded_lexicon $< > $@.tmp && mv $@.tmp $@

$(BUILD)/vader_lexicon_data.o: $(BUILD)/vader_lexicon_data.c
	$(CC) $(CFLAGS) -c -o $@ $<

# test_vader includes vader.c itself, to test the file-local rules.
$(BUILD)/test_vader: tests/test_vader.c tests/testutil.h $(filter-out $(BUILD)/vader.o,$(LIB_OBJ)) $(HEADERS) vader.c
	$(CC) $(CFLAGS) $(CHECK_CFLAGS) -I. -o $@ $< $(filter-out $(BUILD)/vader.o,$(LIB_OBJ)) $(CHECK_LIBS) $(LDLIBS)

# test_model includes model.c itself, to test the file-local layer functions.
$(BUILD)/test_model: tests/test_model.c tests/testutil.h $(filter-out $(BUILD)/model.o,$(LIB_OBJ)) $(HEADERS) model.c
	$(CC) $(CFLAGS) $(CHECK_CFLAGS) -I. -o $@ $< $(filter-out $(BUILD)/model.o,$(LIB_OBJ)) $(CHECK_LIBS) $(LDLIBS)

# Check is needed for the tests: install it when missing (root or sudo), or say how.
check-deps:
	@sh tests/ensure-check.sh

# Each suite runs without fork (CK_FORK=no): GCC's OpenMP runtime is not fork-safe.
test: check-deps
	@$(MAKE) --no-print-directory $(TEST_BIN) $(BUILD)/dpo
	@fail=0; for t in $(TEST_BIN); do \
	  echo "== $$t"; CK_FORK=no ./$$t || fail=1; \
	done; \
	echo "== tests/cli.sh"; sh tests/cli.sh ./$(BUILD)/dpo || fail=1; \
	echo "== tests/binary.sh"; sh tests/binary.sh ./$(BUILD)/dpo $(if $(SANFLAGS),sanitized,$(if $(HARDEN_CFLAGS),hardened,plain)) || fail=1; \
	if [ $$fail -ne 0 ]; then echo "SOME TESTS FAILED"; exit 1; fi; \
	echo "ALL TEST SUITES PASSED"

asan: check-deps
	@$(MAKE) --no-print-directory BUILD=build/asan SAN=1 OPT=-O1 test

# Every matrix kernel against the scalar reference, bit for bit (tests/kernel_check.c):
# scalar always, avx2 and avx512 where this CPU runs them, and the AArch64 NEON
# kernel when a cross-compiler is installed (run under qemu-user when present,
# else only compiled). See tests/kernels.sh.
$(BUILD)/kernel_check: tests/kernel_check.c $(BUILD)/matmul.o $(BUILD)/util.o matmul.h util.h
	$(CC) $(CFLAGS) -I. -o $@ $< $(BUILD)/matmul.o $(BUILD)/util.o $(LDLIBS)

test-kernels:
	@sh tests/kernels.sh

# gcc and clang builds compute the same bits: a short training run saved by each
# must be byte-identical (this fails without -ffp-contract=off, see CFLAGS_BASE).
test-compilers:
	@$(MAKE) --no-print-directory BUILD=build/gcc CC=gcc build/gcc/dpo
	@$(MAKE) --no-print-directory BUILD=build/clang CC=clang build/clang/dpo
	@sh tests/compilers.sh build/gcc/dpo build/clang/dpo

# Disk-full and out-of-memory faults at every moment of a save and of a short run
# (tests/faults.sh): the fault-injection build (FAULTS=1, tests/fault.h) for every
# N of train and of the --out files of sample, eval and pairs, and every 4th of
# ppo (whose runs are the longest; from a random start, so that CI covers them
# all over time; PPO_STRIDE=1 for every N),
# then every 10th under AddressSanitizer + UBSan (FAULT_ASAN_STRIDE).
PPO_STRIDE ?= 4
FAULT_ASAN_STRIDE ?= 10
test-faults:
	@$(MAKE) --no-print-directory BUILD=build/faults FAULTS=1 HARDEN=0 build/faults/dpo
	@PPO_STRIDE=$(PPO_STRIDE) sh tests/faults.sh build/faults/dpo
	@$(MAKE) --no-print-directory BUILD=build/faults-asan FAULTS=1 SAN=1 OPT=-O1 build/faults-asan/dpo
	@STRIDE=$(FAULT_ASAN_STRIDE) sh tests/faults.sh build/faults-asan/dpo

# Two builds of these sources in two other directories give the same binary bytes.
test-reproducible:
	@sh tests/reproducible.sh CC="$(CC)" SIMD="$(SIMD)"

# The sha256 of every source file and of the binary (what a facility compares with
# the reviewed release).
sums: $(BUILD)/dpo
	@sh tests/sums.sh ./$(BUILD)/dpo

clean:
	rm -rf build dpo

# A first look (about a minute): DPO from the shipped SFT model of the sentiment
# experiment (data/sentiment) on shipped pairs, then the same prompts sampled
# before and after, with their rewards and the KL (see experiment/demo.sh).
DEMO := $(BUILD)/demo
demo: $(BUILD)/dpo
	sh experiment/demo.sh ./$(BUILD)/dpo $(DEMO)

# How fast this build is on this CPU, against references measured in the same run
# (see bench/all.sh): matrix products against OpenBLAS (bench/openblas_gemm.c, built
# only here and only when OpenBLAS is installed), a DPO step and sampling against
# PyTorch (when /usr/bin/python3 has torch), for GPT-2 124M and the experiment's model.
bench: $(BUILD)/dpo
	CC="$(CC)" sh bench/all.sh ./$(BUILD)/dpo

# Forward + backward passes against PyTorch in the same run (see bench/run.sh).
bench-passes: $(BUILD)/dpo
	sh bench/run.sh ./$(BUILD)/dpo

# Generation (dpo sample, batch of 16 x 64 new tokens) against PyTorch in the same run (see bench/sample.sh).
bench-sample: $(BUILD)/dpo
	sh bench/sample.sh ./$(BUILD)/dpo

# The DPO paper's controlled-sentiment experiment, offline (experiment/run.sh):
# corpus, tokenizer, SFT, preference pairs, every method, results/. Resumable:
# run it again after an interruption. experiment-smoke: a reduced run (CI).
experiment: $(BUILD)/dpo
	sh experiment/run.sh ./$(BUILD)/dpo

experiment-smoke: $(BUILD)/dpo
	sh experiment/run.sh --smoke ./$(BUILD)/dpo

# Fuzzing (tests/fuzz/fuzz.mk) and static analysis + valgrind (tests/lint.mk)
include tests/fuzz/fuzz.mk
include tests/lint.mk
