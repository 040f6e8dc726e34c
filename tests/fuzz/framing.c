/* libFuzzer target for the SSE or NDJSON framer (runtime/framing.c), built twice:
 * -DFUZZ_KIND=FRAME_SSE (fuzz_sse) and -DFUZZ_KIND=FRAME_NDJSON (fuzz_ndjson).
 *
 * Input: byte 0 picks max_size, byte 1 how the rest is cut into chunks; the rest is the
 * stream. The stream is framed twice, whole and in chunks, and both must give the same
 * frames and the same verdict: framing must not depend on where the network cut the bytes.
 * Each chunk is a separate allocation of exactly its size, freed once fed, so ASan catches a
 * read past a chunk or a pointer kept into one; an empty chunk is fed as (NULL, 0). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "framing.h"

#ifndef FUZZ_KIND
#error "build with -DFUZZ_KIND=FRAME_SSE or -DFUZZ_KIND=FRAME_NDJSON"
#endif

/* The frames seen, serialised: name length, name, data length, data. */
struct record {
    struct frame_bytes out;
    int status;
};

static void put(struct frame_bytes *b, const void *p, size_t n)
{
    if (frame_bytes_append(b, p, n, (size_t)1 << 30) != FRAME_OK)
        abort();
}

static int on_frame(void *ud, const char *name, size_t name_len, const char *data, size_t data_len)
{
    struct record *r = ud;
    if ((name == NULL) != (FUZZ_KIND == FRAME_NDJSON) || data == NULL)
        abort();
    put(&r->out, &name_len, sizeof name_len);
    if (name_len)
        put(&r->out, name, name_len);
    put(&r->out, &data_len, sizeof data_len);
    if (data_len)
        put(&r->out, data, data_len);
    return 0;
}

/* A small deterministic generator for the chunk sizes. */
static uint32_t next_random(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

/* Feeds the stream in chunks (chunk_max 0: one chunk) and records what comes out. The
 * caller stops at the first error, as http.c does. */
static void run(const uint8_t *s, size_t n, size_t max_size, unsigned split, struct record *r)
{
    struct framer f;
    frame_init(&f, FUZZ_KIND, max_size);
    memset(r, 0, sizeof *r);
    uint32_t state = 0x9E3779B9u ^ split;
    size_t at = 0;
    int rc = FRAME_OK;
    if (split == 0) {
        rc = frame_feed(&f, (const char *)s, n, on_frame, r);
        at = n;
    }
    while (rc == FRAME_OK && at < n) {
        /* chunk sizes 0..limit, where the low bits of split choose the limit (1 = byte by byte) */
        size_t limit = (size_t)1 << (split & 7);
        size_t len = next_random(&state) % (limit + 1);
        if (len > n - at)
            len = n - at;
        char *chunk = len ? malloc(len) : NULL;
        if (len && !chunk)
            abort();
        if (len)
            memcpy(chunk, s + at, len);
        rc = frame_feed(&f, chunk, len, on_frame, r);
        free(chunk);
        at += len;
    }
    r->status = rc != FRAME_OK ? rc : frame_finish(&f, on_frame, r);
    frame_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    /* 1..2041 bytes, or 1 MiB when byte 0 is 255: small limits meet lines at their edge */
    size_t max_size = data[0] == 255 ? (size_t)1 << 20 : 1 + (size_t)data[0] * 8;
    unsigned split = data[1] ? data[1] : 1;
    const uint8_t *stream = data + 2;
    size_t n = size - 2;

    struct record whole, chunked;
    run(stream, n, max_size, 0, &whole);
    run(stream, n, max_size, split, &chunked);
    if (whole.status != chunked.status || whole.out.len != chunked.out.len
        || (whole.out.len && memcmp(whole.out.p, chunked.out.p, whole.out.len) != 0)) {
        fprintf(stderr, "property broken: framing depends on the chunks: whole status %d, %zu bytes of frames;"
                " chunked (split %u) status %d, %zu bytes\n", whole.status, whole.out.len, split,
                chunked.status, chunked.out.len);
        abort();
    }
    free(whole.out.p);
    free(chunked.out.p);
    return 0;
}
