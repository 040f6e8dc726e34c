/* The `codeassist.models_core` module: model-validation primitives (model_facts.c) for Lua.
 *
 *   m.parse(name)              -> {host, namespace, model, tag, digest, display} | nil, err
 *   m.display(name)            -> "qwen3-coder:latest" | nil, err
 *   m.match(name, list)        -> exact entry of list | nil, {nearest names}, err
 *                                 (items that are not strings are skipped, numbers too)
 *   m.distance(a, b, limit)    -> case-insensitive edit distance, at most limit + 1
 *                                 (limit: 100 by default, clamped to 0 .. 2^31-2)
 *   m.parameters("30.5B")      -> 30.5e9 | nil
 *   m.version_compare(a, b)    -> -1 | 0 | 1 | nil, err
 *   m.vram_estimate(size_bytes, ctx [, layers, kv_width]) -> bytes */
#include <limits.h>
#include <string.h>
#include <strings.h>

#include "host.h"
#include "model_facts.h"

#define NEAREST_MAX 5

/* Parses argument 1; on failure pushes nil and the reason and returns 0. */
static int parse_arg(lua_State *L, struct model_name *n, char *shown, size_t cap)
{
    char err[512];
    if (model_name_parse(luaL_checkstring(L, 1), n, err, sizeof err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 0;
    }
    model_name_display(n, shown, cap);
    return 1;
}

static int l_parse(lua_State *L)
{
    struct model_name n;
    char shown[MODEL_PART_MAX * 4];
    if (!parse_arg(L, &n, shown, sizeof shown))
        return 2;
    lua_createtable(L, 0, 6);
    set_string(L, "host", n.host);
    set_string(L, "namespace", n.ns);
    set_string(L, "model", n.model);
    set_string(L, "tag", n.tag);
    if (n.digest[0])
        set_string(L, "digest", n.digest);
    set_string(L, "display", shown);
    return 1;
}

static int l_display(lua_State *L)
{
    struct model_name n;
    char shown[MODEL_PART_MAX * 4];
    if (!parse_arg(L, &n, shown, sizeof shown))
        return 2;
    lua_pushstring(L, shown);
    return 1;
}

/* The configured name against a server's list: the exact entry (Ollama's rules), else the
 * nearest names — other tags of the same model first, then by edit distance. */
static int l_match(lua_State *L)
{
    struct model_name want, have;
    char err[512];
    const char *name = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (model_name_parse(name, &want, err, sizeof err) != 0) {
        lua_pushnil(L);
        lua_newtable(L);
        lua_pushstring(L, err);
        return 3;
    }
    /* Positions in the list, not string pointers: a string lua_tostring made from a number
     * would be collected once popped. Only strings are names: a number from a server's JSON
     * is a wrong type, not a model. */
    int n = (int)lua_objlen(L, 2);
    int best[NEAREST_MAX], best_score[NEAREST_MAX], nbest = 0;
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, i);
        int parsed = lua_type(L, -1) == LUA_TSTRING
                     && model_name_parse(lua_tostring(L, -1), &have, err, sizeof err) == 0;
        lua_pop(L, 1);
        if (!parsed)
            continue;
        if (model_name_equal(&want, &have)) {
            lua_rawgeti(L, 2, i);
            return 1;
        }
        /* Near means a similar model name (any tag): "qwen3-codr" finds every qwen3-coder. */
        int limit = (int)strlen(want.model) / 3 > 2 ? (int)strlen(want.model) / 3 : 2;
        int d = model_name_distance(want.model, have.model, limit);
        if (d > limit)
            continue;
        int score = 2 * d + (strcasecmp(want.ns, have.ns) != 0) + (strcasecmp(want.tag, have.tag) != 0);
        int at = nbest < NEAREST_MAX ? nbest++ : NEAREST_MAX;
        if (at == NEAREST_MAX) {
            if (score >= best_score[NEAREST_MAX - 1])
                continue;
            at = NEAREST_MAX - 1;
        }
        while (at > 0 && best_score[at - 1] > score) {
            best[at] = best[at - 1];
            best_score[at] = best_score[at - 1];
            at--;
        }
        best[at] = i;
        best_score[at] = score;
    }
    lua_pushnil(L);
    lua_createtable(L, nbest, 0);
    for (int i = 0; i < nbest; i++) {
        lua_rawgeti(L, 2, best[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 2;
}

static int l_distance(lua_State *L)
{
    /* Clamped as a double: a cast of 1e12 or NaN to int is undefined. */
    double wanted = luaL_optnumber(L, 3, 100);
    int limit = !(wanted > 0) ? 0 : wanted >= INT_MAX - 1 ? INT_MAX - 1 : (int)wanted;
    lua_pushinteger(L, model_name_distance(luaL_checkstring(L, 1), luaL_checkstring(L, 2), limit));
    return 1;
}

static int l_parameters(lua_State *L)
{
    double v = model_parameters(luaL_optstring(L, 1, NULL));
    if (v < 0)
        lua_pushnil(L);
    else
        lua_pushnumber(L, v);
    return 1;
}

static int l_version_compare(lua_State *L)
{
    const char *a = luaL_checkstring(L, 1), *b = luaL_checkstring(L, 2);
    int c = server_version_compare(a, b);
    if (c == -2) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot compare versions '%s' and '%s'", a, b);
        return 2;
    }
    lua_pushinteger(L, c);
    return 1;
}

static int l_vram_estimate(lua_State *L)
{
    lua_pushnumber(L, model_vram_estimate(luaL_checknumber(L, 1), luaL_optnumber(L, 2, 0),
                                          (int)luaL_optinteger(L, 3, 0), (int)luaL_optinteger(L, 4, 0)));
    return 1;
}

int luaopen_models_core(lua_State *L)
{
    static const luaL_Reg functions[] = {
        { "parse",           l_parse },
        { "display",         l_display },
        { "match",           l_match },
        { "distance",        l_distance },
        { "parameters",      l_parameters },
        { "version_compare", l_version_compare },
        { "vram_estimate",   l_vram_estimate },
        { NULL, NULL }
    };
    lua_newtable(L);
    luaL_register(L, NULL, functions);
    return 1;
}
