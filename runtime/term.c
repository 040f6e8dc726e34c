/* The `codeassist.term` module: terminal facts and the colour policy.
 * Colour is off when NO_COLOR is set (https://no-color.org), when --no-color was given
 * (or term.set_color(false) was called), when TERM=dumb, or when the stream is not a TTY. */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "host.h"

static int color_forced_off;

void term_force_no_color(void)
{
    color_forced_off = 1;
}

/* Accepts 0/1/2 or "stdin"/"stdout"/"stderr"; a caller mistake raises. */
static int check_fd(lua_State *L, int idx)
{
    static const char *const names[] = { "stdin", "stdout", "stderr", NULL };
    if (lua_isnoneornil(L, idx))
        return STDOUT_FILENO;
    if (lua_type(L, idx) == LUA_TNUMBER) {
        int fd = (int)lua_tointeger(L, idx);
        luaL_argcheck(L, fd >= 0, idx, "file descriptor must be >= 0");
        return fd;
    }
    return luaL_checkoption(L, idx, NULL, names);
}

static int l_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty(check_fd(L, 1)));
    return 1;
}

/* term.width([fd]) -> columns: the terminal's, else $COLUMNS, else 80. */
static int l_width(lua_State *L)
{
    struct winsize ws;
    int fd = check_fd(L, 1);
    if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
        lua_pushinteger(L, ws.ws_col);
        return 1;
    }
    const char *cols = getenv("COLUMNS");
    int n = cols ? atoi(cols) : 0;
    lua_pushinteger(L, n > 0 ? n : 80);
    return 1;
}

/* term.color([fd]) -> boolean: whether to write ANSI colours to that stream. */
static int l_color(lua_State *L)
{
    int fd = check_fd(L, 1);
    const char *no_color = getenv("NO_COLOR");
    const char *term = getenv("TERM");
    int on = !color_forced_off
          && !(no_color && *no_color)
          && !(term && strcmp(term, "dumb") == 0)
          && isatty(fd);
    lua_pushboolean(L, on);
    return 1;
}

static int l_set_color(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TBOOLEAN);
    color_forced_off = !lua_toboolean(L, 1);
    return 0;
}

static const luaL_Reg term_functions[] = {
    { "isatty",    l_isatty },
    { "width",     l_width },
    { "color",     l_color },
    { "set_color", l_set_color },
    { NULL, NULL }
};

int luaopen_term(lua_State *L)
{
    lua_newtable(L);
    luaL_register(L, NULL, term_functions);
    return 1;
}
