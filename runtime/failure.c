/* Errors and failures, the two values every part of codeassist shares (see errors.lua):
 *
 * - codeassist's own raised errors ({kind, code, message}, metatable "codeassist.error"),
 *   the only values that choose an exit code;
 * - runtime failures, returned as `nil, failure` from C and from Lua: a table {kind = ...,
 *   message = ..., ...} whose metatable ("codeassist.failure") prints the message. The kinds
 *   are listed once, in errors.lua (errors.KINDS). */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "host.h"

/* The metatable of codeassist's own raised errors (errors.usage/config/goal, the interrupt):
 * only a value with it decides the exit code (main.c), never any table with a `code`. */
static int error_tostring(lua_State *L)
{
    lua_getfield(L, 1, "message");
    if (!lua_isstring(L, -1))
        lua_pushliteral(L, "(error without a message)");
    return 1;
}

void host_error_class(lua_State *L)
{
    luaL_newmetatable(L, ERROR_MT);
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
}

int host_is_error(lua_State *L, int idx)
{
    if (!lua_istable(L, idx) || !lua_getmetatable(L, idx))
        return 0;
    luaL_getmetatable(L, ERROR_MT);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

/* ===== failures ===== */

static int failure_tostring(lua_State *L)
{
    lua_getfield(L, 1, "message");
    if (!lua_isstring(L, -1))
        lua_pushliteral(L, "(failure without a message)");
    return 1;
}

/* "text" .. failure reads as the message, as it did when failures were strings. */
static int failure_concat(lua_State *L)
{
    for (int i = 1; i <= 2; i++)
        if (lua_istable(L, i) && luaL_callmeta(L, i, "__tostring"))
            lua_replace(L, i);
    lua_concat(L, 2);
    return 1;
}

void host_failure_class(lua_State *L)
{
    luaL_newmetatable(L, FAILURE_MT);
    lua_pushcfunction(L, failure_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, failure_concat);
    lua_setfield(L, -2, "__concat");
    lua_pop(L, 1);
}

int host_push_failure(lua_State *L, const char *kind, const char *fmt, ...)
{
    va_list ap;

    lua_pushnil(L);
    lua_createtable(L, 0, 2);
    set_string(L, "kind", kind);
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lua_setfield(L, -2, "message");
    luaL_getmetatable(L, FAILURE_MT);
    lua_setmetatable(L, -2);
    return 2;
}

const char *host_errno_kind(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
        return "not_found";
    case EACCES:
    case EPERM:
    case EROFS:
        return "permission";
    case EEXIST:
        return "exists";
    case ENOSPC:
    case EDQUOT:
        return "no_space";
    default:
        return "io";
    }
}

/* Chunk names of the Lua library (filled by preload.c; main.c blames errors in them on us). */
#define LIBRARY_SOURCES "codeassist.library_sources"

static int is_library_frame(lua_State *L, lua_Debug *ar)
{
    if (ar->source[0] != '@')
        return 0;   /* a string chunk: the script's own code */
    lua_pushstring(L, ar->source + 1);
    lua_rawget(L, -2);
    int lib = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return lib;
}

int host_misuse(lua_State *L, const char *fmt, ...)
{
    va_list ap;
    lua_Debug ar;
    int level = 0;

    lua_getfield(L, LUA_REGISTRYINDEX, LIBRARY_SOURCES);
    if (lua_istable(L, -1)) {
        for (int i = 1; lua_getstack(L, i, &ar); i++) {
            lua_getinfo(L, "Sl", &ar);
            if (ar.currentline < 0 || is_library_frame(L, &ar))
                continue;   /* C functions, tail calls, library code */
            level = i;
            break;
        }
    }
    lua_pop(L, 1);
    if (level > 0)
        luaL_where(L, level);
    else
        lua_pushliteral(L, "");   /* lost to a tail call: coroutine.wrap adds its caller's line */
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lua_concat(L, 2);
    return lua_error(L);
}
