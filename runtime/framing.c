/* SSE and NDJSON framing; see framing.h for the rules. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "framing.h"

void frame_init(struct framer *f, enum frame_kind kind, size_t max_size)
{
    memset(f, 0, sizeof *f);
    f->kind = kind;
    f->max_size = max_size;
}

void frame_free(struct framer *f)
{
    free(f->line.p);
    free(f->data.p);
    free(f->name.p);
    memset(&f->line, 0, sizeof f->line);
    memset(&f->data, 0, sizeof f->data);
    memset(&f->name, 0, sizeof f->name);
}

int frame_bytes_append(struct frame_bytes *b, const void *s, size_t n, size_t max)
{
    if (b->len + n > max)
        return FRAME_TOO_LARGE;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        if (cap > max)
            cap = max;
        char *p = realloc(b->p, cap);
        if (!p)
            return FRAME_NO_MEMORY;
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    return FRAME_OK;
}

/* Copies borrowed values into the framer's own buffers before the chunk goes away. */
static int settle(struct framer *f)
{
    int rc = FRAME_OK;
    if (f->data_ref) {
        f->data.len = 0;
        rc = frame_bytes_append(&f->data, f->data_ref, f->data_ref_len, f->max_size);
        f->data_ref = NULL;
    }
    if (f->name_ref && rc == FRAME_OK) {
        f->name.len = 0;
        rc = frame_bytes_append(&f->name, f->name_ref, f->name_ref_len, f->max_size);
        f->name_ref = NULL;
    }
    return rc;
}

static int sse_dispatch(struct framer *f, frame_emit emit, void *ud)
{
    int rc = FRAME_OK;
    const char *name = f->name_ref ? f->name_ref : f->name.p ? f->name.p : "";
    size_t name_len = f->name_ref ? f->name_ref_len : f->name.len;
    const char *data = f->data_ref ? f->data_ref : f->data.p ? f->data.p : "";
    size_t data_len = f->data_ref ? f->data_ref_len : f->data.len;
    if (f->has_data || name_len > 0)
        rc = emit(ud, name, name_len, data, data_len);
    f->data.len = 0;
    f->name.len = 0;
    f->data_ref = f->name_ref = NULL;
    f->has_data = 0;
    return rc;
}

/* borrow: s lies in the caller's chunk and stays valid until frame_feed returns. */
static int sse_line(struct framer *f, const char *s, size_t n, int borrow, frame_emit emit, void *ud)
{
    if (n == 0)
        return sse_dispatch(f, emit, ud);
    if (s[0] == ':')
        return FRAME_OK;                                /* comment */
    /* "data:" and "event:" are nearly every line: recognise them without a search. */
    const char *colon;
    if (n >= 5 && memcmp(s, "data:", 5) == 0)
        colon = s + 4;
    else if (n >= 6 && memcmp(s, "event:", 6) == 0)
        colon = s + 5;
    else
        colon = memchr(s, ':', n);
    size_t field_len = colon ? (size_t)(colon - s) : n;
    const char *value = colon ? colon + 1 : s + n;
    size_t value_len = (size_t)(s + n - value);
    if (value_len > 0 && value[0] == ' ') {
        value++;
        value_len--;
    }
    if (field_len == 4 && memcmp(s, "data", 4) == 0) {
        int rc;
        if (!f->has_data && borrow) {
            f->has_data = 1;
            f->data_ref = value;
            f->data_ref_len = value_len;
            return FRAME_OK;
        }
        if ((rc = settle(f)) != FRAME_OK)
            return rc;
        if (f->has_data && (rc = frame_bytes_append(&f->data, "\n", 1, f->max_size)) != FRAME_OK)
            return rc;
        f->has_data = 1;
        return frame_bytes_append(&f->data, value, value_len, f->max_size);
    }
    if (field_len == 5 && memcmp(s, "event", 5) == 0) {
        if (borrow) {
            f->name_ref = value;
            f->name_ref_len = value_len;
            return FRAME_OK;
        }
        f->name_ref = NULL;
        f->name.len = 0;
        return frame_bytes_append(&f->name, value, value_len, f->max_size);
    }
    return FRAME_OK;                                    /* id, retry, unknown fields */
}

static int ndjson_line(struct framer *f, const char *s, size_t n, frame_emit emit, void *ud)
{
    if (n == 0)
        return FRAME_OK;                                /* blank lines carry nothing */
    return emit(ud, NULL, 0, s, n);
}

static int one_line(struct framer *f, const char *s, size_t n, int borrow, frame_emit emit, void *ud)
{
    if (f->kind == FRAME_NDJSON && n > 0 && s[n - 1] == '\r')
        n--;
    if (n > f->max_size)
        return FRAME_TOO_LARGE;
    return f->kind == FRAME_SSE ? sse_line(f, s, n, borrow, emit, ud) : ndjson_line(f, s, n, emit, ud);
}

/* What the carried-over line may hold: an NDJSON line of max_size bytes may still have the
 * CR of its CRLF to come (stripped when the LF arrives), in this chunk or a later one. */
static size_t line_cap(const struct framer *f)
{
    if (f->kind == FRAME_NDJSON && f->max_size < SIZE_MAX)
        return f->max_size + 1;
    return f->max_size;
}

static int feed(struct framer *f, const char *bytes, size_t len, frame_emit emit, void *ud);

int frame_feed(struct framer *f, const char *bytes, size_t len, frame_emit emit, void *ud)
{
    if (len == 0)
        return FRAME_OK;        /* bytes may be NULL then: never hand it to memchr */
    int rc = feed(f, bytes, len, emit, ud);
    int settled = settle(f);    /* nothing may point into bytes after we return */
    return rc != FRAME_OK ? rc : settled;
}

static int feed(struct framer *f, const char *bytes, size_t len, frame_emit emit, void *ud)
{
    const char *p = bytes, *end = bytes + len;
    int rc;

    if (f->after_cr && p < end) {
        f->after_cr = 0;
        if (*p == '\n')
            p++;                                        /* the LF of a CRLF split across chunks */
    }
    /* NDJSON ends lines with LF only (a CR before it is dropped); SSE also with a lone CR.
     * CR is rare, so one look tells whether memchr for LF alone will do. */
    int scan_cr = f->kind == FRAME_SSE && memchr(p, '\r', (size_t)(end - p)) != NULL;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if (scan_cr) {
            const char *cr = memchr(p, '\r', (size_t)(eol - p));
            if (cr)
                eol = cr;
        }
        if (eol == end)                                 /* an unfinished line: keep it */
            return frame_bytes_append(&f->line, p, (size_t)(end - p), line_cap(f));
        const char *s = p;
        size_t n = (size_t)(eol - p);
        int borrow = 1;
        if (f->line.len > 0) {
            borrow = 0;     /* the line buffer is reused for the next line */
            if ((rc = frame_bytes_append(&f->line, p, n, line_cap(f))) != FRAME_OK)
                return rc;
            s = f->line.p;
            n = f->line.len;
        }
        rc = one_line(f, s, n, borrow, emit, ud);
        f->line.len = 0;
        if (rc != FRAME_OK)
            return rc;
        p = eol + 1;
        if (*eol == '\r') {
            if (p < end) {
                if (*p == '\n')
                    p++;
            } else {
                f->after_cr = 1;
            }
        }
    }
    return FRAME_OK;
}

int frame_finish(struct framer *f, frame_emit emit, void *ud)
{
    if (f->kind == FRAME_NDJSON) {
        if (f->line.len == 0)
            return FRAME_OK;
        int rc = one_line(f, f->line.p, f->line.len, 0, emit, ud);
        f->line.len = 0;
        return rc;
    }
    if (f->line.len > 0 || f->has_data || f->name.len > 0 || f->name_ref)
        return FRAME_UNFINISHED;
    return FRAME_OK;
}
