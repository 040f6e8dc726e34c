/* libFuzzer target for the model-name, size and version parsers (runtime/model_facts.c).
 *
 * Input: byte 0 picks an edit-distance limit (0..249, a negative one, or near INT_MAX), the
 * rest is up to three strings separated by '\n'. Beyond "no crash", each function keeps its
 * own promises:
 *   model_name_parse    a name it accepts shows as a name it accepts again, the same model
 *   model_name_distance symmetric, 0 to itself, within 0..limit+1
 *   model_parameters    -1 (unreadable) or a finite count >= 0
 *   server_version_compare  0 to itself, antisymmetric, -2 for both orders or neither */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_facts.h"

#define FAIL(...) (fputs("property broken: ", stderr), fprintf(stderr, __VA_ARGS__), fputc('\n', stderr), abort())

static void check_name(const char *text)
{
    struct model_name n, again;
    char err[512], shown[MODEL_PART_MAX * 4 + 8], err2[512];
    if (model_name_parse(text, &n, err, sizeof err) != 0) {
        if (!err[0])
            FAIL("model_name_parse('%s') failed without a reason", text);
        return;
    }
    if (!model_name_equal(&n, &n))
        FAIL("model name '%s' is not equal to itself", text);
    model_name_display(&n, shown, sizeof shown);
    if (model_name_parse(shown, &again, err2, sizeof err2) != 0)
        FAIL("'%s' shows as '%s', which does not parse: %s", text, shown, err2);
    if (!model_name_equal(&n, &again))
        FAIL("'%s' shows as '%s', which names another model", text, shown);
}

static void check_distance(const char *a, const char *b, int limit)
{
    int ab = model_name_distance(a, b, limit), ba = model_name_distance(b, a, limit);
    if (ab != ba)
        FAIL("distance('%s', '%s', %d) = %d but the other way %d", a, b, limit, ab, ba);
    limit = limit < 0 ? 0 : limit > INT_MAX - 1 ? INT_MAX - 1 : limit;   /* as documented */
    if (ab < 0 || ab > limit + 1)
        FAIL("distance('%s', '%s', %d) = %d, outside 0..limit+1", a, b, limit, ab);
    if (strlen(a) <= 200 && model_name_distance(a, a, limit) != 0)
        FAIL("distance('%s', itself) is not 0", a);
}

static void check_parameters(const char *s)
{
    double p = model_parameters(s);
    if (p != -1 && !(isfinite(p) && p >= 0))
        FAIL("model_parameters('%s') = %g: neither -1 nor a finite count", s, p);
}

static void check_versions(const char *a, const char *b)
{
    int ab = server_version_compare(a, b), ba = server_version_compare(b, a);
    if (ab < -2 || ab > 1)
        FAIL("server_version_compare('%s', '%s') = %d", a, b, ab);
    if ((ab == -2) != (ba == -2) || (ab != -2 && ab != -ba))
        FAIL("server_version_compare('%s', '%s') = %d but the other way %d", a, b, ab, ba);
    int aa = server_version_compare(a, a);
    if (aa != 0 && aa != -2)
        FAIL("server_version_compare('%s', itself) = %d", a, aa);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    /* 0..249, or the edges: a negative limit, INT_MAX */
    int limit = data[0] < 250 ? data[0] : data[0] < 253 ? -data[0] : INT_MAX - (255 - data[0]);
    char *text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';              /* a string ends at its first NUL, as from Lua */
    char *field[3] = { text, "", "" };
    for (int i = 1; i < 3; i++) {
        char *nl = strchr(field[i - 1], '\n');
        if (!nl)
            break;
        *nl = '\0';
        field[i] = nl + 1;
    }
    for (int i = 0; i < 3; i++) {       /* each its own allocation: ASan sees a read past it */
        field[i] = strdup(field[i]);
        if (!field[i])
            abort();
    }
    for (int i = 0; i < 3; i++) {
        check_name(field[i]);
        check_parameters(field[i]);
    }
    check_distance(field[0], field[1], limit);
    check_versions(field[0], field[1]);
    check_versions(field[1], field[2]);
    for (int i = 0; i < 3; i++)
        free(field[i]);
    free(text);
    return 0;
}
