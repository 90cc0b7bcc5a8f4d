/* fuzz_common.h - what every libFuzzer harness in tests/fuzz/ shares: a
 * private temporary directory that the harness writes its input into as files
 * (the readers under test read paths), and the split of one input into
 * several files at a separator. See fuzz_common.c. */
#ifndef DPO_FUZZ_COMMON_H
#define DPO_FUZZ_COMMON_H
#include <stddef.h>
#include <stdint.h>

/* The separator between the files of one input ("config.json" @@FILE@@
 * "model.safetensors"); the seed corpora use it, libFuzzer's comparison tracing
 * finds it. */
#define FUZZ_SEP "@@FILE@@"

/* The directory (created on first use under $TMPDIR or /tmp, removed with its
 * files at exit) and name joined, in a buffer that lives until the next call. */
const char *fuzz_dir(void);
const char *fuzz_path(const char *name);
/* Make dir/name hold exactly data[0..len), or (data NULL) be missing; aborts
 * on an I/O error, which is the harness's fault, not the library's. */
void fuzz_put(const char *name, const uint8_t *data, size_t len);
/* Split data[0..size) at FUZZ_SEP into at most n parts: the last part keeps
 * any further separators; parts that are not there are NULL with length 0.
 * Returns the number of parts present. */
size_t fuzz_split(const uint8_t *data, size_t size, const uint8_t **part, size_t *len, size_t n);
/* The path of the repository's data (data/gpt2 ...): $DPO_ROOT/rel, or rel
 * when DPO_ROOT is unset (make runs the harnesses from the repository root). */
const char *fuzz_repo_path(const char *rel);

/* GPT-2's tokenizer from the repository's data/gpt2 (a fixed hash key, so that
 * runs repeat), loaded once and freed at exit; aborts, naming the harness, when
 * it cannot be loaded. */
struct tok_tokenizer;
const struct tok_tokenizer *fuzz_gpt2(const char *harness);

#endif
