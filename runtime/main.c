/* Entry point: one Lua state, everything under one protected call (the shape of LuaJIT's
 * own luajit.c: main -> lua_cpcall(pmain) -> report), then the Lua CLI decides the rest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lualib.h>

#include "host.h"

struct options {
    int argc;
    char **argv;
    int first_arg;          /* argv index handed to the CLI */
    int debug;
    int no_color;
    const char *lua_path;   /* --lua-path, before CODEASSIST_PATH */
    int exit_code;
};


/* ===== error records =====
 * The message handler runs where the error happened, so it is the one place that can see
 * the stack. It turns any error value into {message, traceback, code}. */

/* Library chunk names ("@scripts/codeassist/cli.lua", or an override's path) are kept in a
 * registry set by preload.c; an error positioned in one of them is our bug (exit 3). */
static int is_library_source(lua_State *L, const char *source)
{
    int internal;
    lua_getfield(L, LUA_REGISTRYINDEX, "codeassist.library_sources");
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    lua_pushstring(L, source);
    lua_rawget(L, -2);
    internal = lua_toboolean(L, -1);
    lua_pop(L, 2);
    return internal;
}

/* The innermost Lua function on the stack that has a file ("@..."). */
static int innermost_file_frame(lua_State *L, lua_Debug *ar)
{
    for (int level = 1; lua_getstack(L, level, ar); level++) {
        lua_getinfo(L, "Sl", ar);
        if (ar->source[0] == '@')
            return 1;
    }
    return 0;
}

/* "file:line: message" blames the position Lua recorded; without one, the innermost Lua
 * function on the stack. */
static int blamed_on_library(lua_State *L, const char *msg)
{
    const char *colon = strchr(msg, ':');
    if (colon && colon[1] >= '0' && colon[1] <= '9') {
        lua_pushlstring(L, msg, (size_t)(colon - msg));
        int internal = is_library_source(L, lua_tostring(L, -1));
        lua_pop(L, 1);
        return internal;
    }
    lua_Debug ar;
    return innermost_file_frame(L, &ar) && is_library_source(L, ar.source + 1);
}

/* A message raised without a position (error(msg, 2) at a script's top level, a C function's
 * argument error) gets the position of the user's code that was running. */
static void add_user_position(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    const char *colon = strchr(msg, ':');
    lua_Debug ar;
    if (colon && colon[1] >= '0' && colon[1] <= '9')
        return;
    if (!innermost_file_frame(L, &ar) || is_library_source(L, ar.source + 1) || ar.currentline <= 0)
        return;
    lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
    lua_insert(L, -2);
    lua_concat(L, 2);
}

/* tostring(v) for an error value, run protected: a __tostring that fails must not turn into
 * "error in error handling". Leaves a string or nothing usable. */
static int describe_error_value(lua_State *L)
{
    if (luaL_callmeta(L, 1, "__tostring"))
        return 1;
    if (lua_istable(L, 1)) {
        lua_getfield(L, 1, "message");
        return 1;
    }
    lua_pushnil(L);
    return 1;
}

/* "file:line: " of the innermost Lua function on the stack, for values that carry none: in
 * front, so that blamed_on_library reads it as it reads any message. */
static void push_where(lua_State *L)
{
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        lua_getinfo(L, "Sl", &ar);
        if (ar.currentline > 0) {
            lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
            return;
        }
    }
    lua_pushliteral(L, "");
}

static int error_record(lua_State *L)
{
    int code = -1;

    /* codeassist's own errors (errors.lua, the interrupt hook) carry their exit code; a
     * table from anywhere else never decides it. */
    if (host_is_error(L, 1)) {
        lua_getfield(L, 1, "code");
        if (lua_isnumber(L, -1))
            code = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    if (code >= 0) {
        lua_getfield(L, 1, "message");
        if (!lua_isstring(L, -1)) {
            lua_pop(L, 1);
            lua_pushliteral(L, "(error without a message)");
        }
    } else {
        if (lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER) {
            lua_pushvalue(L, 1);
        } else {
            lua_pushcfunction(L, describe_error_value);
            lua_pushvalue(L, 1);
            if (lua_pcall(L, 1, 1, 0) != 0 || !lua_isstring(L, -1)) {
                lua_pop(L, 1);
                push_where(L);
                lua_pushfstring(L, "(an error value that is a %s, without a message)", luaL_typename(L, 1));
                lua_concat(L, 2);
            }
        }
        add_user_position(L);
        code = blamed_on_library(L, lua_tostring(L, -1)) ? EXIT_INTERNAL : EXIT_USAGE;
    }

    lua_createtable(L, 0, 3);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "message");
    lua_pushinteger(L, code);
    lua_setfield(L, -2, "code");
    luaL_traceback(L, L, NULL, 1);
    lua_setfield(L, -2, "traceback");
    return 1;
}

int host_pcall(lua_State *L, int nargs, int nresults)
{
    int base = lua_gettop(L) - nargs;
    int status;

    lua_pushcfunction(L, error_record);
    lua_insert(L, base);
    status = lua_pcall(L, nargs, nresults, base);
    lua_remove(L, base);
    return status;
}

/* Prints an error record left by host_pcall and returns its exit code. */
static int report(lua_State *L, int status)
{
    int code = EXIT_INTERNAL;
    const char *msg, *tb = NULL;

    if (status == LUA_ERRMEM) {
        fprintf(stderr, "codeassist: out of memory\n");
        return EXIT_INTERNAL;
    }
    if (!lua_istable(L, -1)) {   /* an error in the handler itself */
        msg = lua_tostring(L, -1);
        fprintf(stderr, "codeassist: internal error: %s\n", msg ? msg : "(no message)");
        return EXIT_INTERNAL;
    }
    lua_getfield(L, -1, "code");
    code = (int)lua_tointeger(L, -1);
    lua_getfield(L, -2, "message");
    msg = lua_tostring(L, -1);
    lua_getfield(L, -3, "traceback");
    tb = lua_tostring(L, -1);

    if (code == EXIT_INTERNAL)
        fprintf(stderr, "codeassist: internal error: %s\n", msg);
    else
        fprintf(stderr, "codeassist: %s\n", msg);
    if (host_debug && tb)
        fprintf(stderr, "%s\n", tb);
    else if (code == EXIT_INTERNAL)
        fprintf(stderr, "codeassist: this is a bug; rerun with --debug and report the traceback\n");
    lua_pop(L, 3);
    return code;
}

/* ===== start-up ===== */

/* Loading code from the working directory by accident is a security hole (mpv drops these
 * entries for the same reason); presets get their own folder on the path instead. */
static void drop_relative_entries(lua_State *L, const char *field)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, field);
    const char *path = lua_tostring(L, -1);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    int first = 1;
    while (path && *path) {
        const char *end = strchr(path, ';');
        size_t len = end ? (size_t)(end - path) : strlen(path);
        if (len > 0 && !(path[0] == '.' && path[1] == '/')) {
            if (!first)
                luaL_addchar(&b, ';');
            luaL_addlstring(&b, path, len);
            first = 0;
        }
        path += len + (end ? 1 : 0);
    }
    luaL_pushresult(&b);
    lua_setfield(L, -3, field);
    lua_pop(L, 2);
}

static int run_cli(lua_State *L)
{
    lua_getglobal(L, "require");
    lua_pushliteral(L, "codeassist.cli");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "main");
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    return 1;
}

static int pmain(lua_State *L)
{
    struct options *o = lua_touserdata(L, 1);

    lua_gc(L, LUA_GCSTOP, 0);
    luaL_openlibs(L);
    lua_gc(L, LUA_GCRESTART, -1);

    drop_relative_entries(L, "path");
    drop_relative_entries(L, "cpath");
    host_error_class(L);
    host_failure_class(L);
    preload_register(L, o->lua_path);
    if (o->no_color)
        term_force_no_color();
    host_install_signals(L);

    lua_pushcfunction(L, run_cli);
    lua_createtable(L, o->argc, 0);
    for (int i = o->first_arg; i < o->argc; i++) {
        lua_pushstring(L, o->argv[i]);
        lua_rawseti(L, -2, i - o->first_arg + 1);
    }
    int status = host_pcall(L, 1, 1);
    if (status != 0) {
        o->exit_code = report(L, status);
        return 0;
    }
    if (lua_isnumber(L, -1))
        o->exit_code = (int)lua_tointeger(L, -1);
    else if (lua_isboolean(L, -1))
        o->exit_code = lua_toboolean(L, -1) ? EXIT_OK : EXIT_GOAL_NOT_MET;
    else
        o->exit_code = EXIT_OK;
    return 0;
}

/* Global flags that must act before any Lua runs (the CLI also declares them for --help):
 * --debug, --no-color and --lua-path DIR. They may stand anywhere before `--`, except after
 * `run FILE`, where every word belongs to the script. */
static void prescan(struct options *o)
{
    const char *env = getenv("CODEASSIST_DEBUG");
    /* "0", "false", "no", "off" and "" mean off, as a person writes it */
    static const char *const off[] = { "0", "false", "no", "off" };
    int words = 0;          /* words that are not options: the command, then run's FILE */
    int run = 0;

    o->debug = env && *env;
    for (size_t k = 0; o->debug && k < sizeof off / sizeof off[0]; k++)
        if (strcasecmp(env, off[k]) == 0)
            o->debug = 0;
    for (int i = 1; i < o->argc; i++) {
        const char *a = o->argv[i];
        if (strcmp(a, "--") == 0 || (run && words >= 2))
            break;
        if (a[0] != '-') {
            if (words++ == 0)
                run = strcmp(a, "run") == 0;
            continue;
        }
        if (strcmp(a, "--debug") == 0)
            o->debug = 1;
        else if (strcmp(a, "--no-color") == 0)
            o->no_color = 1;
        else if (strncmp(a, "--lua-path=", 11) == 0)
            o->lua_path = a + 11;
        else if (strcmp(a, "--lua-path") == 0 && i + 1 < o->argc)
            o->lua_path = o->argv[++i];
    }
}

int main(int argc, char **argv)
{
    struct options o = { .argc = argc, .argv = argv, .first_arg = 1 };
    lua_State *L;

    prescan(&o);
    host_debug = o.debug;
    L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "codeassist: cannot create the Lua state: out of memory\n");
        return EXIT_INTERNAL;
    }
    int status = lua_cpcall(L, pmain, &o);
    if (status != 0)
        o.exit_code = report(L, status);
    fflush(stdout);
    lua_close(L);
    return o.exit_code;
}
