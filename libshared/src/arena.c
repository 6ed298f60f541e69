/* arena.c: bump allocation in linked chunks, cleanups in a LIFO list. */
#include "sh_arena.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SH_ARENA_ALIGN 16

typedef struct sh_chunk {
    struct sh_chunk *next;
    size_t size;
    size_t used;
    _Alignas(SH_ARENA_ALIGN) unsigned char data[];
} sh_chunk;

typedef struct sh_cleanup {
    struct sh_cleanup *next;
    sh_cleanup_fn fn;
    void *data;
} sh_cleanup;

struct sh_arena {
    sh_chunk *first;   /* kept across resets */
    sh_chunk *current; /* where allocation happens */
    sh_cleanup *cleanups;
    size_t chunk_size;
    size_t used;
};

static sh_chunk *sh_chunk_new(size_t size)
{
    sh_chunk *c = sh_xmalloc(sizeof(sh_chunk) + size);
    c->next = NULL;
    c->size = size;
    c->used = 0;
    return c;
}

sh_arena *sh_arena_create(size_t chunk_size)
{
    sh_arena *a = sh_xmalloc(sizeof(*a));
    if (chunk_size < 1024)
        chunk_size = 1024;
    a->chunk_size = chunk_size;
    a->first = a->current = sh_chunk_new(chunk_size);
    a->cleanups = NULL;
    a->used = 0;
    return a;
}

static void sh_arena_run_cleanups(sh_arena *a)
{
    /* A cleanup may not allocate from the arena: the list is detached first. */
    sh_cleanup *c = a->cleanups;
    a->cleanups = NULL;
    for (; c != NULL; c = c->next)
        c->fn(c->data);
}

void sh_arena_reset(sh_arena *a)
{
    sh_arena_run_cleanups(a);
    sh_chunk *c = a->first->next;
    while (c != NULL) {
        sh_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->first->next = NULL;
    a->first->used = 0;
    a->current = a->first;
    a->used = 0;
}

void sh_arena_destroy(sh_arena *a)
{
    if (a == NULL)
        return;
    sh_arena_reset(a);
    free(a->first);
    free(a);
}

void *sh_arena_alloc(sh_arena *a, size_t n)
{
    size_t need = (n + SH_ARENA_ALIGN - 1) & ~(size_t)(SH_ARENA_ALIGN - 1);
    if (need < n)
        sh_fatal("arena allocation of %zu bytes overflows", n);
    sh_chunk *c = a->current;
    if (c->size - c->used < need) {
        size_t size = need > a->chunk_size ? need : a->chunk_size;
        sh_chunk *fresh = sh_chunk_new(size);
        /* Keep `current` as the chunk with room: a big one-off goes behind it. */
        if (need > a->chunk_size / 2) {
            fresh->next = c->next;
            c->next = fresh;
            fresh->used = need;
            a->used += need;
            return fresh->data;
        }
        fresh->next = c->next;
        c->next = fresh;
        a->current = c = fresh;
    }
    void *p = c->data + c->used;
    c->used += need;
    a->used += need;
    return p;
}

void *sh_arena_calloc(sh_arena *a, size_t n)
{
    void *p = sh_arena_alloc(a, n);
    memset(p, 0, n);
    return p;
}

char *sh_arena_strndup(sh_arena *a, const char *s, size_t n)
{
    char *p = sh_arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *sh_arena_strdup(sh_arena *a, const char *s) { return sh_arena_strndup(a, s, strlen(s)); }

char *sh_arena_vsprintf(sh_arena *a, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        return sh_arena_strdup(a, "");
    char *p = sh_arena_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *sh_arena_sprintf(sh_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = sh_arena_vsprintf(a, fmt, ap);
    va_end(ap);
    return p;
}

void sh_arena_cleanup(sh_arena *a, sh_cleanup_fn fn, void *data)
{
    sh_cleanup *c = sh_arena_alloc(a, sizeof(*c));
    c->fn = fn;
    c->data = data;
    c->next = a->cleanups;
    a->cleanups = c;
}

size_t sh_arena_used(const sh_arena *a) { return a->used; }

void sh_buf_init(sh_buf *b, sh_arena *a, size_t cap)
{
    b->arena = a;
    b->cap = cap ? cap : 64;
    b->data = sh_arena_alloc(a, b->cap);
    b->len = 0;
    b->data[0] = '\0';
}

static void sh_buf_reserve(sh_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap * 2;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = sh_arena_alloc(b->arena, cap);
    memcpy(p, b->data, b->len + 1);
    b->data = p;
    b->cap = cap;
}

void sh_buf_append(sh_buf *b, const void *data, size_t n)
{
    sh_buf_reserve(b, n);
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void sh_buf_puts(sh_buf *b, const char *s) { sh_buf_append(b, s, strlen(s)); }

void sh_buf_putc(sh_buf *b, char c) { sh_buf_append(b, &c, 1); }

void sh_buf_printf(sh_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n > 0) {
        sh_buf_reserve(b, (size_t)n);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        b->len += (size_t)n;
    }
    va_end(ap);
}
