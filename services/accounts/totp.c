/* totp.c: time-based one-time passwords (RFC 6238 over RFC 4226's HOTP),
 * computed with Debian's liboath: what any authenticator app shows for a
 * secret (HMAC-SHA1, 6 digits, 30-second steps). The check computes every
 * step of the window and compares each in constant time, so how long it
 * takes says nothing about which step, if any, matched. Pure functions. */
#include "accounts.h"
#include "sh_str.h"

#include <liboath/oath.h>
#include <stdlib.h>
#include <string.h>

int acc_totp_setup(void) { return oath_init() == OATH_OK ? 0 : -1; }

int acc_totp_code(const unsigned char *key, size_t keylen, int64_t t, unsigned digits, int flags, char *out)
{
    if (t < 0 || digits < 6 || digits > 8)
        return -1;
    return oath_totp_generate2((const char *)key, keylen, (time_t)t, ACC_TOTP_STEP_S, OATH_TOTP_DEFAULT_START_TIME,
                               digits, flags, out) == OATH_OK
               ? 0
               : -1;
}

int64_t acc_totp_match(const unsigned char *key, size_t keylen, int64_t now, const char *code)
{
    if (strlen(code) != ACC_TOTP_DIGITS || now < ACC_TOTP_STEP_S * ACC_TOTP_WINDOW)
        return -1;
    int64_t step = now / ACC_TOTP_STEP_S, found = -1;
    for (int64_t s = step - ACC_TOTP_WINDOW; s <= step + ACC_TOTP_WINDOW; s++) {
        char want[ACC_TOTP_DIGITS + 1];
        if (acc_totp_code(key, keylen, s * ACC_TOTP_STEP_S, ACC_TOTP_DIGITS, 0, want) != 0)
            return -1;
        bool same = sh_ct_equal(want, code, ACC_TOTP_DIGITS);
        found = same ? s : found; /* the latest matching step; no early exit */
    }
    return found;
}

char *acc_totp_secret_new(sh_arena *a)
{
    unsigned char key[ACC_TOTP_KEY_BYTES];
    randombytes_buf(key, sizeof(key));
    char *b32 = NULL;
    size_t len = 0;
    int rc = oath_base32_encode((const char *)key, sizeof(key), &b32, &len);
    sodium_memzero(key, sizeof(key));
    if (rc != OATH_OK)
        return NULL;
    char *out = sh_arena_strndup(a, b32, len);
    sodium_memzero(b32, len);
    free(b32);
    return out;
}

long acc_totp_secret_decode(const char *secret, unsigned char *key, size_t cap)
{
    char *raw = NULL;
    size_t len = 0;
    if (oath_base32_decode(secret, strlen(secret), &raw, &len) != OATH_OK)
        return -1;
    long rc = len <= cap ? (long)len : -1;
    if (rc > 0)
        memcpy(key, raw, len);
    sodium_memzero(raw, len);
    free(raw);
    return rc;
}

/* RFC 3986 percent-encoding of everything but unreserved characters. */
static void acc_uri_escape(sh_buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("-._~", *p))
            sh_buf_putc(b, (char)*p);
        else
            sh_buf_printf(b, "%%%02X", *p);
    }
}

char *acc_totp_uri(sh_arena *a, const char *issuer, const char *account, const char *secret)
{
    /* Google's Key Uri Format: otpauth://totp/LABEL?PARAMETERS, LABEL = issuer ":" account */
    sh_buf b;
    sh_buf_init(&b, a, 256);
    sh_buf_puts(&b, "otpauth://totp/");
    acc_uri_escape(&b, issuer);
    sh_buf_putc(&b, ':');
    acc_uri_escape(&b, account);
    sh_buf_printf(&b, "?secret=%s&issuer=", secret);
    acc_uri_escape(&b, issuer);
    sh_buf_printf(&b, "&algorithm=SHA1&digits=%d&period=%d", ACC_TOTP_DIGITS, ACC_TOTP_STEP_S);
    return b.data;
}
