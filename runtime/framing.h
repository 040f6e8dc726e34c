/* Incremental framing of streamed HTTP bodies: Server-Sent Events and NDJSON. Pure C.
 *
 * Bytes arrive in arbitrary chunks; complete events (SSE) or lines (NDJSON) are handed to a
 * callback as soon as they are whole. Both framers work on bytes, before any UTF-8
 * decoding, and bound what they hold: a line or event larger than max_size is an error,
 * never unbounded growth.
 *
 * SSE follows the WHATWG rules as Anthropic's SDKs apply them: LF, CRLF and lone CR end a
 * line (a CRLF split across chunks is one terminator); ":" starts a comment; a field is
 * split at the first ":" and one leading space is removed from the value; "data" lines are
 * joined with "\n"; "event" sets the name; other fields (id, retry, unknown) are ignored; a
 * blank line dispatches the pending event if it has data or a name; an event not ended by
 * a blank line is never dispatched (frame_finish reports it).
 *
 * NDJSON lines end with LF; a CR before it is dropped, wherever the chunks split them (a line
 * of max_size bytes then CRLF fits). Blank lines are skipped. At the end of the stream a last
 * line without its LF is still a line, as Ollama's own client (Go's bufio.Scanner) reads it. */
#ifndef CODEASSIST_FRAMING_H
#define CODEASSIST_FRAMING_H

#include <stddef.h>

enum frame_kind { FRAME_SSE, FRAME_NDJSON };

enum frame_status {
    FRAME_OK = 0,
    FRAME_TOO_LARGE = 1,    /* a line or event exceeded max_size */
    FRAME_NO_MEMORY = 2,
    FRAME_UNFINISHED = 3,   /* frame_finish: the SSE stream ended inside a line or event */
};

/* Called for each complete frame. SSE: name (may be empty) and data. NDJSON: name is NULL
 * and data is the line without its terminator. Returning nonzero stops the feed with that
 * value. */
typedef int (*frame_emit)(void *ud, const char *name, size_t name_len,
                          const char *data, size_t data_len);

struct frame_bytes {
    char *p;
    size_t len, cap;
};

struct framer {
    enum frame_kind kind;
    size_t max_size;
    struct frame_bytes line;    /* the unfinished line carried over between chunks */
    struct frame_bytes data;    /* SSE: data lines of the pending event */
    struct frame_bytes name;    /* SSE: event name of the pending event */
    int has_data;               /* SSE: a data field was seen since the last dispatch */
    /* SSE: a data value or name still inside the chunk being fed, not yet copied (most
     * events are whole within one chunk; they are emitted without an extra copy). */
    const char *data_ref, *name_ref;
    size_t data_ref_len, name_ref_len;
    int after_cr;               /* the previous chunk ended in CR: a leading LF belongs to it */
};

void frame_init(struct framer *f, enum frame_kind kind, size_t max_size);
/* Appends n bytes (s may be NULL when n is 0), growing by doubling up to max bytes in all.
 * FRAME_OK, FRAME_TOO_LARGE or FRAME_NO_MEMORY. Also used by http.c for its buffers. */
int frame_bytes_append(struct frame_bytes *b, const void *s, size_t n, size_t max);
/* Returns FRAME_OK, FRAME_TOO_LARGE, FRAME_NO_MEMORY or the emit callback's nonzero value.
 * len 0 (bytes may then be NULL) does nothing. */
int frame_feed(struct framer *f, const char *bytes, size_t len, frame_emit emit, void *ud);
/* At end of stream. NDJSON: emits a last line that had no LF, then returns FRAME_OK (or
 * FRAME_TOO_LARGE, or the callback's value). SSE: FRAME_OK when nothing is pending, else
 * FRAME_UNFINISHED (a pending event is never emitted). */
int frame_finish(struct framer *f, frame_emit emit, void *ud);
void frame_free(struct framer *f);

#endif
