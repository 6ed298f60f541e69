/* validate.c: the alphabet of everything pl-migrate quotes into SQL text
 * (schema and user names, passwords, account hosts) and the shape of a
 * migration file's name. Pure functions (unit-tested). */
#include "migrate.h"
#include "sh_str.h"

#include <string.h>

/* True when each byte of s[0..len) is a lower-case letter or a digit, an
 * upper-case letter when `upper`, or one of `punct`. */
static bool mig_chars_in(const char *s, size_t len, bool upper, const char *punct)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (upper && c >= 'A' && c <= 'Z') ||
              (c != '\0' && strchr(punct, c) != NULL)))
            return false;
    }
    return true;
}

bool mig_is_ident(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= MIG_IDENT_MAX && s[0] >= 'a' && s[0] <= 'z' && mig_chars_in(s, n, false, "_");
}

bool mig_is_password(const char *s)
{
    size_t n = strlen(s);
    return n >= MIG_PASSWORD_MIN && n <= MIG_PASSWORD_MAX && mig_chars_in(s, n, true, "_-");
}

bool mig_is_user_host(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= MIG_HOST_MAX && mig_chars_in(s, n, true, "%_.:-/");
}

int mig_file_version(const char *fname)
{
    size_t len = strlen(fname), digits = strspn(fname, "0123456789");
    if (len > MIG_NAME_MAX || len < 4 || strcmp(fname + len - 4, ".sql") != 0 || digits < 3 || digits > 9 ||
        fname[digits] != '_')
        return -1;
    /* The '_' comes before ".sql", which holds neither digits nor '_'. */
    const char *name = fname + digits + 1;
    size_t name_len = len - 4 - (digits + 1);
    int64_t v;
    if (name_len == 0 || !mig_chars_in(name, 1, true, "") || !mig_chars_in(name, name_len, true, "_-") ||
        sh_parse_int64(fname, digits, 0, 999999999, &v) != 0)
        return -1;
    return (int)v;
}

bool mig_is_ignored(const char *fname)
{
    size_t len = strlen(fname);
    return fname[0] == '.' || (len >= 3 && strcmp(fname + len - 3, ".md") == 0);
}
