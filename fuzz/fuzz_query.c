/* fuzz_query.c: libFuzzer target for query-string handling as the dispatcher
 * does it (libshared/src/dispatch.c, str.c, router.c): find each declared
 * parameter in the raw query, percent-decode it ('+' is a space), validate it
 * against its rule. Input: the raw query string (up to its first NUL, as
 * FastCGI hands it over). */
#include "fuzz.h"
#include "sh_router.h"
#include "sh_str.h"

#include <stdlib.h>
#include <string.h>

static const char *const kinds[] = {"a", "b", NULL};
static const sh_param params[] = {
    SH_QUERY_INT("limit", 1, 100), SH_QUERY_STR("cursor", 100), SH_QUERY_ID("owner_id"),
    SH_QUERY_BOOL("all"),          SH_QUERY_ID("after"),        {"kind", SH_T_ENUM, SH_QUERY, 0, 0, kinds},
    SH_QUERY_STR("q", 0),
};

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    char *query = strndup((const char *)data, size);
    if (query == NULL)
        abort();
    size_t qlen = strlen(query);
    sh_arena *a = sh_arena_create(1024);
    for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
        const char *raw = NULL;
        size_t len = 0;
        int found = sh_query_find(query, params[i].name, &raw, &len);
        if (found < -1 || found > 1)
            abort();
        if (found != 1)
            continue;
        if (raw < query || raw + len > query + qlen)
            abort(); /* the value lies within the query */
        char *decoded = sh_arena_alloc(a, len + 1);
        long n = sh_percent_decode(decoded, raw, len, true);
        if (n < 0)
            continue;
        if ((size_t)n > len || decoded[n] != '\0')
            abort();
        sh_value v;
        const char *why = NULL;
        if (sh_rule_check_text(&params[i], decoded, (size_t)n, a, &v, &why) != 0) {
            if (why == NULL)
                abort();
            continue;
        }
        if (!v.present)
            abort();
        if (params[i].type == SH_T_STRING &&
            (v.s == NULL || !sh_utf8_valid(v.s, v.len) || memchr(v.s, '\0', v.len) != NULL))
            abort();
        if ((params[i].type == SH_T_INT || params[i].type == SH_T_ID) && (v.i < params[i].min || v.i > params[i].max))
            abort();
    }
    sh_arena_destroy(a);
    free(query);
    return 0;
}
