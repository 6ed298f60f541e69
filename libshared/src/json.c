/* json.c: bounded, strict JSON parsing and compact serialization. */
#include "sh_json.h"
#include "sh_str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- a strict RFC 8259 scanner --------------------------------------------------
 * json-c is lenient in places (single-quoted strings, duplicate keys silently
 * merged). The scanner checks the exact grammar first, bounds the nesting, and
 * records how many members each object has in text order, so that duplicate
 * keys are found by comparing those counts with json-c's tree. */

typedef struct {
    const char *s;
    size_t len;
    size_t pos;
    int depth;
    int max_depth;
    uint32_t *counts;
    size_t ncounts;
    size_t cap;
    const char *why;
} sh_scan;

static int sh_scan_value(sh_scan *sc);

static int sh_scan_fail(sh_scan *sc, const char *why)
{
    if (sc->why == NULL)
        sc->why = why;
    return -1;
}

static void sh_scan_ws(sh_scan *sc)
{
    while (sc->pos < sc->len) {
        char c = sc->s[sc->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return;
        sc->pos++;
    }
}

static int sh_scan_hex4(sh_scan *sc, unsigned *out)
{
    if (sc->len - sc->pos < 4)
        return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = sc->s[sc->pos + (size_t)i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    sc->pos += 4;
    *out = v;
    return 0;
}

static int sh_scan_string(sh_scan *sc)
{
    sc->pos++; /* opening quote */
    while (sc->pos < sc->len) {
        unsigned char c = (unsigned char)sc->s[sc->pos++];
        if (c == '"')
            return 0;
        if (c < 0x20)
            return sh_scan_fail(sc, "a string contains a raw control character");
        if (c != '\\')
            continue;
        if (sc->pos >= sc->len)
            break;
        char e = sc->s[sc->pos++];
        if (strchr("\"\\/bfnrt", e) != NULL && e != '\0')
            continue;
        if (e != 'u')
            return sh_scan_fail(sc, "a string contains an invalid escape");
        unsigned cp;
        if (sh_scan_hex4(sc, &cp) != 0)
            return sh_scan_fail(sc, "a string contains an invalid \\u escape");
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return sh_scan_fail(sc, "a string contains an unpaired surrogate");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned lo;
            if (sc->len - sc->pos < 6 || sc->s[sc->pos] != '\\' || sc->s[sc->pos + 1] != 'u')
                return sh_scan_fail(sc, "a string contains an unpaired surrogate");
            sc->pos += 2;
            if (sh_scan_hex4(sc, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
                return sh_scan_fail(sc, "a string contains an unpaired surrogate");
        }
    }
    return sh_scan_fail(sc, "a string is not terminated");
}

static bool sh_scan_digit(sh_scan *sc) { return sc->pos < sc->len && sc->s[sc->pos] >= '0' && sc->s[sc->pos] <= '9'; }

static int sh_scan_number(sh_scan *sc)
{
    if (sc->s[sc->pos] == '-')
        sc->pos++;
    if (!sh_scan_digit(sc))
        return sh_scan_fail(sc, "a number is malformed");
    if (sc->s[sc->pos] == '0')
        sc->pos++;
    else
        while (sh_scan_digit(sc))
            sc->pos++;
    if (sc->pos < sc->len && sc->s[sc->pos] == '.') {
        sc->pos++;
        if (!sh_scan_digit(sc))
            return sh_scan_fail(sc, "a number is malformed");
        while (sh_scan_digit(sc))
            sc->pos++;
    }
    if (sc->pos < sc->len && (sc->s[sc->pos] == 'e' || sc->s[sc->pos] == 'E')) {
        sc->pos++;
        if (sc->pos < sc->len && (sc->s[sc->pos] == '+' || sc->s[sc->pos] == '-'))
            sc->pos++;
        if (!sh_scan_digit(sc))
            return sh_scan_fail(sc, "a number is malformed");
        while (sh_scan_digit(sc))
            sc->pos++;
    }
    return 0;
}

static int sh_scan_literal(sh_scan *sc, const char *word)
{
    size_t n = strlen(word);
    if (sc->len - sc->pos < n || memcmp(sc->s + sc->pos, word, n) != 0)
        return sh_scan_fail(sc, "unexpected character");
    sc->pos += n;
    return 0;
}

static int sh_scan_container(sh_scan *sc, bool object)
{
    if (++sc->depth > sc->max_depth)
        return sh_scan_fail(sc, "nesting too deep");
    size_t slot = 0;
    if (object) {
        if (sc->ncounts == sc->cap) {
            sc->cap = sc->cap ? sc->cap * 2 : 16;
            uint32_t *grown = realloc(sc->counts, sc->cap * sizeof(uint32_t));
            if (grown == NULL)
                return sh_scan_fail(sc, "out of memory");
            sc->counts = grown;
        }
        slot = sc->ncounts++;
        sc->counts[slot] = 0;
    }
    char close = object ? '}' : ']';
    sc->pos++;
    sh_scan_ws(sc);
    if (sc->pos < sc->len && sc->s[sc->pos] == close) {
        sc->pos++;
        sc->depth--;
        return 0;
    }
    for (;;) {
        sh_scan_ws(sc);
        if (object) {
            if (sc->pos >= sc->len || sc->s[sc->pos] != '"')
                return sh_scan_fail(sc, "an object key must be a string");
            if (sh_scan_string(sc) != 0)
                return -1;
            sh_scan_ws(sc);
            if (sc->pos >= sc->len || sc->s[sc->pos] != ':')
                return sh_scan_fail(sc, "expected ':' after an object key");
            sc->pos++;
            sc->counts[slot]++;
        }
        if (sh_scan_value(sc) != 0)
            return -1;
        sh_scan_ws(sc);
        if (sc->pos >= sc->len)
            return sh_scan_fail(sc, "the JSON text ends too early");
        char c = sc->s[sc->pos++];
        if (c == close) {
            sc->depth--;
            return 0;
        }
        if (c != ',')
            return sh_scan_fail(sc, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int sh_scan_value(sh_scan *sc)
{
    sh_scan_ws(sc);
    if (sc->pos >= sc->len)
        return sh_scan_fail(sc, "the JSON text ends too early");
    char c = sc->s[sc->pos];
    switch (c) {
    case '{': return sh_scan_container(sc, true);
    case '[': return sh_scan_container(sc, false);
    case '"': return sh_scan_string(sc);
    case 't': return sh_scan_literal(sc, "true");
    case 'f': return sh_scan_literal(sc, "false");
    case 'n': return sh_scan_literal(sc, "null");
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return sh_scan_number(sc);
        return sh_scan_fail(sc, "unexpected character");
    }
}

/* Walks json-c's tree in text order, comparing member counts with the scan. */
static bool sh_json_counts_match(json_object *o, const uint32_t *counts, size_t n, size_t *i)
{
    if (json_object_is_type(o, json_type_object)) {
        if (*i >= n || (uint32_t)json_object_object_length(o) != counts[*i])
            return false;
        (*i)++;
        json_object_object_foreach (o, key, val) {
            (void)key;
            if (!sh_json_counts_match(val, counts, n, i))
                return false;
        }
    } else if (json_object_is_type(o, json_type_array)) {
        size_t len = json_object_array_length(o);
        for (size_t k = 0; k < len; k++)
            if (!sh_json_counts_match(json_object_array_get_idx(o, k), counts, n, i))
                return false;
    }
    return true;
}

json_object *sh_json_parse(const char *data, size_t len, int max_depth, const char **why)
{
    static char depth_msg[64];
    if (len == 0) {
        *why = "the body is empty";
        return NULL;
    }
    if (len > (size_t)INT32_MAX) {
        *why = "the body is too large";
        return NULL;
    }
    if (!sh_utf8_valid(data, len)) {
        *why = "the body is not valid UTF-8";
        return NULL;
    }
    if (memchr(data, '\0', len) != NULL) {
        *why = "the body contains a NUL byte";
        return NULL;
    }
    sh_scan sc = {.s = data, .len = len, .max_depth = max_depth};
    if (sh_scan_value(&sc) == 0) {
        sh_scan_ws(&sc);
        if (sc.pos != len)
            sh_scan_fail(&sc, "unexpected data after the JSON value");
    }
    if (sc.why != NULL) {
        free(sc.counts);
        if (strcmp(sc.why, "nesting too deep") == 0) {
            snprintf(depth_msg, sizeof(depth_msg), "nesting deeper than %d levels", max_depth);
            *why = depth_msg;
        } else {
            *why = sc.why;
        }
        return NULL;
    }

    json_tokener *tok = json_tokener_new_ex(max_depth + 1);
    if (tok == NULL) {
        free(sc.counts);
        *why = "out of memory";
        return NULL;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *obj = json_tokener_parse_ex(tok, data, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    if (jerr == json_tokener_continue) {
        /* a top-level number or literal ends only at the end of input: json-c
         * is told so with a terminating NUL (the scanner checked the text) */
        obj = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
    }
    json_tokener_free(tok);
    if (jerr != json_tokener_success) {
        /* a top-level null parses to NULL with success; anything else is a failure */
        json_object_put(obj);
        free(sc.counts);
        *why = json_tokener_error_desc(jerr);
        return NULL;
    }
    size_t i = 0;
    bool unique = sh_json_counts_match(obj, sc.counts, sc.ncounts, &i) && i == sc.ncounts;
    free(sc.counts);
    if (!unique) {
        json_object_put(obj);
        *why = "an object has a duplicate key";
        return NULL;
    }
    if (obj == NULL)
        *why = "the body is null";
    return obj;
}

const char *sh_json_to_string(json_object *obj, size_t *len)
{
    size_t n = 0;
    const char *s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    if (len != NULL)
        *len = n;
    return s;
}

const char *sh_json_get_str(json_object *obj, const char *key)
{
    json_object *v;
    if (obj == NULL || !json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

int64_t sh_json_get_int(json_object *obj, const char *key, int64_t fallback)
{
    json_object *v;
    if (obj == NULL || !json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_int))
        return fallback;
    return json_object_get_int64(v);
}
