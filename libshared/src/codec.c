/* codec.c: base64url, SHA-256 hex and pagination cursors (see sh_codec.h). */
#include "sh_codec.h"

#include "sh_str.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

char *sh_b64url_encode(sh_arena *a, const unsigned char *data, size_t len)
{
    size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = sh_arena_alloc(a, cap);
    sodium_bin2base64(out, cap, data, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

long sh_b64url_decode(unsigned char *out, size_t cap, const char *s, size_t len)
{
    size_t bin_len = 0;
    const char *end = NULL;
    if (len == 0)
        return 0;
    if (sodium_base642bin(out, cap, s, len, NULL, &bin_len, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return -1;
    if (end != s + len)
        return -1;
    return (long)bin_len;
}

char *sh_sha256_hex_into(char out[SH_SHA256_HEX_LEN + 1], const void *data, size_t len)
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, data, (unsigned long long)len);
    sodium_bin2hex(out, SH_SHA256_HEX_LEN + 1, h, sizeof(h));
    return out;
}

char *sh_sha256_hex(sh_arena *a, const char *s)
{
    return sh_sha256_hex_into(sh_arena_alloc(a, SH_SHA256_HEX_LEN + 1), s, strlen(s));
}

char *sh_cursor_encode(sh_arena *a, int64_t last_id)
{
    char raw[32];
    int n = snprintf(raw, sizeof(raw), "c%lld", (long long)last_id);
    return sh_b64url_encode(a, (const unsigned char *)raw, (size_t)n);
}

int sh_cursor_decode(const char *cursor, int64_t *last_id)
{
    unsigned char raw[32];
    long n = sh_b64url_decode(raw, sizeof(raw), cursor, strlen(cursor));
    if (n < 2 || raw[0] != 'c')
        return -1;
    return sh_parse_int64((const char *)raw + 1, (size_t)n - 1, 1, INT64_MAX, last_id);
}
