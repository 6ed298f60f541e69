/* sh_arena.h: the per-request memory arena (nginx's pool). Everything a request
 * allocates comes from its arena and is released at once when the request ends;
 * non-memory resources (json-c objects, MySQL results) register cleanups that run
 * then, last registered first. Allocation never returns NULL (aborts instead).
 * Layer 0 of libshared (core); see docs/architecture.md. */
#ifndef SH_ARENA_H
#define SH_ARENA_H

#include "sh_core.h"

#include <stdarg.h>

typedef struct sh_arena sh_arena;
typedef void (*sh_cleanup_fn)(void *data);

/* Creates an arena whose first chunk holds `chunk_size` bytes; it is kept across resets. */
sh_arena *sh_arena_create(size_t chunk_size);
/* Runs cleanups and frees everything, the arena included. NULL is allowed. */
void sh_arena_destroy(sh_arena *a);
/* Runs cleanups and forgets every allocation, keeping the first chunk for reuse. */
void sh_arena_reset(sh_arena *a);

/* 16-byte aligned memory owned by the arena. */
void *sh_arena_alloc(sh_arena *a, size_t n);
void *sh_arena_calloc(sh_arena *a, size_t n);
char *sh_arena_strdup(sh_arena *a, const char *s);
char *sh_arena_strndup(sh_arena *a, const char *s, size_t n);
char *sh_arena_sprintf(sh_arena *a, const char *fmt, ...) SH_PRINTF(2, 3);
char *sh_arena_vsprintf(sh_arena *a, const char *fmt, va_list ap);
/* Registers fn(data) to run when the arena is reset or destroyed. */
void sh_arena_cleanup(sh_arena *a, sh_cleanup_fn fn, void *data);
/* Bytes handed out since the last reset (for tests and metrics). */
size_t sh_arena_used(const sh_arena *a);

/* A growable byte string living in an arena. Always NUL-terminated. */
typedef struct {
    sh_arena *arena;
    char *data;
    size_t len;
    size_t cap;
} sh_buf;

void sh_buf_init(sh_buf *b, sh_arena *a, size_t cap);
void sh_buf_append(sh_buf *b, const void *data, size_t n);
void sh_buf_puts(sh_buf *b, const char *s);
void sh_buf_putc(sh_buf *b, char c);
void sh_buf_printf(sh_buf *b, const char *fmt, ...) SH_PRINTF(2, 3);

#endif
