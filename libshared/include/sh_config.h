/* sh_config.h: configuration as a table of rows read from environment variables
 * (nginx's command table): name, type, where it goes, default, bounds, help.
 * Everything is validated once at start; a bad value stops the program with a
 * clear message and is never a surprise at request time.
 * Layer 0 of libshared (core); see docs/architecture.md. */
#ifndef SH_CONFIG_H
#define SH_CONFIG_H

#include "sh_core.h"

#include <stdio.h>

typedef enum {
    SH_CONF_STRING, /* const char *  */
    SH_CONF_INT,    /* int64_t, within [min, max] */
    SH_CONF_BOOL,   /* bool: 1/0, true/false, yes/no, on/off */
    SH_CONF_ENUM,   /* int: index into choices */
    SH_CONF_OCTAL,  /* int64_t: a file mode such as 0660 */
    SH_CONF_SECRET, /* const char *: from NAME, or read from the file named by NAME_FILE */
    SH_CONF_RATE    /* int64_t: "N r/s" or "N r/m" (spaces optional), stored as the microseconds
                       between two requests; N within [min, max] */
} sh_conf_type;

#define SH_CONF_REQUIRED 1u

typedef struct {
    const char *env; /* "PL_MAX_CHILDREN" */
    sh_conf_type type;
    size_t offset;              /* offsetof(conf struct, field) */
    const char *def;            /* default, as text; NULL = unset */
    int64_t min, max;           /* SH_CONF_INT bounds */
    const char *const *choices; /* SH_CONF_ENUM, NULL-terminated */
    unsigned flags;
    const char *help;
} sh_conf_row;

/* clang-format off */
#define SH_CONF_END {NULL, SH_CONF_STRING, 0, NULL, 0, 0, NULL, 0, NULL}
/* clang-format on */

/* Fills `conf` from the environment. Returns 0, or -1 with a message in err. */
int sh_config_load(const sh_conf_row *rows, void *conf, char *err, size_t errlen);
/* Prints one line per row: name, default, help (for --help). */
void sh_config_print_help(FILE *out, const sh_conf_row *rows);
/* Prints "NAME=default" per row, "NAME=" when it has none (for --print-defaults:
 * shell-readable, so scripts read defaults from the binaries, never retype them). */
void sh_config_print_defaults(FILE *out, const sh_conf_row *rows);
/* Prints one Markdown table row per row: | `NAME` | default | values | help |
 * (for --config-reference, which docs/configuration.md is made from). */
void sh_config_print_markdown(FILE *out, const sh_conf_row *rows);

#endif
