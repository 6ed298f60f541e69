/* sh_scoreboard.h: the pool's shared-memory scoreboard (php-fpm's). The master
 * maps it before forking; every worker publishes its state in its slot and adds
 * to the counters with atomics, so the status page and metrics read one place.
 * It knows nothing of requests or of the pool that maps it.
 * Layer 0 of libshared (core); see docs/architecture.md. */
#ifndef SH_SCOREBOARD_H
#define SH_SCOREBOARD_H

#include "sh_arena.h"
#include "sh_json.h"

#include <stdatomic.h>

#define SH_SB_MAX_SLOTS        256
#define SH_SB_MAX_HANDLERS     64
#define SH_SB_MAX_STATUSES     16
#define SH_SB_HANDLER_NAME_MAX 48
#define SH_SB_BUCKETS          15

typedef enum {
    SH_SLOT_EMPTY = 0,
    SH_SLOT_STARTING, /* forked, not yet waiting for a connection (counts as idle) */
    SH_SLOT_IDLE,
    SH_SLOT_BUSY,
    SH_SLOT_EXITING,
    SH_SLOT_WAITING /* busy, but blocked on an invocation of another service:
                         not counted against max_children (ondemand pools) */
} sh_slot_state;

typedef enum {
    SH_EXIT_NONE = 0,
    SH_EXIT_IDLE,     /* idle_timeout elapsed (ondemand) */
    SH_EXIT_RECYCLED, /* max_requests served */
    SH_EXIT_STOPPED,  /* asked to stop (reload, shutdown, spare trimming) */
    SH_EXIT_FAILED    /* could not start or keep serving */
} sh_exit_reason;

typedef struct {
    _Atomic int state;
    _Atomic int pid;
    _Atomic int exit_reason;
    _Atomic int handler; /* route index while busy, -1 otherwise */
    _Atomic uint32_t generation;
    _Atomic int64_t started_wall_us;
    _Atomic int64_t state_since_us; /* monotonic */
    _Atomic uint64_t requests;
} sh_sb_slot;

typedef struct {
    _Atomic int code;
    _Atomic uint64_t count;
} sh_sb_status_count;

typedef struct {
    char name[SH_SB_HANDLER_NAME_MAX];
    _Atomic uint64_t invocations;
    _Atomic uint64_t busy_us;
    _Atomic uint64_t buckets[SH_SB_BUCKETS]; /* latency, non-cumulative */
    sh_sb_status_count statuses[SH_SB_MAX_STATUSES];
} sh_sb_handler;

typedef struct {
    char service[32];
    int64_t started_wall_us;
    int nslots;
    int nhandlers;
    int max_children;
    const char *mode;
    _Atomic uint32_t generation;
    _Atomic uint64_t requests;
    _Atomic uint64_t spawns; /* cold starts */
    _Atomic uint64_t idle_exits;
    _Atomic uint64_t recycled;
    _Atomic uint64_t crashes;
    _Atomic uint64_t max_children_reached;
    _Atomic int64_t saturated_at_us; /* last time max_children_reached was counted */
    _Atomic uint64_t peak_workers;
    _Atomic uint64_t invocations_made;
    _Atomic uint64_t invoke_refused_depth;
    _Atomic uint64_t invoke_refused_budget;
    _Atomic int probe_passed;    /* a swap's new master: its first worker is healthy */
    _Atomic int64_t wake_at_us;  /* wall clock: the pool's on_wake is due then (0: never) */
    _Atomic int master_watching; /* the master polls the listening socket: no need to wake it */
    _Atomic int db_standby;      /* the master holds a standby database session (PL_DB_STANDBY) */
    sh_sb_handler handlers[SH_SB_MAX_HANDLERS];
    sh_sb_slot slots[SH_SB_MAX_SLOTS];
} sh_scoreboard;

/* Upper bounds of the latency buckets, in microseconds (the last is +Inf). */
extern const int64_t sh_sb_bucket_bounds_us[SH_SB_BUCKETS];

/* Maps a zeroed scoreboard shared with future children. NULL on failure. */
sh_scoreboard *sh_sb_create(const char *service, int nslots, int max_children, const char *mode);
void sh_sb_destroy(sh_scoreboard *sb);
/* Registers a handler name; returns its index, or -1 when the table is full. */
int sh_sb_add_handler(sh_scoreboard *sb, const char *name);

/* Counts slots in `state` belonging to `generation` (or any generation when < 0). */
int sh_sb_count(const sh_scoreboard *sb, sh_slot_state state, int64_t generation);
/* Counts every non-empty slot. */
int sh_sb_workers(const sh_scoreboard *sb);

/* Adds one finished request of `handler` (may be -1) to the counters. */
void sh_sb_record(sh_scoreboard *sb, int handler, int status, int64_t duration_us);

/* The status page: the scoreboard as JSON (a new object the caller puts). */
json_object *sh_sb_to_json(const sh_scoreboard *sb);
/* Prometheus text exposition of the scoreboard, appended to `out`. */
void sh_sb_to_prometheus(const sh_scoreboard *sb, sh_buf *out);

const char *sh_slot_state_name(int state);

/* This process's scoreboard and, in a worker, its own slot: set by the pool
 * (the master before it forks, each worker after), NULL in a process that is
 * not part of a pool (a command, a unit test). Layers below the pool count
 * into them through these, without knowing the pool. */
void sh_sb_set_current(sh_scoreboard *sb, sh_sb_slot *slot);
sh_scoreboard *sh_sb_current(void);
sh_sb_slot *sh_sb_current_slot(void);

#endif
