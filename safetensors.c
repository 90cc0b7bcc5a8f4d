/* safetensors.c - owns the safetensors file format: validating a header before
 * anything is allocated from it, reading tensors (converting F16/BF16 to F32),
 * and writing F32 files atomically. It must never trust a size or an offset read
 * from a file before checking it, never print, and never leave a half-written
 * file behind. A file is opened once, by st_open, and every tensor is read
 * through that one descriptor: reopening the path for each tensor would read
 * whatever file had been put there after the header was validated. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "json.h"

/* ------------------------------------------------------------------------ */
/* dtypes */

static const struct {
    const char *name;
    size_t size;
} dtype_table[ST_NUM_DTYPES] = {
    {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2}, {"BF16", 2},
    {"I32", 4}, {"U32", 4}, {"F32", 4}, {"I64", 8}, {"U64", 8}, {"F64", 8},
};

const char *st_dtype_name(st_dtype d) { return dtype_table[d].name; }
size_t st_dtype_size(st_dtype d) { return dtype_table[d].size; }

static int dtype_from_name(const char *s, st_dtype *out) {
    int i;
    for (i = 0; i < ST_NUM_DTYPES; i++) {
        if (strcmp(s, dtype_table[i].name) == 0) {
            *out = (st_dtype)i;
            return 0;
        }
    }
    return -1;
}

/* IEEE half: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
 * value = (-1)^s * 2^(e-15) * (1 + m/1024) for 0 < e < 31; 2^-14 * m/1024 for e = 0. */
float st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    float f;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13); /* inf or NaN (payload kept) */
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13); /* rebias 15 -> 127 */
    } else if (man == 0) {
        bits = sign; /* signed zero */
    } else {
        /* subnormal: shift the mantissa up until its leading 1 is the hidden bit */
        int e = -1;
        do {
            man <<= 1;
            e++;
        } while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* bfloat16 is the top half of an IEEE single. */
float st_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* ------------------------------------------------------------------------ */
/* header validation */

static int cmp_begin(const void *a, const void *b) {
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* a JSON number that is a non-negative integer exactly representable in a double */
static int get_size(const json_value *v, size_t *out) {
    if (v->type != JSON_NUMBER || !v->is_integer || v->number < 0 ||
        v->number > 9007199254740992.0 || (double)(size_t)v->number != v->number)
        return -1;
    *out = (size_t)v->number;
    return 0;
}

static int parse_tensor(st_tensor *t, const char *key, const json_value *v, size_t data_size,
                        dpo_err *e) {
    const json_value *dt = json_get(v, "dtype"), *sh = json_get(v, "shape"),
                     *off = json_get(v, "data_offsets");
    size_t i, bytes;
    if (v->type != JSON_OBJECT) return dpo_errf(e, "tensor \"%s\": entry is not an object", key);
    if (v->count != 3 || !dt || !sh || !off)
        return dpo_errf(e, "tensor \"%s\": entry must have exactly dtype, shape and data_offsets", key);
    if (dt->type != JSON_STRING) return dpo_errf(e, "tensor \"%s\": dtype is not a string", key);
    if (dtype_from_name(dt->str, &t->dtype) != 0)
        return dpo_errf(e, "tensor \"%s\": unknown dtype \"%.32s\"", key, dt->str);
    if (sh->type != JSON_ARRAY || sh->count > ST_MAX_DIMS)
        return dpo_errf(e, "tensor \"%s\": shape must be an array of at most %d sizes", key, ST_MAX_DIMS);
    t->ndim = (int)sh->count;
    t->numel = 1;
    for (i = 0; i < sh->count; i++) {
        if (get_size(&sh->items[i], &t->shape[i]) != 0)
            return dpo_errf(e, "tensor \"%s\": shape[%zu] is not a non-negative integer", key, i);
        if (util_mul_size(t->numel, t->shape[i], &t->numel) != 0)
            return dpo_errf(e, "tensor \"%s\": shape overflows", key);
    }
    if (off->type != JSON_ARRAY || off->count != 2 || get_size(&off->items[0], &t->begin) != 0 ||
        get_size(&off->items[1], &t->end) != 0)
        return dpo_errf(e, "tensor \"%s\": data_offsets must be two non-negative integers", key);
    if (t->begin > t->end || t->end > data_size)
        return dpo_errf(e, "tensor \"%s\": data_offsets [%zu, %zu] out of range (data section is %zu bytes)",
                        key, t->begin, t->end, data_size);
    if (util_mul_size(t->numel, st_dtype_size(t->dtype), &bytes) != 0)
        return dpo_errf(e, "tensor \"%s\": size in bytes overflows (%zu elements of %s)", key,
                        t->numel, st_dtype_name(t->dtype));
    if (bytes != t->end - t->begin)
        return dpo_errf(e, "tensor \"%s\": %zu bytes at data_offsets, but shape and dtype need %zu",
                        key, t->end - t->begin, bytes);
    return 0;
}

/* Read exactly n bytes at byte offset off of fd (positioned reads, retried
 * after a signal): 0, or -1 on an error or when the file ends first. */
static int read_at(int fd, size_t off, void *buf, size_t n) {
    unsigned char *p = buf;
    while (n > 0) {
        size_t chunk = n < ((size_t)1 << 30) ? n : ((size_t)1 << 30);
        ssize_t r = pread(fd, p, chunk, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        off += (size_t)r;
        n -= (size_t)r;
    }
    return 0;
}

/* What a non-regular file is, for the message that refuses it. */
static const char *file_kind(mode_t m) {
    if (S_ISDIR(m)) return "a directory";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

/* Open path read-only as a regular file: O_NONBLOCK so that opening a FIFO
 * cannot wait for a writer, fstat of the descriptor itself (what is checked is
 * what will be read), then blocking mode again. Sets f->fd and f->file_size. */
static int open_regular(st_file *f, const char *path, dpo_err *e) {
    struct stat st;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC), flags;
    if (fd < 0) return dpo_errf(e, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return dpo_errf(e, "%s: cannot stat: %s", path, strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return dpo_errf(e, "%s: not a regular file (%s)", path, file_kind(st.st_mode));
    }
    if ((flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        int err = errno;
        close(fd);
        return dpo_errf(e, "%s: cannot set blocking mode: %s", path, strerror(err));
    }
    if (st.st_size < 0 || (unsigned long long)st.st_size > (unsigned long long)((size_t)-1 / 2)) {
        close(fd);
        return dpo_errf(e, "%s: file size %lld is out of range", path, (long long)st.st_size);
    }
    f->fd = fd;
    f->file_size = (size_t)st.st_size;
    return 0;
}

/* 0 when f's file still has the size it had at st_open; else an error. */
static int check_unchanged(const st_file *f, const st_tensor *t, dpo_err *e) {
    struct stat st;
    if (f->fd < 0) return dpo_errf(e, "%s: tensor \"%s\": the file is not open", f->path, t->name);
    if (fstat(f->fd, &st) != 0)
        return dpo_errf(e, "%s: tensor \"%s\": cannot stat: %s", f->path, t->name, strerror(errno));
    if (st.st_size < 0 || (unsigned long long)st.st_size != (unsigned long long)f->file_size)
        return dpo_errf(e, "%s: tensor \"%s\": the file changed since it was opened (%zu bytes then, "
                           "%lld now: truncated or rewritten)",
                        f->path, t->name, f->file_size, (long long)st.st_size);
    return 0;
}

/* The 8-byte little-endian header length and the JSON header after it, parsed
 * into *root (an object: it begins with '{' and parsed); sets f->data_start.
 * Every error names the file. */
static int read_header(st_file *f, const char *path, json_value **root, dpo_err *e) {
    unsigned char lenbuf[8];
    uint64_t hlen = 0;
    char *hdr;
    int k, rc = 0;
    if (f->file_size < 8 || read_at(f->fd, 0, lenbuf, 8) != 0)
        return dpo_errf(e, "%s: truncated: no 8-byte header length", path);
    for (k = 7; k >= 0; k--) hlen = (hlen << 8) | lenbuf[k];
    if (hlen < 2 || hlen > ST_MAX_HEADER || hlen > f->file_size - 8) {
        return dpo_errf(e, "%s: header length %llu is invalid for a file of %zu bytes", path,
                        (unsigned long long)hlen, f->file_size);
    }
    f->data_start = 8 + (size_t)hlen;
    hdr = malloc((size_t)hlen);
    if (!hdr) return dpo_errf(e, "%s: out of memory for a %llu-byte header", path, (unsigned long long)hlen);
    if (read_at(f->fd, 8, hdr, (size_t)hlen) != 0)
        rc = dpo_errf(e, "%s: cannot read the header", path);
    else if (hdr[0] != '{')
        rc = dpo_errf(e, "%s: header does not start with '{'", path);
    else if (json_parse(hdr, (size_t)hlen, root, e) != 0)
        rc = dpo_err_prefix(e, "%s: header", path);
    free(hdr);
    return rc;
}

/* f->tensors from the header's members but "__metadata__" (which must be an
 * object), in header order, each validated by parse_tensor; order[k] points at
 * tensor k. Errors do not name the file. */
static int read_tensor_table(st_file *f, const json_value *root, st_tensor **order, dpo_err *e) {
    size_t i, n = 0, data_size = f->file_size - f->data_start;
    for (i = 0; i < root->count; i++) {
        st_tensor *t = &f->tensors[n];
        if (strcmp(root->keys[i], "__metadata__") == 0) {
            if (root->items[i].type != JSON_OBJECT) return dpo_errf(e, "__metadata__ is not an object");
            continue;
        }
        if (strlen(root->keys[i]) != root->key_lens[i] || root->key_lens[i] == 0)
            return dpo_errf(e, "tensor %zu: empty name or NUL byte in name", i);
        if (parse_tensor(t, root->keys[i], &root->items[i], data_size, e) != 0) return -1;
        t->name = malloc(root->key_lens[i] + 1);
        if (!t->name) return dpo_err_oom(e, "a tensor name", root->key_lens[i] + 1, 1);
        memcpy(t->name, root->keys[i], root->key_lens[i] + 1);
        order[n] = t;
        f->n_tensors = ++n;
    }
    return 0;
}

/* The tensors must tile the data section: sorted by offset, each begins where
 * the last ended, and the last ends where the file does. Sorts order. */
static int check_tiling(const st_file *f, st_tensor **order, dpo_err *e) {
    size_t i, n = f->n_tensors, pos = 0, data_size = f->file_size - f->data_start;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): order is an array of pointers (st_tensor **) */
    qsort(order, n, sizeof *order, cmp_begin);
    for (i = 0; i < n; i++) {
        if (order[i]->begin < pos)
            return dpo_errf(e, "tensor \"%s\": data overlaps the tensor before it", order[i]->name);
        if (order[i]->begin > pos)
            return dpo_errf(e, "tensor \"%s\": gap of %zu bytes before its data", order[i]->name,
                            order[i]->begin - pos);
        pos = order[i]->end;
    }
    if (pos != data_size)
        return dpo_errf(e, "%zu bytes after the last tensor are not described by the header",
                        data_size - pos);
    return 0;
}

int st_open(st_file *f, const char *path, dpo_err *e) {
    json_value *root = NULL;
    st_tensor **order = NULL; /* (count) the tensors, sorted by offset to check the tiling */
    int rc = -1;

    memset(f, 0, sizeof *f);
    f->fd = -1;
    snprintf(f->path, sizeof f->path, "%s", path);
    if (open_regular(f, path, e) != 0) return -1;
    if (read_header(f, path, &root, e) != 0) goto done;
    f->tensors = calloc(root->count ? root->count : 1, sizeof *f->tensors);
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): order is an array of pointers (st_tensor **) */
    order = calloc(root->count ? root->count : 1, sizeof *order);
    if (!f->tensors || !order) {
        /* NOLINTNEXTLINE(bugprone-sizeof-expression): order is an array of pointers (st_tensor **) */
        dpo_err_oom(e, "the tensor table", root->count ? root->count : 1, sizeof *f->tensors + sizeof *order);
        dpo_err_prefix(e, "%s", path);
    } else if (read_tensor_table(f, root, order, e) != 0 || check_tiling(f, order, e) != 0)
        dpo_err_prefix(e, "%s", path);
    else
        rc = 0;
done:
    free(order);
    json_free(root);
    if (rc != 0) st_close(f);
    return rc;
}

void st_close(st_file *f) {
    size_t i;
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    if (f->tensors)
        for (i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    f->tensors = NULL;
    f->n_tensors = 0;
}

int st_same_file(const st_file *f, const char *path) {
    struct stat a, b;
    if (f->fd < 0 || fstat(f->fd, &a) != 0 || stat(path, &b) != 0) return 0;
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino && (size_t)a.st_size == f->file_size &&
           (size_t)b.st_size == f->file_size;
}

const st_tensor *st_find(const st_file *f, const char *name) {
    size_t i;
    for (i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* reading tensor data */

int st_read_raw(const st_file *f, const st_tensor *t, void *out, dpo_err *e) {
    if (check_unchanged(f, t, e) != 0) return -1;
    if (read_at(f->fd, f->data_start + t->begin, out, t->end - t->begin) != 0)
        return dpo_errf(e, "%s: tensor \"%s\": read failed (file truncated?)", f->path, t->name);
    return 0;
}

int st_read_f32(const st_file *f, const st_tensor *t, float *out, dpo_err *e) {
    enum { CHUNK = 1 << 16 };
    unsigned char buf[CHUNK * 4];
    size_t esz = st_dtype_size(t->dtype), done = 0, i;
    if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16)
        return dpo_errf(e, "%s: tensor \"%s\": dtype %s is not a float type (F32, F16, BF16)",
                        f->path, t->name, st_dtype_name(t->dtype));
    if (check_unchanged(f, t, e) != 0) return -1;
    while (done < t->numel) {
        size_t n = t->numel - done < CHUNK ? t->numel - done : CHUNK;
        if (read_at(f->fd, f->data_start + t->begin + done * esz, buf, n * esz) != 0)
            return dpo_errf(e, "%s: tensor \"%s\": read failed (file truncated?)", f->path, t->name);
        /* cppcheck-suppress knownConditionTrueFalse ; false: done < numel, so n >= 1 */
        for (i = 0; i < n; i++) {
            const unsigned char *p = buf + i * esz;
            if (t->dtype == ST_F32) {
                /* NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult): read_at filled n * esz bytes (pread) or failed */
                uint32_t bits = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                                (uint32_t)p[3] << 24;
                memcpy(&out[done + i], &bits, 4);
            } else {
                /* NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult): as above */
                uint16_t h = (uint16_t)(p[0] | p[1] << 8);
                out[done + i] = t->dtype == ST_F16 ? st_f16_to_f32(h) : st_bf16_to_f32(h);
            }
        }
        done += n;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* writing */

/* append s to a growing buffer; when out of memory, *want = the bytes asked for */
static int buf_put(char **buf, size_t *len, size_t *cap, const char *s, size_t n, size_t *want) {
    if (*len + n + 1 > *cap) {
        size_t ncap = (*cap ? *cap : 4096);
        char *nb;
        while (ncap < *len + n + 1) ncap *= 2;
        nb = realloc(*buf, ncap);
        if (!nb) {
            *want = ncap;
            return -1;
        }
        *buf = nb;
        *cap = ncap;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

static int buf_puts(char **buf, size_t *len, size_t *cap, const char *s, size_t *want) {
    return buf_put(buf, len, cap, s, strlen(s), want);
}

/* Append tensor t's member of the header,
 * "name":{"dtype":"F32","shape":[...],"data_offsets":[begin,end]},
 * its data starting at *off, which moves past it. Nonzero when out of memory
 * (*want = the bytes asked for) or when its size overflows (*want untouched). */
static int put_tensor_entry(char **hdr, size_t *hlen, size_t *hcap, const st_out_tensor *t, size_t *off,
                            size_t *want) {
    char tmp[256];
    size_t numel = 1, bytes = 0, j, need = json_escape(NULL, 0, t->name, strlen(t->name));
    char *lit = malloc(need + 1);
    int bad = 0, m;
    if (!lit) {
        *want = need + 1;
        return 1;
    }
    json_escape(lit, need + 1, t->name, strlen(t->name));
    bad |= buf_put(hdr, hlen, hcap, lit, need, want);
    free(lit);
    bad |= buf_puts(hdr, hlen, hcap, ":{\"dtype\":\"F32\",\"shape\":[", want);
    for (j = 0; j < (size_t)t->ndim; j++) {
        m = snprintf(tmp, sizeof tmp, "%s%zu", j ? "," : "", t->shape[j]);
        bad |= buf_put(hdr, hlen, hcap, tmp, (size_t)m, want);
        if (util_mul_size(numel, t->shape[j], &numel) != 0) bad = 1;
    }
    if (util_mul_size(numel, 4, &bytes) != 0) bad = 1;
    m = snprintf(tmp, sizeof tmp, "],\"data_offsets\":[%zu,%zu]},", *off, *off + bytes);
    bad |= buf_put(hdr, hlen, hcap, tmp, (size_t)m, want);
    *off += bytes;
    return bad;
}

/* The whole JSON header,
 * {"name":{"dtype":"F32","shape":[...],"data_offsets":[b,e]},...,"__metadata__":{...}},
 * padded with spaces to a multiple of 8 bytes. -1 (and nothing kept) when out
 * of memory (*want = the bytes of the allocation that failed) or when a size
 * overflows (*want = 0). */
static int build_header(const st_out_tensor *ts, size_t n, char **out, size_t *out_len, size_t *want) {
    char *hdr = NULL;
    size_t hlen = 0, hcap = 0, off = 0, i;
    int bad = 0;
    *want = 0;
    bad |= buf_puts(&hdr, &hlen, &hcap, "{", want);
    for (i = 0; i < n && !bad; i++) bad |= put_tensor_entry(&hdr, &hlen, &hcap, &ts[i], &off, want);
    bad |= buf_puts(&hdr, &hlen, &hcap, "\"__metadata__\":{\"format\":\"pt\"}}", want);
    while (!bad && hlen % 8 != 0) bad |= buf_put(&hdr, &hlen, &hcap, " ", 1, want);
    if (bad) {
        free(hdr);
        return -1;
    }
    *out = hdr;
    *out_len = hlen;
    return 0;
}

/* Tensor t's floats, little-endian, in chunks. */
static int write_tensor_data(util_atomic_file *af, const st_out_tensor *t, dpo_err *e) {
    enum { CHUNK = 1 << 14 };
    unsigned char buf[CHUNK * 4];
    size_t numel = 1, done = 0, c, j;
    for (j = 0; j < (size_t)t->ndim; j++) numel *= t->shape[j];
    while (done < numel) {
        size_t m = numel - done < CHUNK ? numel - done : CHUNK;
        /* cppcheck-suppress knownConditionTrueFalse ; false: done < numel, so m >= 1 */
        for (c = 0; c < m; c++) {
            uint32_t bits;
            memcpy(&bits, &t->data[done + c], 4);
            buf[4 * c] = (unsigned char)bits;
            buf[4 * c + 1] = (unsigned char)(bits >> 8);
            buf[4 * c + 2] = (unsigned char)(bits >> 16);
            buf[4 * c + 3] = (unsigned char)(bits >> 24);
        }
        if (util_atomic_write(af, buf, m * 4, e) != 0) return -1;
        done += m;
    }
    return 0;
}

/* The file's bytes: the header's length (8 bytes, little-endian), the header,
 * then every tensor's data in order. */
static int write_contents(util_atomic_file *af, const char *hdr, size_t hlen, const st_out_tensor *ts,
                          size_t n, dpo_err *e) {
    unsigned char lenbuf[8];
    size_t i;
    int k;
    for (k = 0; k < 8; k++) lenbuf[k] = (unsigned char)((uint64_t)hlen >> (8 * k));
    if (util_atomic_write(af, lenbuf, 8, e) != 0 || util_atomic_write(af, hdr, hlen, e) != 0) return -1;
    for (i = 0; i < n; i++)
        if (write_tensor_data(af, &ts[i], e) != 0) return -1;
    return 0;
}

int st_write_f32(const char *path, const st_out_tensor *ts, size_t n, dpo_err *e) {
    char *hdr = NULL;
    size_t hlen = 0, want, i;
    util_atomic_file af;
    int rc = -1;

    for (i = 0; i < n; i++)
        if (ts[i].ndim < 0 || ts[i].ndim > ST_MAX_DIMS)
            return dpo_errf(e, "%s: tensor \"%s\" has %d dimensions (at most %d)", path, ts[i].name,
                            ts[i].ndim, ST_MAX_DIMS);
    if (build_header(ts, n, &hdr, &hlen, &want) != 0) {
        if (want == 0) return dpo_errf(e, "%s: a tensor's size in bytes overflows", path);
        dpo_err_oom(e, "the header", want, 1);
        return dpo_err_prefix(e, "%s", path);
    }
    if (util_atomic_open(&af, path, e) == 0) {
        if (write_contents(&af, hdr, hlen, ts, n, e) == 0)
            rc = util_atomic_commit(&af, e);
        else
            util_atomic_abort(&af);
    }
    free(hdr);
    return rc;
}
