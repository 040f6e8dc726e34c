/* fs_confine: paths must stay inside the workspace through "..", absolute paths and symlinks. */
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host.h"
#include "tap.h"

static char root[PATH_MAX];

static int confined(const char *path, char *out)
{
    char err[3 * PATH_MAX];
    return fs_confine(root, path, out, err, sizeof err) == 0;
}

int main(void)
{
    char out[PATH_MAX], want[PATH_MAX + 64], tmpl[] = "/tmp/confine-XXXXXX", link[PATH_MAX + 64];

    if (!mkdtemp(tmpl))
        return 1;
    if (!realpath(tmpl, root))
        return 1;
    snprintf(want, sizeof want, "%s/src", root);
    mkdir(want, 0755);
    snprintf(link, sizeof link, "%s/out", root);
    if (symlink("/etc", link) != 0)
        return 1;
    snprintf(link, sizeof link, "%s/in", root);
    if (symlink("src", link) != 0)
        return 1;

    ok(!confined("../x", out), "../x is refused");
    ok(!confined("/etc/passwd", out), "/etc/passwd is refused");
    ok(!confined("out/passwd", out), "a symlink pointing outside is refused");
    ok(!confined("src/../../x", out), "a .. that climbs out later is refused");
    ok(!confined("", out), "an empty path is refused");

    ok(confined("src/a.c", out), "a new file in a folder is allowed");
    snprintf(want, sizeof want, "%s/src/a.c", root);
    is_str(out, want, "and resolves to the real path");
    ok(confined("in/a.c", out), "a symlink inside the root is allowed");
    is_str(out, want, "and resolves through the link");
    ok(confined(want, out), "an absolute path inside the root is allowed");
    ok(confined("new/deep/../x", out), "missing folders resolve lexically");
    snprintf(want, sizeof want, "%s/new/x", root);
    is_str(out, want, "to the path below the root");
    ok(confined(".", out) && strcmp(out, root) == 0, "the root itself is allowed");

    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0)
        return 1;
    return tap_done();
}
