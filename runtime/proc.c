/* The `codeassist.proc` module: run a program, capture its output, never hang.
 *
 *   proc.run{ "make", "test",              -- argv (or argv = {...}); no shell unless asked
 *             shell = false,               -- true: argv[1] is a /bin/sh -c script
 *             cwd = "dir", env = {K = "v", DROP = false}, clear_env = false,
 *             stdin = "text",              -- default: /dev/null
 *             timeout = 30,                -- seconds; default none
 *             max_output = 8 << 20,        -- bytes kept per stream (head and tail)
 *             kill_grace = 1 }             -- seconds between SIGTERM and SIGKILL
 *   -> { code = n | nil, signal = n | nil, signal_name = "SIGKILL" | nil,
 *        stdout = s, stderr = s, stdout_bytes = n, stderr_bytes = n, truncated = bool,
 *        timed_out = bool, interrupted = bool, duration = seconds, pid = n }
 *   -> nil, err    when the program could not be started at all
 *
 * The child leads its own process group; a timeout, an interrupt, or the child's own exit
 * ends the whole group (SIGTERM, then SIGKILL after kill_grace), so no grandchild is left
 * behind holding a pipe or a port. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host.h"
#include "outbuf.h"

extern char **environ;

#define DEFAULT_MAX_OUTPUT (8u << 20)
#define DEFAULT_KILL_GRACE 1.0

struct spawn {
    const char *path;           /* resolved executable */
    char **argv, **envp;        /* malloc'd arrays of strings anchored on the Lua stack */
    const char *cwd;
    const char *stdin_data;
    size_t stdin_len;
    int has_stdin;
    double timeout, kill_grace;
    size_t max_output;
};

struct child {
    pid_t pid;
    int pidfd;
    int out_fd, err_fd, in_fd;
    size_t in_done;
    struct outbuf out, err;
    int status, exited, timed_out, interrupted, oom;
    double started;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* ===== option parsing (may raise: nothing is allocated yet) ===== */

static double opt_number(lua_State *L, const char *field, double dflt, double min)
{
    lua_getfield(L, 1, field);
    double v = dflt;
    if (!lua_isnil(L, -1)) {
        if (!lua_isnumber(L, -1) || lua_tonumber(L, -1) < min)
            luaL_error(L, "proc.run: %s must be a number >= %f", field, min);
        v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

static const char *opt_string(lua_State *L, const char *field)
{
    lua_getfield(L, 1, field);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return NULL;
    }
    if (!lua_isstring(L, -1))
        luaL_error(L, "proc.run: %s must be a string", field);
    return lua_tostring(L, -1);   /* left on the stack: stays anchored */
}

/* Pushes a table of argv strings taken from opts.argv or the array part of opts. */
static int collect_argv(lua_State *L)
{
    lua_getfield(L, 1, "argv");
    int src = lua_istable(L, -1) ? lua_gettop(L) : 1;
    int n = (int)lua_objlen(L, src);
    if (n == 0)
        luaL_error(L, "proc.run: give the program and its arguments, e.g. proc.run{\"make\", \"test\"}");
    lua_getfield(L, 1, "shell");
    int shell = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_newtable(L);
    int out = 0;
    if (shell) {
        if (n != 1)
            luaL_error(L, "proc.run: with shell = true give one command string");
        lua_pushliteral(L, "/bin/sh");
        lua_rawseti(L, -2, ++out);
        lua_pushliteral(L, "-c");
        lua_rawseti(L, -2, ++out);
    }
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, src, i);
        if (!lua_isstring(L, -1))
            luaL_error(L, "proc.run: argument %d must be a string, not %s", i, luaL_typename(L, -1));
        lua_rawseti(L, -2, ++out);
    }
    lua_remove(L, -2);
    return out;
}

/* Pushes a table of "K=V" strings: the environment with opts.env applied. */
static void collect_env(lua_State *L)
{
    lua_getfield(L, 1, "clear_env");
    int clear = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_newtable(L);                         /* name -> "K=V" */
    int merged = lua_gettop(L);
    for (char **e = environ; !clear && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        lua_pushlstring(L, *e, (size_t)(eq - *e));
        lua_pushstring(L, *e);
        lua_rawset(L, merged);
    }
    lua_getfield(L, 1, "env");
    if (!lua_isnil(L, -1)) {
        if (!lua_istable(L, -1))
            luaL_error(L, "proc.run: env must be a table of NAME = value");
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -2) != LUA_TSTRING)
                luaL_error(L, "proc.run: env keys must be strings");
            lua_pushvalue(L, -2);
            if (lua_type(L, -2) == LUA_TBOOLEAN && !lua_toboolean(L, -2)) {
                lua_pushnil(L);              /* env = {NAME = false} removes NAME */
            } else if (lua_isstring(L, -2)) {
                lua_pushfstring(L, "%s=%s", lua_tostring(L, -3), lua_tostring(L, -2));
            } else {
                luaL_error(L, "proc.run: env.%s must be a string or false", lua_tostring(L, -3));
            }
            lua_rawset(L, merged);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
}

/* Finds an executable the way execvp would, but in the child's PATH. */
static int resolve_program(const char *name, const char *path_var, char *out, size_t cap)
{
    if (strchr(name, '/')) {
        snprintf(out, cap, "%s", name);
        return access(out, X_OK);
    }
    if (!path_var)
        path_var = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path_var; ; ) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        if ((size_t)snprintf(out, cap, "%.*s/%s", (int)(len ? len : 1), len ? p : ".", name) < cap) {
            struct stat st;
            if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
                return 0;
        }
        if (!colon)
            break;
        p = colon + 1;
    }
    errno = ENOENT;
    return -1;
}

/* ===== spawning ===== */

static void child_exec(const struct spawn *s, int in_fd, int out_fd, int err_fd, int report_fd)
{
    int stage = 0, e;
    sigset_t none;

    setpgid(0, 0);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);   /* an ignored disposition would survive exec */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
        goto fail;
    stage = 1;
    if (s->cwd && chdir(s->cwd) != 0)
        goto fail;
    stage = 2;
    execve(s->path, s->argv, s->envp);
fail:
    e = errno;
    int msg[2] = { stage, e };
    ssize_t ignored = write(report_fd, msg, sizeof msg);
    (void)ignored;
    _exit(127);
}

static int spawn_child(const struct spawn *s, struct child *c, char *err, size_t errlen)
{
    int in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 }, rep[2] = { -1, -1 };

    if (pipe2(out, O_CLOEXEC) || pipe2(errp, O_CLOEXEC) || pipe2(rep, O_CLOEXEC))
        goto fail;
    if (s->has_stdin) {
        if (pipe2(in, O_CLOEXEC))
            goto fail;
    } else {
        in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (in[0] < 0)
            goto fail;
    }
    c->started = now();
    c->pid = fork();
    if (c->pid < 0)
        goto fail;
    if (c->pid == 0)
        child_exec(s, in[0], out[1], errp[1], rep[1]);

    setpgid(c->pid, c->pid);   /* also in the parent: no race with an early kill */
    host_track_child(c->pid);
    close(in[0]);
    close(out[1]);
    close(errp[1]);
    close(rep[1]);

    int msg[2];
    ssize_t n;
    do
        n = read(rep[0], msg, sizeof msg);
    while (n < 0 && errno == EINTR);
    close(rep[0]);
    if (n == (ssize_t)sizeof msg) {
        waitpid(c->pid, NULL, 0);
        host_untrack_child(c->pid);
        close(out[0]);
        close(errp[0]);
        if (in[1] >= 0)
            close(in[1]);
        if (msg[0] == 1)
            snprintf(err, errlen, "cannot run '%s': working directory '%s': %s",
                     s->argv[0], s->cwd, strerror(msg[1]));
        else
            snprintf(err, errlen, "cannot run '%s': %s", s->path, strerror(msg[1]));
        return -1;
    }
    c->out_fd = out[0];
    c->err_fd = errp[0];
    c->in_fd = in[1];
    fcntl(c->out_fd, F_SETFL, O_NONBLOCK);
    fcntl(c->err_fd, F_SETFL, O_NONBLOCK);
    if (c->in_fd >= 0)
        fcntl(c->in_fd, F_SETFL, O_NONBLOCK);
    c->pidfd = (int)syscall(SYS_pidfd_open, c->pid, 0);   /* -1 on old kernels: we poll */
    return 0;

fail:
    snprintf(err, errlen, "cannot run '%s': %s", s->argv[0], strerror(errno));
    for (int *fd = in; fd < in + 2; fd++) close_fd(fd);
    for (int *fd = out; fd < out + 2; fd++) close_fd(fd);
    for (int *fd = errp; fd < errp + 2; fd++) close_fd(fd);
    for (int *fd = rep; fd < rep + 2; fd++) close_fd(fd);
    return -1;
}

/* ===== waiting ===== */

static void drain(struct child *c, int *fd, struct outbuf *b)
{
    char buf[65536];
    for (;;) {
        ssize_t n = read(*fd, buf, sizeof buf);
        if (n > 0) {
            if (outbuf_append(b, buf, (size_t)n) != 0)
                c->oom = 1;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            close_fd(fd);
        return;
    }
}

static void feed_stdin(struct child *c, const struct spawn *s)
{
    while (c->in_fd >= 0 && c->in_done < s->stdin_len) {
        ssize_t n = write(c->in_fd, s->stdin_data + c->in_done, s->stdin_len - c->in_done);
        if (n > 0) {
            c->in_done += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        } else {
            close_fd(&c->in_fd);    /* EPIPE: the child does not want its input */
            return;
        }
    }
    close_fd(&c->in_fd);
}

static void reap(struct child *c, int options)
{
    if (c->exited)
        return;
    pid_t r;
    do
        r = waitpid(c->pid, &c->status, options);
    while (r < 0 && errno == EINTR);
    if (r == c->pid || (r < 0 && errno == ECHILD))
        c->exited = 1;
}

/* SIGKILL is delivered asynchronously: wait until every member of the group has really
 * exited. As a child subreaper (see luaopen_proc) we inherit members whose parents died, so
 * waitpid on the group reaps them all. Bounded: a process stuck in the kernel (D state) must
 * not hang the run. */
#define GROUP_REAP_LIMIT 2.0

static void reap_group(pid_t pgid)
{
    double deadline = now() + GROUP_REAP_LIMIT;
    for (;;) {
        pid_t r = waitpid(-pgid, NULL, WNOHANG);
        if (r > 0 || (r < 0 && errno == EINTR))
            continue;
        if (r < 0 || now() >= deadline)   /* ECHILD: none left */
            return;
        struct timespec ts = { 0, 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
}

/* Ends the group: SIGTERM, up to `grace` seconds for the leader, then SIGKILL for all. */
static void end_group(struct child *c, double grace)
{
    if (!c->exited) {
        kill(-c->pid, SIGTERM);
        double deadline = now() + grace;
        while (!c->exited && now() < deadline) {
            reap(c, WNOHANG);
            if (!c->exited) {
                struct timespec ts = { 0, 5 * 1000 * 1000 };
                nanosleep(&ts, NULL);
            }
        }
    }
    kill(-c->pid, SIGKILL);   /* leftovers, or a leader that ignored SIGTERM */
    reap(c, 0);
    reap_group(c->pid);
}

static void wait_child(struct child *c, const struct spawn *s)
{
    double deadline = s->timeout > 0 ? c->started + s->timeout : 0;

    while (!c->exited || c->out_fd >= 0 || c->err_fd >= 0) {
        struct pollfd fds[4];
        int n = 0, timeout_ms = -1;
        if (c->out_fd >= 0)
            fds[n++] = (struct pollfd){ c->out_fd, POLLIN, 0 };
        if (c->err_fd >= 0)
            fds[n++] = (struct pollfd){ c->err_fd, POLLIN, 0 };
        if (c->in_fd >= 0)
            fds[n++] = (struct pollfd){ c->in_fd, POLLOUT, 0 };
        if (!c->exited && c->pidfd >= 0)
            fds[n++] = (struct pollfd){ c->pidfd, POLLIN, 0 };
        if (!c->exited && c->pidfd < 0)
            timeout_ms = 20;
        if (deadline > 0) {
            double left = deadline - now();
            if (left <= 0) {
                c->timed_out = 1;
                break;
            }
            int ms = (int)(left * 1000) + 1;
            timeout_ms = timeout_ms < 0 || ms < timeout_ms ? ms : timeout_ms;
        }
        int r = poll(fds, (nfds_t)n, timeout_ms);
        if (r < 0 && errno == EINTR) {
            if (host_interrupted()) {
                c->interrupted = 1;
                break;
            }
            continue;
        }
        if (c->out_fd >= 0)
            drain(c, &c->out_fd, &c->out);
        if (c->err_fd >= 0)
            drain(c, &c->err_fd, &c->err);
        if (c->in_fd >= 0)
            feed_stdin(c, s);
        if (!c->exited) {
            reap(c, WNOHANG);
            if (c->exited)
                kill(-c->pid, SIGKILL);   /* the leader is done: end what it left running */
        }
    }
    end_group(c, c->exited ? 0 : s->kill_grace);
    /* Whatever the group wrote before it died is still in the pipes. */
    if (c->out_fd >= 0) {
        fcntl(c->out_fd, F_SETFL, 0);
        drain(c, &c->out_fd, &c->out);
    }
    if (c->err_fd >= 0) {
        fcntl(c->err_fd, F_SETFL, 0);
        drain(c, &c->err_fd, &c->err);
    }
}

static const char *signal_name(int sig)
{
    static char buf[16];
    switch (sig) {
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGILL: return "SIGILL";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGKILL: return "SIGKILL";
    case SIGSEGV: return "SIGSEGV";
    case SIGPIPE: return "SIGPIPE";
    case SIGALRM: return "SIGALRM";
    case SIGTERM: return "SIGTERM";
    default:
        snprintf(buf, sizeof buf, "SIG%d", sig);
        return buf;
    }
}

static void push_capture(lua_State *L, struct outbuf *b, const char *field, const char *count_field)
{
    size_t size = outbuf_size(b);
    char *tmp = malloc(size ? size : 1);
    if (tmp) {
        outbuf_copy(b, tmp);
        lua_pushlstring(L, tmp, size);
        free(tmp);
    } else {
        lua_pushliteral(L, "");
    }
    lua_setfield(L, -2, field);
    set_number(L, count_field, (double)b->total);
}

static int l_run(lua_State *L)
{
    struct spawn s;
    struct child c;
    char path[PATH_MAX], err[PATH_MAX + 256];

    luaL_checktype(L, 1, LUA_TTABLE);
    memset(&s, 0, sizeof s);
    memset(&c, 0, sizeof c);
    c.pidfd = c.out_fd = c.err_fd = c.in_fd = -1;

    /* Everything that can raise happens before any fd or malloc exists. */
    s.timeout = opt_number(L, "timeout", 0, 0);
    s.kill_grace = opt_number(L, "kill_grace", DEFAULT_KILL_GRACE, 0);
    s.max_output = (size_t)opt_number(L, "max_output", DEFAULT_MAX_OUTPUT, 0);
    s.cwd = opt_string(L, "cwd");
    lua_getfield(L, 1, "stdin");
    if (!lua_isnil(L, -1)) {
        if (!lua_isstring(L, -1))
            return luaL_error(L, "proc.run: stdin must be a string");
        s.stdin_data = lua_tolstring(L, -1, &s.stdin_len);
        s.has_stdin = 1;
    }
    int argc = collect_argv(L);
    int argv_idx = lua_gettop(L);
    collect_env(L);
    int env_idx = lua_gettop(L);

    lua_pushliteral(L, "PATH");
    lua_rawget(L, env_idx);
    const char *path_entry = lua_tostring(L, -1);
    const char *path_var = path_entry ? path_entry + 5 : NULL;
    lua_rawgeti(L, argv_idx, 1);
    const char *program = lua_tostring(L, -1);
    if (resolve_program(program, path_var, path, sizeof path) != 0) {
        lua_pushnil(L);
        if (strchr(program, '/'))
            lua_pushfstring(L, "cannot run '%s': %s", program, strerror(errno));
        else
            lua_pushfstring(L, "cannot run '%s': command not found in PATH (%s)", program,
                            path_var ? path_var : "unset");
        return 2;
    }
    s.path = path;

    int envc = 0;
    lua_pushnil(L);
    while (lua_next(L, env_idx)) {
        envc++;
        lua_pop(L, 1);
    }
    s.argv = calloc((size_t)argc + 1, sizeof *s.argv);
    s.envp = calloc((size_t)envc + 1, sizeof *s.envp);
    if (!s.argv || !s.envp) {
        free(s.argv);
        free(s.envp);
        return luaL_error(L, "proc.run: out of memory");
    }
    for (int i = 0; i < argc; i++) {
        lua_rawgeti(L, argv_idx, i + 1);
        s.argv[i] = (char *)lua_tostring(L, -1);   /* anchored in the argv table */
        lua_pop(L, 1);
    }
    int k = 0;
    lua_pushnil(L);
    while (lua_next(L, env_idx)) {
        s.envp[k++] = (char *)lua_tostring(L, -1);  /* anchored in the env table */
        lua_pop(L, 1);
    }

    int rc = spawn_child(&s, &c, err, sizeof err);
    free(s.argv);   /* the child has its own copy now, or never started */
    free(s.envp);
    if (rc != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    outbuf_init(&c.out, s.max_output);
    outbuf_init(&c.err, s.max_output);
    wait_child(&c, &s);
    host_untrack_child(c.pid);
    close_fd(&c.pidfd);
    close_fd(&c.in_fd);
    double duration = now() - c.started;

    /* From here Lua may raise (out of memory): copy, then free, field by field. */
    lua_createtable(L, 0, 12);
    if (WIFEXITED(c.status)) {
        set_number(L, "code", WEXITSTATUS(c.status));
    } else if (WIFSIGNALED(c.status)) {
        set_number(L, "signal", WTERMSIG(c.status));
        set_string(L, "signal_name", signal_name(WTERMSIG(c.status)));
    }
    push_capture(L, &c.out, "stdout", "stdout_bytes");
    push_capture(L, &c.err, "stderr", "stderr_bytes");
    set_boolean(L, "truncated", outbuf_truncated(&c.out) || outbuf_truncated(&c.err) || c.oom);
    outbuf_free(&c.out);
    outbuf_free(&c.err);
    set_boolean(L, "timed_out", c.timed_out);
    set_boolean(L, "interrupted", c.interrupted);
    set_number(L, "duration", duration);
    set_number(L, "pid", c.pid);
    return 1;
}

int luaopen_proc(lua_State *L)
{
    /* Orphaned grandchildren are re-parented to us instead of init, so a finished run can
     * reap its whole process group and prove nothing is left (reap_group). */
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    static const luaL_Reg functions[] = {
        { "run", l_run },
        { NULL, NULL }
    };
    lua_newtable(L);
    luaL_register(L, NULL, functions);
    return 1;
}
