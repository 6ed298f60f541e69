/* validate.c: the accounts service's input rules that are not plain types:
 * email addresses, passwords, LIKE prefixes, what a session shows of its
 * client (coarse address, user agent), recovery and TOTP codes as typed.
 * Pure functions (unit-tested). */
#include "accounts.h"
#include "sh_str.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static bool acc_local_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr(".!#$%&'*+/=?^_`{|}~-", c) != NULL;
}

static bool acc_domain_valid(const char *d, size_t len)
{
    size_t labels = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && d[i] != '.') {
            char c = d[i];
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
                return false;
            continue;
        }
        size_t l = i - start;
        if (l == 0 || l > 63 || d[start] == '-' || d[i - 1] == '-')
            return false;
        labels++;
        start = i + 1;
    }
    return labels >= 2;
}

int acc_email_normalize(const char *in, size_t len, char *out)
{
    if (len < 3 || len > ACC_EMAIL_MAX)
        return -1;
    const char *at = NULL;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + 32);
        if (c == '@') {
            if (at != NULL)
                return -1;
            at = in + i;
        } else if ((unsigned char)c < 0x21 || (unsigned char)c > 0x7e) {
            return -1; /* ASCII addresses only: spaces, controls and non-ASCII refused */
        }
        out[i] = c;
    }
    out[len] = '\0';
    if (at == NULL)
        return -1;
    size_t local = (size_t)(at - in);
    if (local == 0 || local > 64 || out[0] == '.' || out[local - 1] == '.')
        return -1;
    for (size_t i = 0; i < local; i++) {
        if (!acc_local_char(out[i]) || (out[i] == '.' && out[i + 1] == '.'))
            return -1;
    }
    return acc_domain_valid(out + local + 1, len - local - 1) ? 0 : -1;
}

const char *acc_password_problem(const char *password, size_t len, const char *email)
{
    if (len < ACC_PASSWORD_MIN)
        return "The password must be at least 10 bytes long.";
    if (len > ACC_PASSWORD_MAX)
        return "The password must be at most 128 bytes long.";
    if (email != NULL && strlen(email) == len) {
        bool same = true;
        for (size_t i = 0; i < len && same; i++) {
            char c = password[i];
            if (c >= 'A' && c <= 'Z')
                c = (char)(c + 32);
            same = c == email[i];
        }
        if (same)
            return "The password must not be the email address.";
    }
    return NULL;
}

char *acc_like_prefix(sh_arena *a, const char *s)
{
    size_t n = strlen(s);
    char *out = sh_arena_alloc(a, 2 * n + 2);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' || s[i] == '%' || s[i] == '_')
            out[o++] = '\\';
        out[o++] = s[i];
    }
    out[o++] = '%';
    out[o] = '\0';
    return out;
}

void acc_address_coarse(const char *addr, char out[ACC_ADDRESS_MAX + 1])
{
    unsigned char b[16];
    out[0] = '\0';
    if (addr == NULL)
        return;
    if (inet_pton(AF_INET, addr, b) == 1) {
        snprintf(out, ACC_ADDRESS_MAX + 1, "%u.%u.%u.0/24", b[0], b[1], b[2]);
        return;
    }
    if (inet_pton(AF_INET6, addr, b) != 1)
        return;
    static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(b, v4mapped, sizeof(v4mapped)) == 0) {
        snprintf(out, ACC_ADDRESS_MAX + 1, "%u.%u.%u.0/24", b[12], b[13], b[14]);
        return;
    }
    memset(b + 6, 0, 10); /* the /48: the rest is the site's own */
    char text[INET6_ADDRSTRLEN];
    if (inet_ntop(AF_INET6, b, text, sizeof(text)) != NULL)
        snprintf(out, ACC_ADDRESS_MAX + 1, "%s/48", text);
}

void acc_user_agent_clean(const char *in, char out[ACC_USER_AGENT_MAX + 1])
{
    size_t n = 0;
    for (; in != NULL && in[n] != '\0' && n < ACC_USER_AGENT_MAX; n++)
        out[n] = (in[n] >= 0x20 && in[n] < 0x7f) ? in[n] : '?';
    out[n] = '\0';
}

/* RFC 4648's base32 alphabet, lower-cased: what recovery codes are made of. */
static const char acc_b32[] = "abcdefghijklmnopqrstuvwxyz234567";

int acc_recovery_code_normalize(const char *in, char out[ACC_RECOVERY_CODE_LEN + 1])
{
    size_t n = 0;
    for (; *in; in++) {
        char c = *in;
        if (c == '-' || c == ' ')
            continue;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + 32);
        if (c == '\0' || strchr(acc_b32, c) == NULL || n == ACC_RECOVERY_CODE_LEN)
            return -1;
        out[n++] = c;
    }
    out[n] = '\0';
    return n == ACC_RECOVERY_CODE_LEN ? 0 : -1;
}

int acc_totp_code_normalize(const char *in, char out[ACC_TOTP_DIGITS + 1])
{
    size_t n = 0;
    for (; *in; in++) {
        if (*in == ' ')
            continue;
        if (*in < '0' || *in > '9' || n == ACC_TOTP_DIGITS)
            return -1;
        out[n++] = *in;
    }
    out[n] = '\0';
    return n == ACC_TOTP_DIGITS ? 0 : -1;
}
