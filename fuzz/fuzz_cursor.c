/* fuzz_cursor.c: libFuzzer target for pagination cursors (sh_cursor_decode,
 * libshared/src/codec.c, and the base64url decoder under it): whatever a
 * client puts in ?cursor= either decodes to a valid id or is refused, and
 * every cursor the API hands out decodes to its id. Input: the cursor text
 * (up to a NUL); its first 8 bytes also serve as an id to round-trip. */
#include "fuzz.h"
#include "sh_codec.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    char *cursor = strndup((const char *)data, size);
    if (cursor == NULL)
        abort();
    int64_t id = 0;
    if (sh_cursor_decode(cursor, &id) == 0 && id < 1)
        abort();
    unsigned char raw[64];
    long n = sh_b64url_decode(raw, sizeof(raw), cursor, strlen(cursor));
    if (n > (long)sizeof(raw))
        abort();

    if (size >= 8) {
        int64_t want;
        memcpy(&want, data, sizeof(want));
        if (want < 1)
            want = want == INT64_MIN ? 1 : (want < 0 ? -want : 1);
        sh_arena *a = sh_arena_create(256);
        int64_t got = 0;
        if (sh_cursor_decode(sh_cursor_encode(a, want), &got) != 0 || got != want)
            abort();
        sh_arena_destroy(a);
    }
    free(cursor);
    return 0;
}
