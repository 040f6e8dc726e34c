/* The SSE and NDJSON framers: every streamed fixture, whole, split at every byte boundary,
 * byte by byte and with CRLF and CR line ends, gives the frames written down for it in
 * tests/fixtures/framing/; comments, multi-line data, bounds, EOF. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "framing.h"
#include "tap.h"

#define FIXTURES "tests/fixtures/protocol/"
#define EXPECTED "tests/fixtures/framing/"

/* Frames are recorded as "name\x1f" "data\x1e" in one growing string. */
struct record {
    char *s;
    size_t len, cap;
    int count;
};

static void record_add(struct record *r, const char *s, size_t n)
{
    if (r->len + n + 1 > r->cap) {
        r->cap = (r->len + n + 1) * 2;
        r->s = realloc(r->s, r->cap);
    }
    memcpy(r->s + r->len, s, n);
    r->len += n;
    r->s[r->len] = '\0';
}

static int on_frame(void *ud, const char *name, size_t nlen, const char *data, size_t dlen)
{
    struct record *r = ud;
    if (name)
        record_add(r, name, nlen);
    record_add(r, "\x1f", 1);
    record_add(r, data, dlen);
    record_add(r, "\x1e", 1);
    r->count++;
    return 0;
}

/* Feeds text in pieces of the given sizes (cycled); returns the finish status. */
static int frame_text(enum frame_kind kind, const char *text, size_t len, size_t split_at,
                      int bytewise, struct record *out)
{
    struct framer f;
    int rc = FRAME_OK;
    frame_init(&f, kind, 1 << 20);
    memset(out, 0, sizeof *out);
    record_add(out, "", 0);
    if (bytewise) {
        for (size_t i = 0; i < len && rc == FRAME_OK; i++)
            rc = frame_feed(&f, text + i, 1, on_frame, out);
    } else {
        rc = frame_feed(&f, text, split_at, on_frame, out);
        if (rc == FRAME_OK)
            rc = frame_feed(&f, text + split_at, len - split_at, on_frame, out);
    }
    if (rc == FRAME_OK)
        rc = frame_finish(&f, on_frame, out);
    frame_free(&f);
    return rc;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *s = malloc((size_t)n + 3);
    *len = fread(s, 1, (size_t)n, fp);
    s[*len] = '\0';
    fclose(fp);
    return s;
}

/* LF -> the given terminator. */
static char *convert_newlines(const char *s, size_t len, const char *eol, size_t *out_len)
{
    char *out = malloc(len * 2 + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\n') {
            memcpy(out + n, eol, strlen(eol));
            n += strlen(eol);
        } else {
            out[n++] = s[i];
        }
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

/* The frames written down for a fixture (tests/fixtures/framing/README.md), as a record like
 * on_frame makes; *last gets the offset where the last frame starts. */
static int load_expected(const char *fixture, struct record *want, size_t *last)
{
    char path[256];
    size_t len;
    snprintf(path, sizeof path, EXPECTED "%s.expected", fixture);
    char *text = slurp(path, &len);
    memset(want, 0, sizeof *want);
    record_add(want, "", 0);
    *last = 0;
    if (!text)
        return -1;
    int open = 0, lines = 0;
    for (char *line = text, *next; line < text + len; line = next) {
        char *eol = memchr(line, '\n', (size_t)(text + len - line));
        next = eol ? eol + 1 : text + len;
        size_t n = (size_t)((eol ? eol : text + len) - line);
        if (n > 0 && line[0] == '@') {
            if (open)
                record_add(want, "\x1e", 1);
            *last = want->len;
            record_add(want, line + 1, n - 1);
            record_add(want, "\x1f", 1);
            open = 1;
            lines = 0;
            want->count++;
        } else if (n > 0 && line[0] == '|' && open) {
            if (lines++ > 0)
                record_add(want, "\n", 1);
            record_add(want, line + 1, n - 1);
        } else if (n > 0 && line[0] != '#') {
            free(text);
            return -1;                                  /* not the format: say so */
        }
    }
    if (open)
        record_add(want, "\x1e", 1);
    free(text);
    return 0;
}

static int same_frames(int rc, const struct record *got, const struct record *want)
{
    return rc == FRAME_OK && got->count == want->count && got->len == want->len
           && memcmp(got->s, want->s, want->len) == 0;
}

static void check_fixture(const char *name, enum frame_kind kind)
{
    char path[256];
    size_t len, last;
    snprintf(path, sizeof path, FIXTURES "%s", name);
    char *raw = slurp(path, &len);
    struct record want, got;
    int loaded = load_expected(name, &want, &last);
    ok(raw != NULL && loaded == 0 && want.count > 0, "%s: fixture and its %d expected frames readable",
       name, want.count);
    if (!raw || loaded != 0) {
        free(raw);
        free(want.s);
        return;
    }
    /* The SDK fixtures end without the final blank line: complete them for the main check. */
    if (kind == FRAME_SSE) {
        while (len > 0 && raw[len - 1] == '\n')
            len--;
        memcpy(raw + len, "\n\n", 3);
        len += 2;
    } else if (len > 0 && raw[len - 1] != '\n') {
        raw[len++] = '\n';
        raw[len] = '\0';
    }

    int rc = frame_text(kind, raw, len, len, 0, &got);
    ok(same_frames(rc, &got, &want), "%s: whole, the %d expected frames (got %d), finished cleanly",
       name, want.count, got.count);
    if (!same_frames(rc, &got, &want))
        printf("#   got:  '%s'\n#   want: '%s'\n", got.s, want.s);
    free(got.s);

    int same = 1;
    size_t bad_split = 0;
    for (size_t i = 0; i <= len && same; i++) {
        rc = frame_text(kind, raw, len, i, 0, &got);
        if (!same_frames(rc, &got, &want)) {
            same = 0;
            bad_split = i;
        }
        free(got.s);
    }
    ok(same, "%s: the expected frames when split at each of %zu byte boundaries (first bad: %zu)",
       name, len + 1, bad_split);

    rc = frame_text(kind, raw, len, 0, 1, &got);
    ok(same_frames(rc, &got, &want), "%s: the expected frames fed one byte at a time", name);
    free(got.s);

    const char *eols[] = { "\r\n", "\r" };
    for (int e = 0; e < (kind == FRAME_SSE ? 2 : 1); e++) {
        size_t clen;
        char *conv = convert_newlines(raw, len, eols[e], &clen);
        int all = 1;
        for (size_t i = 0; i <= clen && all; i++) {
            rc = frame_text(kind, conv, clen, i, 0, &got);
            all = same_frames(rc, &got, &want);
            free(got.s);
        }
        ok(all, "%s: the expected frames with %s line ends, at every split",
           name, e == 0 ? "CRLF" : "CR");
        free(conv);
    }

    /* Without the final blank line, the last SSE event is unfinished, never emitted; an NDJSON
     * stream's last line needs no newline. */
    size_t cut = len - (kind == FRAME_SSE ? 2 : 1);
    int all = 1;
    for (size_t i = 0; i <= cut && all; i++) {
        rc = frame_text(kind, raw, cut, i, 0, &got);
        if (kind == FRAME_SSE)
            all = rc == FRAME_UNFINISHED && got.count == want.count - 1 && got.len == last
                  && memcmp(got.s, want.s, last) == 0;
        else
            all = same_frames(rc, &got, &want);
        free(got.s);
    }
    ok(all, kind == FRAME_SSE
       ? "%s: a stream cut before its last blank line gives all but the last event, then unfinished"
       : "%s: a stream without its last newline still gives every line (at every split)", name);
    free(want.s);
    free(raw);
}

static void check_sse_rules(void)
{
    struct record r;
    const char *t = ": comment\nevent: a\nevent: b\ndata:x\ndata:  two spaces\ndata\nid: 7\nretry: 10\n"
                    "foo: bar\n\n\n\ndata: {\"type\":\"x\"}   \n\n";
    int rc = frame_text(FRAME_SSE, t, strlen(t), 5, 0, &r);
    is_str(r.s, "b\x1fx\n two spaces\n\x1e\x1f{\"type\":\"x\"}   \x1e",
           "comments skipped; last event name wins; one space stripped; data joined; id/retry/unknown ignored; blank lines without data dispatch nothing");
    ok(rc == FRAME_OK, "finished cleanly");
    free(r.s);

    t = "event: ping\n\ndata:\n\n";
    frame_text(FRAME_SSE, t, strlen(t), 3, 0, &r);
    is_str(r.s, "ping\x1f\x1e\x1f\x1e", "an event with only a name, and an empty data line, are dispatched (as the SDKs do)");
    free(r.s);

    t = "data: \xe2\x80\xa8 stays \xc3\xa9\n\n";
    frame_text(FRAME_SSE, t, strlen(t), 8, 0, &r);
    is_str(r.s, "\x1f\xe2\x80\xa8 stays \xc3\xa9\x1e", "U+2028 and split multi-byte characters are bytes, not line ends");
    free(r.s);

    t = "data: a\r\r\ndata: b\r\n\r\n";
    frame_text(FRAME_SSE, t, strlen(t), 8, 0, &r);
    is_str(r.s, "\x1f" "a\x1e\x1f" "b\x1e", "CR then CRLF is two line ends (a blank line)");
    free(r.s);
}

static void check_bounds(void)
{
    struct framer f;
    struct record r = { 0 };
    char big[300];
    memset(big, 'x', sizeof big);

    frame_init(&f, FRAME_SSE, 256);
    int rc = frame_feed(&f, "data: ", 6, on_frame, &r);
    for (int i = 0; i < 10 && rc == FRAME_OK; i++)
        rc = frame_feed(&f, big, 100, on_frame, &r);
    ok(rc == FRAME_TOO_LARGE, "an SSE line longer than the bound is refused, not buffered");
    frame_free(&f);

    frame_init(&f, FRAME_SSE, 256);
    rc = FRAME_OK;
    for (int i = 0; i < 10 && rc == FRAME_OK; i++)
        rc = frame_feed(&f, "data: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n", 47, on_frame, &r);
    ok(rc == FRAME_TOO_LARGE, "an SSE event whose data lines add up past the bound is refused");
    frame_free(&f);

    frame_init(&f, FRAME_NDJSON, 256);
    rc = frame_feed(&f, big, sizeof big, on_frame, &r);
    ok(rc == FRAME_TOO_LARGE, "an NDJSON line longer than the bound is refused");
    frame_free(&f);
    free(r.s);

    const char *t = "{\"a\":1}\r\n\n{\"b\":2}\n";
    frame_text(FRAME_NDJSON, t, strlen(t), 4, 0, &r);
    is_str(r.s, "\x1f{\"a\":1}\x1e\x1f{\"b\":2}\x1e", "NDJSON: CRLF accepted, blank lines skipped");
    free(r.s);
}

/* The audit's crash inputs and edge cases of issue 13. */
static void check_hostile(void)
{
    struct framer f;
    struct record r = { 0 };
    record_add(&r, "", 0);

    /* An empty read with no buffer (NULL, 0) is nothing: memchr must never see NULL. */
    for (int k = 0; k < 2; k++) {
        frame_init(&f, k == 0 ? FRAME_SSE : FRAME_NDJSON, 64);
        int rc = frame_feed(&f, NULL, 0, on_frame, &r);
        rc |= frame_feed(&f, "data: a", 7, on_frame, &r);
        rc |= frame_feed(&f, NULL, 0, on_frame, &r);
        rc |= frame_feed(&f, "\n\n", 2, on_frame, &r);
        rc |= frame_feed(&f, NULL, 0, on_frame, &r);
        rc |= frame_finish(&f, on_frame, &r);
        ok(rc == FRAME_OK, "%s: frame_feed(NULL, 0) before, inside and after a frame does nothing",
           k == 0 ? "SSE" : "NDJSON");
        frame_free(&f);
    }
    is_str(r.s, "\x1f" "a\x1e\x1f" "data: a\x1e", "and the frames around it are whole");
    free(r.s);

    /* An NDJSON line of exactly the limit, then CRLF: accepted however the chunks fall. */
    enum { LIMIT = 100 };
    char line[LIMIT + 3];
    memset(line, 'x', LIMIT);
    memcpy(line + LIMIT, "\r\n", 3);
    int all = 1;
    for (size_t split = 0; split <= LIMIT + 2 && all; split++) {
        for (int second = 0; second < 2 && all; second++) {
            struct record got = { 0 };
            record_add(&got, "", 0);
            frame_init(&f, FRAME_NDJSON, LIMIT);
            int rc = frame_feed(&f, line, split, on_frame, &got);
            if (rc == FRAME_OK)
                rc = frame_feed(&f, line + split, LIMIT + 2 - split, on_frame, &got);
            if (second && rc == FRAME_OK)   /* then a second such line */
                rc = frame_feed(&f, line, LIMIT + 2, on_frame, &got);
            if (rc == FRAME_OK)
                rc = frame_finish(&f, on_frame, &got);
            all = rc == FRAME_OK && got.count == 1 + second && got.len == (size_t)(LIMIT + 2) * (1 + second);
            frame_free(&f);
            free(got.s);
        }
    }
    ok(all, "NDJSON: a line of exactly the limit then CRLF is accepted with the CR in the same or a later chunk");

    /* One byte more is refused, wherever the chunks split it; a CR mid-line is not a terminator. */
    char over[LIMIT + 4];
    memset(over, 'x', LIMIT + 1);
    memcpy(over + LIMIT + 1, "\r\n", 3);
    all = 1;
    for (size_t split = 0; split <= LIMIT + 3 && all; split++) {
        struct record got = { 0 };
        frame_init(&f, FRAME_NDJSON, LIMIT);
        int rc = frame_feed(&f, over, split, on_frame, &got);
        if (rc == FRAME_OK)
            rc = frame_feed(&f, over + split, LIMIT + 3 - split, on_frame, &got);
        all = rc == FRAME_TOO_LARGE && got.count == 0;
        frame_free(&f);
        free(got.s);
    }
    ok(all, "NDJSON: a line one byte over the limit is refused at every split, CRLF or not");
    over[LIMIT] = '\r';                 /* LIMIT x's, CR, CR, LF: the first CR is content */
    frame_init(&f, FRAME_NDJSON, LIMIT);
    r = (struct record){ 0 };
    ok(frame_feed(&f, over, LIMIT + 3, on_frame, &r) == FRAME_TOO_LARGE, "NDJSON: only the CR before LF is dropped");
    frame_free(&f);
    free(r.s);

    /* The end of an NDJSON stream ends its last line, within the same limit. */
    r = (struct record){ 0 };
    record_add(&r, "", 0);
    frame_init(&f, FRAME_NDJSON, LIMIT);
    int rc = frame_feed(&f, "{\"a\":1}\n{\"done\":", 16, on_frame, &r);
    rc |= frame_feed(&f, "true}\r", 6, on_frame, &r);
    rc |= frame_finish(&f, on_frame, &r);
    is_str(r.s, "\x1f{\"a\":1}\x1e\x1f{\"done\":true}\x1e", "NDJSON: a last line without its newline (its CR dropped) is delivered at the end");
    ok(rc == FRAME_OK && frame_finish(&f, on_frame, &r) == FRAME_OK && r.count == 2, "once: finishing again delivers nothing");
    frame_free(&f);
    free(r.s);

    r = (struct record){ 0 };
    frame_init(&f, FRAME_NDJSON, LIMIT);
    rc = frame_feed(&f, line, LIMIT, on_frame, &r);
    rc |= frame_feed(&f, "\r", 1, on_frame, &r);
    ok(rc == FRAME_OK && frame_finish(&f, on_frame, &r) == FRAME_OK && r.count == 1,
       "NDJSON: a last line of exactly the limit then CR at the end of the stream is accepted");
    frame_free(&f);
    over[LIMIT] = 'x';
    frame_init(&f, FRAME_NDJSON, LIMIT);
    rc = frame_feed(&f, over, LIMIT + 1, on_frame, &r);
    ok(rc == FRAME_OK && frame_finish(&f, on_frame, &r) == FRAME_TOO_LARGE && r.count == 1,
       "NDJSON: a last line over the limit at the end of the stream is refused");
    frame_free(&f);
    free(r.s);

    /* SSE keeps its rule: an event without its blank line is not delivered. */
    r = (struct record){ 0 };
    frame_init(&f, FRAME_SSE, LIMIT);
    rc = frame_feed(&f, "data: a\n", 8, on_frame, &r);
    ok(rc == FRAME_OK && frame_finish(&f, on_frame, &r) == FRAME_UNFINISHED && r.count == 0,
       "SSE: an event without its blank line at the end is unfinished, not delivered");
    frame_free(&f);
    free(r.s);
}

int main(void)
{
    static const struct { const char *file; enum frame_kind kind; } fixtures[] = {
        { "anthropic-sse-text.txt", FRAME_SSE },
        { "anthropic-sse-tool-use.txt", FRAME_SSE },
        { "anthropic-sse-tool-use-max-tokens-truncated.txt", FRAME_SSE },
        { "anthropic-sse-refusal.txt", FRAME_SSE },
        { "anthropic-sse-thinking-docs.txt", FRAME_SSE },
        { "anthropic-sse-error-overloaded.txt", FRAME_SSE },
        { "ollama-anthropic-sse-thinking-tool-use.txt", FRAME_SSE },
        { "ollama-api-generate-stream.ndjson", FRAME_NDJSON },
    };
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++)
        check_fixture(fixtures[i].file, fixtures[i].kind);
    check_sse_rules();
    check_bounds();
    check_hostile();
    return tap_done();
}
