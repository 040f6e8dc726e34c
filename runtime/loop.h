/* The event loop and the coroutine scheduler (loop.c), shared with http.c and proc.c.
 *
 * One thread. Tasks are Lua coroutines, in a tree (a task spawned while another runs is its
 * child; cancelling one cancels its descendants). Anything a task can wait for (another
 * task, an HTTP transfer, a child process, a condition) embeds a `struct waitq`; a task
 * that waits is queued there and yields. The main thread outside any task waits by pumping
 * the loop itself until it is woken, so a simple script never needs to know about tasks;
 * any other coroutine may not wait (it would hold every task until it returned).
 *
 * The loop drives curl_multi_poll over libcurl's sockets plus the file descriptors of
 * registered watchers (child-process pipes), fires deadlines, and resumes ready tasks.
 * Callbacks from libcurl only touch C buffers and wake queues; Lua runs only when the
 * scheduler resumes a task. */
#ifndef CODEASSIST_LOOP_H
#define CODEASSIST_LOOP_H

#include <stddef.h>

#include <curl/curl.h>
#include <lua.h>

struct task;

/* The object that embeds a watcher, resource or transfer_done, from a pointer to it. */
#define FROM_MEMBER(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

struct waitq {
    struct task *head, *tail;
};

/* Why a wait ended. */
enum wake {
    WAKE_SIGNAL = 0,    /* the object changed: look again */
    WAKE_TIMEOUT,       /* the wait's own deadline passed */
    WAKE_CANCEL,        /* the task was cancelled */
    WAKE_INTERRUPT,     /* SIGINT/SIGTERM arrived */
    WAKE_DEADLOCK,      /* nothing left that could ever wake this wait */
};

/* Wakes every waiter queued on q (it re-checks whatever it waits for). Safe anywhere,
 * including inside libcurl callbacks: it only moves tasks to the ready queue. */
void waitq_wake_all(struct waitq *q);
/* For an object being freed (lua_close): unlink its waiters without waking them. */
void waitq_detach_all(struct waitq *q);

/* Resources a task owns (open transfers, running children) are released when the task
 * ends, however it ends, so cancelling frees them at once. */
struct resource {
    struct resource *prev, *next;
    void (*release)(struct resource *r);
};
void resource_adopt(struct resource *r);     /* owned by the running task, if any */
void resource_drop(struct resource *r);      /* released by its owner: forget it */

/* Something besides libcurl the loop polls or times: up to 4 file descriptors and a
 * deadline (0 = none). on_event runs after each poll that reported one of its fds, and
 * when its deadline has passed; revents[] tells which. */
#define WATCH_MAX_FDS 4
struct watcher {
    struct watcher *prev, *next;
    int fd[WATCH_MAX_FDS];
    short events[WATCH_MAX_FDS];
    short revents[WATCH_MAX_FDS];
    int nfds;
    double deadline;
    void (*on_event)(struct watcher *w);
    void (*on_interrupt)(struct watcher *w);    /* optional: SIGINT/SIGTERM arrived */
    int active;
};
void loop_watch(struct watcher *w);
void loop_unwatch(struct watcher *w);

/* The shared multi handle (its connection cache is what reuses connections per host). */
CURLM *loop_multi(void);
/* A transfer joined or left the multi handle; the loop counts them to detect deadlock. */
void loop_transfer_added(void);
void loop_transfer_removed(void);
/* Set as CURLOPT_PRIVATE on every easy handle: called when libcurl finishes it. */
struct transfer_done {
    void (*done)(struct transfer_done *d, CURLcode result);
};

/* Registers a metatable name whose userdata begin with a `struct waitq` (sched.wait). */
void loop_waitable_type(lua_State *L, const char *metatable);

double loop_now(void);   /* monotonic seconds */

int luaopen_sched(lua_State *L);

#endif
