/* The `codeassist.yaml` module: libyaml's event parser turned into Lua tables.
 *
 *   yaml.load(text [, {name = "file.yml", marks = {}}]) -> value | nil, failure
 *   yaml.load_file(path [, {marks = {}, max_bytes = n}]) -> value | nil, failure
 *   yaml.null   -- the value of a null scalar (the same light userdata as cjson.null)
 *
 * One document per file; YAML 1.2 core schema for plain scalars; quoted scalars stay
 * strings; mapping keys are always strings (as written); duplicate keys are errors;
 * anchors and aliases share the anchored value. With opts.marks, marks[tbl] is set for
 * every mapping to {line=, col=, keys = {[key] = {line=, col=}}} and for every sequence to
 * {line=, col=}, so callers can point at the exact spot of a bad config value.
 *
 * A document holds at most yaml.MAX_VALUES values (keys, scalars, lists, mappings and
 * aliases each count one): far more than any config, and few enough that loading any file
 * under the 16 MiB cap stays within tens of megabytes and well under a second.
 *
 * A document that is not valid YAML (or uses what codeassist does not read) is a failure of
 * kind "parse" whose message is "file:line:col: what", with fields file, line and col; a
 * file that cannot be read is a failure as fs.read gives (not_found, permission,
 * too_large, ...).
 *
 * libyaml state lives in a userdata with an idempotent __gc, so even a memory error
 * raised by Lua while building cannot leak the parser or the pending event. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "host.h"
#include "yaml_scalar.h"

#define READER_MT "codeassist.yaml_reader"
#define MAX_DEPTH 256
#define DEFAULT_FILE_CAP (16u << 20)
/* Every value costs a few hundred bytes once it is a Lua table entry with its marks (and
 * again when the config is validated and merged); a 16 MiB file could hold 8 million. */
#define MAX_VALUES 50000
#define STR(x) #x
#define XSTR(x) STR(x)

struct reader {
    yaml_parser_t parser;
    yaml_event_t event;
    int parser_live, event_live;
    const char *name;       /* for messages */
    const char *text;       /* yaml.load's text, to turn reader-error offsets into lines */
    size_t len;
    int fd;                 /* yaml.load_file streams the file (it is never held whole) */
    size_t cap, read_total; /* the file's byte limit, and how much was read */
    int read_errno;         /* a read failed */
    int too_large;          /* the file grew past cap while being read */
    size_t values;          /* built so far, against MAX_VALUES */
    int anchors;            /* stack index of the anchor table */
    int marks;              /* stack index of the caller's marks table, or 0 */
    char err[512];
    size_t err_line, err_col;   /* 1-based; 0 when the error has no position */
    const char *err_kind;       /* "parse" unless libyaml ran out of memory */
};

static int reader_gc(lua_State *L)
{
    struct reader *r = luaL_checkudata(L, 1, READER_MT);
    if (r->event_live) {
        yaml_event_delete(&r->event);
        r->event_live = 0;
    }
    if (r->parser_live) {
        yaml_parser_delete(&r->parser);
        r->parser_live = 0;
    }
    if (r->fd >= 0) {
        close(r->fd);
        r->fd = -1;
    }
    return 0;
}

/* ===== errors ===== */

static void fail_at(struct reader *r, size_t line, size_t col, const char *fmt, const char *a,
                    const char *b)
{
    char what[400];
    snprintf(what, sizeof what, fmt, a ? a : "", b ? b : "");
    snprintf(r->err, sizeof r->err, "%s:%zu:%zu: %s", r->name, line + 1, col + 1, what);
    r->err_line = line + 1;
    r->err_col = col + 1;
}

static void fail_event(struct reader *r, const char *fmt, const char *a, const char *b)
{
    fail_at(r, r->event.start_mark.line, r->event.start_mark.column, fmt, a, b);
}

static void count_lines(const char *bytes, size_t n, size_t *line, size_t *col)
{
    for (size_t i = 0; i < n; i++) {
        if (bytes[i] == '\n') {
            (*line)++;
            *col = 0;
        } else if (((unsigned char)bytes[i] & 0xC0) != 0x80) {
            (*col)++;
        }
    }
}

/* The line and column of a byte offset (libyaml gives only that for encoding errors); a
 * streamed file is read again up to it. */
static void offset_to_mark(const struct reader *r, size_t offset, size_t *line, size_t *col)
{
    *line = 0;
    *col = 0;
    if (r->text) {
        count_lines(r->text, offset < r->len ? offset : r->len, line, col);
        return;
    }
    char chunk[16384];
    for (size_t at = 0; at < offset;) {
        size_t want = offset - at < sizeof chunk ? offset - at : sizeof chunk;
        ssize_t n = pread(r->fd, chunk, want, (off_t)at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        count_lines(chunk, (size_t)n, line, col);
        at += (size_t)n;
    }
}

/* libyaml's own words, with the two mistakes people make most said plainly. */
static void fail_parser(struct reader *r)
{
    yaml_parser_t *p = &r->parser;
    const char *problem = p->problem ? p->problem : "invalid YAML";
    size_t line = p->problem_mark.line, col = p->problem_mark.column;

    if (r->too_large) {             /* as fs.read says it */
        snprintf(r->err, sizeof r->err, "cannot read '%s': it is more than the limit of %zu bytes",
                 r->name, r->cap);
        r->err_kind = "too_large";
        return;
    }
    if (r->read_errno) {
        snprintf(r->err, sizeof r->err, "cannot read '%s': %s", r->name, strerror(r->read_errno));
        r->err_kind = host_errno_kind(r->read_errno);
        return;
    }
    if (p->error == YAML_READER_ERROR) {
        offset_to_mark(r, p->problem_offset, &line, &col);
        fail_at(r, line, col, "%s (the file must be UTF-8 text)", problem, NULL);
        return;
    }
    if (p->error == YAML_MEMORY_ERROR) {
        snprintf(r->err, sizeof r->err, "%s: out of memory while parsing YAML", r->name);
        r->err_kind = "io";
        return;
    }
    /* The scanner stops on the character it could not read. */
    const unsigned char *at = p->buffer.pointer;
    if ((at && at < p->buffer.last && *at == '\t' && strstr(problem, "cannot start any token"))
        || strstr(problem, "tab character")) {
        fail_at(r, line, col, "tab character used for indentation; YAML allows only spaces", NULL, NULL);
        return;
    }
    if (strstr(problem, "end of stream") && p->context && strstr(p->context, "quoted scalar")) {
        snprintf(r->err, sizeof r->err,
                 "%s:%zu:%zu: unclosed quote: the quoted string that starts here is never closed"
                 " (the file ends at line %zu)", r->name, p->context_mark.line + 1,
                 p->context_mark.column + 1, line + 1);
        r->err_line = p->context_mark.line + 1;
        r->err_col = p->context_mark.column + 1;
        return;
    }
    if (p->context && (p->context_mark.line != p->problem_mark.line
                       || p->context_mark.column != p->problem_mark.column)) {
        char ctx[160];
        snprintf(ctx, sizeof ctx, "%s at line %zu, column %zu", p->context,
                 p->context_mark.line + 1, p->context_mark.column + 1);
        fail_at(r, line, col, "%s (%s)", problem, ctx);
        return;
    }
    if (p->context)
        fail_at(r, line, col, "%s %s", problem, p->context);
    else
        fail_at(r, line, col, "%s%s", problem, "");
}

/* ===== events ===== */

static int next_event(struct reader *r)
{
    if (r->event_live) {
        yaml_event_delete(&r->event);
        r->event_live = 0;
    }
    if (!yaml_parser_parse(&r->parser, &r->event)) {
        fail_parser(r);
        return -1;
    }
    r->event_live = 1;
    return 0;
}

static void push_mark(lua_State *L, const yaml_mark_t *m)
{
    lua_createtable(L, 0, 2);
    set_number(L, "line", (double)m->line + 1);
    set_number(L, "col", (double)m->column + 1);
}

#define TAG_PREFIX "tag:yaml.org,2002:"

/* Pushes the Lua value of the current scalar event. */
static int push_scalar(lua_State *L, struct reader *r)
{
    const char *s = (const char *)r->event.data.scalar.value;
    size_t len = r->event.data.scalar.length;
    const char *tag = (const char *)r->event.data.scalar.tag;
    double number = 0;
    int boolean = 0;
    enum scalar_kind kind;

    if (tag && strcmp(tag, "!") != 0) {
        if (strncmp(tag, TAG_PREFIX, strlen(TAG_PREFIX)) != 0) {
            fail_event(r, "unsupported tag '%s' (codeassist reads plain YAML: strings, numbers, booleans, null, lists and maps)", tag, NULL);
            return -1;
        }
        const char *t = tag + strlen(TAG_PREFIX);
        if (strcmp(t, "str") == 0) {
            lua_pushlstring(L, s, len);
            return 0;
        }
        kind = yaml_resolve_plain(s, len, &number, &boolean);
        int ok = (strcmp(t, "null") == 0 && kind == SCALAR_NULL)
              || (strcmp(t, "bool") == 0 && kind == SCALAR_BOOL)
              || (strcmp(t, "int") == 0 && kind == SCALAR_INT)
              || (strcmp(t, "float") == 0 && (kind == SCALAR_FLOAT || kind == SCALAR_INT));
        if (!ok) {
            fail_event(r, "value '%s' is not a valid !!%s", s, t);
            return -1;
        }
    } else if (tag || r->event.data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        lua_pushlstring(L, s, len);   /* quoted, block or "!"-tagged: always a string */
        return 0;
    } else {
        kind = yaml_resolve_plain(s, len, &number, &boolean);
    }
    switch (kind) {
    case SCALAR_NULL:  lua_pushlightuserdata(L, NULL); break;
    case SCALAR_BOOL:  lua_pushboolean(L, boolean); break;
    case SCALAR_INT:
    case SCALAR_FLOAT: lua_pushnumber(L, number); break;
    default:           lua_pushlstring(L, s, len); break;
    }
    return 0;
}

static int build_node(lua_State *L, struct reader *r, int depth);

/* Counts one more value (the current event); fails past MAX_VALUES. */
static int count_value(struct reader *r)
{
    if (++r->values <= MAX_VALUES)
        return 0;
    fail_event(r, "more than " XSTR(MAX_VALUES) " values (keys, list items and scalars) in one document;"
               " a codeassist file needs a few hundred at most — is this the right file?%s%s", NULL, NULL);
    return -1;
}

/* Records an anchor for the value on top of the stack, once the node is complete (so an
 * alias inside its own anchor is an unknown anchor: no cycles). */
static void remember_anchor(lua_State *L, struct reader *r, const char *anchor)
{
    if (!anchor)
        return;
    lua_pushstring(L, anchor);
    lua_pushvalue(L, -2);
    lua_rawset(L, r->anchors);
}

/* Stack on entry: the new table. Leaves it there. Items get no marks of their own: a
 * message about one points at its list (and a mark per item would cost more than the item). */
static int build_sequence(lua_State *L, struct reader *r, int depth)
{
    int n = 0;
    for (;;) {
        if (next_event(r) != 0)
            return -1;
        if (r->event.type == YAML_SEQUENCE_END_EVENT)
            return 0;
        if (build_node(L, r, depth + 1) != 0)
            return -1;
        lua_rawseti(L, -2, ++n);
    }
}

static int build_mapping(lua_State *L, struct reader *r, int depth, int keys)
{
    for (;;) {
        if (next_event(r) != 0)
            return -1;
        if (r->event.type == YAML_MAPPING_END_EVENT)
            return 0;
        if (r->event.type != YAML_SCALAR_EVENT) {
            fail_event(r, "mapping keys must be plain words or strings, not lists or maps%s%s", NULL, NULL);
            return -1;
        }
        if (count_value(r) != 0)
            return -1;
        const char *key = (const char *)r->event.data.scalar.value;
        size_t key_len = r->event.data.scalar.length;
        yaml_mark_t key_mark = r->event.start_mark;

        lua_pushlstring(L, key, key_len);
        lua_pushvalue(L, -1);
        lua_rawget(L, keys);
        if (!lua_isnil(L, -1)) {
            char first[64];
            lua_getfield(L, -1, "line");
            snprintf(first, sizeof first, "%d", (int)lua_tointeger(L, -1));
            fail_event(r, "duplicate key '%s' (first defined at line %s)", key, first);
            return -1;
        }
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        push_mark(L, &key_mark);
        lua_rawset(L, keys);

        if (next_event(r) != 0)
            return -1;
        if (build_node(L, r, depth + 1) != 0)
            return -1;
        lua_rawset(L, -3);
    }
}

/* Builds the value for the current event (already read) and pushes it. */
static int build_node(lua_State *L, struct reader *r, int depth)
{
    yaml_event_t *e = &r->event;

    if (depth > MAX_DEPTH) {
        fail_event(r, "nesting deeper than %s levels", "256", NULL);
        return -1;
    }
    if (count_value(r) != 0)
        return -1;
    luaL_checkstack(L, 8, "YAML nesting");
    switch (e->type) {
    case YAML_ALIAS_EVENT: {
        const char *anchor = (const char *)e->data.alias.anchor;
        lua_pushstring(L, anchor);
        lua_rawget(L, r->anchors);
        if (lua_isnil(L, -1)) {
            fail_event(r, "unknown anchor '*%s' (an alias must refer to an anchor '&%s' defined earlier)", anchor, anchor);
            return -1;
        }
        return 0;
    }
    case YAML_SCALAR_EVENT: {
        char *anchor = (char *)e->data.scalar.anchor;
        if (push_scalar(L, r) != 0)
            return -1;
        remember_anchor(L, r, anchor);
        return 0;
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        int is_map = e->type == YAML_MAPPING_START_EVENT;
        /* Copy the anchor to the stack: the event is freed when the next one is read. */
        const char *a = (const char *)(is_map ? e->data.mapping_start.anchor : e->data.sequence_start.anchor);
        const char *tag = (const char *)(is_map ? e->data.mapping_start.tag : e->data.sequence_start.tag);
        if (tag && strcmp(tag, "!") != 0
            && strcmp(tag, is_map ? TAG_PREFIX "map" : TAG_PREFIX "seq") != 0) {
            fail_event(r, "unsupported tag '%s'%s", tag, NULL);
            return -1;
        }
        if (a)
            lua_pushstring(L, a);
        else
            lua_pushnil(L);
        int anchor_idx = lua_gettop(L);
        yaml_mark_t start = e->start_mark;

        /* The marks entry {line, col [, keys]}; a mapping's keys table also finds duplicates. */
        lua_createtable(L, 0, is_map ? 3 : 2);
        int entry = lua_gettop(L);
        set_number(L, "line", (double)start.line + 1);
        set_number(L, "col", (double)start.column + 1);
        int keys = 0;
        if (is_map) {
            lua_newtable(L);
            lua_pushvalue(L, -1);
            lua_setfield(L, entry, "keys");
            keys = lua_gettop(L);
        }

        lua_newtable(L);                    /* the value */
        int rc = is_map ? build_mapping(L, r, depth, keys) : build_sequence(L, r, depth);
        if (rc != 0)
            return -1;
        if (r->marks) {
            lua_pushvalue(L, -1);
            lua_pushvalue(L, entry);
            lua_rawset(L, r->marks);
        }
        if (a) {
            lua_pushvalue(L, anchor_idx);
            lua_pushvalue(L, -2);
            lua_rawset(L, r->anchors);
        }
        lua_replace(L, anchor_idx);         /* the value takes the anchor name's slot */
        lua_settop(L, anchor_idx);
        return 0;
    }
    default:
        fail_event(r, "unexpected YAML event%s%s", NULL, NULL);
        return -1;
    }
}

/* Parses the input; pushes the value, or returns -1 with r->err set. */
static int load_document(lua_State *L, struct reader *r)
{
    if (next_event(r) != 0)                 /* STREAM-START */
        return -1;
    if (next_event(r) != 0)
        return -1;
    if (r->event.type == YAML_STREAM_END_EVENT) {
        lua_pushlightuserdata(L, NULL);     /* an empty file is a null document */
        return 0;
    }
    /* DOCUMENT-START */
    if (next_event(r) != 0)
        return -1;
    if (build_node(L, r, 0) != 0)
        return -1;
    if (next_event(r) != 0)                 /* DOCUMENT-END */
        return -1;
    if (next_event(r) != 0)
        return -1;
    if (r->event.type == YAML_DOCUMENT_START_EVENT) {
        fail_event(r, "a second YAML document starts here; codeassist reads one document per file (remove the extra '---' or split the file)%s%s", NULL, NULL);
        return -1;
    }
    return 0;
}

/* Pushes a reader whose parser reads nothing yet (its __gc frees whatever it comes to hold). */
static struct reader *new_reader(lua_State *L, const char *name)
{
    struct reader *r = lua_newuserdata(L, sizeof *r);
    memset(r, 0, sizeof *r);
    r->fd = -1;
    r->name = name;
    luaL_getmetatable(L, READER_MT);
    lua_setmetatable(L, -2);
    if (!yaml_parser_initialize(&r->parser))
        luaL_error(L, "yaml: cannot initialise the parser: out of memory");
    r->parser_live = 1;
    return r;
}

/* Loads the document the reader at reader_idx reads: pushes the value, or nil and a failure. */
static int load_input(lua_State *L, struct reader *r, int reader_idx, int opts)
{
    lua_newtable(L);
    r->anchors = lua_gettop(L);
    if (opts && (lua_getfield(L, opts, "marks"), lua_istable(L, -1))) {
        r->marks = lua_gettop(L);
    } else if (opts) {
        lua_pop(L, 1);
    }

    int rc = load_document(L, r);
    if (rc != 0) {
        host_push_failure(L, r->err_kind ? r->err_kind : "parse", "%s", r->err);
        set_string(L, "file", r->name);
        if (r->fd >= 0)
            set_string(L, "path", r->name);
        if (r->err_line > 0) {
            set_number(L, "line", (double)r->err_line);
            set_number(L, "col", (double)r->err_col);
        }
    }
    /* Free libyaml's memory (and close the file) now rather than at the next GC cycle. */
    lua_pushcfunction(L, reader_gc);
    lua_pushvalue(L, reader_idx);
    lua_call(L, 1, 0);
    return rc != 0 ? 2 : 1;
}

/* yaml.load(text [, opts]) */
static int l_load(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    const char *name = "<yaml>";
    int opts = 0;

    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        opts = 2;
        lua_getfield(L, 2, "name");
        if (lua_isstring(L, -1))
            name = lua_tostring(L, -1);   /* stays referenced on the stack */
    }
    struct reader *r = new_reader(L, name);
    yaml_parser_set_input_string(&r->parser, (const unsigned char *)text, len);
    r->text = text;
    r->len = len;
    return load_input(L, r, lua_gettop(L), opts);
}

/* libyaml's read handler for a file: fails past the byte limit (a file that grows while
 * it is read, or one that is not a regular file). */
static int read_file_input(void *data, unsigned char *buffer, size_t size, size_t *size_read)
{
    struct reader *r = data;
    for (;;) {
        ssize_t n = read(r->fd, buffer, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r->read_errno = errno;
            return 0;
        }
        r->read_total += (size_t)n;
        if (r->read_total > r->cap) {
            r->too_large = 1;
            return 0;
        }
        *size_read = (size_t)n;
        return 1;
    }
}

/* yaml.load_file(path [, opts]) */
static int l_load_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    size_t cap = DEFAULT_FILE_CAP;
    int opts = 0;

    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        opts = 2;
        lua_getfield(L, 2, "max_bytes");
        if (!lua_isnil(L, -1)) {
            luaL_argcheck(L, lua_isnumber(L, -1) && lua_tonumber(L, -1) >= 0, 2,
                          "max_bytes must be a number >= 0");
            cap = (size_t)lua_tonumber(L, -1);
        }
        lua_pop(L, 1);
    }
    /* The parser reads the file as it goes: a 16 MiB file is never in memory whole. The
     * checks and messages are fs.read's. */
    struct reader *r = new_reader(L, path);
    int reader_idx = lua_gettop(L);
    struct stat st;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0 || fstat(r->fd, &st) != 0) {
        int err = errno;
        host_push_failure(L, host_errno_kind(err), "cannot read '%s': %s", path, strerror(err));
        set_string(L, "path", path);
        return 2;
    }
    if (S_ISDIR(st.st_mode)) {
        host_push_failure(L, "io", "cannot read '%s': it is a directory", path);
        set_string(L, "path", path);
        return 2;
    }
    if (S_ISREG(st.st_mode) && (size_t)st.st_size > cap) {
        char msg[PATH_MAX + 128];
        snprintf(msg, sizeof msg, "cannot read '%s': it is %lld bytes, more than the limit of %zu",
                 path, (long long)st.st_size, cap);
        host_push_failure(L, "too_large", "%s", msg);
        set_string(L, "path", path);
        return 2;
    }
    r->cap = cap;
    yaml_parser_set_input(&r->parser, read_file_input, r);
    return load_input(L, r, reader_idx, opts);
}

int luaopen_yaml(lua_State *L)
{
    static const luaL_Reg functions[] = {
        { "load",      l_load },
        { "load_file", l_load_file },
        { NULL, NULL }
    };
    host_new_class(L, READER_MT, NULL, reader_gc);

    lua_newtable(L);
    luaL_register(L, NULL, functions);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    set_number(L, "MAX_VALUES", MAX_VALUES);
    return 1;
}
