# tests/fuzz/fuzz.mk - libFuzzer harnesses of every reader of untrusted bytes
# (included by the Makefile). Each harness and the library objects it links are
# built with clang under AddressSanitizer + UBSan into build/fuzz/ (its own
# objects, never the main build's); see tests/fuzz/README.md.
#
#   make fuzz             each harness for FUZZ_SECONDS (60) seconds, one at a
#                         time, on a copy of its seeds in build/fuzz/corpus/
#   make fuzz-ci          the same for 10 seconds each (CI)
#   make fuzz-regress     every harness once over its seeds and
#                         tests/fuzz/regress/<harness>/ (no fuzzing)
#   make fuzz-build       only build them
#   FUZZ_CC=clang-15 make fuzz    another clang

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BUILD   := build/fuzz
FUZZ_NAMES   := json model tokenizer data state vader encode reward
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1
# the library's own flags (WARN, no fast math, no fused multiply-add), the
# portable kernel (no -march), no OpenMP (one thread: a fuzzer wants determinism)
FUZZ_CFLAGS  := $(WARN) -fno-math-errno -ffp-contract=off -D_POSIX_C_SOURCE=200809L -DDPO_SIMD_SCALAR $(FUZZ_SAN)
# the library without the parts that read nothing from outside (SVG drawing, the synthetic corpus)
FUZZ_LIB_SRC := $(filter-out svgbuf.c explain.c plot.c corpus.c,$(LIB_SRC))
FUZZ_LIB_OBJ := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(FUZZ_LIB_SRC)) $(FUZZ_BUILD)/obj/vader_lexicon_data.o
FUZZ_BINS    := $(patsubst %,$(FUZZ_BUILD)/fuzz_%,$(FUZZ_NAMES))

.PHONY: fuzz fuzz-ci fuzz-regress fuzz-build fuzz-check
# kept between builds (make would delete them as intermediate files)
.SECONDARY: $(FUZZ_LIB_OBJ) $(FUZZ_BUILD)/obj/fuzz_common.o $(FUZZ_BUILD)/vader_lexicon_data.c

# clang with its libFuzzer runtime, or a clear error
fuzz-check:
	@printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' \
	  > /tmp/dpo-fuzz-check.$$$$.c; \
	if ! command -v $(FUZZ_CC) >/dev/null 2>&1; then \
	  rm -f /tmp/dpo-fuzz-check.$$$$.c; \
	  echo "fuzz: $(FUZZ_CC) not found: the harnesses need clang with libFuzzer (apt-get install clang)"; exit 1; \
	fi; \
	if ! $(FUZZ_CC) -fsanitize=fuzzer,address,undefined /tmp/dpo-fuzz-check.$$$$.c -o /tmp/dpo-fuzz-check.$$$$ \
	     >/dev/null 2>&1; then \
	  rm -f /tmp/dpo-fuzz-check.$$$$.c /tmp/dpo-fuzz-check.$$$$; \
	  echo "fuzz: $(FUZZ_CC) cannot link -fsanitize=fuzzer,address,undefined: the libFuzzer runtime" \
	       "(libclang_rt.fuzzer) is missing; install clang's runtime (apt-get install clang)"; exit 1; \
	fi; \
	rm -f /tmp/dpo-fuzz-check.$$$$.c /tmp/dpo-fuzz-check.$$$$

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@sh tests/fuzz/run.sh fuzz $(FUZZ_SECONDS) $(FUZZ_NAMES)

fuzz-ci:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=10

fuzz-regress: fuzz-build
	@sh tests/fuzz/run.sh regress 0 $(FUZZ_NAMES)

$(FUZZ_BUILD)/obj/%.o: %.c $(HEADERS) | fuzz-check
	@mkdir -p $(FUZZ_BUILD)/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

# the VADER lexicon compiled in, as the Makefile does it (tools/embed.c)
$(FUZZ_BUILD)/embed: tools/embed.c | fuzz-check
	@mkdir -p $(FUZZ_BUILD)
	$(HOSTCC) $(WARN) -O2 -o $@ $<

$(FUZZ_BUILD)/vader_lexicon_data.c: data/vader/vader_lexicon.txt $(FUZZ_BUILD)/embed
	$(FUZZ_BUILD)/embed vader_embedded_lexicon $< > $@.tmp && mv $@.tmp $@

$(FUZZ_BUILD)/obj/vader_lexicon_data.o: $(FUZZ_BUILD)/vader_lexicon_data.c
	@mkdir -p $(FUZZ_BUILD)/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/obj/fuzz_common.o: tests/fuzz/fuzz_common.c tests/fuzz/fuzz_common.h $(HEADERS) | fuzz-check
	@mkdir -p $(FUZZ_BUILD)/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I. -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h $(FUZZ_BUILD)/obj/fuzz_common.o $(FUZZ_LIB_OBJ) $(HEADERS) | fuzz-check
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -I. -Itests/fuzz -o $@ $< $(FUZZ_BUILD)/obj/fuzz_common.o \
	  $(FUZZ_LIB_OBJ) -lm
