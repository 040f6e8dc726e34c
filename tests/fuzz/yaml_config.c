/* libFuzzer target for a config file through the real path: the bytes are written to a
 * file and read by config.load (yaml.load_file, validation with positions, merging into
 * the defaults) in one Lua state set up as runtime/main.c does, kept across inputs.
 *
 * Beyond "no crash": config.load either returns a config or raises a config error (exit 2)
 * — any other Lua error would be an internal error (exit 3) — and yaml.load on the same
 * bytes as a string agrees with yaml.load_file streaming them: the same value or failure. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lualib.h>

#include "host.h"

static const char CHECK[] =
    "local yaml = require 'codeassist.yaml'\n"
    "local config = require 'codeassist.config'\n"
    "require 'codeassist.http'   -- loaded by the first URL in a message: its buffers now, not\n"
    "                            -- during an input (where they would read as a leak)\n"
    "local function same(a, b, seen)\n"
    "  if type(a) ~= 'table' or type(b) ~= 'table' then return a == b or (a ~= a and b ~= b) end\n"
    "  seen = seen or {}\n"
    "  if seen[a] then return seen[a] == b end\n"
    "  seen[a] = b\n"
    "  for k, v in pairs(a) do if not same(v, b[k], seen) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "return function(path, text)\n"
    "  local a, ea = yaml.load(text, { name = path })\n"
    "  local b, eb = yaml.load_file(path)\n"
    "  if (a == nil) ~= (b == nil) or (a == nil and (ea.kind ~= eb.kind or ea.message ~= eb.message))\n"
    "     or (a ~= nil and not same(a, b)) then\n"
    "    error(('yaml.load and yaml.load_file disagree: %s | %s'):format(tostring(ea), tostring(eb)), 0)\n"
    "  end\n"
    "  local ok, err = pcall(config.load, { path = path, env = function() return nil end })\n"
    "  if not ok and not (type(err) == 'table' and err.kind == 'config' and err.code == 2) then\n"
    "    error('config.load raised an error that is not a config error: ' .. tostring(err), 0)\n"
    "  end\n"
    "end\n";

static lua_State *L;
static char path[128];

/* Closes the state (whose C buffers, cjson's, LeakSanitizer would else count) and removes
 * the input file. */
static void finish(void)
{
    lua_close(L);
    unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    L = luaL_newstate();
    if (!L)
        abort();
    luaL_openlibs(L);
    host_error_class(L);
    host_failure_class(L);
    preload_register(L, NULL);
    if (luaL_loadstring(L, CHECK) != 0 || lua_pcall(L, 0, 1, 0) != 0) {
        fprintf(stderr, "yaml_config: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_setfield(L, LUA_REGISTRYINDEX, "fuzz.check");
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/codeassist-fuzz-%d.yml", dir && *dir ? dir : "/tmp", (int)getpid());
    atexit(finish);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size || close(fd) != 0) {
        perror(path);
        abort();
    }
    lua_getfield(L, LUA_REGISTRYINDEX, "fuzz.check");
    lua_pushstring(L, path);
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 2, 0, 0) != 0) {
        fprintf(stderr, "property broken: %s\n", lua_tostring(L, -1));
        abort();
    }
    return 0;
}
