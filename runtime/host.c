/* The `codeassist.host` module and signal handling.
 *
 * First SIGINT/SIGTERM: if Lua has said it polls (host.graceful(true)), only a flag is set,
 * so the loop can finish its step and save state; otherwise a hook raises an "interrupted"
 * error at the next Lua instruction (the technique of LuaJIT's luajit.c). Either way,
 * blocking primitives (proc.run) see the flag and return early.
 * Second signal: kill the process groups we started and _exit(130) at once.
 *
 * LuaJIT does not run hooks inside compiled traces, so a hot loop such as `while true do end`
 * never sees the hook; an alarm armed with it exits after INTERRUPT_GRACE seconds if the hook
 * has not fired by then. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <curl/curl.h>
#include <luajit.h>
#include <yaml.h>

#include "host.h"

volatile sig_atomic_t host_interrupts;
int host_debug;

static lua_State *main_state;
static volatile sig_atomic_t graceful;
static volatile sig_atomic_t last_signal;

/* Process groups to kill on a second signal. The signal handler reads this table while the
 * main thread changes it, so a slot changes by one int store, and a full table is replaced
 * by a complete copy twice its size published with one atomic pointer store. An old table
 * is never freed (a handler may still be reading it): at most as much again as the largest. */
struct tracked_table {
    size_t cap;
    volatile pid_t *slot;
    struct tracked_table *older;    /* retired, kept reachable */
};

#define INITIAL_TRACKED 64
static volatile pid_t initial_slots[INITIAL_TRACKED];
static struct tracked_table initial_table = { INITIAL_TRACKED, initial_slots, NULL };
static struct tracked_table *_Atomic tracked = &initial_table;

int host_track_child(pid_t pgid)
{
    struct tracked_table *t = atomic_load(&tracked);
    for (size_t i = 0; i < t->cap; i++)
        if (t->slot[i] == 0) {
            t->slot[i] = pgid;
            return 0;
        }
    struct tracked_table *bigger = malloc(sizeof *bigger);
    volatile pid_t *slots = calloc(t->cap * 2, sizeof *slots);
    if (!bigger || !slots) {
        free(bigger);
        free((void *)slots);
        return -1;
    }
    for (size_t i = 0; i < t->cap; i++)
        slots[i] = t->slot[i];
    slots[t->cap] = pgid;
    bigger->cap = t->cap * 2;
    bigger->slot = slots;
    bigger->older = t;
    atomic_store(&tracked, bigger);
    return 0;
}

void host_untrack_child(pid_t pgid)
{
    struct tracked_table *t = atomic_load(&tracked);
    for (size_t i = 0; i < t->cap; i++)
        if (t->slot[i] == pgid)
            t->slot[i] = 0;
}

int host_interrupted(void)
{
    return host_interrupts > 0;
}

#define INTERRUPT_GRACE 1

static void kill_tracked_children(void)
{
    struct tracked_table *t = atomic_load(&tracked);
    for (size_t i = 0; i < t->cap; i++)
        if (t->slot[i] > 0)
            kill(-t->slot[i], SIGKILL);
}

static void exit_now(const char *msg, size_t len)
{
    kill_tracked_children();
    ssize_t ignored = write(STDERR_FILENO, msg, len);
    (void)ignored;
    _exit(EXIT_INTERRUPTED);
}

static void on_alarm(int sig)
{
    static const char msg[] = "\ncodeassist: interrupted\n";
    (void)sig;
    exit_now(msg, sizeof msg - 1);
}

static void interrupt_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    alarm(0);
    lua_sethook(L, NULL, 0, 0);
    lua_createtable(L, 0, 2);
    set_string(L, "message", last_signal == SIGTERM ? "terminated" : "interrupted");
    lua_pushinteger(L, EXIT_INTERRUPTED);
    lua_setfield(L, -2, "code");
    set_string(L, "kind", "interrupted");
    luaL_getmetatable(L, ERROR_MT);
    lua_setmetatable(L, -2);
    lua_error(L);
}

static void on_signal(int sig)
{
    last_signal = sig;
    if (++host_interrupts >= 2) {
        static const char msg[] = "\ncodeassist: second interrupt, exiting now\n";
        exit_now(msg, sizeof msg - 1);
    }
    if (!graceful && main_state) {
        lua_sethook(main_state, interrupt_hook,
                    LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
        alarm(INTERRUPT_GRACE);
    }
}

void host_install_signals(lua_State *L)
{
    struct sigaction sa;

    main_state = L;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;   /* no SA_RESTART: blocking waits must wake up and look at the flag */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    /* A closed pipe is an error to report, not a reason to die. */
    signal(SIGPIPE, SIG_IGN);
}

/* host.call(fn, ...): calls fn from C. A script's main chunk runs through it, so that its
 * error(msg, 2) names no line of the library (level 2 is this C function). */
static int l_call(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* host.forget_env(name, ...): removes variables (keys, tokens) from this process's
 * environment once they are loaded, and makes the process undumpable, so a command the agent
 * runs cannot read them back from /proc/<pid>/environ. */
static int l_forget_env(lua_State *L)
{
    int n = lua_gettop(L);
    for (int i = 1; i <= n; i++)
        unsetenv(luaL_checkstring(L, i));
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    return 0;
}

/* host.graceful(on): Lua promises to poll host.interrupted() and stop cleanly. */
static int l_graceful(lua_State *L)
{
    graceful = lua_toboolean(L, 1);
    return 0;
}

/* host.interrupted() -> false | "interrupted" | "terminated" */
static int l_interrupted(lua_State *L)
{
    if (host_interrupts == 0)
        lua_pushboolean(L, 0);
    else
        lua_pushstring(L, last_signal == SIGTERM ? "terminated" : "interrupted");
    return 1;
}

static int l_versions(lua_State *L)
{
    curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);

    lua_createtable(L, 0, 4);
    set_string(L, "codeassist", CODEASSIST_VERSION);
    set_string(L, "luajit", LUAJIT_VERSION);
    set_string(L, "libcurl", cv->version);
    set_string(L, "ssl", cv->ssl_version ? cv->ssl_version : "none");
    set_string(L, "libyaml", yaml_get_version_string());
    return 1;
}

static const luaL_Reg host_functions[] = {
    { "graceful",    l_graceful },
    { "interrupted", l_interrupted },
    { "call",        l_call },
    { "forget_env",  l_forget_env },
    { "versions",    l_versions },
    { NULL, NULL }
};

int luaopen_codeassist_host(lua_State *L)
{
    lua_newtable(L);
    luaL_register(L, NULL, host_functions);
    set_boolean(L, "debug", host_debug);
    lua_createtable(L, 0, 5);
    set_number(L, "ok", EXIT_OK);
    set_number(L, "goal_not_met", EXIT_GOAL_NOT_MET);
    set_number(L, "usage", EXIT_USAGE);
    set_number(L, "internal", EXIT_INTERNAL);
    set_number(L, "interrupted", EXIT_INTERRUPTED);
    lua_setfield(L, -2, "exit_codes");
    return 1;
}
