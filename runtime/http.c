/* The `codeassist.http_core` module: HTTP transfers on the shared curl_multi handle.
 * The Lua library (codeassist.http) builds http.request and error messages on top.
 *
 *   core.open{ url, method, headers = {...}, body, stream = "sse"|"ndjson"|nil,
 *              timeout = { connect, first_byte, idle, total }, max_body, max_event,
 *              ca_file, resolve = {"host:port:addr", ...} }            -> transfer
 *   transfer:state()    -> "connecting"|"waiting"|"receiving"|"done"|"failed"|"closed"
 *   transfer:status()   -> HTTP status, or nil before the headers
 *   transfer:headers()  -> { lowercased name = value } (repeats joined with ", ")
 *   transfer:next()     -> data, name (SSE) | line (NDJSON) | false (nothing yet) | nil (end)
 *   transfer:body()     -> whole body | false (not finished) | nil (failed); on a stream, the
 *                          caller waits for the end without reading: frames are dropped from then on
 *   transfer:failure()  -> kind, message | nil
 *   transfer:head()     -> the first bytes of the body (up to 512), in any mode
 *   transfer:info()     -> { bytes, frames, connect_time, first_byte_time, total_time, new_connections }
 *   transfer:close()
 *
 * A transfer is waitable (sched.wait): it wakes its waiters when headers arrive, when frames
 * are queued and when it ends. libcurl callbacks only append to bounded buffers; when Lua
 * stops reading, the queue fills to QUEUE_HIGH and the transfer pauses (the rest waits in the
 * kernel's socket buffer) until Lua drains it below QUEUE_LOW. A frame larger than the queue
 * is still delivered whole: the framer bounds it (max_event), the queue takes it, then pauses.
 * Responses with status >= 300 are kept as a body whatever the stream mode, so the caller
 * can report the server's error text; only its first MAX_ERROR_BODY bytes are read.
 * Redirects are never followed: status() and headers().location say where it pointed.
 *
 * max_body bounds a plain body, and all the (decoded) bytes of a stream: default 64 MiB
 * either way; beyond it the transfer fails with kind "too_large". max_event bounds one frame.
 * The body is asked for uncompressed; gzip or deflate sent anyway is decoded, any other
 * encoding fails with a message naming it. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "framing.h"
#include "host.h"
#include "loop.h"

#define TRANSFER_MT "codeassist.transfer"
/* Small on purpose: a stream Lua reads slowly holds about RECV_BUFFER (libcurl's read buffer)
 * + RECV_BUFFER (the chunk libcurl keeps while paused) + QUEUE_HIGH + RECV_BUFFER (the queue),
 * so hundreds of them fit in a few tens of MB. */
#define RECV_BUFFER (16L << 10)
#define QUEUE_HIGH (32u << 10)            /* pause the transfer at this many unread bytes */
#define QUEUE_LOW (QUEUE_HIGH / 4)        /* and resume below this */
#define MAX_HEADER_BYTES (64u << 10)
#define MAX_ERROR_BODY (64u << 10)
#define DEFAULT_MAX_BODY (64u << 20)
#define DEFAULT_MAX_STREAM (64u << 20)   /* all the bytes of a stream, frames and all */
#define DEFAULT_MAX_EVENT (16u << 20)
#define HEAD_BYTES 512

enum mode { MODE_BODY, MODE_SSE, MODE_NDJSON };

struct transfer {
    struct waitq waiters;                 /* first member: waitable */
    struct transfer_done on_done;
    struct watcher timer;
    struct resource owner;
    CURL *easy;
    struct curl_slist *request_headers, *resolve;
    char *request_body;
    enum mode mode;
    int in_multi, finished, closed, paused;
    int discard;                          /* a stream nobody reads (see t_body): keep no frames */
    int body_cut;                         /* a 3xx/4xx/5xx body ended once its start was kept */
    long status;
    int headers_done;
    struct frame_bytes headers;           /* "name\0value\0" pairs of the final response */
    struct framer framer;
    struct frame_bytes queue;             /* frames for Lua: [u32 name][u32 data][name][data] */
    size_t queue_read;
    struct frame_bytes body;
    size_t max_body;
    const char *fail_kind;
    char fail_message[1024];
    char errbuf[CURL_ERROR_SIZE];
    double started, sent, first_byte, last_byte, ended;
    double to_connect, to_first_byte, to_idle, to_total;
    size_t bytes_in, frames;
    char head[HEAD_BYTES];                /* the first body bytes, whatever the mode */
    size_t head_len;
    long new_connections;
};

/* Unbounded here: every buffer of a transfer has its own limit, checked by its caller. */
static int bytes_add(struct frame_bytes *b, const void *s, size_t n)
{
    return frame_bytes_append(b, s, n, SIZE_MAX);
}

/* ===== deadlines ===== */

static void update_deadline(struct transfer *t)
{
    double d = 0, c = 0;
    if (t->finished) {
        t->timer.deadline = 0;
        return;
    }
    if (t->to_total > 0)
        d = t->started + t->to_total;
    if (t->sent > 0 && t->first_byte == 0 && t->to_first_byte > 0)
        c = t->sent + t->to_first_byte;
    else if (t->first_byte > 0 && !t->paused && t->to_idle > 0)
        c = t->last_byte + t->to_idle;
    if (c > 0 && (d == 0 || c < d))
        d = c;
    t->timer.deadline = d;
}

static void detach(struct transfer *t)
{
    if (t->in_multi) {
        curl_multi_remove_handle(loop_multi(), t->easy);
        loop_transfer_removed();
        t->in_multi = 0;
    }
    loop_unwatch(&t->timer);
}

static void fail(struct transfer *t, const char *kind, const char *message)
{
    if (t->finished)
        return;
    t->fail_kind = kind;
    snprintf(t->fail_message, sizeof t->fail_message, "%s", message);
    t->finished = 1;
    t->ended = loop_now();
    detach(t);
    waitq_wake_all(&t->waiters);
}

static void on_deadline(struct watcher *w)
{
    struct transfer *t = FROM_MEMBER(w, struct transfer, timer);
    double now = loop_now();
    char msg[128];
    if (t->finished || t->timer.deadline == 0 || now < t->timer.deadline)
        return;
    if (t->to_total > 0 && now >= t->started + t->to_total) {
        snprintf(msg, sizeof msg, "no complete response within %g s (timeout.total)", t->to_total);
        fail(t, "timeout_total", msg);
    } else if (t->first_byte == 0) {
        snprintf(msg, sizeof msg, "no response within %g s of sending the request (timeout.first_byte)",
                 t->to_first_byte);
        fail(t, "timeout_first_byte", msg);
    } else {
        snprintf(msg, sizeof msg, "the response stalled: no bytes for %g s (timeout.idle)", t->to_idle);
        fail(t, "timeout_idle", msg);
    }
}

/* ===== libcurl callbacks: C buffers only ===== */

static int on_prereq(void *ud, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
    struct transfer *t = ud;
    (void)primary_ip, (void)local_ip, (void)primary_port, (void)local_port;
    t->sent = loop_now();
    update_deadline(t);
    return CURL_PREREQFUNC_OK;
}

static void mark_bytes(struct transfer *t)
{
    double now = loop_now();
    if (t->first_byte == 0)
        t->first_byte = now;
    t->last_byte = now;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct transfer *t = ud;
    size_t len = size * n;
    mark_bytes(t);
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {       /* a status line starts a block */
        const char *sp = memchr(p, ' ', len);
        t->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        t->headers.len = 0;
    } else if (len <= 2 && (p[0] == '\r' || p[0] == '\n')) {
        if (t->status >= 200) {                          /* 1xx blocks are not the answer */
            t->headers_done = 1;
            if (t->status >= 300)
                t->mode = MODE_BODY;                     /* an error or redirect page, whatever was asked */
            waitq_wake_all(&t->waiters);
        }
    } else {
        const char *colon = memchr(p, ':', len);
        if (colon && t->headers.len + len + 2 <= MAX_HEADER_BYTES) {
            size_t name_len = (size_t)(colon - p);
            const char *v = colon + 1, *end = p + len;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
                end--;
            size_t at = t->headers.len;
            if (bytes_add(&t->headers, p, name_len) || bytes_add(&t->headers, "", 1)
                || bytes_add(&t->headers, v, (size_t)(end - v)) || bytes_add(&t->headers, "", 1))
                return 0;
            for (size_t i = at; i < at + name_len; i++)
                if (t->headers.p[i] >= 'A' && t->headers.p[i] <= 'Z')
                    t->headers.p[i] = (char)(t->headers.p[i] + 32);
        } else if (colon) {
            t->fail_kind = "too_large";
            snprintf(t->fail_message, sizeof t->fail_message,
                     "response headers larger than %u bytes", MAX_HEADER_BYTES);
            return 0;
        }
    }
    update_deadline(t);
    return len;
}

static int queue_frame(void *ud, const char *name, size_t name_len, const char *data, size_t data_len)
{
    struct transfer *t = ud;
    uint32_t lens[2] = { (uint32_t)name_len, (uint32_t)data_len };
    size_t need = sizeof lens + name_len + data_len;
    if (t->queue_read > 0 && t->queue_read == t->queue.len) {
        t->queue.len = t->queue_read = 0;               /* drained: start over */
    } else if (t->queue_read > 0 && t->queue.len + need > t->queue.cap) {
        /* Reuse the consumed front before growing: the queue stays near its unread size. */
        memmove(t->queue.p, t->queue.p + t->queue_read, t->queue.len - t->queue_read);
        t->queue.len -= t->queue_read;
        t->queue_read = 0;
    }
    if (bytes_add(&t->queue, lens, sizeof lens) || bytes_add(&t->queue, name, name_len)
        || bytes_add(&t->queue, data, data_len))
        return FRAME_NO_MEMORY;
    t->frames++;
    return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct transfer *t = ud;
    size_t len = size * n;

    if (t->head_len < HEAD_BYTES) {
        size_t k = len < HEAD_BYTES - t->head_len ? len : HEAD_BYTES - t->head_len;
        memcpy(t->head + t->head_len, p, k);
        t->head_len += k;
    }
    if (t->mode == MODE_BODY) {
        size_t cap = t->status >= 300 ? MAX_ERROR_BODY : t->max_body;
        if (t->body.len + len > cap) {
            if (t->status >= 300) {
                /* Keep the start of an error text and stop reading: the rest tells nothing,
                 * and an endless one would hold the caller. on_done takes it as complete. */
                size_t room = cap - t->body.len;
                if (room && bytes_add(&t->body, p, room))
                    return 0;
                t->bytes_in += room;
                t->body_cut = 1;
                return 0;
            }
            t->fail_kind = "too_large";
            snprintf(t->fail_message, sizeof t->fail_message,
                     "response body larger than the limit of %zu bytes (max_body)", t->max_body);
            return 0;
        }
        if (bytes_add(&t->body, p, len))
            return 0;
    } else if (t->bytes_in + len > t->max_body) {
        /* A stream is bounded as a whole too: an endless answer of small frames would
         * otherwise grow whatever reads it without limit. */
        t->fail_kind = "too_large";
        snprintf(t->fail_message, sizeof t->fail_message,
                 "a streamed answer larger than the limit of %zu bytes (max_body)", t->max_body);
        return 0;
    } else if (!t->discard) {
        if (t->queue.len - t->queue_read >= QUEUE_HIGH) {
            /* Lua is behind: libcurl keeps this chunk and stops reading until resumed. */
            t->paused = 1;
            update_deadline(t);
            return CURL_WRITEFUNC_PAUSE;
        }
        size_t before = t->frames;
        int rc = frame_feed(&t->framer, p, len, queue_frame, t);
        if (rc != FRAME_OK) {
            t->fail_kind = rc == FRAME_TOO_LARGE ? "too_large" : "protocol";
            snprintf(t->fail_message, sizeof t->fail_message, rc == FRAME_TOO_LARGE
                     ? "a streamed %s larger than the limit of %zu bytes (max_event)"
                     : "out of memory while reading the %s stream",
                     t->mode == MODE_SSE ? "event" : "line", t->framer.max_size);
            return 0;
        }
        if (t->frames != before)
            waitq_wake_all(&t->waiters);
    }
    t->bytes_in += len;
    mark_bytes(t);
    update_deadline(t);
    return len;
}

/* ===== proxies: which one libcurl used, to name it when it fails =====
 * libcurl reads the proxy variables itself and 7.88 cannot say whether it used one
 * (CURLINFO_USED_PROXY came in 8.7), so these follow its rules (lib/url.c detect_proxy,
 * lib/noproxy.c) to tell a refusing proxy from a refusing server. */

/* <scheme>_proxy (upper case too, except HTTP_PROXY, which a CGI request can set), then
 * all_proxy/ALL_PROXY; an empty value counts as unset. *var gets the variable's name. */
static const char *env_proxy(const char *scheme, char *var, size_t var_size)
{
    const char *names[4];
    char lower[32], upper[32];
    int n = 0;
    size_t i;
    for (i = 0; scheme[i] && i + sizeof "_proxy" < sizeof lower; i++) {
        lower[i] = (char)tolower((unsigned char)scheme[i]);
        upper[i] = (char)toupper((unsigned char)scheme[i]);
    }
    memcpy(lower + i, "_proxy", sizeof "_proxy");
    memcpy(upper + i, "_PROXY", sizeof "_PROXY");
    names[n++] = lower;
    if (strcmp(lower, "http_proxy") != 0)
        names[n++] = upper;
    names[n++] = "all_proxy";
    names[n++] = "ALL_PROXY";
    for (int k = 0; k < n; k++) {
        const char *v = getenv(names[k]);
        if (v && *v) {
            snprintf(var, var_size, "%s", names[k]);
            return v;
        }
    }
    return NULL;
}

#if LIBCURL_VERSION_NUM < 0x080700
static int cidr4_match(const char *host, const char *token, size_t len)
{
    char net[64];
    struct in_addr a, b;
    unsigned bits = 0;
    if (len >= sizeof net)
        return 0;
    memcpy(net, token, len);
    net[len] = '\0';
    char *slash = strchr(net, '/');
    if (slash) {
        bits = (unsigned)atoi(slash + 1);
        *slash = '\0';
    }
    if (bits > 32 || inet_pton(AF_INET, host, &a) != 1 || inet_pton(AF_INET, net, &b) != 1)
        return 0;
    if (bits == 0 || bits == 32)
        return a.s_addr == b.s_addr;
    uint32_t mask = 0xffffffffu << (32 - bits);
    return ((ntohl(a.s_addr) ^ ntohl(b.s_addr)) & mask) == 0;
}

/* no_proxy: "*" alone matches every host; otherwise entries separated by commas or blanks. A
 * name matches itself and its subdomains (leading and trailing dots ignored); an IPv4
 * address matches an equal address or a CIDR range. */
static int no_proxy_matches(const char *host, const char *list)
{
    if (!list || !*list || !*host)
        return 0;
    if (strcmp(list, "*") == 0)
        return 1;
    struct in_addr addr;
    int ipv4 = inet_pton(AF_INET, host, &addr) == 1;
    size_t hlen = strlen(host);
    if (!ipv4 && host[hlen - 1] == '.')
        hlen--;
    for (const char *p = list; *p; ) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *tok = p;
        while (*p && *p != ' ' && *p != '\t' && *p != ',')
            p++;
        size_t tlen = (size_t)(p - tok);
        if (tlen && ipv4) {
            if (cidr4_match(host, tok, tlen))
                return 1;
        } else if (tlen) {
            if (tok[tlen - 1] == '.')
                tlen--;
            if (tlen && tok[0] == '.') {
                tok++;
                tlen--;
            }
            if (tlen == hlen ? strncasecmp(tok, host, hlen) == 0
                : tlen < hlen && host[hlen - tlen - 1] == '.' && strncasecmp(tok, host + hlen - tlen, tlen) == 0)
                return 1;
        }
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
    }
    return 0;
}
#endif

/* The proxy libcurl went through for this transfer, NULL for none; *var names the variable
 * it came from and host gets the URL's host (for the advice to add it to no_proxy). */
static const char *used_proxy(struct transfer *t, char *var, size_t var_size, char *host, size_t host_size)
{
    char *url = NULL, *scheme = NULL, *name = NULL;
    const char *proxy = NULL;
    CURLU *u = curl_url();
    curl_easy_getinfo(t->easy, CURLINFO_EFFECTIVE_URL, &url);
    if (u && url && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK
        && curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK
        && curl_url_get(u, CURLUPART_HOST, &name, 0) == CURLUE_OK) {
        /* libcurl compares an IPv6 literal without its brackets */
        size_t len = strlen(name);
        if (len >= 2 && name[0] == '[' && name[len - 1] == ']')
            snprintf(host, host_size, "%.*s", (int)(len - 2), name + 1);
        else
            snprintf(host, host_size, "%s", name);
        proxy = env_proxy(scheme, var, var_size);
#if LIBCURL_VERSION_NUM >= 0x080700
        long used = 0;
        if (curl_easy_getinfo(t->easy, CURLINFO_USED_PROXY, &used) == CURLE_OK && !used)
            proxy = NULL;
#else
        const char *no_proxy = getenv("no_proxy");
        if (!no_proxy || !*no_proxy)
            no_proxy = getenv("NO_PROXY");
        if (proxy && no_proxy_matches(host, no_proxy))
            proxy = NULL;
#endif
    }
    curl_free(scheme);
    curl_free(name);
    curl_url_cleanup(u);
    return proxy;
}

/* The proxy URL with its user and password replaced by "***", as http.redact does. */
static void redact_proxy(const char *proxy, char *out, size_t size)
{
    const char *start = strstr(proxy, "://");
    start = start ? start + 3 : proxy;
    const char *end = start + strcspn(start, "/?#"), *at = NULL;
    for (const char *p = start; p < end; p++)
        if (*p == '@')
            at = p;
    if (at)
        snprintf(out, size, "%.*s***%s", (int)(start - proxy), proxy, at);
    else
        snprintf(out, size, "%s", proxy);
}

/* Fills msg and returns 1 when the failure is the proxy's: it could not be resolved, refused
 * the connection, failed its handshake or refused the tunnel (CONNECT answered an error). */
static int proxy_failure(struct transfer *t, CURLcode rc, char *msg, size_t size)
{
    char var[40] = "", host[256] = "", shown[256], what[640];
    long connect_code = 0;
    curl_easy_getinfo(t->easy, CURLINFO_HTTP_CONNECTCODE, &connect_code);
    if (rc != CURLE_COULDNT_RESOLVE_PROXY && rc != CURLE_COULDNT_CONNECT && rc != CURLE_PROXY
        && connect_code < 300)
        return 0;
    const char *proxy = used_proxy(t, var, sizeof var, host, sizeof host);
    if (!proxy && rc == CURLE_COULDNT_CONNECT)
        return 0;                                   /* a direct connection was refused */
    shown[0] = ' ';
    if (proxy)
        redact_proxy(proxy, shown + 1, sizeof shown - 1);
    else
        shown[0] = '\0';
    const char *from = var[0] ? var : "the proxy variables";
    const char *curl_says = t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_COULDNT_RESOLVE_PROXY)
        snprintf(what, sizeof what, "could not resolve the proxy%s (from %s): %s", shown, from, curl_says);
    else if (rc == CURLE_COULDNT_CONNECT)
        snprintf(what, sizeof what, "could not connect to the proxy%s (from %s): %s", shown, from, curl_says);
    else if (rc == CURLE_PROXY)
        snprintf(what, sizeof what, "the proxy%s (from %s) failed: %s", shown, from, curl_says);
    else
        snprintf(what, sizeof what, "the proxy%s (from %s) refused the tunnel: CONNECT answered HTTP %ld",
                 shown, from, connect_code);
    snprintf(msg, size, "%s; check the %s variable, or add %s to no_proxy to connect directly",
             what, var[0] ? var : "proxy", host[0] ? host : "the host");
    return 1;
}

static const char *kind_of(CURLcode rc, int sent)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
        return "dns";
    case CURLE_COULDNT_CONNECT:
        return "connect";
    case CURLE_OPERATION_TIMEDOUT:
        return sent ? "timeout_total" : "timeout_connect";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_USE_SSL_FAILED:
        return "tls";
    case CURLE_OUT_OF_MEMORY:
        return "too_large";
    default:
        return "protocol";
    }
}

/* The value of a response header (name in lower case), or "". */
static const char *header_value(const struct transfer *t, const char *name)
{
    for (size_t i = 0; i < t->headers.len; ) {
        const char *key = t->headers.p + i, *value = key + strlen(key) + 1;
        if (strcmp(key, name) == 0)
            return value;
        i = (size_t)(value - t->headers.p) + strlen(value) + 1;
    }
    return "";
}

/* A server's text for a message: control characters become '?', cut to fit. */
static void printable(char *out, size_t size, const char *s)
{
    size_t n = 0;
    for (; s[n] && n + 1 < size; n++)
        out[n] = (unsigned char)s[n] < 0x20 || s[n] == 0x7f ? '?' : s[n];
    out[n] = '\0';
}

static void on_done(struct transfer_done *d, CURLcode rc)
{
    struct transfer *t = FROM_MEMBER(d, struct transfer, on_done);
    char msg[sizeof t->fail_message];

    curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &t->new_connections);
    if (rc == CURLE_WRITE_ERROR && t->body_cut)
        rc = CURLE_OK;
    if (rc == CURLE_OK && t->mode != MODE_BODY && !t->discard) {
        /* NDJSON: a last line without its newline is queued now. */
        int end = frame_finish(&t->framer, queue_frame, t);
        if (end == FRAME_UNFINISHED) {
            fail(t, "protocol", "the stream ended in the middle of an event (no blank line after it)");
            return;
        }
        if (end != FRAME_OK) {
            snprintf(msg, sizeof msg, end == FRAME_TOO_LARGE
                     ? "a streamed line larger than the limit of %zu bytes (max_event)"
                     : "out of memory while reading the line stream", t->framer.max_size);
            fail(t, end == FRAME_TOO_LARGE ? "too_large" : "protocol", msg);
            return;
        }
    }
    if (rc == CURLE_OK) {
        t->finished = 1;
        t->ended = loop_now();
        detach(t);
        waitq_wake_all(&t->waiters);
        return;
    }
    if (t->fail_kind) {                                 /* a callback refused: say why */
        snprintf(msg, sizeof msg, "%s", t->fail_message);
        fail(t, t->fail_kind, msg);
        return;
    }
    if (proxy_failure(t, rc, msg, sizeof msg)) {   /* before kind_of: it also takes a refusal */
        fail(t, "proxy", msg);
        return;
    }
    const char *kind = kind_of(rc, t->sent > 0);
    if (rc == CURLE_BAD_CONTENT_ENCODING) {
        char encoding[64];
        printable(encoding, sizeof encoding, header_value(t, "content-encoding"));
        snprintf(msg, sizeof msg, "the body came with content-encoding \"%s\" (codeassist asks for "
                 "identity), which could not be decoded: %s", encoding,
                 t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
    } else if (rc == CURLE_OPERATION_TIMEDOUT && !t->sent)
        snprintf(msg, sizeof msg, "could not connect within %g s (timeout.connect)", t->to_connect);
    else if (rc == CURLE_GOT_NOTHING)
        snprintf(msg, sizeof msg, "the server closed the connection without answering");
    else if (rc == CURLE_PARTIAL_FILE || (rc == CURLE_RECV_ERROR && t->first_byte > 0))
        snprintf(msg, sizeof msg, "the connection was cut in the middle of the response (%s)",
                 t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
    else
        snprintf(msg, sizeof msg, "%s", t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
    fail(t, kind, msg);
}

/* ===== life cycle ===== */

static void release(struct transfer *t)
{
    if (t->closed)
        return;
    detach(t);
    if (!t->finished) {
        t->finished = 1;
        t->fail_kind = "cancelled";
        snprintf(t->fail_message, sizeof t->fail_message, "the request was cancelled");
    }
    t->closed = 1;
    if (t->easy)
        curl_easy_cleanup(t->easy);
    t->easy = NULL;
    curl_slist_free_all(t->request_headers);
    curl_slist_free_all(t->resolve);
    t->request_headers = t->resolve = NULL;
    free(t->request_body);
    t->request_body = NULL;
    frame_free(&t->framer);
    free(t->queue.p);
    free(t->body.p);
    free(t->headers.p);
    memset(&t->queue, 0, sizeof t->queue);
    memset(&t->body, 0, sizeof t->body);
    memset(&t->headers, 0, sizeof t->headers);
    t->queue_read = 0;
    resource_drop(&t->owner);
    waitq_wake_all(&t->waiters);
}

static void release_owned(struct resource *r)
{
    release(FROM_MEMBER(r, struct transfer, owner));
}

static struct transfer *check_transfer(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, TRANSFER_MT);
}

static double opt_seconds(lua_State *L, int table, const char *name)
{
    lua_getfield(L, table, name);
    double v = 0;
    if (!lua_isnil(L, -1)) {
        /* 0 would mean "no limit" to libcurl: a hang, never what a caller meant. */
        if (!lua_isnumber(L, -1) || !(lua_tonumber(L, -1) > 0))
            luaL_error(L, "http: timeout.%s must be a number of seconds > 0 (leave it out for no limit)", name);
        v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

/* A size limit: a whole number of bytes >= 1 (a cast of NaN or -1 to size_t is undefined). */
static size_t opt_bytes(lua_State *L, int table, const char *name, size_t fallback)
{
    lua_getfield(L, table, name);
    size_t v = fallback;
    if (!lua_isnil(L, -1)) {
        double d = lua_tonumber(L, -1);
        if (!lua_isnumber(L, -1) || !(d >= 1))
            luaL_error(L, "http: %s must be a number of bytes >= 1", name);
        v = d >= 0x1p52 ? (size_t)1 << 52 : (size_t)d;
    }
    lua_pop(L, 1);
    return v;
}

static int header_is_clean(const char *s)
{
    return strpbrk(s, "\r\n") == NULL;
}

/* Appends the default CA bundle and an extra CA file into one PEM blob. */
static int add_ca_file(lua_State *L, struct transfer *t, const char *extra)
{
    char err[512];
    size_t extra_len = 0, base_len = 0;
    char *pem = read_file_capped(extra, 16u << 20, &extra_len, err, sizeof err);
    if (!pem)
        return luaL_error(L, "http: ca_file: %s", err);
    char *base_path = NULL;
    curl_easy_getinfo(t->easy, CURLINFO_CAINFO, &base_path);
    char *base = base_path ? read_file_capped(base_path, 16u << 20, &base_len, err, sizeof err) : NULL;
    char *all = malloc(base_len + extra_len + 2);
    if (!all) {
        free(pem);
        free(base);
        return luaL_error(L, "http: out of memory");
    }
    if (base)
        memcpy(all, base, base_len);
    all[base_len] = '\n';
    memcpy(all + base_len + 1, pem, extra_len);
    struct curl_blob blob = { all, base_len + 1 + extra_len, CURL_BLOB_COPY };
    curl_easy_setopt(t->easy, CURLOPT_CAINFO_BLOB, &blob);
    free(all);
    free(pem);
    free(base);
    return 0;
}

/* Everything that can raise runs before the transfer joins the loop; the userdata's __gc
 * frees whatever was set up if it does. */
static int l_open(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    struct transfer *t = lua_newuserdata(L, sizeof *t);
    memset(t, 0, sizeof *t);
    t->closed = 1;                                      /* nothing to release yet */
    luaL_getmetatable(L, TRANSFER_MT);
    lua_setmetatable(L, -2);
    int self = lua_gettop(L);

    lua_getfield(L, 1, "url");
    const char *url = lua_tostring(L, -1);
    if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
        return luaL_error(L, "http: url must be an http:// or https:// address");

    t->easy = curl_easy_init();
    if (!t->easy)
        return luaL_error(L, "http: out of memory");
    t->closed = 0;
    curl_easy_setopt(t->easy, CURLOPT_URL, url);
    lua_pop(L, 1);

    lua_getfield(L, 1, "stream");
    const char *stream = lua_tostring(L, -1);
    if (stream && strcmp(stream, "sse") == 0)
        t->mode = MODE_SSE;
    else if (stream && strcmp(stream, "ndjson") == 0)
        t->mode = MODE_NDJSON;
    else if (!lua_isnil(L, -1))
        return luaL_error(L, "http: stream must be \"sse\", \"ndjson\" or nil");
    lua_pop(L, 1);

    size_t max_event = opt_bytes(L, 1, "max_event", DEFAULT_MAX_EVENT);
    t->max_body = opt_bytes(L, 1, "max_body", t->mode == MODE_BODY ? DEFAULT_MAX_BODY : DEFAULT_MAX_STREAM);
    frame_init(&t->framer, t->mode == MODE_NDJSON ? FRAME_NDJSON : FRAME_SSE, max_event);

    lua_getfield(L, 1, "timeout");
    if (lua_istable(L, -1)) {
        int tt = lua_gettop(L);
        t->to_connect = opt_seconds(L, tt, "connect");
        t->to_first_byte = opt_seconds(L, tt, "first_byte");
        t->to_idle = opt_seconds(L, tt, "idle");
        t->to_total = opt_seconds(L, tt, "total");
    } else if (lua_isnumber(L, -1) && lua_tonumber(L, -1) > 0) {
        t->to_total = lua_tonumber(L, -1);
    } else if (!lua_isnil(L, -1)) {
        return luaL_error(L, "http: timeout must be a table {connect, first_byte, idle, total} or seconds > 0");
    }
    lua_pop(L, 1);

    lua_getfield(L, 1, "body");
    size_t body_len = 0;
    const char *body = lua_tolstring(L, -1, &body_len);
    if (!body && !lua_isnil(L, -1))
        return luaL_error(L, "http: body must be a string");
    if (body) {
        t->request_body = malloc(body_len ? body_len : 1);
        if (!t->request_body)
            return luaL_error(L, "http: out of memory");
        memcpy(t->request_body, body, body_len);
        curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, t->request_body);
        curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    lua_pop(L, 1);

    lua_getfield(L, 1, "method");
    const char *method = luaL_optstring(L, -1, body ? "POST" : "GET");
    if (strcmp(method, "GET") == 0 && !body)
        curl_easy_setopt(t->easy, CURLOPT_HTTPGET, 1L);
    else if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(t->easy, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "POST") != 0 || !body)
        curl_easy_setopt(t->easy, CURLOPT_CUSTOMREQUEST, method);
    lua_pop(L, 1);

    /* No "Expect: 100-continue" pause on large bodies. */
    t->request_headers = curl_slist_append(NULL, "Expect:");
    lua_getfield(L, 1, "headers");
    if (lua_istable(L, -1)) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            const char *line;
            if (lua_type(L, -2) == LUA_TNUMBER) {
                line = luaL_checkstring(L, -1);
            } else {
                lua_pushfstring(L, "%s: %s", luaL_checkstring(L, -2), luaL_checkstring(L, -1));
                lua_replace(L, -2);
                line = lua_tostring(L, -1);
            }
            if (!header_is_clean(line))
                return luaL_error(L, "http: a header contains a line break");
            struct curl_slist *l = curl_slist_append(t->request_headers, line);
            if (!l)
                return luaL_error(L, "http: out of memory");
            t->request_headers = l;
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->request_headers);

    lua_getfield(L, 1, "resolve");
    if (lua_istable(L, -1)) {
        int n = (int)lua_objlen(L, -1);
        for (int i = 1; i <= n; i++) {
            lua_rawgeti(L, -1, i);
            struct curl_slist *l = curl_slist_append(t->resolve, luaL_checkstring(L, -1));
            if (!l)
                return luaL_error(L, "http: out of memory");
            t->resolve = l;
            lua_pop(L, 1);
        }
        curl_easy_setopt(t->easy, CURLOPT_RESOLVE, t->resolve);
    }
    lua_pop(L, 1);

    lua_getfield(L, 1, "ca_file");
    if (lua_isstring(L, -1))
        add_ca_file(L, t, lua_tostring(L, -1));
    lua_pop(L, 1);

    curl_easy_setopt(t->easy, CURLOPT_PRIVATE, (char *)&t->on_done);
    curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(t->easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(t->easy, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    curl_easy_setopt(t->easy, CURLOPT_USERAGENT, "codeassist/" CODEASSIST_VERSION);
    /* Ask for the body as it is (a compressing server may hold back a stream's events to
     * fill its blocks), yet decode what comes compressed anyway (gzip, deflate): setting
     * this turns libcurl's decoding on. The framers and max_body see the decoded bytes. */
    curl_easy_setopt(t->easy, CURLOPT_ACCEPT_ENCODING, "identity");
    /* Never follow a redirect: it could carry the API key to another host. The caller gets
     * the 3xx status and its location header instead. */
    curl_easy_setopt(t->easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(t->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(t->easy, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_PREREQFUNCTION, on_prereq);
    curl_easy_setopt(t->easy, CURLOPT_PREREQDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_BUFFERSIZE, RECV_BUFFER);
    if (t->to_connect > 0)
        curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)(t->to_connect * 1000));

    t->on_done.done = on_done;
    t->owner.release = release_owned;
    t->timer.on_event = on_deadline;
    t->started = loop_now();
    update_deadline(t);
    if (curl_multi_add_handle(loop_multi(), t->easy) != CURLM_OK)
        return luaL_error(L, "http: could not start the transfer");
    t->in_multi = 1;
    loop_transfer_added();
    loop_watch(&t->timer);
    resource_adopt(&t->owner);
    lua_pushvalue(L, self);
    return 1;
}

static int t_state(lua_State *L)
{
    struct transfer *t = check_transfer(L, 1);
    const char *s = t->closed ? "closed"
                  : t->finished ? (t->fail_kind ? "failed" : "done")
                  : t->first_byte > 0 ? "receiving"
                  : t->sent > 0 ? "waiting" : "connecting";
    lua_pushstring(L, s);
    return 1;
}

static int t_status(lua_State *L)
{
    struct transfer *t = check_transfer(L, 1);
    if (t->headers_done)
        lua_pushinteger(L, t->status);
    else
        lua_pushnil(L);
    return 1;
}

static int t_headers(lua_State *L)
{
    struct transfer *t = check_transfer(L, 1);
    lua_newtable(L);
    for (size_t i = 0; i < t->headers.len; ) {
        const char *name = t->headers.p + i;
        const char *value = name + strlen(name) + 1;
        i = (size_t)(value - t->headers.p) + strlen(value) + 1;
        lua_getfield(L, -1, name);
        if (lua_isstring(L, -1)) {
            lua_pushfstring(L, "%s, %s", lua_tostring(L, -1), value);
            lua_setfield(L, -3, name);
        } else {
            lua_pushstring(L, value);
            lua_setfield(L, -3, name);
        }
        lua_pop(L, 1);
    }
    return 1;
}

/* Lets libcurl read again after a pause. It hands over the chunk it kept in here; should
 * on_body refuse it, libcurl would carry on without those bytes: end the transfer instead. */
static void resume(struct transfer *t)
{
    t->paused = 0;
    t->last_byte = loop_now();              /* the idle clock stood still while we were behind */
    update_deadline(t);
    CURLcode rc = curl_easy_pause(t->easy, CURLPAUSE_CONT);
    if (rc != CURLE_OK || t->fail_kind) {
        char msg[sizeof t->fail_message];
        snprintf(msg, sizeof msg, "%s", t->fail_kind ? t->fail_message : curl_easy_strerror(rc));
        fail(t, t->fail_kind ? t->fail_kind : "protocol", msg);
    }
}

/* The event hot path for LuaJIT's FFI (see scripts/codeassist/http.lua): no Lua API calls.
 * Returns 1 with the next frame (name_len is 0 for none), 0 when none is queued yet, -1 when
 * the stream has ended. The pointers stay valid until the next call for this transfer: a
 * paused transfer is resumed at the start of a call, never after handing out a frame. */
int codeassist_next_frame(struct transfer *t, const char **name, size_t *name_len,
                          const char **data, size_t *data_len)
{
    if (t->queue_read == t->queue.len && t->queue.len > 0)
        t->queue.len = t->queue_read = 0;
    if (t->paused && t->queue.len - t->queue_read < QUEUE_LOW && t->easy && !t->finished)
        resume(t);
    if (t->queue_read < t->queue.len) {
        uint32_t lens[2];
        const char *rec = t->queue.p + t->queue_read;
        memcpy(lens, rec, sizeof lens);
        *name = rec + sizeof lens;
        *name_len = lens[0];
        *data = *name + lens[0];
        *data_len = lens[1];
        t->queue_read += sizeof lens + lens[0] + lens[1];
        return 1;
    }
    return t->finished || t->closed ? -1 : 0;
}

/* transfer:next(): the same as codeassist_next_frame, through the Lua API (the fallback when
 * the FFI path is unavailable). */
static int t_next(lua_State *L)
{
    struct transfer *t = check_transfer(L, 1);
    const char *name, *data;
    size_t name_len, data_len;
    int rc = codeassist_next_frame(t, &name, &name_len, &data, &data_len);
    if (rc != 1) {
        if (rc < 0)
            lua_pushnil(L);
        else
            lua_pushboolean(L, 0);
        return 1;
    }
    lua_pushlstring(L, data, data_len);
    if (t->mode != MODE_SSE)
        return 1;
    if (name_len)
        lua_pushlstring(L, name, name_len);
    else
        lua_pushnil(L);
    return 2;
}

/* transfer:pointer() -> the transfer as a light userdata, for codeassist_next_frame. */
static int t_pointer(lua_State *L)
{
    lua_pushlightuserdata(L, check_transfer(L, 1));
    return 1;
}

static int t_body(lua_State *L)
{
    struct transfer *t = check_transfer(L, 1);
    if (!t->finished && t->mode != MODE_BODY && !t->discard) {
        /* Waiting for the end of a stream without reading it (e.g. one with the wrong content
         * type): a full queue would pause it for ever, so drop the frames and carry on. */
        t->discard = 1;
        t->queue.len = t->queue_read = 0;
        if (t->paused && t->easy)
            resume(t);
    }
    if (!t->finished)
        lua_pushboolean(L, 0);
    else if (t->fail_kind || t->closed)
        lua_pushnil(L);
    else
        lua_pushlstring(L, t->body.p ? t->body.p : "", t->body.len);
    return 1;
}

/* The first bytes of the body, e.g. to show what came instead of the expected stream. */
static int t_head(lua_State *L)
{
    struct transfer *t = check_transfer(L, 1);
    lua_pushlstring(L, t->head, t->head_len);
    return 1;
}

static int t_failure(lua_State *L)
{
    struct transfer *t = check_transfer(L, 1);
    if (!t->fail_kind)
        return 0;
    lua_pushstring(L, t->fail_kind);
    lua_pushstring(L, t->fail_message);
    return 2;
}

static int t_info(lua_State *L)
{
    struct transfer *t = check_transfer(L, 1);
    lua_createtable(L, 0, 6);
    set_number(L, "bytes", (double)t->bytes_in);
    set_number(L, "frames", (double)t->frames);
    if (t->sent > 0)
        set_number(L, "connect_time", t->sent - t->started);
    if (t->first_byte > 0 && t->sent > 0)
        set_number(L, "first_byte_time", t->first_byte - t->sent);
    if (t->ended > 0)
        set_number(L, "total_time", t->ended - t->started);
    if (t->finished)
        set_number(L, "new_connections", (double)t->new_connections);
    set_boolean(L, "paused", t->paused);
    return 1;
}

static int t_close(lua_State *L)
{
    release(check_transfer(L, 1));
    return 0;
}

static int t_gc(lua_State *L)
{
    struct transfer *t = check_transfer(L, 1);
    release(t);
    waitq_detach_all(&t->waiters);                      /* waiters remain only at lua_close */
    return 0;
}

int luaopen_http_core(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "state",   t_state },
        { "status",  t_status },
        { "headers", t_headers },
        { "next",    t_next },
        { "pointer", t_pointer },
        { "body",    t_body },
        { "failure", t_failure },
        { "head",    t_head },
        { "info",    t_info },
        { "close",   t_close },
        { NULL, NULL }
    };
    host_new_class(L, TRANSFER_MT, methods, t_gc);
    loop_waitable_type(L, TRANSFER_MT);

    lua_newtable(L);
    lua_pushcfunction(L, l_open);
    lua_setfield(L, -2, "open");
    return 1;
}
