/* The `codeassist.proc_core` module: child processes on the event loop. The Lua module
 * codeassist.proc wraps it as proc.run:
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
 *   -> nil, failure  when the program could not be started at all: kind not_found (no such
 *                    program, or no such working directory), permission or exec, a message
 *                    naming the program, and failure.program
 *
 * The child leads its own process group; a timeout, an interrupt, or the child's own exit
 * ends the whole group (SIGTERM, then SIGKILL after kill_grace), so no grandchild is left
 * behind holding a pipe or a port.
 *
 * proc_core.spawn(spec) -> child | nil, failure starts the program; the child is waitable
 * (sched.wait) and its pipes, exit and deadlines are watched by the loop, so a gate running
 * `make` and several streaming requests progress together on one thread.
 * child:finished(), child:result() (the table above), child:close() (SIGKILL, free). */
#include <errno.h>
#include <math.h>
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
#include "loop.h"
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
        double n = lua_tonumber(L, -1);
        /* NaN and infinity are never a duration anyone meant (leave the option out instead) */
        if (!lua_isnumber(L, -1) || n != n || n == HUGE_VAL || n < min)
            luaL_error(L, "proc.run: %s must be a finite number >= %g", field, min);
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

/* Starts the child; on failure sets *kind (errors.KINDS) and err and returns -1. */
static int spawn_child(const struct spawn *s, struct child *c, const char **kind, char *err,
                       size_t errlen)
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
    c->started = loop_now();
    c->pid = fork();
    if (c->pid < 0)
        goto fail;
    if (c->pid == 0)
        child_exec(s, in[0], out[1], errp[1], rep[1]);

    setpgid(c->pid, c->pid);   /* also in the parent: no race with an early kill */
    int untracked = host_track_child(c->pid);
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
    if (n == (ssize_t)sizeof msg || untracked) {
        if (n != (ssize_t)sizeof msg)   /* started, but a second signal could not end it */
            kill(-c->pid, SIGKILL);
        waitpid(c->pid, NULL, 0);
        host_untrack_child(c->pid);
        close(out[0]);
        close(errp[0]);
        if (in[1] >= 0)
            close(in[1]);
        if (n != (ssize_t)sizeof msg) {
            *kind = "exec";
            snprintf(err, errlen, "cannot run '%s': out of memory", s->argv[0]);
        } else if (msg[0] == 1) {
            *kind = host_errno_kind(msg[1]);
            snprintf(err, errlen, "cannot run '%s': working directory '%s': %s",
                     s->argv[0], s->cwd, strerror(msg[1]));
        } else {
            *kind = "exec";
            snprintf(err, errlen, "cannot run '%s': %s", s->path, strerror(msg[1]));
        }
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
    *kind = "exec";
    snprintf(err, errlen, "cannot run '%s': %s", s->argv[0], strerror(errno));
    for (int *fd = in; fd < in + 2; fd++) close_fd(fd);
    for (int *fd = out; fd < out + 2; fd++) close_fd(fd);
    for (int *fd = errp; fd < errp + 2; fd++) close_fd(fd);
    for (int *fd = rep; fd < rep + 2; fd++) close_fd(fd);
    return -1;
}

/* ===== a running child, driven by the event loop ===== */

enum stage { RUNNING, TERMINATING, KILLED, FINISHED };

#define CHILD_MT "codeassist.child"
#define PIPE_LINGER 1.0     /* after the leader exits, how long escaped holders may keep a pipe */
#define POLL_REAP 0.02      /* without pidfd: how often to look for the exit */

struct run {
    struct waitq waiters;   /* first member: waitable */
    struct watcher watch;
    struct resource owner;
    struct child c;
    enum stage stage;
    char *stdin_copy;
    size_t stdin_len;
    double timeout, kill_grace, exited_at, stage_deadline;
};

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


static void feed_stdin(struct run *r)
{
    struct child *c = &r->c;
    while (c->in_fd >= 0 && c->in_done < r->stdin_len) {
        ssize_t n = write(c->in_fd, r->stdin_copy + c->in_done, r->stdin_len - c->in_done);
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
    double deadline = loop_now() + GROUP_REAP_LIMIT;
    for (;;) {
        pid_t r = waitpid(-pgid, NULL, WNOHANG);
        if (r > 0 || (r < 0 && errno == EINTR))
            continue;
        if (r < 0 || loop_now() >= deadline)   /* ECHILD: none left */
            return;
        struct timespec ts = { 0, 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
}

/* The fds and the next deadline the loop should watch for this child. */
static void rearm(struct run *r)
{
    struct child *c = &r->c;
    struct watcher *w = &r->watch;
    w->fd[0] = c->out_fd;
    w->events[0] = POLLIN;
    w->fd[1] = c->err_fd;
    w->events[1] = POLLIN;
    w->fd[2] = c->in_fd;
    w->events[2] = POLLOUT;
    w->fd[3] = c->exited ? -1 : c->pidfd;
    w->events[3] = POLLIN;
    w->nfds = 4;

    double d = 0;
    if (r->stage == RUNNING && r->timeout > 0 && !c->exited)
        d = c->started + r->timeout;
    if (r->stage == TERMINATING)
        d = r->stage_deadline;
    if (c->exited && (c->out_fd >= 0 || c->err_fd >= 0))
        d = r->exited_at + PIPE_LINGER;
    if (!c->exited && c->pidfd < 0) {
        double poll_at = loop_now() + POLL_REAP;
        if (d == 0 || poll_at < d)
            d = poll_at;
    }
    w->deadline = d;
}

/* SIGTERM to the group now, SIGKILL after kill_grace if the leader is still there. */
static void terminate(struct run *r)
{
    if (r->stage != RUNNING)
        return;
    if (r->c.exited || r->kill_grace <= 0) {
        kill(-r->c.pid, SIGKILL);
        r->stage = KILLED;
        return;
    }
    kill(-r->c.pid, SIGTERM);
    r->stage = TERMINATING;
    r->stage_deadline = loop_now() + r->kill_grace;
}

static void complete(struct run *r)
{
    struct child *c = &r->c;
    kill(-c->pid, SIGKILL);          /* whatever the group left running */
    reap(c, 0);
    reap_group(c->pid);
    host_untrack_child(c->pid);
    close_fd(&c->pidfd);
    close_fd(&c->in_fd);
    close_fd(&c->out_fd);
    close_fd(&c->err_fd);
    r->stage = FINISHED;
    loop_unwatch(&r->watch);
    resource_drop(&r->owner);
    waitq_wake_all(&r->waiters);
}

static void on_child_event(struct watcher *w)
{
    struct run *r = FROM_MEMBER(w, struct run, watch);
    struct child *c = &r->c;
    double t = loop_now();

    if (c->out_fd >= 0 && w->revents[0])
        drain(c, &c->out_fd, &c->out);
    if (c->err_fd >= 0 && w->revents[1])
        drain(c, &c->err_fd, &c->err);
    if (c->in_fd >= 0 && w->revents[2])
        feed_stdin(r);
    if (!c->exited) {
        reap(c, WNOHANG);
        if (c->exited) {
            r->exited_at = t;
            kill(-c->pid, SIGKILL);  /* the leader is done: end what it left running */
        }
    }
    if (!c->exited && r->stage == RUNNING && r->timeout > 0 && t >= c->started + r->timeout) {
        c->timed_out = 1;
        terminate(r);
    }
    if (!c->exited && r->stage == TERMINATING && t >= r->stage_deadline) {
        kill(-c->pid, SIGKILL);
        r->stage = KILLED;
    }
    if (c->exited && (c->out_fd >= 0 || c->err_fd >= 0) && t >= r->exited_at + PIPE_LINGER) {
        /* a process outside the group (setsid) still holds the pipe: stop reading */
        drain(c, &c->out_fd, &c->out);
        drain(c, &c->err_fd, &c->err);
        close_fd(&c->out_fd);
        close_fd(&c->err_fd);
    }
    if (c->exited && c->out_fd < 0 && c->err_fd < 0) {
        complete(r);
        return;
    }
    rearm(r);
}

/* The host saw SIGINT/SIGTERM: stop the child the same way a timeout would. */
static void on_child_interrupt(struct watcher *w)
{
    struct run *r = FROM_MEMBER(w, struct run, watch);
    r->c.interrupted = 1;
    terminate(r);
    rearm(r);
}

/* Released by a cancelled or finished owner task, by close(), or by __gc. */
static void release_run(struct run *r)
{
    if (r->stage != FINISHED && r->c.pid > 0) {
        kill(-r->c.pid, SIGKILL);
        r->c.interrupted = 1;
        complete(r);
    }
    loop_unwatch(&r->watch);
    resource_drop(&r->owner);
    outbuf_free(&r->c.out);
    outbuf_free(&r->c.err);
    free(r->stdin_copy);
    r->stdin_copy = NULL;
}

static void release_owned_run(struct resource *res)
{
    release_run(FROM_MEMBER(res, struct run, owner));
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

static int l_spawn(lua_State *L)
{
    struct spawn s;
    char path[PATH_MAX], err[PATH_MAX + 256];

    luaL_checktype(L, 1, LUA_TTABLE);
    memset(&s, 0, sizeof s);

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
        if (strchr(program, '/'))
            host_push_failure(L, host_errno_kind(errno), "cannot run '%s': %s", program, strerror(errno));
        else
            host_push_failure(L, "not_found", "cannot run '%s': command not found in PATH (%s)",
                              program, path_var ? path_var : "unset");
        set_string(L, "program", program);
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

    /* The userdata exists before the child does, so nothing can leak if Lua raises. */
    struct run *r = lua_newuserdata(L, sizeof *r);
    memset(r, 0, sizeof *r);
    r->c.pidfd = r->c.out_fd = r->c.err_fd = r->c.in_fd = -1;
    r->stage = FINISHED;
    luaL_getmetatable(L, CHILD_MT);
    lua_setmetatable(L, -2);
    if (s.has_stdin && s.stdin_len > 0) {
        r->stdin_copy = malloc(s.stdin_len);
        if (!r->stdin_copy) {
            free(s.argv);
            free(s.envp);
            return luaL_error(L, "proc.run: out of memory");
        }
        memcpy(r->stdin_copy, s.stdin_data, s.stdin_len);
        r->stdin_len = s.stdin_len;
    }

    const char *kind = NULL;
    int rc = spawn_child(&s, &r->c, &kind, err, sizeof err);
    free(s.argv);   /* the child has its own copy now, or never started */
    free(s.envp);
    if (rc != 0) {
        host_push_failure(L, kind, "%s", err);
        set_string(L, "program", program);
        return 2;
    }
    r->stage = RUNNING;
    r->timeout = s.timeout;
    r->kill_grace = s.kill_grace;
    outbuf_init(&r->c.out, s.max_output);
    outbuf_init(&r->c.err, s.max_output);
    r->watch.on_event = on_child_event;
    r->watch.on_interrupt = on_child_interrupt;
    r->owner.release = release_owned_run;
    if (r->c.in_fd >= 0 && r->stdin_len == 0)
        close_fd(&r->c.in_fd);
    rearm(r);
    loop_watch(&r->watch);
    resource_adopt(&r->owner);
    return 1;
}

static struct run *check_run(lua_State *L)
{
    return luaL_checkudata(L, 1, CHILD_MT);
}

static int c_finished(lua_State *L)
{
    lua_pushboolean(L, check_run(L)->stage == FINISHED);
    return 1;
}

/* The outcome table of a finished child. */
static int c_result(lua_State *L)
{
    struct run *r = check_run(L);
    struct child *c = &r->c;
    if (r->stage != FINISHED)
        return luaL_error(L, "proc: the child is still running");
    lua_createtable(L, 0, 12);
    if (WIFEXITED(c->status)) {
        set_number(L, "code", WEXITSTATUS(c->status));
    } else if (WIFSIGNALED(c->status)) {
        set_number(L, "signal", WTERMSIG(c->status));
        set_string(L, "signal_name", signal_name(WTERMSIG(c->status)));
    }
    push_capture(L, &c->out, "stdout", "stdout_bytes");
    push_capture(L, &c->err, "stderr", "stderr_bytes");
    set_boolean(L, "truncated", outbuf_truncated(&c->out) || outbuf_truncated(&c->err) || c->oom);
    set_boolean(L, "timed_out", c->timed_out);
    set_boolean(L, "interrupted", c->interrupted);
    set_number(L, "duration", (r->exited_at > 0 ? r->exited_at : loop_now()) - c->started);
    set_number(L, "pid", c->pid);
    return 1;
}

/* Stops the child and its group at once (SIGKILL) and frees everything. */
static int c_close(lua_State *L)
{
    release_run(check_run(L));
    return 0;
}

static int c_gc(lua_State *L)
{
    struct run *r = check_run(L);
    release_run(r);
    waitq_detach_all(&r->waiters);
    return 0;
}

int luaopen_proc_core(lua_State *L)
{
    /* Orphaned grandchildren are re-parented to us instead of init, so a finished run can
     * reap its whole process group and prove nothing is left (reap_group). */
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    static const luaL_Reg methods[] = {
        { "finished", c_finished },
        { "result",   c_result },
        { "close",    c_close },
        { NULL, NULL }
    };
    host_new_class(L, CHILD_MT, methods, c_gc);
    loop_waitable_type(L, CHILD_MT);

    lua_newtable(L);
    lua_pushcfunction(L, l_spawn);
    lua_setfield(L, -2, "spawn");
    return 1;
}
