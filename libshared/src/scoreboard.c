/* scoreboard.c: shared-memory pool state, its counters, and its two renderings. */
#include "sh_scoreboard.h"
#include "sh_json.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

const int64_t sh_sb_bucket_bounds_us[SH_SB_BUCKETS] = {100,   250,    500,    1000,   2500,    5000,    10000,    25000,
                                                       50000, 100000, 250000, 500000, 1000000, 2500000, INT64_MAX};

static sh_scoreboard *sh_sb_cur;
static sh_sb_slot *sh_sb_cur_slot;

void sh_sb_set_current(sh_scoreboard *sb, sh_sb_slot *slot)
{
    sh_sb_cur = sb;
    sh_sb_cur_slot = slot;
}

sh_scoreboard *sh_sb_current(void) { return sh_sb_cur; }
sh_sb_slot *sh_sb_current_slot(void) { return sh_sb_cur_slot; }

sh_scoreboard *sh_sb_create(const char *service, int nslots, int max_children, const char *mode)
{
    if (nslots < 1 || nslots > SH_SB_MAX_SLOTS)
        return NULL;
    void *p = mmap(NULL, sizeof(sh_scoreboard), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    sh_scoreboard *sb = p; /* mmap gives zeroed pages: every atomic starts at 0 */
    snprintf(sb->service, sizeof(sb->service), "%s", service);
    sb->started_wall_us = sh_wall_us();
    sb->nslots = nslots;
    sb->max_children = max_children;
    sb->mode = mode;
    for (int i = 0; i < SH_SB_MAX_SLOTS; i++)
        atomic_store(&sb->slots[i].handler, -1);
    return sb;
}

void sh_sb_destroy(sh_scoreboard *sb)
{
    if (sb != NULL)
        munmap(sb, sizeof(*sb));
}

int sh_sb_add_handler(sh_scoreboard *sb, const char *name)
{
    if (sb->nhandlers >= SH_SB_MAX_HANDLERS)
        return -1;
    int i = sb->nhandlers++;
    snprintf(sb->handlers[i].name, sizeof(sb->handlers[i].name), "%s", name);
    return i;
}

int sh_sb_count(const sh_scoreboard *sb, sh_slot_state state, int64_t generation)
{
    int n = 0;
    for (int i = 0; i < sb->nslots; i++) {
        const sh_sb_slot *s = &sb->slots[i];
        if (atomic_load(&s->state) == (int)state &&
            (generation < 0 || atomic_load(&s->generation) == (uint32_t)generation))
            n++;
    }
    return n;
}

int sh_sb_workers(const sh_scoreboard *sb)
{
    int n = 0;
    for (int i = 0; i < sb->nslots; i++)
        if (atomic_load(&sb->slots[i].state) != SH_SLOT_EMPTY)
            n++;
    return n;
}

static void sh_sb_count_status(sh_sb_handler *h, int status)
{
    for (int i = 0; i < SH_SB_MAX_STATUSES; i++) {
        int code = atomic_load(&h->statuses[i].code);
        if (code == 0) {
            int expected = 0;
            if (!atomic_compare_exchange_strong(&h->statuses[i].code, &expected, status))
                code = expected; /* another worker claimed this entry first */
            else
                code = status;
        }
        if (code == status) {
            atomic_fetch_add(&h->statuses[i].count, 1);
            return;
        }
    }
    /* more distinct statuses than entries: they are still in the totals */
}

void sh_sb_record(sh_scoreboard *sb, int handler, int status, int64_t duration_us)
{
    atomic_fetch_add(&sb->requests, 1);
    if (handler < 0 || handler >= sb->nhandlers)
        return;
    sh_sb_handler *h = &sb->handlers[handler];
    atomic_fetch_add(&h->invocations, 1);
    atomic_fetch_add(&h->busy_us, (uint64_t)(duration_us > 0 ? duration_us : 0));
    int b = 0;
    while (b < SH_SB_BUCKETS - 1 && duration_us > sh_sb_bucket_bounds_us[b])
        b++;
    atomic_fetch_add(&h->buckets[b], 1);
    sh_sb_count_status(h, status);
}

const char *sh_slot_state_name(int state)
{
    static const char *const names[] = {"empty", "starting", "idle", "busy", "exiting", "waiting"};
    if (state < 0 || state > SH_SLOT_WAITING)
        return "unknown";
    return names[state];
}

static void sh_json_add_u64(json_object *o, const char *key, uint64_t v)
{
    json_object_object_add(o, key, json_object_new_int64((int64_t)v));
}

json_object *sh_sb_to_json(const sh_scoreboard *sb)
{
    json_object *root = json_object_new_object();
    json_object_object_add(root, "service", json_object_new_string(sb->service));
    json_object_object_add(root, "mode", json_object_new_string(sb->mode ? sb->mode : ""));
    json_object_object_add(root, "max_children", json_object_new_int(sb->max_children));
    json_object_object_add(root, "uptime_s", json_object_new_int64((sh_wall_us() - sb->started_wall_us) / 1000000));

    json_object *workers = json_object_new_object();
    static const sh_slot_state states[] = {SH_SLOT_STARTING, SH_SLOT_IDLE, SH_SLOT_BUSY, SH_SLOT_WAITING,
                                           SH_SLOT_EXITING};
    int total = 0;
    for (size_t i = 0; i < SH_ARRAY_LEN(states); i++) {
        int n = sh_sb_count(sb, states[i], -1);
        total += n;
        json_object_object_add(workers, sh_slot_state_name(states[i]), json_object_new_int(n));
    }
    json_object_object_add(workers, "total", json_object_new_int(total));
    json_object_object_add(root, "workers", workers);
    json_object_object_add(root, "db_standby", json_object_new_boolean(atomic_load(&sb->db_standby) != 0));

    json_object *c = json_object_new_object();
    sh_json_add_u64(c, "requests", atomic_load(&sb->requests));
    sh_json_add_u64(c, "spawns", atomic_load(&sb->spawns));
    sh_json_add_u64(c, "idle_exits", atomic_load(&sb->idle_exits));
    sh_json_add_u64(c, "recycled", atomic_load(&sb->recycled));
    sh_json_add_u64(c, "crashes", atomic_load(&sb->crashes));
    sh_json_add_u64(c, "max_children_reached", atomic_load(&sb->max_children_reached));
    sh_json_add_u64(c, "peak_workers", atomic_load(&sb->peak_workers));
    sh_json_add_u64(c, "invocations_made", atomic_load(&sb->invocations_made));
    sh_json_add_u64(c, "invoke_refused_depth", atomic_load(&sb->invoke_refused_depth));
    sh_json_add_u64(c, "invoke_refused_budget", atomic_load(&sb->invoke_refused_budget));
    json_object_object_add(root, "counters", c);

    json_object *slots = json_object_new_array();
    int64_t now = sh_now_us();
    for (int i = 0; i < sb->nslots; i++) {
        const sh_sb_slot *s = &sb->slots[i];
        int state = atomic_load(&s->state);
        if (state == SH_SLOT_EMPTY)
            continue;
        json_object *w = json_object_new_object();
        json_object_object_add(w, "pid", json_object_new_int(atomic_load(&s->pid)));
        json_object_object_add(w, "state", json_object_new_string(sh_slot_state_name(state)));
        json_object_object_add(w, "generation", json_object_new_int64(atomic_load(&s->generation)));
        sh_json_add_u64(w, "requests", atomic_load(&s->requests));
        json_object_object_add(w, "state_for_ms",
                               json_object_new_int64((now - atomic_load(&s->state_since_us)) / 1000));
        int h = atomic_load(&s->handler);
        if ((state == SH_SLOT_BUSY || state == SH_SLOT_WAITING) && h >= 0 && h < sb->nhandlers)
            json_object_object_add(w, "handler", json_object_new_string(sb->handlers[h].name));
        json_object_array_add(slots, w);
    }
    json_object_object_add(root, "worker_list", slots);

    json_object *handlers = json_object_new_object();
    for (int i = 0; i < sb->nhandlers; i++) {
        const sh_sb_handler *h = &sb->handlers[i];
        json_object *o = json_object_new_object();
        sh_json_add_u64(o, "invocations", atomic_load(&h->invocations));
        sh_json_add_u64(o, "busy_us", atomic_load(&h->busy_us));
        json_object *st = json_object_new_object();
        for (int k = 0; k < SH_SB_MAX_STATUSES; k++) {
            int code = atomic_load(&h->statuses[k].code);
            if (code == 0)
                break;
            char key[8];
            snprintf(key, sizeof(key), "%d", code);
            sh_json_add_u64(st, key, atomic_load(&h->statuses[k].count));
        }
        json_object_object_add(o, "statuses", st);
        json_object *buckets = json_object_new_array_ext(SH_SB_BUCKETS);
        for (int b = 0; b < SH_SB_BUCKETS; b++)
            json_object_array_add(buckets, json_object_new_int64((int64_t)atomic_load(&h->buckets[b])));
        json_object_object_add(o, "buckets", buckets);
        json_object_object_add(handlers, h->name, o);
    }
    json_object_object_add(root, "handlers", handlers);
    /* the upper bounds of "buckets" (the last one is open: null) */
    json_object *bounds = json_object_new_array_ext(SH_SB_BUCKETS);
    for (int b = 0; b < SH_SB_BUCKETS; b++)
        json_object_array_add(
            bounds, sh_sb_bucket_bounds_us[b] == INT64_MAX ? NULL : json_object_new_int64(sh_sb_bucket_bounds_us[b]));
    json_object_object_add(root, "bucket_bounds_us", bounds);
    return root;
}

void sh_sb_to_prometheus(const sh_scoreboard *sb, sh_buf *out)
{
    const char *svc = sb->service;
    static const sh_slot_state states[] = {SH_SLOT_STARTING, SH_SLOT_IDLE, SH_SLOT_BUSY, SH_SLOT_WAITING,
                                           SH_SLOT_EXITING};
    sh_buf_puts(out, "# HELP pilotlight_workers Worker processes by state.\n"
                     "# TYPE pilotlight_workers gauge\n");
    for (size_t i = 0; i < SH_ARRAY_LEN(states); i++)
        sh_buf_printf(out, "pilotlight_workers{service=\"%s\",state=\"%s\"} %d\n", svc, sh_slot_state_name(states[i]),
                      sh_sb_count(sb, states[i], -1));
    sh_buf_printf(out,
                  "# HELP pilotlight_max_children Configured worker limit.\n"
                  "# TYPE pilotlight_max_children gauge\n"
                  "pilotlight_max_children{service=\"%s\"} %d\n",
                  svc, sb->max_children);
    sh_buf_printf(out,
                  "# HELP pilotlight_db_standby 1 while the master holds a standby database session for its next "
                  "worker.\n"
                  "# TYPE pilotlight_db_standby gauge\n"
                  "pilotlight_db_standby{service=\"%s\"} %d\n",
                  svc, atomic_load(&sb->db_standby) != 0);

    struct {
        const char *name;
        const char *help;
        const _Atomic uint64_t *v;
    } counters[] = {
        {"requests_total", "Requests served.", &sb->requests},
        {"spawns_total", "Workers started (cold starts).", &sb->spawns},
        {"idle_exits_total", "Workers ended after idle_timeout.", &sb->idle_exits},
        {"recycled_total", "Workers ended after max_requests.", &sb->recycled},
        {"crashes_total", "Workers that died abnormally.", &sb->crashes},
        {"max_children_reached_total", "Times a connection waited with max_children busy.", &sb->max_children_reached},
        {"invocations_total", "Invocations of other functions made by this pool.", &sb->invocations_made},
    };
    for (size_t i = 0; i < SH_ARRAY_LEN(counters); i++)
        sh_buf_printf(out,
                      "# HELP pilotlight_%s %s\n# TYPE pilotlight_%s counter\npilotlight_%s{service=\"%s\"} %llu\n",
                      counters[i].name, counters[i].help, counters[i].name, counters[i].name, svc,
                      (unsigned long long)atomic_load(counters[i].v));
    sh_buf_printf(out,
                  "# HELP pilotlight_invoke_refused_total Invocations refused by the depth or budget limit.\n"
                  "# TYPE pilotlight_invoke_refused_total counter\n"
                  "pilotlight_invoke_refused_total{service=\"%s\",reason=\"depth\"} %llu\n"
                  "pilotlight_invoke_refused_total{service=\"%s\",reason=\"budget\"} %llu\n",
                  svc, (unsigned long long)atomic_load(&sb->invoke_refused_depth), svc,
                  (unsigned long long)atomic_load(&sb->invoke_refused_budget));

    sh_buf_puts(out, "# HELP pilotlight_handler_requests_total Requests by handler and status.\n"
                     "# TYPE pilotlight_handler_requests_total counter\n");
    for (int i = 0; i < sb->nhandlers; i++) {
        const sh_sb_handler *h = &sb->handlers[i];
        for (int k = 0; k < SH_SB_MAX_STATUSES; k++) {
            int code = atomic_load(&h->statuses[k].code);
            if (code == 0)
                break;
            sh_buf_printf(out, "pilotlight_handler_requests_total{service=\"%s\",handler=\"%s\",status=\"%d\"} %llu\n",
                          svc, h->name, code, (unsigned long long)atomic_load(&h->statuses[k].count));
        }
    }
    sh_buf_puts(out, "# HELP pilotlight_handler_duration_seconds Handler latency.\n"
                     "# TYPE pilotlight_handler_duration_seconds histogram\n");
    for (int i = 0; i < sb->nhandlers; i++) {
        const sh_sb_handler *h = &sb->handlers[i];
        uint64_t cumulative = 0;
        for (int b = 0; b < SH_SB_BUCKETS; b++) {
            cumulative += atomic_load(&h->buckets[b]);
            if (b == SH_SB_BUCKETS - 1)
                sh_buf_printf(
                    out, "pilotlight_handler_duration_seconds_bucket{service=\"%s\",handler=\"%s\",le=\"+Inf\"} %llu\n",
                    svc, h->name, (unsigned long long)cumulative);
            else
                sh_buf_printf(
                    out, "pilotlight_handler_duration_seconds_bucket{service=\"%s\",handler=\"%s\",le=\"%g\"} %llu\n",
                    svc, h->name, (double)sh_sb_bucket_bounds_us[b] / 1e6, (unsigned long long)cumulative);
        }
        sh_buf_printf(out,
                      "pilotlight_handler_duration_seconds_sum{service=\"%s\",handler=\"%s\"} %.6f\n"
                      "pilotlight_handler_duration_seconds_count{service=\"%s\",handler=\"%s\"} %llu\n",
                      svc, h->name, (double)atomic_load(&h->busy_us) / 1e6, svc, h->name,
                      (unsigned long long)cumulative);
    }
}
