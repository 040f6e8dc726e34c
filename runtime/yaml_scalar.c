/* YAML 1.2 core-schema resolution of plain scalars (YAML 1.2.2, section 10.3.2).
 * Pure C, no Lua: unit-tested in tests/c/test_yaml_scalar.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "yaml_scalar.h"

static int is_one_of(const char *s, size_t len, const char *const *words)
{
    for (; *words; words++)
        if (strlen(*words) == len && memcmp(*words, s, len) == 0)
            return 1;
    return 0;
}

static int all_digits(const char *s, size_t len, const char *allowed)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!strchr(allowed, s[i]) || s[i] == '\0')
            return 0;
    return 1;
}

/* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
static int is_core_float(const char *s, size_t len)
{
    size_t i = 0, digits = 0;

    if (i < len && (s[i] == '-' || s[i] == '+'))
        i++;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (i < len && s[i] == '.') {
        i++;
        size_t frac = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++, frac++;
        if (digits == 0 && frac == 0)
            return 0;
    } else if (digits == 0) {
        return 0;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '-' || s[i] == '+'))
            i++;
        size_t exp = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++, exp++;
        if (exp == 0)
            return 0;
    }
    return i == len;
}

/* strtod/strtoull need a terminated copy; scalars that resolve to numbers are short. */
static int copy_short(const char *s, size_t len, char *buf, size_t cap)
{
    if (len >= cap)
        return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return 1;
}

enum scalar_kind yaml_resolve_plain(const char *s, size_t len, double *number, int *boolean)
{
    static const char *const nulls[] = { "", "~", "null", "Null", "NULL", NULL };
    static const char *const trues[] = { "true", "True", "TRUE", NULL };
    static const char *const falses[] = { "false", "False", "FALSE", NULL };
    static const char *const infs[] = { ".inf", ".Inf", ".INF", NULL };
    static const char *const nans[] = { ".nan", ".NaN", ".NAN", NULL };
    char buf[400];

    if (is_one_of(s, len, nulls))
        return SCALAR_NULL;
    if (is_one_of(s, len, trues)) {
        *boolean = 1;
        return SCALAR_BOOL;
    }
    if (is_one_of(s, len, falses)) {
        *boolean = 0;
        return SCALAR_BOOL;
    }
    if (len > 2 && s[0] == '0' && s[1] == 'o' && all_digits(s + 2, len - 2, "01234567")
        && copy_short(s + 2, len - 2, buf, sizeof buf)) {
        *number = (double)strtoull(buf, NULL, 8);
        return SCALAR_INT;
    }
    if (len > 2 && s[0] == '0' && s[1] == 'x' && all_digits(s + 2, len - 2, "0123456789abcdefABCDEF")
        && copy_short(s + 2, len - 2, buf, sizeof buf)) {
        *number = (double)strtoull(buf, NULL, 16);
        return SCALAR_INT;
    }
    {
        size_t sign = (len > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
        if (all_digits(s + sign, len - sign, "0123456789") && copy_short(s, len, buf, sizeof buf)) {
            *number = strtod(buf, NULL);
            return SCALAR_INT;
        }
    }
    if (is_core_float(s, len) && copy_short(s, len, buf, sizeof buf)) {
        *number = strtod(buf, NULL);
        return SCALAR_FLOAT;
    }
    {
        size_t sign = (len > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
        if (is_one_of(s + sign, len - sign, infs)) {
            *number = (sign && s[0] == '-') ? -HUGE_VAL : HUGE_VAL;
            return SCALAR_FLOAT;
        }
    }
    if (is_one_of(s, len, nans)) {
        *number = NAN;
        return SCALAR_FLOAT;
    }
    return SCALAR_STRING;
}
