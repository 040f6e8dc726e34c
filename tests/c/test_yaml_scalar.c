/* YAML 1.2 core-schema resolution of plain scalars. */
#include <math.h>

#include "tap.h"
#include "yaml_scalar.h"

static enum scalar_kind kind_of(const char *s, double *num, int *b)
{
    return yaml_resolve_plain(s, strlen(s), num, b);
}

int main(void)
{
    double n = 0;
    int b = -1;
    static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };
    static const char *const strings[] = { "yes", "no", "on", "off", "y", "nULL", "tRue",
        "0x", "0o", "0o8", "0xG", "1_000", "1.2.3", "+", "-", ".", "e5", "1e", "0b101",
        "inf", "nan", "12abc", " 1", "1 ", "3.2B", "30.5b", "qwen3-coder:latest" };

    for (size_t i = 0; i < sizeof nulls / sizeof *nulls; i++)
        ok(kind_of(nulls[i], &n, &b) == SCALAR_NULL, "'%s' is null", nulls[i]);
    for (size_t i = 0; i < sizeof strings / sizeof *strings; i++)
        ok(kind_of(strings[i], &n, &b) == SCALAR_STRING, "'%s' stays a string", strings[i]);

    ok(kind_of("true", &n, &b) == SCALAR_BOOL && b == 1, "true");
    ok(kind_of("TRUE", &n, &b) == SCALAR_BOOL && b == 1, "TRUE");
    ok(kind_of("False", &n, &b) == SCALAR_BOOL && b == 0, "False");

    ok(kind_of("0", &n, &b) == SCALAR_INT && n == 0, "0");
    ok(kind_of("-17", &n, &b) == SCALAR_INT && n == -17, "-17");
    ok(kind_of("+42", &n, &b) == SCALAR_INT && n == 42, "+42");
    ok(kind_of("007", &n, &b) == SCALAR_INT && n == 7, "007 is decimal 7 in YAML 1.2");
    ok(kind_of("0o17", &n, &b) == SCALAR_INT && n == 15, "0o17 is octal");
    ok(kind_of("0x1F", &n, &b) == SCALAR_INT && n == 31, "0x1F is hex");
    ok(kind_of("9007199254740993", &n, &b) == SCALAR_INT, "a large int is still an int");

    ok(kind_of("1.5", &n, &b) == SCALAR_FLOAT && n == 1.5, "1.5");
    ok(kind_of(".5", &n, &b) == SCALAR_FLOAT && n == 0.5, ".5");
    ok(kind_of("5.", &n, &b) == SCALAR_FLOAT && n == 5.0, "5.");
    ok(kind_of("-1.5e3", &n, &b) == SCALAR_FLOAT && n == -1500, "-1.5e3");
    ok(kind_of("2E-2", &n, &b) == SCALAR_FLOAT && fabs(n - 0.02) < 1e-12, "2E-2");
    ok(kind_of("1e5", &n, &b) == SCALAR_FLOAT && n == 1e5, "1e5 is a float");
    ok(kind_of(".inf", &n, &b) == SCALAR_FLOAT && isinf(n) && n > 0, ".inf");
    ok(kind_of("-.Inf", &n, &b) == SCALAR_FLOAT && isinf(n) && n < 0, "-.Inf");
    ok(kind_of(".NaN", &n, &b) == SCALAR_FLOAT && isnan(n), ".NaN");

    /* Length-bounded: the bytes after len are not looked at. */
    ok(yaml_resolve_plain("12xyz", 2, &n, &b) == SCALAR_INT && n == 12, "only len bytes are read");
    ok(yaml_resolve_plain("nullx", 4, &n, &b) == SCALAR_NULL, "'null' inside a longer buffer");
    return tap_done();
}
