/* Shared declarations of the codeassist C host: exit codes, module openers, and the
 * process-wide interrupt state every blocking primitive consults. */
#ifndef CODEASSIST_HOST_H
#define CODEASSIST_HOST_H

#include <signal.h>
#include <sys/types.h>

#include <lua.h>
#include <lauxlib.h>

#ifndef CODEASSIST_VERSION
#define CODEASSIST_VERSION "0.0.0-dev"
#endif

/* The documented exit-code table (README.md, "Exit codes"). */
enum {
    EXIT_OK          = 0,
    EXIT_GOAL_NOT_MET = 1,   /* target missed, BLOCKED, doctor unhealthy */
    EXIT_USAGE       = 2,   /* usage or config error, error in a user script */
    EXIT_INTERNAL    = 3,   /* a bug in codeassist itself */
    EXIT_INTERRUPTED = 130
};

/* host.c: signals. The first SIGINT/SIGTERM asks running work to stop (a flag, or an
 * "interrupted" error raised at the next Lua instruction when no code has said it polls);
 * the second kills the process groups we started and exits 130 at once. */
extern volatile sig_atomic_t host_interrupts;
extern int host_debug;   /* --debug or CODEASSIST_DEBUG: tracebacks on errors */
void host_install_signals(lua_State *L);
int  host_interrupted(void);
/* Children in their own process group, killed on the second signal. track: -1 when out
 * of memory (the table grows; it never drops a group silently). */
int  host_track_child(pid_t pgid);
void host_untrack_child(pid_t pgid);

/* main.c: the one protected call. Runs the function below nargs arguments with a
 * traceback handler; on error leaves an error record (see main.c) on the stack. */
int host_pcall(lua_State *L, int nargs, int nresults);

/* preload.c: registers built-in C modules and the embedded Lua library. */
void preload_register(lua_State *L, const char *override_path);

/* One opener per built-in module. */
int luaopen_codeassist_host(lua_State *L);
int luaopen_yaml(lua_State *L);
int luaopen_fs(lua_State *L);
int luaopen_proc_core(lua_State *L);
int luaopen_term(lua_State *L);
int luaopen_clock(lua_State *L);
int luaopen_sched(lua_State *L);
int luaopen_http_core(lua_State *L);
int luaopen_models_core(lua_State *L);

/* fs.c: shared with yaml.c, http.c and the unit tests. On failure, err holds the message
 * and *kind its failure kind (errors.KINDS). */
char *read_file_capped(const char *path, size_t cap, size_t *len, char *err, size_t errlen);
char *fs_read_capped(const char *path, size_t cap, size_t *len, const char **kind, char *err,
                     size_t errlen);
int fs_confine(const char *root, const char *path, char *out, const char **kind, char *err,
               size_t errlen);

/* failure.c: codeassist's raised errors ({kind, code, message}; errors.lua) ... */
#define ERROR_MT "codeassist.error"
void host_error_class(lua_State *L);      /* registers the metatable; once, at start-up */
int host_is_error(lua_State *L, int idx); /* 1 when the value at idx is one of ours */

/* ... and runtime failures as `nil, failure` (see errors.lua for the kinds). */
#define FAILURE_MT "codeassist.failure"
void host_failure_class(lua_State *L);   /* registers the metatable; once, at start-up */
/* Pushes nil and a failure {kind, message = fmt...}; returns 2 (`return host_push_failure(...)`). */
int host_push_failure(lua_State *L, const char *kind, const char *fmt, ...);
/* The failure kind for an errno value: not_found, permission, exists, no_space or io. */
const char *host_errno_kind(int err);
/* Raises a caller's mistake found in C, positioned at the innermost frame of the running
 * coroutine that is not library code: the script line that led here (exit 2). When there
 * is none (a tail call into the library), without a position. */
int host_misuse(lua_State *L, const char *fmt, ...);

/* term.c: the colour switch set by --no-color before any Lua runs. */
void term_force_no_color(void);

/* class.c: registers metatable `name` with `methods` as its __index and `gc` as __gc
 * (either may be NULL), leaving the stack as it was. */
void host_new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc);

/* Sets t[name] = v for a string/number/boolean without repeating the push/setfield pair. */
#define set_string(L, name, v)  (lua_pushstring((L), (v)),  lua_setfield((L), -2, (name)))
#define set_number(L, name, v)  (lua_pushnumber((L), (v)),  lua_setfield((L), -2, (name)))
#define set_boolean(L, name, v) (lua_pushboolean((L), (v)), lua_setfield((L), -2, (name)))

#endif
