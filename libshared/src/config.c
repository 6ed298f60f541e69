/* config.c: environment variables into typed config structs, validated once. */
#include "sh_config.h"
#include "sh_str.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int sh_conf_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < SH_ARRAY_LEN(yes); i++) {
        if (sh_strcaseeq(v, yes[i])) {
            *out = true;
            return 0;
        }
        if (sh_strcaseeq(v, no[i])) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* Reads a secret file: the first line, without its newline. */
static char *sh_conf_read_secret_file(const char *path, char *err, size_t errlen, const char *env)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s_FILE: cannot open %s: %s", env, path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s_FILE: %s is not a regular file", env, path);
        fclose(f);
        return NULL;
    }
    char line[4096];
    if (fgets(line, sizeof(line), f) == NULL)
        line[0] = '\0';
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    return sh_xstrdup(line);
}

static int sh_conf_set(const sh_conf_row *r, void *conf, const char *v, char *err, size_t errlen)
{
    void *field = (char *)conf + r->offset;
    int64_t n;
    switch (r->type) {
    case SH_CONF_STRING:
    case SH_CONF_SECRET: *(const char **)field = v; return 0;
    case SH_CONF_INT:
        if (sh_parse_int64(v, strlen(v), r->min, r->max, &n) != 0) {
            snprintf(err, errlen, "%s=%s: expected an integer from %lld to %lld", r->env, v, (long long)r->min,
                     (long long)r->max);
            return -1;
        }
        *(int64_t *)field = n;
        return 0;
    case SH_CONF_RATE: {
        char *end;
        errno = 0;
        long long count = strtoll(v, &end, 10);
        while (*end == ' ')
            end++;
        int64_t per_us = strcmp(end, "r/s") == 0 ? 1000000 : strcmp(end, "r/m") == 0 ? 60000000 : 0;
        if (errno != 0 || end == v || per_us == 0 || count < r->min || count > r->max || count < 1) {
            snprintf(err, errlen, "%s=%s: expected a rate like 10r/s or 30r/m (%lld to %lld requests)", r->env, v,
                     (long long)r->min, (long long)r->max);
            return -1;
        }
        *(int64_t *)field = per_us / count;
        return 0;
    }
    case SH_CONF_OCTAL: {
        char *end;
        errno = 0;
        long m = strtol(v, &end, 8);
        if (errno != 0 || *v == '\0' || *end != '\0' || m < 0 || m > 07777) {
            snprintf(err, errlen, "%s=%s: expected an octal file mode such as 0660", r->env, v);
            return -1;
        }
        *(int64_t *)field = m;
        return 0;
    }
    case SH_CONF_BOOL:
        if (sh_conf_bool(v, (bool *)field) != 0) {
            snprintf(err, errlen, "%s=%s: expected 1/0, true/false, yes/no or on/off", r->env, v);
            return -1;
        }
        return 0;
    case SH_CONF_ENUM:
        for (int i = 0; r->choices[i] != NULL; i++) {
            if (strcmp(v, r->choices[i]) == 0) {
                *(int *)field = i;
                return 0;
            }
        }
        {
            char list[256] = "";
            for (int i = 0; r->choices[i] != NULL; i++) {
                strncat(list, i ? ", " : "", sizeof(list) - strlen(list) - 1);
                strncat(list, r->choices[i], sizeof(list) - strlen(list) - 1);
            }
            snprintf(err, errlen, "%s=%s: expected one of %s", r->env, v, list);
        }
        return -1;
    }
    snprintf(err, errlen, "%s: unknown config type", r->env);
    return -1;
}

int sh_config_load(const sh_conf_row *rows, void *conf, char *err, size_t errlen)
{
    for (const sh_conf_row *r = rows; r->env != NULL; r++) {
        const char *v = getenv(r->env);
        if (v != NULL && *v == '\0')
            v = NULL; /* an empty variable means "unset" */
        if (r->type == SH_CONF_SECRET && v == NULL) {
            char name[128];
            snprintf(name, sizeof(name), "%s_FILE", r->env);
            const char *path = getenv(name);
            if (path != NULL && *path != '\0') {
                v = sh_conf_read_secret_file(path, err, errlen, r->env);
                if (v == NULL)
                    return -1;
            }
        }
        if (v == NULL)
            v = r->def;
        if (v == NULL) {
            if (r->flags & SH_CONF_REQUIRED) {
                snprintf(err, errlen, "%s is required%s%s", r->env, r->help ? ": " : "", r->help ? r->help : "");
                return -1;
            }
            continue;
        }
        if (sh_conf_set(r, conf, v, err, errlen) != 0)
            return -1;
    }
    return 0;
}

void sh_config_print_help(FILE *out, const sh_conf_row *rows)
{
    for (const sh_conf_row *r = rows; r->env != NULL; r++) {
        char def[64];
        snprintf(def, sizeof(def), "%s", r->def ? r->def : (r->flags & SH_CONF_REQUIRED) ? "(required)" : "(unset)");
        fprintf(out, "  %-28s %-12s %s", r->env, def, r->help ? r->help : "");
        if (r->type == SH_CONF_SECRET)
            fprintf(out, " (or %s_FILE: a file holding it)", r->env);
        fputc('\n', out);
    }
}

void sh_config_print_defaults(FILE *out, const sh_conf_row *rows)
{
    for (const sh_conf_row *r = rows; r->env != NULL; r++)
        fprintf(out, "%s=%s\n", r->env, r->def ? r->def : "");
}

/* What a value may be, in words, for the reference table. */
static void sh_config_print_range(FILE *out, const sh_conf_row *r)
{
    switch (r->type) {
    case SH_CONF_INT: fprintf(out, "integer %lld–%lld", (long long)r->min, (long long)r->max); break;
    case SH_CONF_BOOL: fputs("1/0, true/false, yes/no, on/off", out); break;
    case SH_CONF_ENUM:
        for (int i = 0; r->choices[i] != NULL; i++)
            fprintf(out, "%s`%s`", i ? ", " : "", r->choices[i]);
        break;
    case SH_CONF_OCTAL: fputs("octal file mode", out); break;
    case SH_CONF_SECRET: fprintf(out, "text, or `%s_FILE`: a file holding it", r->env); break;
    case SH_CONF_STRING: fputs("text", out); break;
    case SH_CONF_RATE:
        fprintf(out, "a rate, N`r/s` or N`r/m`, N %lld–%lld", (long long)r->min, (long long)r->max);
        break;
    }
}

void sh_config_print_markdown(FILE *out, const sh_conf_row *rows)
{
    for (const sh_conf_row *r = rows; r->env != NULL; r++) {
        fprintf(out, "| `%s` | ", r->env);
        if (r->def != NULL)
            fprintf(out, "`%s`", r->def);
        else
            fputs((r->flags & SH_CONF_REQUIRED) ? "required" : "unset", out);
        fputs(" | ", out);
        sh_config_print_range(out, r);
        fputs(" | ", out);
        for (const char *h = r->help ? r->help : ""; *h; h++) {
            if (*h == '|')
                fputc('\\', out); /* a table cell's own bar */
            fputc(*h, out);
        }
        fputs(" |\n", out);
    }
}
