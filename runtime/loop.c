/* The `codeassist.sched` module: the event loop and the coroutine scheduler (see loop.h).
 *
 *   sched.spawn(fn, ...)        -> task            (starts at the next turn of the loop)
 *   sched.wait(obj|nil [, s])   -> true | nil, "timeout"|"cancelled"|"interrupted"|"deadlock"
 *   sched.cancel(task)          -> true if it was still running
 *   sched.status(task)          -> "ready"|"running"|"waiting"|"done"|"failed"
 *   sched.result(task)          -> true, results... | false, err      (task finished)
 *   sched.traceback(task)       -> string | nil    (where a failed task raised)
 *   sched.current()             -> task | nil
 *   sched.run([s])              -> true | nil, reason   (until every task has finished)
 *   sched.cond()                -> cond with :signal() and :broadcast(), waitable
 *   sched.unobserved()          -> {errors of failed tasks nobody asked about}
 *   sched.waitable(obj)         -> true if sched.wait accepts obj
 *
 * sched.wait inside a task yields to the scheduler; on the main thread outside any task it
 * pumps the loop itself until woken; inside any other coroutine it raises (a nested pump
 * would hold every task hostage to that coroutine).
 *
 * Tasks form a tree: a task spawned while another runs is its child. Cancelling a task
 * cancels its unfinished descendants at once; a task that fails cancels its children; a
 * task that returns hands its running children to its own parent (or the top level), so an
 * ancestor's cancel still reaches them. The Lua library (codeassist.task) builds the
 * user-facing API on these. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host.h"
#include "loop.h"

#define TASK_MT "codeassist.task"
#define COND_MT "codeassist.cond"
#define WAITABLE_TYPES "codeassist.waitable_types"
#define MAX_POLL_MS 1000            /* re-check deadlines and signals at least this often */
#define STARVED_POLL_MS 10          /* when fds did not fit in the poll array */

enum task_state { T_READY, T_RUNNING, T_WAITING, T_DONE, T_FAILED };
static const char *const state_names[] = { "ready", "running", "waiting", "done", "failed" };

struct task {
    struct waitq joiners;           /* first member: a task is waitable (join) */
    lua_State *co;                  /* NULL for a pump: code waiting outside any task */
    int co_ref, anchor, err_ref;    /* registry refs (LUA_NOREF when unset) */
    enum task_state state;
    int started, nargs, cancelled, observed;
    enum wake wake;
    unsigned id;
    struct waitq *queue;            /* the queue this task waits in */
    struct task *q_prev, *q_next;
    struct task *ready_next;
    int in_ready;
    double deadline;
    int heap_index;                 /* -1: not in the timer heap */
    struct task *w_prev, *w_next;   /* every waiting task, for interrupts */
    int in_waiting;
    struct resource owned;          /* sentinel of a circular list */
    char *traceback;
    struct task *parent;            /* NULL: top level */
    struct task *first_child, *sib_prev, *sib_next;   /* unfinished children only */
    struct task *f_prev, *f_next;   /* failed, result not yet asked for */
    int in_failed;
};

struct cond {
    struct waitq waiters;
};

static struct {
    CURLM *multi;
    int transfers;
    struct watcher *watchers;
    int nwatchers;
    struct task *ready_head, *ready_tail;
    int nready;
    struct task **heap;
    int heap_len, heap_cap;
    struct curl_waitfd *pollfds;    /* grows with the watchers: no watch is ever dropped */
    unsigned pollcap;
    struct task *failed;            /* failed tasks whose result nobody has asked for */
    struct task *waiting;
    struct task *current;
    int live_tasks;
    struct waitq all_done;
    sig_atomic_t seen_interrupts;
    unsigned next_id;
} loop;

double loop_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ===== timer heap (min-heap on deadline) ===== */

static void heap_swap(int i, int j)
{
    struct task *t = loop.heap[i];
    loop.heap[i] = loop.heap[j];
    loop.heap[j] = t;
    loop.heap[i]->heap_index = i;
    loop.heap[j]->heap_index = j;
}

static void heap_up(int i)
{
    while (i > 0 && loop.heap[(i - 1) / 2]->deadline > loop.heap[i]->deadline) {
        heap_swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < loop.heap_len && loop.heap[l]->deadline < loop.heap[m]->deadline)
            m = l;
        if (r < loop.heap_len && loop.heap[r]->deadline < loop.heap[m]->deadline)
            m = r;
        if (m == i)
            return;
        heap_swap(i, m);
        i = m;
    }
}

static int heap_push(struct task *t)
{
    if (loop.heap_len == loop.heap_cap) {
        int cap = loop.heap_cap ? loop.heap_cap * 2 : 16;
        struct task **h = realloc(loop.heap, (size_t)cap * sizeof *h);
        if (!h)
            return -1;
        loop.heap = h;
        loop.heap_cap = cap;
    }
    t->heap_index = loop.heap_len++;
    loop.heap[t->heap_index] = t;
    heap_up(t->heap_index);
    return 0;
}

static void heap_remove(struct task *t)
{
    int i = t->heap_index;
    if (i < 0)
        return;
    t->heap_index = -1;
    if (--loop.heap_len == i)
        return;
    loop.heap[i] = loop.heap[loop.heap_len];
    loop.heap[i]->heap_index = i;
    heap_up(i);
    heap_down(loop.heap[i]->heap_index);
}

/* ===== queues ===== */

static void queue_remove(struct task *t)
{
    struct waitq *q = t->queue;
    if (!q)
        return;
    if (t->q_prev)
        t->q_prev->q_next = t->q_next;
    else
        q->head = t->q_next;
    if (t->q_next)
        t->q_next->q_prev = t->q_prev;
    else
        q->tail = t->q_prev;
    t->queue = NULL;
    t->q_prev = t->q_next = NULL;
}

static void queue_append(struct waitq *q, struct task *t)
{
    t->queue = q;
    t->q_next = NULL;
    t->q_prev = q->tail;
    if (q->tail)
        q->tail->q_next = t;
    else
        q->head = t;
    q->tail = t;
}

static void waiting_remove(struct task *t)
{
    if (!t->in_waiting)
        return;
    if (t->w_prev)
        t->w_prev->w_next = t->w_next;
    else
        loop.waiting = t->w_next;
    if (t->w_next)
        t->w_next->w_prev = t->w_prev;
    t->in_waiting = 0;
}

static void ready_push(struct task *t)
{
    t->ready_next = NULL;
    t->in_ready = 1;
    if (loop.ready_tail)
        loop.ready_tail->ready_next = t;
    else
        loop.ready_head = t;
    loop.ready_tail = t;
    loop.nready++;
}

static struct task *ready_pop(void)
{
    struct task *t = loop.ready_head;
    if (!t)
        return NULL;
    loop.ready_head = t->ready_next;
    if (!loop.ready_head)
        loop.ready_tail = NULL;
    t->in_ready = 0;
    loop.nready--;
    return t;
}

static void ready_remove(struct task *t)
{
    struct task **p = &loop.ready_head, *prev = NULL;
    while (*p && *p != t) {
        prev = *p;
        p = &(*p)->ready_next;
    }
    if (!*p)
        return;
    *p = t->ready_next;
    if (loop.ready_tail == t)
        loop.ready_tail = prev;
    t->in_ready = 0;
    loop.nready--;
}

static void wake(struct task *t, enum wake why)
{
    if (t->state != T_WAITING)
        return;
    queue_remove(t);
    heap_remove(t);
    waiting_remove(t);
    t->wake = why;
    t->state = T_READY;
    if (t->co)
        ready_push(t);
}

void waitq_wake_all(struct waitq *q)
{
    while (q->head)
        wake(q->head, WAKE_SIGNAL);
}

/* An object is going away: its waiters must not point at it (they are not woken; only
 * lua_close frees an object that still has waiters). */
void waitq_detach_all(struct waitq *q)
{
    while (q->head)
        queue_remove(q->head);
}

static int begin_wait(struct task *t, struct waitq *q, double timeout)
{
    t->state = T_WAITING;
    t->heap_index = -1;
    if (q)
        queue_append(q, t);
    if (timeout >= 0) {
        t->deadline = loop_now() + timeout;
        if (heap_push(t) != 0) {
            queue_remove(t);
            t->state = T_RUNNING;
            return -1;
        }
    }
    t->w_prev = NULL;
    t->w_next = loop.waiting;
    if (loop.waiting)
        loop.waiting->w_prev = t;
    loop.waiting = t;
    t->in_waiting = 1;
    return 0;
}

/* ===== resources and watchers ===== */

void resource_adopt(struct resource *r)
{
    struct task *t = loop.current;
    if (!t) {
        r->prev = r->next = NULL;
        return;
    }
    r->next = &t->owned;
    r->prev = t->owned.prev;
    t->owned.prev->next = r;
    t->owned.prev = r;
}

void resource_drop(struct resource *r)
{
    if (!r->next)
        return;
    r->prev->next = r->next;
    r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void release_owned(struct task *t)
{
    while (t->owned.next != &t->owned) {
        struct resource *r = t->owned.next;
        resource_drop(r);
        r->release(r);
    }
}

void loop_watch(struct watcher *w)
{
    if (w->active)
        return;
    w->prev = NULL;
    w->next = loop.watchers;
    if (loop.watchers)
        loop.watchers->prev = w;
    loop.watchers = w;
    w->active = 1;
    loop.nwatchers++;
}

void loop_unwatch(struct watcher *w)
{
    if (!w->active)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        loop.watchers = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->active = 0;
    loop.nwatchers--;
}

CURLM *loop_multi(void)
{
    if (!loop.multi) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        loop.multi = curl_multi_init();
    }
    return loop.multi;
}

void loop_transfer_added(void)
{
    loop.transfers++;
}

void loop_transfer_removed(void)
{
    loop.transfers--;
}

/* ===== the task tree and the failed list ===== */

static void child_link(struct task *parent, struct task *t)
{
    t->parent = parent;
    t->sib_prev = NULL;
    t->sib_next = parent ? parent->first_child : NULL;
    if (t->sib_next)
        t->sib_next->sib_prev = t;
    if (parent)
        parent->first_child = t;
}

static void child_unlink(struct task *t)
{
    if (t->sib_prev)
        t->sib_prev->sib_next = t->sib_next;
    else if (t->parent)
        t->parent->first_child = t->sib_next;
    if (t->sib_next)
        t->sib_next->sib_prev = t->sib_prev;
    t->parent = t->sib_prev = t->sib_next = NULL;
}

/* A finishing task's unfinished children go to its parent (or the top level). */
static void reparent_children(struct task *t)
{
    while (t->first_child) {
        struct task *c = t->first_child;
        child_unlink(c);
        child_link(t->parent, c);
    }
}

static void cancel_one(struct task *t)
{
    if (t->state == T_DONE || t->state == T_FAILED)
        return;
    t->cancelled = 1;
    if (t->state == T_WAITING)
        wake(t, WAKE_CANCEL);
    release_owned(t);       /* its transfers and children go now, not when it next runs */
}

/* Cancels root and every descendant, walking the tree without recursion (a long chain of
 * sub-tasks must not exhaust the C stack). Cancelling only wakes and releases: no task
 * finishes, so the tree does not change under the walk. */
static void cancel_tree(struct task *root)
{
    struct task *t = root;
    for (;;) {
        cancel_one(t);
        if (t->first_child) {
            t = t->first_child;
            continue;
        }
        while (t != root && !t->sib_next)
            t = t->parent;
        if (t == root)
            return;
        t = t->sib_next;
    }
}

static void failed_push(struct task *t)
{
    t->f_prev = NULL;
    t->f_next = loop.failed;
    if (loop.failed)
        loop.failed->f_prev = t;
    loop.failed = t;
    t->in_failed = 1;
}

static void failed_remove(struct task *t)
{
    if (!t->in_failed)
        return;
    if (t->f_prev)
        t->f_prev->f_next = t->f_next;
    else
        loop.failed = t->f_next;
    if (t->f_next)
        t->f_next->f_prev = t->f_prev;
    t->f_prev = t->f_next = NULL;
    t->in_failed = 0;
}

/* Someone has the failed task's error (result, or the end-of-run report): stop keeping it
 * alive for the report, so joined failures cost nothing once their task is unreachable. */
static void failed_forget(lua_State *L, struct task *t)
{
    if (!t->in_failed)
        return;
    failed_remove(t);
    luaL_unref(L, LUA_REGISTRYINDEX, t->anchor);
    t->anchor = LUA_NOREF;
}

/* ===== running tasks ===== */

static void push_wake(lua_State *L, enum wake why)
{
    static const char *const reasons[] = { NULL, "timeout", "cancelled", "interrupted", "deadlock" };
    if (why == WAKE_SIGNAL) {
        lua_pushboolean(L, 1);
    } else {
        lua_pushnil(L);
        lua_pushstring(L, reasons[why]);
    }
}

static void push_cancel_error(lua_State *L)
{
    lua_createtable(L, 0, 2);
    set_string(L, "kind", "cancelled");
    set_string(L, "message", "task cancelled");
}

static void finish(lua_State *L, struct task *t, enum task_state state)
{
    t->state = state;
    release_owned(t);
    if (state == T_FAILED)          /* nobody is left to use what its children compute */
        for (struct task *c = t->first_child; c; c = c->sib_next)
            cancel_tree(c);
    reparent_children(t);
    child_unlink(t);
    waitq_wake_all(&t->joiners);
    if (state == T_FAILED && !t->cancelled) {
        failed_push(t);             /* stays anchored until its error is asked for */
    } else {
        /* a cancelled task's error is expected by whoever cancelled it: not reported */
        luaL_unref(L, LUA_REGISTRYINDEX, t->anchor);
        t->anchor = LUA_NOREF;
    }
    loop.live_tasks--;
    if (loop.live_tasks == 0)
        waitq_wake_all(&loop.all_done);
}

static void task_failed(lua_State *L, struct task *t)
{
    /* The error value is on top of the coroutine's stack; keep it and where it happened. */
    const char *msg = lua_tostring(t->co, -1);
    luaL_traceback(L, t->co, msg, 0);
    const char *tb = lua_tostring(L, -1);
    t->traceback = tb ? strdup(tb) : NULL;
    lua_pop(L, 1);
    lua_xmove(t->co, L, 1);
    t->err_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    finish(L, t, T_FAILED);
}

static void resume_task(lua_State *L, struct task *t)
{
    int nargs;
    if (!t->started) {
        t->started = 1;
        if (t->cancelled) {                 /* cancelled before it ever ran */
            lua_settop(t->co, 0);
            push_cancel_error(t->co);
            task_failed(L, t);
            return;
        }
        nargs = t->nargs;
    } else {
        lua_settop(t->co, 0);
        push_wake(t->co, t->wake);
        nargs = lua_gettop(t->co);
    }
    struct task *outer = loop.current;
    loop.current = t;
    t->state = T_RUNNING;
    int rc = lua_resume(t->co, nargs);
    loop.current = outer;

    if (rc == LUA_YIELD) {
        if (t->state == T_RUNNING) {        /* a plain coroutine.yield(): run again later */
            lua_settop(t->co, 0);
            t->state = T_READY;
            t->wake = WAKE_SIGNAL;
            ready_push(t);
        }
    } else if (rc == 0) {
        finish(L, t, T_DONE);
    } else {
        task_failed(L, t);
    }
}

static void run_ready(lua_State *L)
{
    int n = loop.nready;    /* only those ready now: a yielding task must not starve the poll */
    while (n-- > 0) {
        struct task *t = ready_pop();
        if (!t)
            break;
        if (t->state == T_READY)
            resume_task(L, t);
    }
}

static void wake_everyone(enum wake why)
{
    while (loop.waiting)
        wake(loop.waiting, why);
}

static void on_transfers_done(void)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(loop.multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct transfer_done *d = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&d);
        CURLcode result = msg->data.result;
        if (d)
            d->done(d, result);     /* may remove the handle: msg is not used after this */
    }
}

/* One turn: run ready tasks, poll I/O, fire deadlines. pump is the waiter that called us
 * from outside any task (NULL from sched.run). */
static void loop_step(lua_State *L, struct task *pump)
{
    run_ready(L);
    if (pump && pump->state != T_WAITING)
        return;

    if (host_interrupts != loop.seen_interrupts) {
        loop.seen_interrupts = host_interrupts;
        for (struct watcher *w = loop.watchers, *after; w; w = after) {
            after = w->next;
            if (w->on_interrupt)
                w->on_interrupt(w);
        }
        wake_everyone(WAKE_INTERRUPT);
        return;
    }

    double now = loop_now(), next = -1;
    if (loop.heap_len > 0)
        next = loop.heap[0]->deadline;
    unsigned want = 0;
    for (struct watcher *w = loop.watchers; w; w = w->next)
        for (int i = 0; i < w->nfds; i++)
            want += w->fd[i] >= 0;
    int starved = 0;    /* out of memory for the poll array: poll what fits, and often */
    if (want > loop.pollcap) {
        unsigned cap = loop.pollcap ? loop.pollcap : 64;
        while (cap < want)
            cap *= 2;
        struct curl_waitfd *bigger = realloc(loop.pollfds, cap * sizeof *bigger);
        if (bigger) {
            loop.pollfds = bigger;
            loop.pollcap = cap;
        } else {
            starved = 1;
        }
    }
    struct curl_waitfd *fds = loop.pollfds;
    unsigned nfds = 0;
    for (struct watcher *w = loop.watchers; w; w = w->next) {
        if (w->deadline > 0 && (next < 0 || w->deadline < next))
            next = w->deadline;
        for (int i = 0; i < w->nfds && nfds < loop.pollcap; i++)
            if (w->fd[i] >= 0)
                fds[nfds++] = (struct curl_waitfd){ w->fd[i], (short)w->events[i], 0 };
    }

    if (loop.nready == 0 && loop.transfers == 0 && want == 0 && next < 0) {
        /* Nothing can ever wake the waiters: say so instead of hanging. */
        if (pump)
            wake(pump, WAKE_DEADLOCK);
        else
            wake_everyone(WAKE_DEADLOCK);
        return;
    }

    int timeout_ms = MAX_POLL_MS;
    if (loop.nready > 0) {
        timeout_ms = 0;
    } else if (next >= 0) {
        double ms = (next - now) * 1000.0;
        timeout_ms = ms <= 0 ? 0 : ms >= MAX_POLL_MS ? MAX_POLL_MS : (int)ms + 1;
    }
    if (starved && timeout_ms > STARVED_POLL_MS)
        timeout_ms = STARVED_POLL_MS;

    if (loop.transfers > 0 || nfds > 0) {
        curl_multi_poll(loop_multi(), fds, nfds, timeout_ms, NULL);
        if (loop.transfers > 0) {
            int running;
            curl_multi_perform(loop.multi, &running);
            on_transfers_done();
        }
    } else if (timeout_ms > 0) {
        struct timespec ts = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);   /* EINTR on a signal is fine: checked next turn */
    }

    /* Watchers: copy back what poll saw, and fire those whose deadline passed (or, when
     * some fds did not fit, every watcher: on_event copes with nothing to read). */
    now = loop_now();
    unsigned k = 0;
    struct watcher *w = loop.watchers;
    while (w) {
        struct watcher *after = w->next;
        int fired = 0, unpolled = 0;
        for (int i = 0; i < w->nfds; i++) {
            w->revents[i] = 0;
            if (w->fd[i] >= 0 && k < nfds) {
                w->revents[i] = (short)fds[k++].revents;
                fired |= w->revents[i] != 0;
            } else if (w->fd[i] >= 0) {
                w->revents[i] = w->events[i];
                unpolled = 1;
            }
        }
        if (fired || unpolled || (w->deadline > 0 && w->deadline <= now))
            w->on_event(w);
        w = after;
    }

    while (loop.heap_len > 0 && loop.heap[0]->deadline <= now)
        wake(loop.heap[0], WAKE_TIMEOUT);
}

/* ===== Lua API ===== */

static struct task *check_task(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, TASK_MT);
}

static int is_waitable(lua_State *L, int idx)
{
    int known = 0;
    if (lua_getmetatable(L, idx)) {
        lua_getfield(L, LUA_REGISTRYINDEX, WAITABLE_TYPES);
        lua_pushvalue(L, -2);
        lua_rawget(L, -2);
        known = lua_toboolean(L, -1);
        lua_pop(L, 3);
    }
    return known;
}

static struct waitq *check_waitable(lua_State *L, int idx)
{
    if (!is_waitable(L, idx))
        luaL_argerror(L, idx, "expected a task, a cond, a transfer or a child process");
    return lua_touserdata(L, idx);
}

void loop_waitable_type(lua_State *L, const char *metatable)
{
    lua_getfield(L, LUA_REGISTRYINDEX, WAITABLE_TYPES);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, WAITABLE_TYPES);
    }
    luaL_getmetatable(L, metatable);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

static int l_spawn(lua_State *L)
{
    int nargs = lua_gettop(L) - 1;
    luaL_checktype(L, 1, LUA_TFUNCTION);

    struct task *t = lua_newuserdata(L, sizeof *t);
    memset(t, 0, sizeof *t);
    t->co_ref = t->anchor = t->err_ref = LUA_NOREF;
    t->heap_index = -1;
    t->owned.prev = t->owned.next = &t->owned;
    luaL_getmetatable(L, TASK_MT);
    lua_setmetatable(L, -2);

    t->co = lua_newthread(L);
    t->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    for (int i = 1; i <= nargs + 1; i++)
        lua_pushvalue(L, i);
    lua_xmove(L, t->co, nargs + 1);
    t->nargs = nargs;
    t->id = ++loop.next_id;

    lua_pushvalue(L, -1);
    t->anchor = luaL_ref(L, LUA_REGISTRYINDEX);   /* alive until it finishes */
    child_link(loop.current, t);   /* a pump is never current: top level outside tasks */
    if (loop.current && loop.current->cancelled)
        t->cancelled = 1;          /* a cancelled task's new sub-tasks never run */
    loop.live_tasks++;
    t->state = T_READY;
    ready_push(t);
    return 1;
}

/* Outside any task: turns the loop until q wakes this wait (or the timeout, a signal or a
 * deadlock ends it); pushes what sched.wait returns. */
static int pump_until(lua_State *L, struct waitq *q, double timeout)
{
    struct task pump;
    memset(&pump, 0, sizeof pump);
    pump.heap_index = -1;
    if (begin_wait(&pump, q, timeout) != 0)
        return luaL_error(L, "sched: out of memory");
    while (pump.state == T_WAITING)
        loop_step(L, &pump);
    push_wake(L, pump.wake);
    return pump.wake == WAKE_SIGNAL ? 1 : 2;
}

static int is_main_thread(lua_State *L)
{
    int main = lua_pushthread(L);
    lua_pop(L, 1);
    return main;
}

static int l_wait(lua_State *L)
{
    struct waitq *q = lua_isnoneornil(L, 1) ? NULL : check_waitable(L, 1);
    double timeout = luaL_optnumber(L, 2, -1);
    struct task *t = loop.current;

    if ((t && t->co != L) || (!t && !is_main_thread(L)))
        return host_misuse(L, "cannot wait inside a coroutine that is not a task (it would hold "
                              "every task until it returns); run it with task.spawn");
    if (t) {
        if (t->cancelled) {
            push_wake(L, WAKE_CANCEL);
            return 2;
        }
        if (begin_wait(t, q, timeout) != 0)
            return luaL_error(L, "sched.wait: out of memory");
        return lua_yield(L, 0);     /* resumed with the values push_wake leaves */
    }

    return pump_until(L, q, timeout);
}

static int l_run(lua_State *L)
{
    double timeout = luaL_optnumber(L, 1, -1);
    if (loop.current || !is_main_thread(L))
        return host_misuse(L, "sched.run: call it on the main thread, outside any task");
    if (loop.live_tasks == 0) {
        lua_pushboolean(L, 1);
        return 1;
    }
    return pump_until(L, &loop.all_done, timeout);
}

static int l_cancel(lua_State *L)
{
    struct task *t = check_task(L, 1);
    if (t->state == T_DONE || t->state == T_FAILED) {
        lua_pushboolean(L, 0);
        return 1;
    }
    cancel_tree(t);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_status(lua_State *L)
{
    struct task *t = check_task(L, 1);
    lua_pushstring(L, state_names[t->state]);
    return 1;
}

static int l_result(lua_State *L)
{
    struct task *t = check_task(L, 1);
    if (t->state == T_DONE) {
        int n = lua_gettop(t->co);
        luaL_checkstack(L, n + 1, "too many results");
        lua_pushboolean(L, 1);
        for (int i = 1; i <= n; i++)
            lua_pushvalue(t->co, i);
        lua_xmove(t->co, L, n);
        t->observed = 1;
        return n + 1;
    }
    if (t->state == T_FAILED) {
        lua_pushboolean(L, 0);
        lua_rawgeti(L, LUA_REGISTRYINDEX, t->err_ref);
        t->observed = 1;
        failed_forget(L, t);
        return 2;
    }
    return luaL_error(L, "sched.result: task %d has not finished", (int)t->id);
}

static int l_traceback(lua_State *L)
{
    struct task *t = check_task(L, 1);
    if (t->traceback)
        lua_pushstring(L, t->traceback);
    else
        lua_pushnil(L);
    return 1;
}

static int l_current(lua_State *L)
{
    struct task *t = loop.current;
    if (!t || t->co != L || t->anchor == LUA_NOREF) {
        lua_pushnil(L);
        return 1;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->anchor);
    return 1;
}

static int task_gc(lua_State *L)
{
    struct task *t = check_task(L, 1);
    /* Only lua_close collects an unfinished task: unlink it from everything first. */
    queue_remove(t);
    heap_remove(t);
    waiting_remove(t);
    if (t->in_ready)
        ready_remove(t);
    waitq_detach_all(&t->joiners);
    while (t->owned.next && t->owned.next != &t->owned)
        resource_drop(t->owned.next);
    /* lua_close runs every finaliser before freeing anything, so the neighbours are valid */
    while (t->first_child)
        child_unlink(t->first_child);
    child_unlink(t);
    failed_remove(t);
    luaL_unref(L, LUA_REGISTRYINDEX, t->co_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, t->err_ref);
    t->co_ref = t->err_ref = LUA_NOREF;
    free(t->traceback);
    t->traceback = NULL;
    return 0;
}

static int task_tostring(lua_State *L)
{
    struct task *t = check_task(L, 1);
    lua_pushfstring(L, "task %d (%s)", (int)t->id, state_names[t->state]);
    return 1;
}

static int l_cond(lua_State *L)
{
    struct cond *c = lua_newuserdata(L, sizeof *c);
    memset(c, 0, sizeof *c);
    luaL_getmetatable(L, COND_MT);
    lua_setmetatable(L, -2);
    return 1;
}

/* cond:signal() wakes the longest waiter; cond:broadcast() wakes them all. */
static int cond_signal(lua_State *L)
{
    struct cond *c = luaL_checkudata(L, 1, COND_MT);
    if (c->waiters.head)
        wake(c->waiters.head, WAKE_SIGNAL);
    return 0;
}

static int cond_broadcast(lua_State *L)
{
    struct cond *c = luaL_checkudata(L, 1, COND_MT);
    waitq_wake_all(&c->waiters);
    return 0;
}

static int cond_gc(lua_State *L)
{
    struct cond *c = luaL_checkudata(L, 1, COND_MT);
    waitq_detach_all(&c->waiters);
    return 0;
}

/* Errors of failed tasks whose result nobody asked for (oldest first); forgets them once
 * reported. Cancelled tasks are not among them: their canceller knows. */
static int l_unobserved(lua_State *L)
{
    int n = 0;
    struct task *oldest = loop.failed;
    while (oldest && oldest->f_next)
        oldest = oldest->f_next;
    lua_newtable(L);
    while (oldest) {
        struct task *t = oldest;
        oldest = t->f_prev;
        lua_rawgeti(L, LUA_REGISTRYINDEX, t->err_ref);
        lua_rawseti(L, -2, ++n);
        t->observed = 1;
        failed_forget(L, t);
    }
    return 1;
}

static int l_waitable(lua_State *L)
{
    lua_pushboolean(L, is_waitable(L, 1));
    return 1;
}

int luaopen_sched(lua_State *L)
{
    static const luaL_Reg functions[] = {
        { "spawn",      l_spawn },
        { "wait",       l_wait },
        { "run",        l_run },
        { "cancel",     l_cancel },
        { "status",     l_status },
        { "result",     l_result },
        { "traceback",  l_traceback },
        { "current",    l_current },
        { "cond",       l_cond },
        { "unobserved", l_unobserved },
        { "waitable",   l_waitable },
        { NULL, NULL }
    };
    static const luaL_Reg cond_methods[] = {
        { "signal",    cond_signal },
        { "broadcast", cond_broadcast },
        { NULL, NULL }
    };

    host_new_class(L, TASK_MT, NULL, task_gc);
    luaL_getmetatable(L, TASK_MT);
    lua_pushcfunction(L, task_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
    loop_waitable_type(L, TASK_MT);

    host_new_class(L, COND_MT, cond_methods, cond_gc);
    loop_waitable_type(L, COND_MT);

    lua_newtable(L);
    luaL_register(L, NULL, functions);
    return 1;
}
