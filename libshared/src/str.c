/* str.c: UTF-8, percent-decoding, JSON escaping, integer parsing. */
#include "sh_str.h"

#include <string.h>

bool sh_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000))
            return false; /* overlong */
        if (cp >= 0xD800 && cp <= 0xDFFF)
            return false; /* surrogate */
        if (cp > 0x10FFFF)
            return false;
        i += n + 1;
    }
    return true;
}

size_t sh_utf8_length(const char *str, size_t len)
{
    size_t count = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)str[i] & 0xC0) != 0x80)
            count++;
    return count;
}

static int sh_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long sh_percent_decode(char *dst, const char *src, size_t len, bool plus_is_space)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = sh_hex_value(src[i + 1]);
            int lo = sh_hex_value(src[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            dst[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            dst[o++] = ' ';
        } else {
            dst[o++] = c;
        }
    }
    dst[o] = '\0';
    return (long)o;
}

size_t sh_json_escape(char *out, size_t cap, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
#define SH_EMIT(ch)                                                                                                    \
    do {                                                                                                               \
        if (o + 1 < cap)                                                                                               \
            out[o] = (ch);                                                                                             \
        o++;                                                                                                           \
    } while (0)
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            SH_EMIT('\\');
            SH_EMIT('"');
            break;
        case '\\':
            SH_EMIT('\\');
            SH_EMIT('\\');
            break;
        case '\n':
            SH_EMIT('\\');
            SH_EMIT('n');
            break;
        case '\r':
            SH_EMIT('\\');
            SH_EMIT('r');
            break;
        case '\t':
            SH_EMIT('\\');
            SH_EMIT('t');
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                SH_EMIT('\\');
                SH_EMIT('u');
                SH_EMIT('0');
                SH_EMIT('0');
                SH_EMIT(hex[c >> 4]);
                SH_EMIT(hex[c & 15]);
            } else {
                SH_EMIT((char)c);
            }
        }
    }
#undef SH_EMIT
    if (cap > 0)
        out[o < cap ? o : cap - 1] = '\0';
    return o;
}

int sh_parse_int64(const char *s, size_t len, int64_t min, int64_t max, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (len == 0)
        return -1;
    if (s[0] == '-') {
        neg = true;
        i = 1;
        if (len == 1)
            return -1;
    }
    if (len - i > 19)
        return -1;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (!neg && v > (uint64_t)INT64_MAX)
        return -1;
    if (neg && v > (uint64_t)INT64_MAX + 1)
        return -1;
    int64_t r = neg ? (int64_t)(0 - v) : (int64_t)v;
    if (r < min || r > max)
        return -1;
    *out = r;
    return 0;
}

bool sh_strcaseeq(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char ca = (unsigned char)*a, cb = (unsigned char)*b;
        if (ca >= 'A' && ca <= 'Z')
            ca += 32;
        if (cb >= 'A' && cb <= 'Z')
            cb += 32;
        if (ca != cb)
            return false;
        if (ca == '\0')
            return true;
    }
}

bool sh_ct_equal(const void *a, const void *b, size_t n)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char d = 0;
    for (size_t i = 0; i < n; i++)
        d |= x[i] ^ y[i];
    return d == 0;
}

void sh_utf8_scrub(char *s, size_t len)
{
    if (sh_utf8_valid(s, len))
        return;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80)
            s[i] = '?';
}

int sh_query_find(const char *query, const char *name, const char **val, size_t *len)
{
    size_t nlen = strlen(name);
    int found = 0;
    const char *p = query;
    while (p && *p) {
        const char *end = strchr(p, '&');
        size_t plen = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', plen);
        size_t klen = eq ? (size_t)(eq - p) : plen;
        if (klen == nlen && memcmp(p, name, nlen) == 0) {
            if (found++)
                return -1;
            *val = eq ? eq + 1 : p + plen;
            *len = eq ? plen - klen - 1 : 0;
        }
        p = end ? end + 1 : NULL;
    }
    return found;
}
