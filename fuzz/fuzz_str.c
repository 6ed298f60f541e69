/* fuzz_str.c: libFuzzer target for the byte-string helpers of sh_str
 * (libshared/src/str.c): UTF-8 validation against a reference decoder
 * written from RFC 3629, percent-decoding, JSON string escaping (whatever it
 * writes must read back, through json-c, as the input) and integer parsing
 * against strtoll. Input: any bytes. */
#include "fuzz.h"
#include "sh_str.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 3629, section 4, as a table walk: the reference for sh_utf8_valid. */
static int ref_utf8_valid(const unsigned char *s, size_t len, size_t *chars)
{
    size_t i = 0, n = 0;
    while (i < len) {
        unsigned char c = s[i];
        unsigned char lo = 0x80, hi = 0xBF;
        size_t more;
        if (c <= 0x7F)
            more = 0;
        else if (c >= 0xC2 && c <= 0xDF)
            more = 1;
        else if (c == 0xE0)
            more = 2, lo = 0xA0;
        else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
            more = 2;
        else if (c == 0xED)
            more = 2, hi = 0x9F;
        else if (c == 0xF0)
            more = 3, lo = 0x90;
        else if (c >= 0xF1 && c <= 0xF3)
            more = 3;
        else if (c == 0xF4)
            more = 3, hi = 0x8F;
        else
            return 0;
        if (len - i - 1 < more)
            return 0;
        for (size_t k = 1; k <= more; k++) {
            unsigned char b = s[i + k];
            if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF))
                return 0;
        }
        i += more + 1;
        n++;
    }
    *chars = n;
    return 1;
}

static void check_escape(const char *s, size_t len)
{
    size_t need = sh_json_escape(NULL, 0, s, len);
    char *out = malloc(need + 3);
    if (out == NULL)
        abort();
    out[0] = '"';
    if (sh_json_escape(out + 1, need + 1, s, len) != need)
        abort();
    if (strlen(out + 1) != need)
        abort();
    out[need + 1] = '"';
    out[need + 2] = '\0';
    /* a cut output is still NUL-terminated within its buffer */
    char small[8];
    sh_json_escape(small, sizeof(small), s, len);
    if (memchr(small, '\0', sizeof(small)) == NULL)
        abort();
    json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *o = json_tokener_parse_ex(tok, out, (int)(need + 2));
    if (json_tokener_get_error(tok) != json_tokener_success || !json_object_is_type(o, json_type_string) ||
        (size_t)json_object_get_string_len(o) != len || memcmp(json_object_get_string(o), s, len) != 0) {
        fprintf(stderr, "escaped text does not read back as the input: %s\n", out);
        abort();
    }
    json_object_put(o);
    json_tokener_free(tok);
    free(out);
}

static void check_int(const char *s, size_t len)
{
    int64_t v = 0;
    int rc = sh_parse_int64(s, len, INT64_MIN, INT64_MAX, &v);
    /* the reference: optional '-', 1-19 digits, in range, nothing else */
    int ok = len > 0 && len <= 20;
    size_t i = (ok && s[0] == '-') ? 1 : 0;
    if (i == len || len - i > 19)
        ok = 0;
    for (size_t k = i; ok && k < len; k++)
        if (s[k] < '0' || s[k] > '9')
            ok = 0;
    long long ref = 0;
    if (ok) {
        char buf[24];
        memcpy(buf, s, len);
        buf[len] = '\0';
        errno = 0;
        ref = strtoll(buf, NULL, 10);
        if (errno == ERANGE)
            ok = 0;
    }
    if ((rc == 0) != ok || (ok && v != ref)) {
        fprintf(stderr, "sh_parse_int64 on \"%.*s\": rc %d value %lld, expected ok %d value %lld\n", (int)len, s, rc,
                (long long)v, ok, ref);
        abort();
    }
    if (rc == 0 && sh_parse_int64(s, len, v + (v < INT64_MAX), INT64_MAX, &v) == 0 && v != INT64_MAX)
        abort(); /* the range is enforced */
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    const char *s = (const char *)data;
    size_t chars = 0;
    int ref = ref_utf8_valid(data, size, &chars);
    if (sh_utf8_valid(s, size) != (ref == 1)) {
        fprintf(stderr, "sh_utf8_valid disagrees with RFC 3629 (reference says %d)\n", ref);
        abort();
    }
    if (ref && sh_utf8_length(s, size) != chars)
        abort();

    char *dst = malloc(size + 1);
    if (dst == NULL)
        abort();
    for (int plus = 0; plus < 2; plus++) {
        long n = sh_percent_decode(dst, s, size, plus);
        if (n > (long)size || (n >= 0 && dst[n] != '\0'))
            abort();
    }
    free(dst);

    if (ref)
        check_escape(s, size);
    if (size <= 24)
        check_int(s, size);
    return 0;
}
