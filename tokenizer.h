/* tokenizer.h - GPT-2 byte-level BPE: load, pre-tokenize, encode, decode, train.
 * See tokenizer.c. */
#ifndef DPO_TOKENIZER_H
#define DPO_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include "util.h"

typedef struct tok_tokenizer tok_tokenizer;

/* Load a vocabulary from a directory holding Hugging Face's vocab.json +
 * merges.txt or OpenAI's encoder.json + vocab.bpe (the same content under other
 * names), each at most 32 MiB. Ids must be exactly 0..n-1, each token a valid
 * byte-level string, merges.txt must start with its "#version" header, and the
 * two files must belong together: every merge names two tokens whose
 * concatenation is an entry of the vocabulary that no other merge forms, and
 * every entry but the 256 single bytes and special tokens ("<|" + printable
 * ASCII without '|' + "|>", such as "<|endoftext|>") is formed by a merge (so a
 * truncated merges.txt is refused). Errors name the file and line or key. The
 * files' bytes are kept, as validated, for tok_write_files. The hash tables
 * take a random key (from /dev/urandom); no result depends on it. */
int tok_load(tok_tokenizer **out, const char *dir, dpo_err *e);
/* tok_load with the given hash-table key (NULL: a random one), for tests that
 * show that results do not depend on the key. */
int tok_load_keyed(tok_tokenizer **out, const char *dir, const uint64_t key[2], dpo_err *e);

/* Write the tokenizer's two files, exactly the bytes tok_load read and checked,
 * into dir (which must exist) under Hugging Face's names vocab.json +
 * merges.txt, each written atomically. Whatever happened to the source files
 * since loading does not matter. */
int tok_write_files(const tok_tokenizer *t, const char *dir, dpo_err *e);

/* tok_load(src_dir) then tok_write_files(dst_dir): only a valid tokenizer is copied. */
int tok_copy_files(const char *src_dir, const char *dst_dir, dpo_err *e);
void tok_free(tok_tokenizer *t);

int tok_vocab_size(const tok_tokenizer *t);
/* The id of "<|endoftext|>", or -1 if the vocabulary has none. Encoding never
 * produces it: the program adds it explicitly where it belongs. */
int tok_eot_id(const tok_tokenizer *t);
/* The bytes of token id (not NUL-terminated); NULL for an id out of range. */
const unsigned char *tok_token_bytes(const tok_tokenizer *t, int id, size_t *len);

/* GPT-2's pre-tokenizer, by hand: calls fn(ctx, start, len) for each piece of
 * text[0..len), in order; the pieces tile the text exactly. Pattern:
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * Invalid UTF-8: each byte that does not start a valid sequence is a piece
 * character of its own that is neither letter, number nor space. Stops and
 * returns fn's value when fn returns non-zero; else returns 0. */
typedef int (*tok_piece_fn)(void *ctx, const char *start, size_t len);
int tok_pretokenize(const char *text, size_t len, tok_piece_fn fn, void *ctx);

/* Encode text[0..len) (any bytes) to ids, appended to the growing array *ids
 * (capacity *cap, count *n; both may start at NULL/0). */
int tok_encode(const tok_tokenizer *t, const char *text, size_t len, int **ids, size_t *n,
               size_t *cap, dpo_err *e);

/* Decode ids to bytes: *out is a fresh NUL-terminated buffer of *len bytes
 * (the NUL not counted). An id outside the vocabulary is an error. */
int tok_decode(const tok_tokenizer *t, const int *ids, size_t n, char **out, size_t *len,
               dpo_err *e);

/* Learn byte-level BPE on the given files (each file read whole, at most 4 GiB,
 * pre-tokenized with the pattern above; a piece longer than 512 bytes is cut into
 * chunks of at most 512 bytes, at a UTF-8 character boundary where one is near,
 * and no merge crosses a cut) until the vocabulary has vocab_size entries: the
 * 256 byte tokens first (in GPT-2's byte order), then one token per merge, then
 * "<|endoftext|>" last. Each step merges the most frequent adjacent pair (counting
 * overlapping positions, merging left to right); ties between equally frequent
 * pairs go to the pair whose (left id, right id) is smallest. A pair whose merge
 * would spell "<|endoftext|>" or an existing token is skipped. Time and memory
 * are near-linear in the corpus. Writes vocab.json + merges.txt into out_dir
 * (created if missing), atomically. progress, if non-NULL, is called now and
 * then with the number of merges learnt so far. */
typedef void (*tok_progress_fn)(void *ctx, int merges_done, int merges_total);
int tok_train(const char *const *files, int n_files, int vocab_size, const char *out_dir,
              tok_progress_fn progress, void *progress_ctx, dpo_err *e);

#endif
