/* A bounded capture of a stream: keeps the first half of the budget and the last half,
 * so a long build log still shows how it started and how it failed. Pure C. */
#ifndef CODEASSIST_OUTBUF_H
#define CODEASSIST_OUTBUF_H

#include <stddef.h>

struct outbuf {
    size_t cap;                 /* total bytes kept at most */
    size_t total;               /* bytes seen */
    char *head;                 /* the first head_cap bytes */
    size_t head_len, head_cap, head_alloc;
    char *tail;                 /* ring of the latest bytes after the head */
    size_t tail_len, tail_start, tail_cap, tail_alloc;
};

void outbuf_init(struct outbuf *b, size_t cap);
/* Returns 0, or -1 when memory ran out (the bytes are then dropped but counted). */
int outbuf_append(struct outbuf *b, const char *data, size_t len);
int outbuf_truncated(const struct outbuf *b);
/* Writes the kept bytes in order into out (which must hold outbuf_size()); when bytes were
 * dropped, the marker "\n[... N bytes omitted ...]\n" stands where they were. */
size_t outbuf_size(const struct outbuf *b);
void outbuf_copy(const struct outbuf *b, char *out);
void outbuf_free(struct outbuf *b);

#endif
