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
    const char *kind;
    return fs_confine(root, path, out, &kind, err, sizeof err) == 0;
}

/* The failure kind of a refused path (NULL when it was allowed). */
static const char *refusal(const char *path)
{
    char out[PATH_MAX], err[3 * PATH_MAX];
    const char *kind = NULL;
    return fs_confine(root, path, out, &kind, err, sizeof err) == 0 ? NULL : kind;
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

    is_str(refusal("../x"), "escape", "../x is refused as an escape");
    is_str(refusal("/etc/passwd"), "escape", "/etc/passwd is refused as an escape");
    is_str(refusal("out/passwd"), "escape", "a symlink pointing outside is refused as an escape");
    is_str(refusal("src/../../x"), "escape", "a .. that climbs out later is refused as an escape");
    is_str(refusal(""), "not_found", "an empty path is refused: it names nothing");

    ok(confined("src/a.c", out), "a new file in a folder is allowed");
    snprintf(want, sizeof want, "%s/src/a.c", root);
    is_str(out, want, "and resolves to the real path");
    ok(confined("in/a.c", out), "a symlink inside the root is allowed");
    is_str(out, want, "and resolves through the link");
    ok(confined(want, out), "an absolute path inside the root is allowed");
    /* the kernel cannot climb out of a folder that does not exist; taking the path as text
     * would then follow "out" to /etc */
    is_str(refusal("new/deep/../x"), "not_found", "a .. after a missing folder is refused");
    is_str(refusal("nope/../out/passwd"), "not_found", "and cannot reach a symlink that leads out");
    ok(confined("new/deep/x", out), "a new file in new folders is allowed");
    snprintf(want, sizeof want, "%s/new/deep/x", root);
    is_str(out, want, "at the path below the root");
    ok(confined(".", out) && strcmp(out, root) == 0, "the root itself is allowed");

    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0)
        return 1;
    return tap_done();
}
