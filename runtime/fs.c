/* The `codeassist.fs` module: the file primitives the runtime and the agent's tools stand on.
 *
 *   fs.read(path [, {max_bytes = n}])        -> string | nil, err   (default cap 64 MiB)
 *   fs.write_atomic(path, data [, {mode}])   -> true | nil, err     (temp, fsync, rename, fsync dir)
 *   fs.mkdir_p(path [, mode])                -> true | nil, err
 *   fs.list(dir)                             -> {names, sorted} | nil, err
 *   fs.glob(pattern [, {max = n}])           -> {paths, sorted}, truncated ("**" = any depth;
 *                                               names starting with "." match only explicitly;
 *                                               "**" does not descend into symlinked folders)
 *   fs.stat(path [, {follow = true}])        -> {type, size, mtime, mode} | nil, err
 *   fs.confine(root, path)                   -> absolute real path inside root | nil, err
 *   fs.cwd()                                 -> string
 *
 * Caller mistakes (wrong argument types) raise; failures of the file system return nil and a
 * failure (runtime/failure.c) whose message names the path: kind not_found, permission,
 * exists, no_space or io from errno, too_large over a cap, escape from confine; failure.path
 * is the path. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "host.h"

#define DIR_MT "codeassist.dir"
#define DEFAULT_READ_CAP (64u << 20)
#define DEFAULT_GLOB_MAX 100000

/* nil, failure {kind, message = fmt with path and strerror(err), path}. */
static int push_failure(lua_State *L, const char *fmt, const char *path, int err)
{
    host_push_failure(L, host_errno_kind(err), fmt, path, strerror(err));
    set_string(L, "path", path);
    return 2;
}

/* nil, failure {kind, message, path} from a message built in C. */
static int push_message(lua_State *L, const char *kind, const char *msg, const char *path)
{
    host_push_failure(L, kind, "%s", msg);
    set_string(L, "path", path);
    return 2;
}

/* ===== reading ===== */

char *read_file_capped(const char *path, size_t cap, size_t *len, char *err, size_t errlen)
{
    const char *kind;
    return fs_read_capped(path, cap, len, &kind, err, errlen);
}

char *fs_read_capped(const char *path, size_t cap, size_t *len, const char **kind, char *err,
                     size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *kind = host_errno_kind(errno);
        snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
        return NULL;
    }
    *kind = "io";
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        snprintf(err, errlen, "cannot read '%s': it is a directory", path);
        return NULL;
    }
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size > cap) {
        close(fd);
        *kind = "too_large";
        snprintf(err, errlen, "cannot read '%s': it is %lld bytes, more than the limit of %zu",
                 path, (long long)st.st_size, cap);
        return NULL;
    }
    size_t size = 0, alloc = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 8192;
    char *buf = malloc(alloc);
    for (;;) {
        if (!buf) {
            close(fd);
            snprintf(err, errlen, "cannot read '%s': out of memory", path);
            return NULL;
        }
        if (size == alloc) {
            char *bigger = realloc(buf, alloc * 2);
            if (!bigger)
                free(buf);
            buf = bigger;
            alloc *= 2;
            continue;
        }
        ssize_t n = read(fd, buf + size, alloc - size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *kind = host_errno_kind(errno);
            snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
            free(buf);
            close(fd);
            return NULL;
        }
        if (n == 0)
            break;
        size += (size_t)n;
        if (size > cap) {
            *kind = "too_large";
            snprintf(err, errlen, "cannot read '%s': it is more than the limit of %zu bytes", path, cap);
            free(buf);
            close(fd);
            return NULL;
        }
    }
    close(fd);
    *len = size;
    return buf;
}

static size_t opt_size(lua_State *L, int opts, const char *field, size_t dflt)
{
    size_t v = dflt;
    if (opts && lua_istable(L, opts)) {
        lua_getfield(L, opts, field);
        if (!lua_isnil(L, -1)) {
            luaL_argcheck(L, lua_isnumber(L, -1) && lua_tonumber(L, -1) >= 0, opts,
                          lua_pushfstring(L, "%s must be a number >= 0", field));
            v = (size_t)lua_tonumber(L, -1);
        }
        lua_pop(L, 1);
    }
    return v;
}

static int l_read(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    size_t cap = opt_size(L, lua_isnoneornil(L, 2) ? 0 : 2, "max_bytes", DEFAULT_READ_CAP);
    size_t len;
    const char *kind;
    char err[PATH_MAX + 128];
    char *data = fs_read_capped(path, cap, &len, &kind, err, sizeof err);
    if (!data)
        return push_message(L, kind, err, path);
    lua_pushlstring(L, data, len);
    free(data);
    return 1;
}

/* ===== writing ===== */

static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static void dir_of(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(out, cap, ".");
    else if (slash == path)
        snprintf(out, cap, "/");
    else
        snprintf(out, cap, "%.*s", (int)(slash - path), path);
}

/* A reader sees the old file or the new one, never a torn one, even after a crash. */
static int l_write_atomic(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    mode_t mode = (mode_t)opt_size(L, lua_isnoneornil(L, 3) ? 0 : 3, "mode", 0644);
    char tmp[PATH_MAX], dir[PATH_MAX];
    struct stat st;

    static unsigned long serial;
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%lu", path, (long)getpid(), ++serial) >= (int)sizeof tmp)
        return push_failure(L, "cannot write '%s': %s", path, ENAMETOOLONG);
    if (lua_isnoneornil(L, 3) && stat(path, &st) == 0)
        mode = st.st_mode & 07777;   /* keep the mode of the file we replace */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return push_failure(L, "cannot write '%s': %s", path, errno);
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return push_failure(L, "cannot write '%s': %s", path, e);
    }
    fchmod(fd, mode);   /* open() applied the umask; the caller asked for this mode */
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return push_failure(L, "cannot write '%s': %s", path, e);
    }
    dir_of(path, dir, sizeof dir);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);   /* makes the rename itself durable */
        close(dfd);
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    struct stat st;
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(buf, mode) != 0 && errno != EEXIST)
                return -1;
            if (stat(buf, &st) != 0)
                return -1;
            if (!S_ISDIR(st.st_mode)) {
                errno = ENOTDIR;
                return -1;
            }
            *p = saved;
            if (saved == '\0')
                return 0;
        }
    }
}

static int l_mkdir_p(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    mode_t mode = (mode_t)luaL_optinteger(L, 2, 0755);
    luaL_argcheck(L, *path != '\0', 1, "path must not be empty");
    if (mkdir_p(path, mode) != 0) {
        int e = errno;
        push_failure(L, "cannot create directory '%s': %s", path, e);
        if (e == ENOTDIR) {     /* a file is in the way of a folder */
            lua_pushliteral(L, "exists");
            lua_setfield(L, -2, "kind");
        }
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* ===== listing and globbing ===== */

struct dir_handle { DIR *d; };

static int dir_gc(lua_State *L)
{
    struct dir_handle *h = luaL_checkudata(L, 1, DIR_MT);
    if (h->d) {
        closedir(h->d);
        h->d = NULL;
    }
    return 0;
}

static void sort_array(lua_State *L, int idx)
{
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "sort");
    lua_pushvalue(L, idx);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
}

/* Pushes a sorted array of entry names (no "." or ".."), or returns -1 with errno set.
 * The DIR* lives in a userdata so a Lua error mid-listing cannot leak it. */
static int push_listing(lua_State *L, const char *path)
{
    struct dir_handle *h = lua_newuserdata(L, sizeof *h);
    h->d = NULL;
    luaL_getmetatable(L, DIR_MT);
    lua_setmetatable(L, -2);
    h->d = opendir(path);
    if (!h->d) {
        int e = errno;
        lua_pop(L, 1);
        errno = e;
        return -1;
    }
    lua_newtable(L);
    int n = 0;
    struct dirent *ent;
    while ((ent = readdir(h->d)) != NULL) {
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
            continue;
        lua_pushstring(L, ent->d_name);
        lua_rawseti(L, -2, ++n);
    }
    closedir(h->d);
    h->d = NULL;
    lua_remove(L, -2);
    sort_array(L, lua_gettop(L));
    return 0;
}

static int l_list(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    if (push_listing(L, path) != 0)
        return push_failure(L, "cannot list '%s': %s", path, errno);
    return 1;
}

struct glob_state {
    lua_State *L;
    int results;        /* stack index of the result array */
    int count, max;
    int truncated;      /* a match beyond max was found */
    int segments;       /* stack index of the segment array */
    int nsegments;
};

static int has_wildcard(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

static void join_path(char *out, size_t cap, const char *dir, const char *name)
{
    if (*dir == '\0')
        snprintf(out, cap, "%s", name);
    else if (strcmp(dir, "/") == 0)
        snprintf(out, cap, "/%s", name);
    else
        snprintf(out, cap, "%s/%s", dir, name);
}

static int is_dir_nofollow(const char *path)
{
    struct stat st;
    return lstat(*path ? path : ".", &st) == 0 && S_ISDIR(st.st_mode);
}

static void glob_add(struct glob_state *g, const char *path)
{
    if (g->count >= g->max) {
        g->truncated = 1;
        return;
    }
    lua_pushstring(g->L, path);
    lua_rawseti(g->L, g->results, ++g->count);
}

/* Matches segments[i..] below dir ("" is the current directory). */
static void glob_walk(struct glob_state *g, const char *dir, int i)
{
    lua_State *L = g->L;
    char next[PATH_MAX];

    if (g->truncated)
        return;
    if (i > g->nsegments) {
        if (*dir)
            glob_add(g, dir);
        return;
    }
    lua_rawgeti(L, g->segments, i);
    const char *seg = lua_tostring(L, -1);
    luaL_checkstack(L, 8, "glob depth");

    if (strcmp(seg, "**") == 0) {
        glob_walk(g, dir, i + 1);                       /* zero directories */
        if (push_listing(L, *dir ? dir : ".") == 0) {
            int n = (int)lua_objlen(L, -1);
            for (int k = 1; k <= n && !g->truncated; k++) {
                lua_rawgeti(L, -1, k);
                const char *name = lua_tostring(L, -1);
                join_path(next, sizeof next, dir, name);
                if (name[0] != '.' && is_dir_nofollow(next))   /* no symlink loops */
                    glob_walk(g, next, i);
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }
    } else if (!has_wildcard(seg)) {
        struct stat st;
        join_path(next, sizeof next, dir, seg);
        if (lstat(next, &st) == 0 && (i == g->nsegments || stat(next, &st) == 0))
            glob_walk(g, next, i + 1);
    } else if (push_listing(L, *dir ? dir : ".") == 0) {
        int n = (int)lua_objlen(L, -1);
        for (int k = 1; k <= n && !g->truncated; k++) {
            lua_rawgeti(L, -1, k);
            const char *name = lua_tostring(L, -1);
            if (fnmatch(seg, name, FNM_PERIOD) == 0) {
                join_path(next, sizeof next, dir, name);
                struct stat st;
                if (i == g->nsegments || (stat(next, &st) == 0 && S_ISDIR(st.st_mode)))
                    glob_walk(g, next, i + 1);
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static int l_glob(lua_State *L)
{
    const char *pattern = luaL_checkstring(L, 1);
    struct glob_state g = { .L = L };
    g.max = (int)opt_size(L, lua_isnoneornil(L, 2) ? 0 : 2, "max", DEFAULT_GLOB_MAX);
    luaL_argcheck(L, *pattern != '\0', 1, "pattern must not be empty");

    lua_newtable(L);
    g.segments = lua_gettop(L);
    for (const char *p = pattern; *p; ) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len > 0 && !(len == 1 && *p == '.')) {
            lua_pushlstring(L, p, len);
            lua_rawseti(L, g.segments, ++g.nsegments);
        }
        p += len + (slash ? 1 : 0);
    }
    lua_newtable(L);
    g.results = lua_gettop(L);
    glob_walk(&g, pattern[0] == '/' ? "/" : "", 1);

    /* Results of one directory come out sorted; a "**" walk interleaves levels, so sort. */
    sort_array(L, g.results);
    lua_pushboolean(L, g.truncated);
    return 2;
}

/* ===== stat, cwd ===== */

static int l_stat(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int follow = 1;
    struct stat st;
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "follow");
        follow = lua_isnil(L, -1) || lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    if ((follow ? stat(path, &st) : lstat(path, &st)) != 0)
        return push_failure(L, "cannot stat '%s': %s", path, errno);
    lua_createtable(L, 0, 4);
    set_string(L, "type", S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "dir"
                        : S_ISLNK(st.st_mode) ? "link" : "other");
    set_number(L, "size", (double)st.st_size);
    set_number(L, "mtime", (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9);
    set_number(L, "mode", st.st_mode & 07777);
    return 1;
}

static int l_cwd(lua_State *L)
{
    char buf[PATH_MAX];
    if (!getcwd(buf, sizeof buf))
        return host_push_failure(L, host_errno_kind(errno), "cannot get the working directory: %s",
                                 strerror(errno));
    lua_pushstring(L, buf);
    return 1;
}

/* ===== confinement ===== */

/* Resolves path (relative to root unless absolute) the way the kernel would, following
 * symlinks of every component that exists; components that do not exist yet are taken
 * as written. Succeeds only when the result is root itself or below it. */
int fs_confine(const char *root, const char *path, char *out, const char **kind, char *err,
               size_t errlen)
{
    char rootreal[PATH_MAX], cur[PATH_MAX], real[PATH_MAX];
    int missing = 0;

    if (!realpath(root, rootreal)) {
        *kind = host_errno_kind(errno);
        snprintf(err, errlen, "workspace root '%s': %s", root, strerror(errno));
        return -1;
    }
    if (*path == '\0') {
        *kind = "not_found";    /* names nothing (a model's tool call can send one) */
        snprintf(err, errlen, "empty path");
        return -1;
    }
    *kind = "escape";
    snprintf(cur, sizeof cur, "%s", path[0] == '/' ? "/" : rootreal);
    for (const char *p = path; *p; ) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        const char *comp = p;
        p += len + (slash ? 1 : 0);
        if (len == 0 || (len == 1 && comp[0] == '.'))
            continue;
        if (len == 2 && comp[0] == '.' && comp[1] == '.') {
            /* The kernel cannot go up out of a folder that does not exist: neither may we,
             * or "nope/../link/x" would be taken as text and then followed through link. */
            if (missing) {
                *kind = "not_found";
                snprintf(err, errlen, "path '%s' goes through '%s', which does not exist", path, cur);
                return -1;
            }
            char *last = strrchr(cur, '/');
            if (last == cur)
                cur[1] = '\0';
            else if (last)
                *last = '\0';
            continue;
        }
        size_t used = strlen(cur);
        if (used + 1 + len + 1 > sizeof cur) {
            *kind = "io";
            snprintf(err, errlen, "path '%s' is too long", path);
            return -1;
        }
        if (!(used == 1 && cur[0] == '/'))
            cur[used++] = '/';
        memcpy(cur + used, comp, len);
        cur[used + len] = '\0';
        if (missing)
            continue;
        if (realpath(cur, real)) {
            memcpy(cur, real, strlen(real) + 1);
        } else if (errno == ENOENT) {
            struct stat st;
            if (lstat(cur, &st) == 0 && S_ISLNK(st.st_mode)) {
                snprintf(err, errlen, "path '%s' goes through a symbolic link whose target does not exist (%s)", path, cur);
                return -1;
            }
            missing = 1;
        } else {
            *kind = host_errno_kind(errno);
            snprintf(err, errlen, "path '%s': %s", path, strerror(errno));
            return -1;
        }
    }
    size_t rl = strlen(rootreal);
    int inside = strcmp(rootreal, "/") == 0
              || (strncmp(cur, rootreal, rl) == 0 && (cur[rl] == '\0' || cur[rl] == '/'));
    if (!inside) {
        snprintf(err, errlen, "path '%s' escapes the workspace: it resolves to '%s', outside '%s'",
                 path, cur, rootreal);
        return -1;
    }
    snprintf(out, PATH_MAX, "%s", cur);
    return 0;
}

static int l_confine(lua_State *L)
{
    const char *root = luaL_checkstring(L, 1);
    const char *path = luaL_checkstring(L, 2);
    char out[PATH_MAX], err[3 * PATH_MAX];
    const char *kind;
    if (fs_confine(root, path, out, &kind, err, sizeof err) != 0)
        return push_message(L, kind, err, path);
    lua_pushstring(L, out);
    return 1;
}

int luaopen_fs(lua_State *L)
{
    static const luaL_Reg functions[] = {
        { "read",         l_read },
        { "write_atomic", l_write_atomic },
        { "mkdir_p",      l_mkdir_p },
        { "list",         l_list },
        { "glob",         l_glob },
        { "stat",         l_stat },
        { "cwd",          l_cwd },
        { "confine",      l_confine },
        { NULL, NULL }
    };
    host_new_class(L, DIR_MT, NULL, dir_gc);
    lua_newtable(L);
    luaL_register(L, NULL, functions);
    return 1;
}
