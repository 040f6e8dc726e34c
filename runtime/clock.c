/* The `codeassist.clock` module: monotonic time for durations and timeouts, wall time for records. */
#include <errno.h>
#include <time.h>

#include "host.h"

static double seconds_of(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* clock.monotonic() -> seconds since an arbitrary start; never jumps. */
static int l_monotonic(lua_State *L)
{
    lua_pushnumber(L, seconds_of(CLOCK_MONOTONIC));
    return 1;
}

/* clock.wall() -> seconds since the Unix epoch, with sub-second precision. */
static int l_wall(lua_State *L)
{
    lua_pushnumber(L, seconds_of(CLOCK_REALTIME));
    return 1;
}

/* clock.sleep(seconds): blocks the thread; returns false if a signal interrupted it.
 * (Inside tasks, the scheduler's sleep is the one to use.) */
static int l_sleep(lua_State *L)
{
    double s = luaL_checknumber(L, 1);
    luaL_argcheck(L, s >= 0, 1, "seconds must be >= 0");
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) != 0) {
        if (errno != EINTR || host_interrupted()) {
            lua_pushboolean(L, 0);
            return 1;
        }
    }
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg clock_functions[] = {
    { "monotonic", l_monotonic },
    { "wall",      l_wall },
    { "sleep",     l_sleep },
    { NULL, NULL }
};

int luaopen_clock(lua_State *L)
{
    lua_newtable(L);
    luaL_register(L, NULL, clock_functions);
    return 1;
}
