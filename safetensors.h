/* safetensors.h - read and write the safetensors tensor-file format:
 * an 8-byte little-endian header length N, N bytes of JSON header
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {...}}, then the raw little-endian tensor bytes. */
#ifndef DPO_SAFETENSORS_H
#define DPO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include "util.h"

#define ST_MAX_DIMS 8
/* 16 MiB: the reference library allows 100 MiB, but the largest GPT-2-family
 * header (256 layers, 3076 tensors) is about 0.5 MB, and the JSON reader may
 * use 12 bytes per header byte */
#define ST_MAX_HEADER (16u << 20)

typedef enum {
    ST_BOOL, ST_U8, ST_I8, ST_I16, ST_U16, ST_F16, ST_BF16, ST_I32, ST_U32,
    ST_F32, ST_I64, ST_U64, ST_F64, ST_NUM_DTYPES
} st_dtype;

typedef struct {
    char *name;                 /* tensor name, NUL-terminated */
    st_dtype dtype;
    int ndim;                   /* 0 .. ST_MAX_DIMS (0 is a scalar) */
    size_t shape[ST_MAX_DIMS];  /* (ndim,) */
    size_t numel;               /* product of shape */
    size_t begin, end;          /* byte offsets into the data section */
} st_tensor;

/* An open safetensors file. st_open keeps one descriptor open until st_close
 * and reads every tensor through it, so the bytes read are the bytes whose
 * header was validated, even if the path is replaced meanwhile. */
typedef struct {
    char path[4096];
    int fd;                     /* open from st_open until st_close; -1 when closed */
    size_t file_size;           /* from fstat at st_open; a read refuses a file whose size changed */
    size_t data_start;          /* 8 + header length */
    size_t n_tensors;
    st_tensor *tensors;         /* (n_tensors,) in header order */
} st_file;

const char *st_dtype_name(st_dtype d);
size_t st_dtype_size(st_dtype d);

/* Open and validate a file's header; tensor data is not read yet. Checks: the
 * path is a regular file (a directory, FIFO or device is refused, without
 * blocking), the header length against the file size, strict JSON, every
 * dtype and shape, offsets in range, bytes = numel * dtype size
 * (overflow-checked), and that the tensors tile the data section exactly (no
 * overlap, no hole, nothing after the last one). Errors name the file and the
 * tensor. On error nothing stays open and st_close is still safe to call. */
int st_open(st_file *f, const char *path, dpo_err *e);
/* Close the descriptor and free the tensor table (safe after a failed st_open). */
void st_close(st_file *f);
/* 1 when path now names the very file f holds open (same device and inode)
 * with the size it had at st_open, else 0. */
int st_same_file(const st_file *f, const char *path);
const st_tensor *st_find(const st_file *f, const char *name);

/* Read a tensor's data through the descriptor st_open opened (positioned
 * reads: f is not changed). Each read first checks that the file still has the
 * size it had at st_open. st_read_f32 converts F32, F16 and BF16 to float
 * (other dtypes are an error); out holds t->numel floats. st_read_raw copies
 * the raw little-endian bytes (t->end - t->begin of them). */
int st_read_f32(const st_file *f, const st_tensor *t, float *out, dpo_err *e);
int st_read_raw(const st_file *f, const st_tensor *t, void *out, dpo_err *e);

/* Write F32 tensors atomically (temporary file, fsync, rename). */
typedef struct {
    const char *name;
    const float *data;          /* (numel,) */
    int ndim;
    size_t shape[ST_MAX_DIMS];
} st_out_tensor;

int st_write_f32(const char *path, const st_out_tensor *ts, size_t n, dpo_err *e);

/* Conversions, exposed for tests. */
float st_f16_to_f32(uint16_t h);
float st_bf16_to_f32(uint16_t h);

#endif
