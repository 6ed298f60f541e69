/* test_scoreboard.c: shared counters across fork, state counts, renderings. */
#include "sh_scoreboard.h"
#include "sh_test.h"

#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    sh_scoreboard *sb = sh_sb_create("unit", 8, 4, "ondemand");
    CHECK(sb != NULL);
    CHECK(sh_sb_add_handler(sb, "h_one") == 0);
    CHECK(sh_sb_add_handler(sb, "h_two") == 1);

    atomic_store(&sb->slots[0].state, SH_SLOT_IDLE);
    atomic_store(&sb->slots[1].state, SH_SLOT_BUSY);
    atomic_store(&sb->slots[2].state, SH_SLOT_BUSY);
    atomic_store(&sb->slots[2].generation, 1);
    CHECK(sh_sb_count(sb, SH_SLOT_BUSY, -1) == 2);
    CHECK(sh_sb_count(sb, SH_SLOT_BUSY, 0) == 1);
    CHECK(sh_sb_count(sb, SH_SLOT_BUSY, 1) == 1);
    CHECK(sh_sb_workers(sb) == 3);

    /* children write, the parent sees it */
    for (int c = 0; c < 4; c++) {
        pid_t pid = fork();
        if (pid == 0) {
            for (int i = 0; i < 1000; i++)
                sh_sb_record(sb, i % 2, i % 3 == 0 ? 404 : 200, 300);
            _exit(0);
        }
    }
    while (wait(NULL) > 0)
        ;
    CHECK(atomic_load(&sb->requests) == 4000);
    CHECK(atomic_load(&sb->handlers[0].invocations) == 2000);
    CHECK(atomic_load(&sb->handlers[0].busy_us) == 2000 * 300);
    uint64_t total = 0;
    for (int k = 0; k < SH_SB_MAX_STATUSES; k++)
        total += atomic_load(&sb->handlers[1].statuses[k].count);
    CHECK(total == 2000);
    CHECK(atomic_load(&sb->handlers[0].buckets[2]) == 2000); /* 300 us falls in (250, 500] */

    sh_sb_record(sb, -1, 404, 10); /* unrouted requests count in the total only */
    CHECK(atomic_load(&sb->requests) == 4001);

    json_object *j = sh_sb_to_json(sb);
    json_object *workers, *busy, *counters, *handlers;
    CHECK(json_object_object_get_ex(j, "workers", &workers));
    CHECK(json_object_object_get_ex(workers, "busy", &busy) && json_object_get_int(busy) == 2);
    CHECK(json_object_object_get_ex(j, "counters", &counters));
    CHECK(json_object_object_get_ex(j, "handlers", &handlers));
    CHECK(json_object_object_get_ex(handlers, "h_two", NULL));
    json_object_put(j);

    sh_arena *a = sh_arena_create(4096);
    sh_buf out;
    sh_buf_init(&out, a, 1024);
    sh_sb_to_prometheus(sb, &out);
    CHECK(strstr(out.data, "pilotlight_requests_total{service=\"unit\"} 4001") != NULL);
    CHECK(strstr(out.data, "pilotlight_workers{service=\"unit\",state=\"busy\"} 2") != NULL);
    CHECK(strstr(out.data, "handler=\"h_one\",le=\"+Inf\"} 2000") != NULL);
    CHECK(strstr(out.data, "pilotlight_handler_requests_total{service=\"unit\",handler=\"h_two\",status=\"404\"}") !=
          NULL);
    sh_arena_destroy(a);

    CHECK(sh_sb_create("bad", 0, 1, "static") == NULL);
    CHECK(sh_sb_create("bad", SH_SB_MAX_SLOTS + 1, 1, "static") == NULL);
    sh_sb_destroy(sb);
    TEST_DONE();
}
