/* The project's tests, in TAP: `make test` builds and runs them. */
#include <stdio.h>
#include "calc.h"

static int failures, count;

static void check(int ok, const char *what)
{
    count++;
    printf("%sok %d - %s\n", ok ? "" : "not ", count, what);
    if (!ok)
        failures++;
}

int main(void)
{
    check(add(2, 3) == 5, "add(2, 3) is 5");
    check(add(-1, 1) == 0, "add(-1, 1) is 0");
    check(sub(5, 3) == 2, "sub(5, 3) is 2");
    printf("1..%d\n", count);
    return failures != 0;
}
