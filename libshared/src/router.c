/* router.c: route patterns compiled to segments, matching, and the checks of
 * declared parameters and fields. Pure functions: no I/O. */
#include "sh_router.h"
#include "sh_codec.h"
#include "sh_str.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int sh_rule_index(const sh_rule *rules, const char *name, size_t len)
{
    if (rules == NULL)
        return -1;
    for (int i = 0; rules[i].name != NULL; i++)
        if (strlen(rules[i].name) == len && memcmp(rules[i].name, name, len) == 0)
            return i;
    return -1;
}

static int sh_router_compile(sh_compiled_route *c, const sh_route *route, char *err, size_t errlen)
{
    const char *p = route->pattern;
    c->route = route;
    c->nsegments = 0;
    if (p[0] != '/') {
        snprintf(err, errlen, "route %s: pattern must start with /", p);
        return -1;
    }
    int nparams = 0, nfields = 0;
    for (int i = 0; route->params && route->params[i].name; i++)
        nparams++;
    for (int i = 0; route->fields && route->fields[i].name; i++)
        nfields++;
    if (nparams > SH_MAX_PARAMS || nfields > SH_MAX_FIELDS) {
        snprintf(err, errlen, "route %s: too many parameters or fields", p);
        return -1;
    }
    while (*p == '/') {
        p++;
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0)
            break; /* trailing slash */
        if (c->nsegments == SH_MAX_SEGMENTS) {
            snprintf(err, errlen, "route %s: too many segments", route->pattern);
            return -1;
        }
        if (p[0] == '{') {
            if (p[len - 1] != '}' || len < 3) {
                snprintf(err, errlen, "route %s: malformed parameter", route->pattern);
                return -1;
            }
            int idx = sh_rule_index(route->params, p + 1, len - 2);
            if (idx < 0 || (route->params[idx].flags & SH_QUERY)) {
                snprintf(err, errlen, "route %s: path parameter %.*s is not declared", route->pattern, (int)(len - 2),
                         p + 1);
                return -1;
            }
            c->segments[c->nsegments].literal = NULL;
            c->segments[c->nsegments].param = idx;
        } else {
            char *lit = malloc(len + 1);
            if (lit == NULL) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            memcpy(lit, p, len);
            lit[len] = '\0';
            c->segments[c->nsegments].literal = lit;
            c->segments[c->nsegments].param = -1;
        }
        c->nsegments++;
        p += len;
    }
    return 0;
}

int sh_router_init(sh_router *r, const sh_route *routes, char *err, size_t errlen)
{
    int n = 0;
    while (routes[n].method != NULL)
        n++;
    r->nroutes = 0;
    r->routes = calloc((size_t)(n ? n : 1), sizeof(sh_compiled_route));
    if (r->routes == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (routes[i].handler == NULL) {
            snprintf(err, errlen, "route %s %s has no handler", routes[i].method, routes[i].pattern);
            sh_router_free(r);
            return -1;
        }
        if ((routes[i].flags & SH_IDEMPOTENT) && !(routes[i].flags & (SH_AUTH | SH_ADMIN))) {
            snprintf(err, errlen, "route %s %s: SH_IDEMPOTENT needs SH_AUTH (keys are per user)", routes[i].method,
                     routes[i].pattern);
            sh_router_free(r);
            return -1;
        }
        r->nroutes = i + 1; /* so sh_router_free releases what was compiled */
        if (sh_router_compile(&r->routes[i], &routes[i], err, errlen) != 0) {
            sh_router_free(r);
            return -1;
        }
    }
    return 0;
}

void sh_router_free(sh_router *r)
{
    for (int i = 0; i < r->nroutes; i++)
        for (int k = 0; k < r->routes[i].nsegments; k++)
            free((char *)r->routes[i].segments[k].literal);
    free(r->routes);
    r->routes = NULL;
    r->nroutes = 0;
}

/* Splits path into segments in place-free form: starts and lengths. */
static int sh_split_path(const char *path, const char **starts, size_t *lens, int max)
{
    int n = 0;
    const char *p = path;
    while (*p == '/') {
        while (*p == '/')
            p++; /* nginx merges slashes; be as lenient for direct callers */
        if (*p == '\0')
            break;
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (n == max)
            return -1;
        starts[n] = p;
        lens[n] = len;
        n++;
        p += len;
    }
    return n;
}

static bool sh_route_matches_path(const sh_compiled_route *c, const char **starts, const size_t *lens, int n,
                                  sh_match *m)
{
    if (c->nsegments != n)
        return false;
    for (int i = 0; i < n; i++) {
        const char *lit = c->segments[i].literal;
        if (lit != NULL) {
            if (strlen(lit) != lens[i] || memcmp(lit, starts[i], lens[i]) != 0)
                return false;
        } else if (m != NULL) {
            m->values[c->segments[i].param] = starts[i];
            m->lens[c->segments[i].param] = lens[i];
        }
    }
    return true;
}

/* Adds meth to the Allow list of m (once). */
static void sh_allow_add(sh_match *m, const char *meth)
{
    size_t ml = strlen(meth), len = strlen(m->allow);
    for (const char *s = m->allow; (s = strstr(s, meth)) != NULL; s += ml)
        if ((s == m->allow || s[-1] == ' ') && (s[ml] == ',' || s[ml] == '\0'))
            return;
    if (len + ml + 3 >= sizeof(m->allow))
        return;
    if (len > 0) {
        memcpy(m->allow + len, ", ", 2);
        len += 2;
    }
    memcpy(m->allow + len, meth, ml + 1);
}

/* Whether a route of method `route_method` answers `method`: its own, and
 * HEAD for GET (RFC 9110 §9.3.2: the same answer without its body). */
static bool sh_method_matches(const char *route_method, const char *method)
{
    return strcmp(route_method, method) == 0 || (strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0);
}

sh_match_result sh_router_match(const sh_router *r, const char *method, const char *path, sh_match *m)
{
    const char *starts[SH_MAX_SEGMENTS];
    size_t lens[SH_MAX_SEGMENTS];
    memset(m, 0, sizeof(*m));
    m->route_index = -1;
    int n = sh_split_path(path, starts, lens, SH_MAX_SEGMENTS);
    if (n < 0)
        return SH_MATCH_NOT_FOUND;
    bool path_found = false;
    for (int i = 0; i < r->nroutes; i++) {
        const sh_compiled_route *c = &r->routes[i];
        if (!sh_route_matches_path(c, starts, lens, n, NULL))
            continue;
        if (sh_method_matches(c->route->method, method)) {
            sh_route_matches_path(c, starts, lens, n, m);
            m->route_index = i;
            return SH_MATCH_FOUND;
        }
        path_found = true;
        sh_allow_add(m, c->route->method);
        if (strcmp(c->route->method, "GET") == 0)
            sh_allow_add(m, "HEAD");
    }
    return path_found ? SH_MATCH_BAD_METHOD : SH_MATCH_NOT_FOUND;
}

/* One declared parameter or field as data: {"name", "in" (parameters only:
 * "path" or "query"), "type", "required"?, "nullable"?, and its bounds:
 * "min"/"max" for an integer, "min_length"/"max_length" (characters) for a
 * string, "values" for an enum}. */
static json_object *sh_rule_to_json(const sh_rule *rule, bool param)
{
    static const char *const types[] = {
        [SH_T_ID] = "id",     [SH_T_INT] = "integer",   [SH_T_STRING] = "string", [SH_T_BOOL] = "bool",
        [SH_T_ENUM] = "enum", [SH_T_OBJECT] = "object", [SH_T_CURSOR] = "cursor"};
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(rule->name));
    if (param)
        json_object_object_add(o, "in", json_object_new_string((rule->flags & SH_QUERY) ? "query" : "path"));
    json_object_object_add(o, "type", json_object_new_string(types[rule->type]));
    if (rule->flags & SH_REQUIRED)
        json_object_object_add(o, "required", json_object_new_boolean(1));
    if (rule->flags & SH_NULLABLE)
        json_object_object_add(o, "nullable", json_object_new_boolean(1));
    if (rule->type == SH_T_INT) {
        json_object_object_add(o, "min", json_object_new_int64(rule->min));
        json_object_object_add(o, "max", json_object_new_int64(rule->max));
    } else if (rule->type == SH_T_STRING) {
        json_object_object_add(o, "min_length", json_object_new_int64(rule->min));
        if (rule->max > 0) /* 0: no upper bound (sh_check_string) */
            json_object_object_add(o, "max_length", json_object_new_int64(rule->max));
    } else if (rule->type == SH_T_ENUM) {
        json_object *values = json_object_new_array();
        for (int i = 0; rule->choices[i] != NULL; i++)
            json_object_array_add(values, json_object_new_string(rule->choices[i]));
        json_object_object_add(o, "values", values);
    }
    return o;
}

/* A rule list as a JSON array (SH_RULE_END-terminated). */
static json_object *sh_rules_to_json(const sh_rule *rules, bool param)
{
    json_object *list = json_object_new_array();
    for (int i = 0; rules[i].name != NULL; i++)
        json_object_array_add(list, sh_rule_to_json(&rules[i], param));
    return list;
}

json_object *sh_router_to_json(const sh_router *router)
{
    static const struct {
        unsigned flag;
        const char *name;
    } names[] = {
        {SH_JSON, "json"},
        {SH_INTERNAL, "internal"},
        {SH_TEST, "test"},
        {SH_AUTH, "auth"},
        {SH_ADMIN, "admin"},
        {SH_BODY_OPTIONAL, "body_optional"},
        {SH_TOKEN_QUERY, "token_query"},
        {SH_IDEMPOTENT, "idempotent"},
    };
    json_object *list = json_object_new_array();
    for (int i = 0; i < router->nroutes; i++) {
        const sh_route *r = router->routes[i].route;
        /* SH_ADMIN implies SH_AUTH (the dispatcher treats it so) */
        unsigned flags = r->flags | ((r->flags & SH_ADMIN) ? SH_AUTH : 0u);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "method", json_object_new_string(r->method));
        json_object_object_add(o, "pattern", json_object_new_string(r->pattern));
        json_object_object_add(o, "handler", json_object_new_string(r->name ? r->name : ""));
        json_object *fl = json_object_new_array();
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
            if (flags & names[k].flag)
                json_object_array_add(fl, json_object_new_string(names[k].name));
        json_object_object_add(o, "flags", fl);
        if (r->params != NULL)
            json_object_object_add(o, "params", sh_rules_to_json(r->params, true));
        if (r->fields != NULL) /* NULL: any object (a json route) */
            json_object_object_add(o, "fields", sh_rules_to_json(r->fields, false));
        if (r->rate != NULL) {
            json_object *rate = json_object_new_object();
            json_object_object_add(rate, "name", json_object_new_string(r->rate->name));
            /* its values are configuration: absent when none was read (--print-routes) */
            if (*r->rate->interval_us > 0) {
                json_object_object_add(rate, "interval_us", json_object_new_int64(*r->rate->interval_us));
                json_object_object_add(rate, "burst", json_object_new_int64(*r->rate->burst));
            }
            json_object_object_add(o, "rate_limit", rate);
        }
        json_object_array_add(list, o);
    }
    return list;
}

/* --- rules -------------------------------------------------------------------- */

static int sh_check_string(const sh_rule *rule, const char *s, size_t len, sh_arena *a, sh_value *out, const char **why)
{
    if (memchr(s, '\0', len) != NULL) {
        *why = "must not contain NUL characters";
        return -1;
    }
    if (!sh_utf8_valid(s, len)) {
        *why = "must be valid UTF-8";
        return -1;
    }
    size_t chars = sh_utf8_length(s, len);
    if ((int64_t)chars < rule->min) {
        *why = rule->min <= 1 ? "must not be empty" : "is too short";
        return -1;
    }
    if (rule->max > 0 && (int64_t)chars > rule->max) {
        *why = "is too long";
        return -1;
    }
    out->s = a ? sh_arena_strndup(a, s, len) : s;
    out->len = len;
    return 0;
}

static int sh_check_enum(const sh_rule *rule, const char *s, size_t len, sh_value *out, const char **why)
{
    for (int i = 0; rule->choices[i] != NULL; i++) {
        if (strlen(rule->choices[i]) == len && memcmp(rule->choices[i], s, len) == 0) {
            out->i = i;
            out->s = rule->choices[i];
            out->len = len;
            return 0;
        }
    }
    *why = "is not one of the allowed values";
    return -1;
}

int sh_rule_check_text(const sh_rule *rule, const char *raw, size_t len, sh_arena *a, sh_value *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    switch (rule->type) {
    case SH_T_ID:
        if (len == 0 || len > 19 || raw[0] == '0' || sh_parse_int64(raw, len, 1, INT64_MAX, &out->i) != 0) {
            *why = "must be a positive integer id";
            return -1;
        }
        break;
    case SH_T_INT:
        if (sh_parse_int64(raw, len, INT64_MIN, INT64_MAX, &out->i) != 0) {
            *why = "must be an integer";
            return -1;
        }
        if (out->i < rule->min || out->i > rule->max) {
            *why = "is out of range";
            return -1;
        }
        break;
    case SH_T_BOOL:
        if ((len == 4 && memcmp(raw, "true", 4) == 0) || (len == 1 && raw[0] == '1'))
            out->i = 1;
        else if ((len == 5 && memcmp(raw, "false", 5) == 0) || (len == 1 && raw[0] == '0'))
            out->i = 0;
        else {
            *why = "must be true or false";
            return -1;
        }
        break;
    case SH_T_STRING:
        if (sh_check_string(rule, raw, len, a, out, why) != 0)
            return -1;
        break;
    case SH_T_ENUM:
        if (sh_check_enum(rule, raw, len, out, why) != 0)
            return -1;
        break;
    case SH_T_CURSOR: {
        char cursor[101];
        if (len == 0 || len >= sizeof(cursor)) {
            *why = "is not a cursor this API gave";
            return -1;
        }
        memcpy(cursor, raw, len);
        cursor[len] = '\0';
        if (sh_cursor_decode(cursor, &out->i) != 0) {
            *why = "is not a cursor this API gave";
            return -1;
        }
        out->s = a ? sh_arena_strndup(a, raw, len) : raw;
        out->len = len;
        break;
    }
    case SH_T_OBJECT: *why = "cannot be given here"; return -1;
    }
    out->present = true;
    return 0;
}

int sh_rule_check_json(const sh_rule *rule, json_object *v, sh_arena *a, sh_value *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    out->obj = v;
    if (v == NULL) { /* json-c represents null as NULL */
        if (!(rule->flags & SH_NULLABLE)) {
            *why = "must not be null";
            return -1;
        }
        out->present = true;
        out->is_null = true;
        return 0;
    }
    switch (rule->type) {
    case SH_T_ID:
    case SH_T_INT: {
        if (!json_object_is_type(v, json_type_int)) {
            *why = rule->type == SH_T_ID ? "must be a positive integer id" : "must be an integer";
            return -1;
        }
        errno = 0;
        int64_t n = json_object_get_int64(v);
        /* json-c keeps a number above INT64_MAX as a uint64 (saturated at
         * UINT64_MAX) and saturates one below INT64_MIN to INT64_MIN: INT64_MAX
         * itself is exact (and a valid id, as in a path), INT64_MIN is not
         * told apart from an overflow and so refused */
        if (errno == ERANGE || n == INT64_MIN || json_object_get_uint64(v) > (uint64_t)INT64_MAX) {
            *why = "is out of range";
            return -1;
        }
        int64_t lo = rule->type == SH_T_ID ? 1 : rule->min, hi = rule->type == SH_T_ID ? INT64_MAX : rule->max;
        if (n < lo || n > hi) {
            *why = rule->type == SH_T_ID ? "must be a positive integer id" : "is out of range";
            return -1;
        }
        out->i = n;
        break;
    }
    case SH_T_BOOL:
        if (!json_object_is_type(v, json_type_boolean)) {
            *why = "must be true or false";
            return -1;
        }
        out->i = json_object_get_boolean(v) ? 1 : 0;
        break;
    case SH_T_STRING:
    case SH_T_ENUM: {
        if (!json_object_is_type(v, json_type_string)) {
            *why = "must be a string";
            return -1;
        }
        const char *s = json_object_get_string(v);
        size_t len = (size_t)json_object_get_string_len(v);
        int rc = rule->type == SH_T_STRING ? sh_check_string(rule, s, len, a, out, why)
                                           : sh_check_enum(rule, s, len, out, why);
        if (rc != 0)
            return -1;
        break;
    }
    case SH_T_CURSOR: *why = "cannot be given here"; return -1;
    case SH_T_OBJECT:
        if (!json_object_is_type(v, json_type_object)) {
            *why = "must be an object";
            return -1;
        }
        break;
    }
    out->present = true;
    return 0;
}
