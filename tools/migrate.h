/* migrate.h: pl-migrate's rules for what may reach SQL text and what a
 * migration file is called (validate.c: pure functions, unit-tested). */
#ifndef MIGRATE_H
#define MIGRATE_H

#include "sh_core.h"

#define MIG_IDENT_MAX    32 /* [a-z][a-z0-9_]{0,31} */
#define MIG_PASSWORD_MIN 12
#define MIG_PASSWORD_MAX 128
#define MIG_HOST_MAX     60
#define MIG_NAME_MAX     255 /* schema_migrations.name */

/* Whether s is a schema or user name we quote into SQL text: [a-z][a-z0-9_]{0,31}. */
bool mig_is_ident(const char *s);
/* Whether s is a password we may inline (MySQL takes no placeholder for one):
 * [A-Za-z0-9_-]{12,128}. */
bool mig_is_password(const char *s);
/* Whether s is a MySQL account host: 1-60 of [A-Za-z0-9%_.:/-] (a name, an
 * address, or a pattern with % and _). */
bool mig_is_user_host(const char *s);
/* The version of a file named "NNN_name.sql" (3 to 9 digits, '_',
 * [A-Za-z0-9][A-Za-z0-9_-]*, ".sql"), or -1 when that is not its name. */
int mig_file_version(const char *fname);
/* Whether a directory entry is left alone: dotfiles (editors, VCS) and notes (*.md). */
bool mig_is_ignored(const char *fname);

#endif
