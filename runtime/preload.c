/* Module registration. Built-in C modules and the Lua library compiled into the binary go
 * into package.preload, so `require` costs nothing until a module is used (start-up does
 * not grow with the library). A search path (--lua-path, CODEASSIST_PATH) is consulted
 * first, so an edited copy of a library module runs without a rebuild. */
#include <stdlib.h>
#include <string.h>

#include "embedded.h"
#include "host.h"

extern int luaopen_cjson(lua_State *L);
extern int luaopen_cjson_safe(lua_State *L);

static const luaL_Reg c_modules[] = {
    { "cjson",           luaopen_cjson },
    { "cjson.safe",      luaopen_cjson_safe },
    /* Namespaced: a bare "term" or "yaml" would shadow lua-term or lua-yaml for any
     * third-party Lua code run in the host (busted needs lua-term). */
    { "codeassist.yaml",  luaopen_yaml },
    { "codeassist.fs",    luaopen_fs },
    { "codeassist.proc_core", luaopen_proc_core },
    { "codeassist.term",  luaopen_term },
    { "codeassist.clock", luaopen_clock },
    { "codeassist.sched", luaopen_sched },
    { "codeassist.http_core", luaopen_http_core },
    { "codeassist.models_core", luaopen_models_core },
    { "codeassist.host",  luaopen_codeassist_host },
    { NULL, NULL }
};

#define LIBRARY_SOURCES "codeassist.library_sources"

/* Remembers a chunk as library code: errors positioned in it are internal (exit 3). */
static void mark_library_source(lua_State *L, const char *chunkname)
{
    lua_getfield(L, LUA_REGISTRYINDEX, LIBRARY_SOURCES);
    lua_pushstring(L, chunkname);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

/* package.preload[name] for an embedded module; upvalue 1 is its index. */
static int load_embedded(lua_State *L)
{
    const struct embedded_module *m = &embedded_modules[lua_tointeger(L, lua_upvalueindex(1))];

    mark_library_source(L, m->source);
    if (luaL_loadbuffer(L, (const char *)m->bytecode, m->size, m->source) != 0)
        return lua_error(L);
    lua_pushstring(L, m->name);
    lua_call(L, 1, 1);
    return 1;
}

static int is_embedded(const char *name)
{
    for (const struct embedded_module *m = embedded_modules; m->name; m++)
        if (strcmp(m->name, name) == 0)
            return 1;
    return 0;
}

/* A package.loaders entry placed before preload: looks for NAME in the override path.
 * Upvalue 1 is the path template ("dir/?.lua;dir/?/init.lua;..."). */
static int load_override(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);

    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchpath");
    lua_pushstring(L, name);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_call(L, 2, 2);
    if (lua_isnil(L, -2)) {
        lua_pushfstring(L, "\n\tno override file in --lua-path/CODEASSIST_PATH for '%s'", name);
        return 1;
    }
    lua_pop(L, 1);
    const char *file = lua_tostring(L, -1);
    /* An edited copy of a library module is still the library; an edited preset is the
     * user's own file, and its mistakes are theirs (exit 2). */
    if (is_embedded(name) && strncmp(name, "presets.", 8) != 0)
        mark_library_source(L, file);
    if (luaL_loadfile(L, file) != 0)
        return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s",
                          name, file, lua_tostring(L, -1));
    return 1;
}

static void add_dirs(luaL_Buffer *b, const char *dirs, int *first)
{
    while (dirs && *dirs) {
        const char *end = strchr(dirs, ':');
        size_t len = end ? (size_t)(end - dirs) : strlen(dirs);
        if (len > 0) {
            if (!*first)
                luaL_addchar(b, ';');
            luaL_addlstring(b, dirs, len);
            luaL_addstring(b, "/?.lua;");
            luaL_addlstring(b, dirs, len);
            luaL_addstring(b, "/?/init.lua");
            *first = 0;
        }
        dirs += len + (end ? 1 : 0);
    }
}

static void install_override_loader(lua_State *L, const char *flag_path)
{
    const char *env_path = getenv("CODEASSIST_PATH");
    luaL_Buffer b;
    int first = 1;

    if (!(flag_path && *flag_path) && !(env_path && *env_path))
        return;
    luaL_buffinit(L, &b);
    add_dirs(&b, flag_path, &first);
    add_dirs(&b, env_path, &first);
    luaL_pushresult(&b);

    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, "codeassist.override_path");
    lua_pushcclosure(L, load_override, 1);
    /* table.insert(package.loaders, 1, load_override) */
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaders");
    for (int i = (int)lua_objlen(L, -1); i >= 1; i--) {
        lua_rawgeti(L, -1, i);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pushvalue(L, -3);
    lua_rawseti(L, -2, 1);
    lua_pop(L, 3);
}

void preload_register(lua_State *L, const char *override_path)
{
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, LIBRARY_SOURCES);

    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    for (const luaL_Reg *r = c_modules; r->name; r++) {
        lua_pushcfunction(L, r->func);
        lua_setfield(L, -2, r->name);
    }
    for (int i = 0; embedded_modules[i].name; i++) {
        lua_pushinteger(L, i);
        lua_pushcclosure(L, load_embedded, 1);
        lua_setfield(L, -2, embedded_modules[i].name);
    }
    lua_pop(L, 2);
    install_override_loader(L, override_path);
}
