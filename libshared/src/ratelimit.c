/* ratelimit.c: per-caller rate limits with GCRA (see sh_ratelimit.h). The
 * table is an open-addressed hash of (limit, caller) -> theoretical arrival
 * time, guarded by one process-shared mutex: a lookup is a few hundred
 * nanoseconds, and an entry whose time has passed is free again. */
#include "sh_ratelimit.h"
#include "sh_log.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#define SH_RATE_SLOTS  8192
#define SH_RATE_PROBES 16

typedef struct {
    uint64_t key;   /* hash of the limit's name and the caller; 0: free */
    int64_t tat_us; /* theoretical arrival time, monotonic */
} sh_rate_slot;

typedef struct {
    pthread_mutex_t lock;
    sh_rate_slot slots[SH_RATE_SLOTS];
} sh_rate_table;

static sh_rate_table *sh_rate_tbl;

static int sh_rate_init(sh_rate_table *t, bool shared)
{
    pthread_mutexattr_t a;
    if (pthread_mutexattr_init(&a) != 0)
        return -1;
    int rc = pthread_mutexattr_setpshared(&a, shared ? PTHREAD_PROCESS_SHARED : PTHREAD_PROCESS_PRIVATE) == 0 &&
                     pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) == 0 && pthread_mutex_init(&t->lock, &a) == 0
                 ? 0
                 : -1;
    pthread_mutexattr_destroy(&a);
    return rc;
}

int sh_rate_share(void)
{
    void *p = mmap(NULL, sizeof(sh_rate_table), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    if (sh_rate_init(p, true) != 0) {
        munmap(p, sizeof(sh_rate_table));
        return -1;
    }
    sh_rate_tbl = p;
    return 0;
}

/* FNV-1a of the limit's name and the caller: never 0. */
static uint64_t sh_rate_key(const char *name, const char *caller)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *s = name; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (const char *s = caller; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h ? h : 1;
}

/* The caller's slot (found, or a free or expired one taken), NULL when the
 * table is full around it (the request then goes through). Under the lock. */
static sh_rate_slot *sh_rate_slot_of(sh_rate_table *t, uint64_t key, int64_t now)
{
    sh_rate_slot *free_slot = NULL;
    for (int i = 0; i < SH_RATE_PROBES; i++) {
        sh_rate_slot *s = &t->slots[(key + (uint64_t)i) % SH_RATE_SLOTS];
        if (s->key == key)
            return s;
        if (free_slot == NULL && (s->key == 0 || s->tat_us <= now))
            free_slot = s;
    }
    if (free_slot != NULL) {
        free_slot->key = key;
        free_slot->tat_us = now;
    }
    return free_slot;
}

static int sh_rate_lock(sh_rate_table *t)
{
    int rc = pthread_mutex_lock(&t->lock);
    if (rc == EOWNERDEAD) /* a worker died holding it: the table is still whole enough */
        rc = pthread_mutex_consistent(&t->lock);
    return rc;
}

int sh_rate_check_or_reply(sh_req *req, const sh_rate *rate, const char *key)
{
    if (sh_rate_tbl == NULL) {
        static sh_rate_table own;
        static bool ready;
        if (!ready && sh_rate_init(&own, false) != 0)
            return 0;
        ready = true;
        sh_rate_tbl = &own;
    }
    int64_t t_us = *rate->interval_us, burst = *rate->burst > 0 ? *rate->burst : 1;
    int64_t tau = t_us * burst; /* the whole burst's worth of time */
    int64_t now = sh_now_us();
    if (sh_rate_lock(sh_rate_tbl) != 0)
        return 0;
    sh_rate_slot *s = sh_rate_slot_of(sh_rate_tbl, sh_rate_key(rate->name, key), now);
    int64_t tat = s != NULL && s->tat_us > now ? s->tat_us : now, next = tat + t_us;
    bool refused = next - now > tau;
    if (s != NULL && !refused)
        s->tat_us = next;
    pthread_mutex_unlock(&sh_rate_tbl->lock);

    int64_t used = (refused ? tat : next) - now; /* of the burst's time */
    int64_t remaining = (tau - used) / t_us;
    sh_resp_header(req, "RateLimit-Policy", "\"%s\";q=%lld;w=%lld", rate->name, (long long)burst,
                   (long long)((tau + 999999) / 1000000));
    sh_resp_header(req, "RateLimit", "\"%s\";r=%lld;t=%lld", rate->name, (long long)(remaining > 0 ? remaining : 0),
                   (long long)((used + 999999) / 1000000));
    if (!refused)
        return 0;
    int64_t wait_us = next - now - tau;
    sh_resp_header(req, "Retry-After", "%lld", (long long)((wait_us + 999999) / 1000000));
    return sh_reply_error(req, 429, "rate_limited", "Too many requests; retry in %lld second(s).",
                          (long long)((wait_us + 999999) / 1000000));
}
