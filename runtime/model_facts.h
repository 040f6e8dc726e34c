/* The grammar of Ollama models and servers, as pure C (no Lua): names, sizes, versions,
 * VRAM. What names mean (capabilities, tiers) is data in scripts/codeassist/catalogue.lua. Exposed to Lua by models.c; unit-tested in tests/c.
 *
 * Names follow Ollama's grammar (types/model/name.go): [host/][namespace/]model[:tag][@digest]
 * with defaults registry.ollama.ai / library / latest; a ':' is the tag separator only after
 * the last '/'; parts are compared case-insensitively. */
#ifndef CODEASSIST_MODEL_FACTS_H
#define CODEASSIST_MODEL_FACTS_H

#include <stddef.h>

#define MODEL_PART_MAX 352

struct model_name {
    char host[MODEL_PART_MAX];
    char ns[MODEL_PART_MAX];
    char model[MODEL_PART_MAX];
    char tag[MODEL_PART_MAX];
    char digest[MODEL_PART_MAX];
    int host_given, ns_given, tag_given;
};

/* Returns 0, or -1 with a reason in err ("namespace 'a b' has a character Ollama does not
 * allow", ...). */
int model_name_parse(const char *text, struct model_name *out, char *err, size_t errlen);

/* The display form Ollama lists in /api/tags: host/ns/model:tag when the host is not the
 * default, ns/model:tag when the namespace is not "library", else model:tag. Lower case. */
void model_name_display(const struct model_name *n, char *out, size_t cap);

/* 1 when both name the same model (case-insensitive per part, defaults filled in). */
int model_name_equal(const struct model_name *a, const struct model_name *b);

/* Edit distance between two strings, case-insensitive, capped at limit+1 (limit is taken
 * as 0 when negative and INT_MAX-1 at most). Strings over 200 bytes are always limit+1. */
int model_name_distance(const char *a, const char *b, int limit);

/* "137M", "3.2B", "30.5B", "1.5T", "8B", "7" (billions assumed) -> parameters; -1 if unreadable.
 * Plain decimal only: "0x10B", "nanB", "infB", "1e3B", "-1B" are unreadable. */
double model_parameters(const char *size);

/* Compares "0.14.0", "0.32.15", "0.33.0-rc2" (a pre-release sorts before its release):
 * <0, 0, >0; -2 when either is unreadable (does not start with a number). Up to three
 * numbers are read; reading stops at anything but "-pre-release" or "+build": "0.14." and
 * "0.14.x" are 0.14.0. */
int server_version_compare(const char *a, const char *b);

/* Bytes of VRAM to hold a model: its weights (size on disk) plus the KV cache for ctx tokens
 * (2 * layers * kv_width * 2 bytes per token; layers/kv_width of 0 use typical values) plus
 * a fixed runtime overhead. */
double model_vram_estimate(double size_on_disk, double ctx, int layers, int kv_width);

#endif
