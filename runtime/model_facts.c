/* Facts about Ollama models and servers; see model_facts.h. Pure C. */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "model_facts.h"

#define DEFAULT_HOST "registry.ollama.ai"
#define DEFAULT_NS "library"
#define DEFAULT_TAG "latest"

/* ===== names ===== */

static int part_ok(const char *s, size_t len, size_t max, const char *extra)
{
    if (len == 0 || len > max)
        return 0;
    if (!(isalnum((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '_' || strchr(extra, c)))
            return 0;
    }
    return 1;
}

static void copy_part(char *dst, const char *src, size_t len)
{
    if (len >= MODEL_PART_MAX)
        len = MODEL_PART_MAX - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

int model_name_parse(const char *text, struct model_name *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    while (*text && isspace((unsigned char)*text))
        text++;
    size_t len = strlen(text);
    while (len > 0 && isspace((unsigned char)text[len - 1]))
        len--;
    if (len == 0) {
        snprintf(err, errlen, "the model name is empty");
        return -1;
    }
    if (len >= MODEL_PART_MAX * 2) {
        snprintf(err, errlen, "the model name is too long");
        return -1;
    }
    char buf[MODEL_PART_MAX * 2];
    memcpy(buf, text, len);
    buf[len] = '\0';

    char *at = strrchr(buf, '@');
    if (at) {
        copy_part(out->digest, at + 1, strlen(at + 1));
        *at = '\0';
    }
    char *slash = strrchr(buf, '/');
    char *colon = strrchr(slash ? slash : buf, ':');
    if (colon) {
        if (!part_ok(colon + 1, strlen(colon + 1), 80, ".-")) {
            snprintf(err, errlen, "tag '%s' is not a valid tag (letters, digits, '_', '.', '-'; at most 80)", colon + 1);
            return -1;
        }
        copy_part(out->tag, colon + 1, strlen(colon + 1));
        out->tag_given = 1;
        *colon = '\0';
    }

    char *parts[4];
    int n = 0;
    for (char *p = buf; n < 4; ) {
        parts[n++] = p;
        char *s = strchr(p, '/');
        if (!s)
            break;
        *s = '\0';
        p = s + 1;
    }
    if (n > 3 || (n == 3 && strchr(parts[2], '/'))) {
        snprintf(err, errlen, "'%s' has too many '/' parts (expected [host/][namespace/]model[:tag])", text);
        return -1;
    }
    const char *model = parts[n - 1];
    if (!part_ok(model, strlen(model), 80, ".-")) {
        snprintf(err, errlen, "model '%s' is not a valid model name (letters, digits, '_', '.', '-'; at most 80)", model);
        return -1;
    }
    copy_part(out->model, model, strlen(model));
    if (n >= 2) {
        const char *ns = parts[n - 2];
        if (!part_ok(ns, strlen(ns), 80, "-")) {
            snprintf(err, errlen, "namespace '%s' is not valid (letters, digits, '_', '-'; at most 80)", ns);
            return -1;
        }
        copy_part(out->ns, ns, strlen(ns));
        out->ns_given = 1;
    }
    if (n == 3) {
        if (!part_ok(parts[0], strlen(parts[0]), 350, ".:-")) {
            snprintf(err, errlen, "host '%s' is not a valid registry host", parts[0]);
            return -1;
        }
        copy_part(out->host, parts[0], strlen(parts[0]));
        out->host_given = 1;
    }
    if (!out->host_given)
        strcpy(out->host, DEFAULT_HOST);
    if (!out->ns_given)
        strcpy(out->ns, DEFAULT_NS);
    if (!out->tag_given)
        strcpy(out->tag, DEFAULT_TAG);
    return 0;
}

static void lower_into(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < cap; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}

void model_name_display(const struct model_name *n, char *out, size_t cap)
{
    char buf[MODEL_PART_MAX * 4 + 8];
    if (strcasecmp(n->host, DEFAULT_HOST) != 0)
        snprintf(buf, sizeof buf, "%s/%s/%s:%s", n->host, n->ns, n->model, n->tag);
    else if (strcasecmp(n->ns, DEFAULT_NS) != 0)
        snprintf(buf, sizeof buf, "%s/%s:%s", n->ns, n->model, n->tag);
    else
        snprintf(buf, sizeof buf, "%s:%s", n->model, n->tag);
    lower_into(out, cap, buf);
}

int model_name_equal(const struct model_name *a, const struct model_name *b)
{
    return strcasecmp(a->host, b->host) == 0 && strcasecmp(a->ns, b->ns) == 0
        && strcasecmp(a->model, b->model) == 0 && strcasecmp(a->tag, b->tag) == 0;
}

int model_name_distance(const char *a, const char *b, int limit)
{
    /* limit + 1 is the answer for "farther": keep it representable. */
    if (limit < 0)
        limit = 0;
    if (limit > INT_MAX - 1)
        limit = INT_MAX - 1;
    size_t la = strlen(a), lb = strlen(b);
    if (la > 200 || lb > 200)
        return limit + 1;
    int row[201];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0], best = (int)i;
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
            int v = diag + cost;
            if (up + 1 < v)
                v = up + 1;
            if (row[j - 1] + 1 < v)
                v = row[j - 1] + 1;
            row[j] = v;
            diag = up;
            if (v < best)
                best = v;
        }
        if (best > limit)
            return limit + 1;
    }
    return row[lb] > limit ? limit + 1 : row[lb];
}

/* ===== sizes ===== */

double model_parameters(const char *size)
{
    if (!size)
        return -1;
    while (*size && isspace((unsigned char)*size))
        size++;
    /* Plain decimal only: strtod would also take "0x10", "nan", "inf" and "1e400". */
    const char *end = size;
    size_t digits = 0;
    while (isdigit((unsigned char)*end)) {
        end++;
        digits++;
    }
    if (*end == '.')
        for (end++; isdigit((unsigned char)*end); end++)
            digits++;
    if (digits == 0 || end - size >= 64)
        return -1;
    char number[64];
    memcpy(number, size, (size_t)(end - size));
    number[end - size] = '\0';
    double v = strtod(number, NULL);
    while (*end == ' ')
        end++;
    switch (toupper((unsigned char)*end)) {
    case 'K': v *= 1e3; break;
    case 'M': v *= 1e6; break;
    case 'B': v *= 1e9; break;
    case 'T': v *= 1e12; break;
    case '\0': if (v < 1e4) v *= 1e9; break;   /* a bare "7" means 7B; a raw count stays */
    default: return -1;
    }
    return isfinite(v) ? v : -1;
}

/* ===== versions ===== */

/* Compares pre-release labels so that "rc2" < "rc10". */
static int natural_compare(const char *a, const char *b)
{
    while (*a && *b) {
        if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
            long x = strtol(a, (char **)&a, 10), y = strtol(b, (char **)&b, 10);
            if (x != y)
                return x < y ? -1 : 1;
        } else {
            int x = tolower((unsigned char)*a++), y = tolower((unsigned char)*b++);
            if (x != y)
                return x < y ? -1 : 1;
        }
    }
    return *a ? 1 : *b ? -1 : 0;
}

/* Up to three numbers joined by '.'; then "-label" is a pre-release and "+meta" build
 * metadata; reading stops at anything else ("0.14." is 0.14.0). *pre is always set: NULL, or
 * a pointer into s (so natural_compare stays inside the caller's string). */
static int parse_version(const char *s, long part[3], const char **pre)
{
    *pre = NULL;
    part[0] = part[1] = part[2] = 0;
    if (!s)
        return -1;
    if (*s == 'v' || *s == 'V')
        s++;
    if (!isdigit((unsigned char)*s))
        return -1;
    for (int i = 0; i < 3 && isdigit((unsigned char)*s); i++) {
        part[i] = strtol(s, (char **)&s, 10);
        if (*s == '.' && i < 2 && isdigit((unsigned char)s[1]))
            s++;
        else
            break;
    }
    if (*s == '-')
        *pre = s + 1;           /* build metadata ("+...") does not order */
    return 0;
}

int server_version_compare(const char *a, const char *b)
{
    long x[3], y[3];
    const char *pa, *pb;
    if (parse_version(a, x, &pa) != 0 || parse_version(b, y, &pb) != 0)
        return -2;
    for (int i = 0; i < 3; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    if (!pa && !pb)
        return 0;
    if (!pa)
        return 1;               /* a release is newer than its pre-releases */
    if (!pb)
        return -1;
    int c = natural_compare(pa, pb);
    return c < 0 ? -1 : c > 0 ? 1 : 0;
}

/* ===== VRAM ===== */

double model_vram_estimate(double size_on_disk, double ctx, int layers, int kv_width)
{
    if (layers <= 0)
        layers = 32;            /* typical of 7B-30B models */
    if (kv_width <= 0)
        kv_width = 1024;        /* 8 KV heads x 128 (grouped-query attention) */
    double kv_cache = 2.0 * layers * kv_width * 2.0 * (ctx > 0 ? ctx : 0);   /* K and V, f16 */
    double overhead = 512.0 * 1024 * 1024;                                   /* graph, buffers */
    return size_on_disk + kv_cache + overhead;
}
