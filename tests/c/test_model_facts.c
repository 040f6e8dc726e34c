/* Model names, sizes, versions and VRAM estimates (tiers and capabilities: tests/spec/catalogue_spec.lua). */
#include <limits.h>
#include <string.h>

#include "model_facts.h"
#include "tap.h"

static const char *display(const char *text)
{
    static char out[1024];
    struct model_name n;
    char err[256];
    if (model_name_parse(text, &n, err, sizeof err) != 0) {
        snprintf(out, sizeof out, "ERR: %s", err);
        return out;
    }
    model_name_display(&n, out, sizeof out);
    return out;
}

static int same(const char *a, const char *b)
{
    struct model_name x, y;
    char err[256];
    return model_name_parse(a, &x, err, sizeof err) == 0 && model_name_parse(b, &y, err, sizeof err) == 0
        && model_name_equal(&x, &y);
}

int main(void)
{
    is_str(display("llama3.2"), "llama3.2:latest", "an implicit :latest");
    is_str(display("Qwen3-Coder"), "qwen3-coder:latest", "displayed in lower case");
    is_str(display("user/m"), "user/m:latest", "a namespace is shown");
    is_str(display("library/llama3.2:1b"), "llama3.2:1b", "the default namespace is not");
    is_str(display("hf.co/org/repo:Q4_K_M"), "hf.co/org/repo:q4_k_m", "a host is shown with all parts");
    is_str(display("registry.ollama.ai/library/qwq:32b"), "qwq:32b", "the default host is not");
    is_str(display("localhost:5000/ns/m"), "localhost:5000/ns/m:latest", "a ':' before the last '/' is part of the host");
    is_str(display("qwen3-coder:30b@sha256:abc"), "qwen3-coder:30b", "a digest is parsed off");
    is_str(display("  gemma3:4b \n"), "gemma3:4b", "surrounding space is ignored");
    ok(strncmp(display(""), "ERR: the model name is empty", 28) == 0, "an empty name is refused");
    ok(strncmp(display("a/b/c/d"), "ERR:", 4) == 0, "too many parts are refused");
    ok(strncmp(display("bad name"), "ERR: model 'bad name'", 21) == 0, "a space in a name is refused");
    is_str(display("m:t@sha256:ab:cd"), "m:t", "everything after '@' is the digest, colons included");

    ok(same("qwen3-coder", "qwen3-coder:latest"), "qwen3-coder = qwen3-coder:latest");
    ok(same("QWEN3-CODER:Latest", "qwen3-coder:latest"), "case-insensitive per part");
    ok(same("library/llama3.2", "registry.ollama.ai/library/llama3.2:latest"), "defaults filled in");
    ok(!same("qwen3", "qwen3-coder:latest"), "qwen3 is not qwen3-coder");
    ok(!same("qwen3-coder:30b", "qwen3-coder:latest"), "tags differ");
    ok(!same("user/m", "m"), "namespaces differ");

    ok(model_name_distance("qwen3-coder:latest", "qwen3-coder:latest", 3) == 0, "distance 0");
    ok(model_name_distance("qwen3-codr:latest", "qwen3-coder:latest", 3) == 1, "one letter missing");
    ok(model_name_distance("QWEN3:latest", "qwen3:latest", 3) == 0, "case-insensitive distance");
    ok(model_name_distance("llama3.2:latest", "qwen3-coder:latest", 3) == 4, "far apart is capped at limit+1");
    /* Issue 13 (1d): limit + 1 overflowed for INT_MAX. */
    char long_name[301];
    memset(long_name, 'x', 300);
    long_name[300] = '\0';
    ok(model_name_distance(long_name, "y", INT_MAX) == INT_MAX, "a limit of INT_MAX is clamped: no overflow");
    ok(model_name_distance("abc", "abd", INT_MAX) == 1, "a huge limit still measures");
    ok(model_name_distance("abcdef", "z", -5) == 1, "a negative limit is 0: anything different is 1");

    ok(model_parameters("137M") == 137e6, "137M");
    ok(model_parameters("3.2B") == 3.2e9, "3.2B");
    ok(model_parameters("30.5B") == 30.5e9, "30.5B");
    ok(model_parameters("1.5T") == 1.5e12, "1.5T");
    ok(model_parameters("8b") == 8e9, "lower-case unit");
    ok(model_parameters("7") == 7e9, "a bare number is billions");
    ok(model_parameters("") < 0 && model_parameters("big") < 0 && model_parameters(NULL) < 0, "unreadable sizes");
    ok(model_parameters(" 3.2 b") == 3.2e9 && model_parameters(".5B") == 0.5e9, "blanks and a leading point");
    /* Issue 13 (11): strtod also read hex, nan, inf and exponents. */
    static const char *not_decimal[] = { "0x10B", "0x10", "nanB", "nan", "infB", "inf", "1e3B", "-1B", "+1B", "B", "." };
    int refused = 0;
    for (size_t i = 0; i < sizeof not_decimal / sizeof *not_decimal; i++)
        refused += model_parameters(not_decimal[i]) < 0;
    ok(refused == (int)(sizeof not_decimal / sizeof *not_decimal), "only plain decimal sizes are read (hex, nan, inf, exponents, signs refused)");
    char huge[80];
    memset(huge, '9', 70);
    strcpy(huge + 70, "T");
    ok(model_parameters(huge) < 0, "a number too long to be a size is refused");

    ok(server_version_compare("0.14.0", "0.14.0") == 0, "equal versions");
    ok(server_version_compare("0.13.5", "0.14.0") < 0, "0.13.5 < 0.14.0");
    ok(server_version_compare("0.32.15", "0.14.0") > 0, "0.32.15 > 0.14.0 (numeric, not text)");
    ok(server_version_compare("0.14.0-rc1", "0.14.0") < 0, "a release candidate is older than its release");
    ok(server_version_compare("0.33.0-rc2", "0.33.0-rc10") < 0, "rc2 < rc10");
    ok(server_version_compare("0.33.0-rc2", "0.32.15") > 0, "0.33.0-rc2 > 0.32.15");
    ok(server_version_compare("v0.14", "0.14.0") == 0, "a leading v and a missing patch");
    ok(server_version_compare("garbage", "0.14.0") == -2, "unreadable");
    /* Issue 13 (1a): a '.' then a non-digit left the pre-release pointer unset. */
    ok(server_version_compare("0.14.", "0.14.") == 0, "0.14. = 0.14.");
    ok(server_version_compare("0.14.", "0.14.0") == 0, "a trailing dot reads as 0.14.0");
    ok(server_version_compare("0.14.", "0.14.0-rc1") > 0, "0.14. is newer than 0.14.0-rc1");
    ok(server_version_compare("0.33.`0-rc2", "0.33.0-bc10") > 0, "0.33.`0-rc2 reads as 0.33.0: newer than a pre-release");
    ok(server_version_compare("1.x", "1.0-rc1") > 0, "1.x reads as 1.0.0");
    ok(server_version_compare("0.14.0+build.7", "0.14.0") == 0, "build metadata does not order");
    ok(server_version_compare("0.14.0-", "0.14.0") < 0 && server_version_compare("v", "0.1") == -2, "an empty pre-release; a lone v");

    double gb = 1024.0 * 1024 * 1024;
    double est = model_vram_estimate(18.6 * gb, 8192, 48, 512);
    ok(est > 19.5 * gb && est < 20.5 * gb, "qwen3-coder at 8k context: about 20 GB (%.1f)", est / gb);
    ok(model_vram_estimate(5 * gb, 32768, 0, 0) > model_vram_estimate(5 * gb, 4096, 0, 0),
       "more context needs more memory");
    return tap_done();
}
