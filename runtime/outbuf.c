/* Bounded head+tail capture; see outbuf.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbuf.h"

void outbuf_init(struct outbuf *b, size_t cap)
{
    memset(b, 0, sizeof *b);
    b->cap = cap;
    b->head_cap = cap / 2;
    b->tail_cap = cap - b->head_cap;
}

/* Grows *buf towards want bytes (at most limit), doubling. */
static int grow(char **buf, size_t *alloc, size_t want, size_t limit)
{
    if (want <= *alloc)
        return 0;
    size_t n = *alloc ? *alloc : 4096;
    while (n < want)
        n *= 2;
    if (n > limit)
        n = limit;
    char *p = realloc(*buf, n);
    if (!p)
        return -1;
    *buf = p;
    *alloc = n;
    return 0;
}

int outbuf_append(struct outbuf *b, const char *data, size_t len)
{
    b->total += len;
    size_t take = b->head_cap - b->head_len;
    if (take > len)
        take = len;
    if (take > 0) {
        if (grow(&b->head, &b->head_alloc, b->head_len + take, b->head_cap) != 0)
            return -1;
        memcpy(b->head + b->head_len, data, take);
        b->head_len += take;
        data += take;
        len -= take;
    }
    if (len == 0 || b->tail_cap == 0)
        return 0;
    if (len >= b->tail_cap) {           /* only the last tail_cap bytes can survive */
        data += len - b->tail_cap;
        len = b->tail_cap;
    }
    if (grow(&b->tail, &b->tail_alloc, b->tail_len + len, b->tail_cap) != 0)
        return -1;
    while (len > 0) {
        size_t end = (b->tail_start + b->tail_len) % b->tail_cap;
        size_t room = b->tail_cap - end;
        size_t n = len < room ? len : room;
        memcpy(b->tail + end, data, n);
        data += n;
        len -= n;
        if (b->tail_len + n <= b->tail_cap) {
            b->tail_len += n;
        } else {
            size_t over = b->tail_len + n - b->tail_cap;
            b->tail_len = b->tail_cap;
            b->tail_start = (b->tail_start + over) % b->tail_cap;
        }
    }
    return 0;
}

int outbuf_truncated(const struct outbuf *b)
{
    return b->total > b->head_len + b->tail_len;
}

static int omitted_marker(const struct outbuf *b, char *out, size_t cap)
{
    return snprintf(out, cap, "\n[... %zu bytes omitted ...]\n", b->total - b->head_len - b->tail_len);
}

size_t outbuf_size(const struct outbuf *b)
{
    size_t n = b->head_len + b->tail_len;
    if (outbuf_truncated(b))
        n += (size_t)omitted_marker(b, NULL, 0);
    return n;
}

void outbuf_copy(const struct outbuf *b, char *out)
{
    if (b->head_len)    /* head is NULL until the first byte arrives */
        memcpy(out, b->head, b->head_len);
    out += b->head_len;
    if (outbuf_truncated(b)) {
        char marker[96];
        int m = omitted_marker(b, marker, sizeof marker);
        memcpy(out, marker, (size_t)m);
        out += m;
    }
    size_t first = b->tail_len;
    if (b->tail_start + first > b->tail_cap)
        first = b->tail_cap - b->tail_start;
    if (first)
        memcpy(out, b->tail + b->tail_start, first);
    if (b->tail_len > first)
        memcpy(out + first, b->tail, b->tail_len - first);
}

void outbuf_free(struct outbuf *b)
{
    free(b->head);
    free(b->tail);
    b->head = b->tail = NULL;
    b->head_len = b->tail_len = b->head_alloc = b->tail_alloc = 0;
}
