/* test_arena.c: the per-request arena and its buffers. */
#include "sh_arena.h"
#include "sh_test.h"

static int cleanups_run;
static void count_cleanup(void *data) { cleanups_run += *(int *)data; }

int main(void)
{
    sh_arena *a = sh_arena_create(1024);
    char *s = sh_arena_strdup(a, "hello");
    CHECK_STR(s, "hello");
    CHECK(((uintptr_t)sh_arena_alloc(a, 3) % 16) == 0);
    CHECK(((uintptr_t)sh_arena_alloc(a, 1) % 16) == 0);

    /* big allocations and many small ones */
    char *big = sh_arena_alloc(a, 100000);
    memset(big, 'x', 100000);
    for (int i = 0; i < 1000; i++) {
        char *p = sh_arena_sprintf(a, "item %d", i);
        CHECK(p != NULL);
    }
    CHECK(sh_arena_used(a) > 100000);

    int one = 1, ten = 10;
    sh_arena_cleanup(a, count_cleanup, &one);
    sh_arena_cleanup(a, count_cleanup, &ten);
    sh_arena_reset(a);
    CHECK(cleanups_run == 11);
    CHECK(sh_arena_used(a) == 0);
    sh_arena_reset(a);
    CHECK(cleanups_run == 11); /* cleanups run once */

    sh_buf b;
    sh_buf_init(&b, a, 4);
    for (int i = 0; i < 100; i++)
        sh_buf_printf(&b, "%d,", i);
    CHECK(b.len == strlen(b.data));
    CHECK(strncmp(b.data, "0,1,2,", 6) == 0);
    sh_buf_puts(&b, "end");
    CHECK(strcmp(b.data + b.len - 3, "end") == 0);

    char *z = sh_arena_calloc(a, 64);
    int zero = 1;
    for (int i = 0; i < 64; i++)
        zero &= z[i] == 0;
    CHECK(zero);
    sh_arena_destroy(a);
    TEST_DONE();
}
