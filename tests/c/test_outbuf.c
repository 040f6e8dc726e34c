/* Bounded head+tail capture of child-process output. */
#include <stdlib.h>

#include "outbuf.h"
#include "tap.h"

static char *contents(const struct outbuf *b)
{
    size_t n = outbuf_size(b);
    char *s = malloc(n + 1);
    outbuf_copy(b, s);
    s[n] = '\0';
    return s;
}

int main(void)
{
    struct outbuf b;
    char *s;

    outbuf_init(&b, 100);
    outbuf_append(&b, "hello ", 6);
    outbuf_append(&b, "world", 5);
    s = contents(&b);
    is_str(s, "hello world", "small output is kept whole");
    ok(!outbuf_truncated(&b) && b.total == 11, "not truncated, 11 bytes counted");
    free(s);
    outbuf_free(&b);

    /* Exactly at the cap: still whole, across the head/tail seam. */
    outbuf_init(&b, 10);
    for (int i = 0; i < 10; i++)
        outbuf_append(&b, "0123456789" + i, 1);
    s = contents(&b);
    is_str(s, "0123456789", "output of exactly cap bytes is whole");
    free(s);
    outbuf_append(&b, "abc", 3);
    s = contents(&b);
    is_str(s, "01234\n[... 3 bytes omitted ...]\n89abc", "head and the latest tail survive");
    ok(outbuf_truncated(&b) && b.total == 13, "truncated, 13 bytes counted");
    free(s);
    outbuf_free(&b);

    /* One huge write larger than the whole budget. */
    outbuf_init(&b, 8);
    outbuf_append(&b, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", 26);
    s = contents(&b);
    is_str(s, "ABCD\n[... 18 bytes omitted ...]\nWXYZ", "one big write keeps head and tail");
    free(s);
    /* Many small writes wrapping the ring several times. */
    for (char c = 'a'; c <= 'z'; c++)
        outbuf_append(&b, &c, 1);
    s = contents(&b);
    is_str(s, "ABCD\n[... 44 bytes omitted ...]\nwxyz", "the ring keeps the last bytes in order");
    free(s);
    outbuf_free(&b);

    /* A large capture grows lazily and copies back exactly. */
    outbuf_init(&b, 1 << 20);
    char chunk[1000];
    for (int i = 0; i < 1000; i++)
        chunk[i] = (char)('a' + i % 26);
    for (int i = 0; i < 3000; i++)
        outbuf_append(&b, chunk, sizeof chunk);
    ok(b.head_alloc <= (1 << 19) && b.tail_alloc <= (1 << 19), "memory stays within the cap");
    s = contents(&b);
    ok(outbuf_size(&b) > (1 << 20) && s[0] == 'a' && s[outbuf_size(&b) - 1] == chunk[999],
       "3 MB through a 1 MB capture keeps both ends");
    free(s);
    outbuf_free(&b);

    outbuf_init(&b, 0);
    outbuf_append(&b, "xyz", 3);
    s = contents(&b);
    is_str(s, "\n[... 3 bytes omitted ...]\n", "a zero budget keeps nothing but says so");
    free(s);
    outbuf_free(&b);
    return tap_done();
}
