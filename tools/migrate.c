/* migrate.c: pl-migrate gives one service its own schema and DB user, then
 * applies the service's migrations (DIR/NNN_name.sql) in numeric order, each
 * exactly once, recorded with its SHA-256 in <schema>.schema_migrations.
 *
 * It runs as a DB administrator under GET_LOCK('pilotlight_migrate_<name>'),
 * so two concurrent runs are safe. Its settings are config rows: the PL_DB_*
 * rows every service reads, plus the administrator's. They are operator input,
 * yet every name and password is validated strictly (validate.c) before it
 * can reach SQL text, and every value MySQL lets us bind is bound. Migration
 * files are trusted code and run verbatim (several statements each) with the
 * service's schema selected.
 *
 * One arena holds everything a run reads (the files, the recorded rows, SQL
 * text). Works against MariaDB 10.11 and MySQL 8. Exit status: 0 done, 1
 * refused or failed (each problem one line on stderr), 2 usage error, and
 * for --check 3: migrations of DIR are pending.
 *
 * --check is for whoever must wait for the migrations (a Kubernetes pod's
 * init container, before the service starts): it connects as the service's
 * own DB user (its password is all such a pod holds), reads nothing but
 * <schema>.schema_migrations and changes nothing. Up to date means every
 * migration of DIR is recorded; migrations recorded that DIR does not have
 * (a newer release's, an older image rolled back to) do not count against
 * it, nor do changed files (the next run of the migrations refuses those). */
#include "migrate.h"
#include "sh_arena.h"
#include "sh_codec.h"
#include "sh_config.h"
#include "sh_db.h"
#include "sh_log.h"
#include "sh_str.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <mysql.h>
#include <mysqld_error.h>
#include <sodium.h>

#define MIG_FILE_MAX       (16 << 20) /* a migration larger than this is a mistake */
#define MIG_LOCK_TIMEOUT_S 60
#define MIG_PARAMS_MAX     3    /* parameters of a statement of ours */
#define MIG_COLS_MAX       4    /* columns of its answer */
#define MIG_TEXT_MAX       1024 /* bytes of one column: a name of 255 characters in utf8mb4 fits */
#define MIG_STR_(x)        #x
#define MIG_STR(x)         MIG_STR_(x)

/* MySQL 8's client library dropped my_bool for bool; MariaDB's keeps it. */
#if !defined(MARIADB_PACKAGE_VERSION) && MYSQL_VERSION_ID >= 80000
typedef bool my_bool;
#endif

/* The service's side is the sh_db_config every service loads; the
 * administrator pl-migrate connects as is its own. */
typedef struct {
    sh_db_config db;
    const char *admin_user;
    const char *admin_password; /* NULL: none (unix_socket authentication as OS root) */
    const char *user_host;      /* host part of the service's account */
} mig_config;

#define F(field) offsetof(mig_config, field)
static const sh_conf_row mig_conf_rows[] = {
    {"PL_DB_ADMIN_USER", SH_CONF_STRING, F(admin_user), "root", 0, 0, NULL, 0,
     "the DB administrator pl-migrate connects as"},
    {"PL_DB_ADMIN_PASSWORD", SH_CONF_SECRET, F(admin_password), NULL, 0, 0, NULL, 0,
     "the administrator's password (unset: unix_socket authentication as OS root)"},
    {"PL_DB_USER_HOST", SH_CONF_STRING, F(user_host), "%", 0, 0, NULL, 0,
     "host part of the service's DB user: 1-60 of [A-Za-z0-9%_.:/-]"},
    SH_CONF_END,
};
#undef F

/* One NNN_name.sql file of the directory. */
typedef struct {
    int version;
    const char *name; /* the file name, e.g. "001_init.sql" */
    char checksum[SH_SHA256_HEX_LEN + 1];
    const char *sql; /* the whole file, NUL-terminated */
    size_t sql_len;
} mig_file;

/* One row of <schema>.schema_migrations, its text in the arena. */
typedef struct {
    int version;
    const char *name;
    const char *checksum;
    const char *applied_at;
} mig_applied;

/* One row of an answer to a statement of ours: each column as text in the
 * arena, NULL for SQL NULL. */
typedef struct {
    const char *col[MIG_COLS_MAX];
} mig_row;

/* One run: what it was asked, what it found, what it holds. */
typedef struct {
    const char *service;
    const char *dir;
    bool status_only;
    bool check_only; /* --check: as the service's user, exit 0 or 3 */
    mig_config conf;
    sh_arena *arena;
    MYSQL *db;
    mig_file *files; /* sorted by version */
    size_t nfiles;
    mig_applied *applied; /* ordered by version */
    size_t napplied;
} mig_run;

static const char *mig_service = "?";

static void mig_err(const char *fmt, ...) SH_PRINTF(1, 2);

/* Says what went wrong in the one shape the operator sees:
 * "pl-migrate: <service>: <what>". */
static void mig_err(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "pl-migrate: %s: ", mig_service);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- command line ------------------------------------------------------------------------------ */

static void mig_print_rows(FILE *out, void (*print)(FILE *, const sh_conf_row *))
{
    print(out, sh_db_conf_rows);
    print(out, mig_conf_rows);
}

static void mig_usage(FILE *out)
{
    fputs("usage: pl-migrate --service NAME --dir DIR [--status | --check]\n"
          "       pl-migrate --help | --print-defaults | --config-reference\n"
          "\n"
          "Creates database NAME and DB user NAME (if missing), sets the user's password,\n"
          "grants it ALL on that schema only, then applies DIR/NNN_name.sql files not yet\n"
          "recorded in <schema>.schema_migrations, in numeric order. --status only lists\n"
          "applied and pending migrations and changes nothing. --check connects as the\n"
          "service's user (PL_DB_USER, PL_DB_PASSWORD) instead of the administrator and\n"
          "exits 0 when every file of DIR is recorded as applied, 3 when some are pending\n"
          "(or the schema has no migrations table yet), 1 when it cannot tell; it changes\n"
          "nothing (a pod waits for the migrations with it).\n"
          "\n"
          "Configured by environment variables. PL_DB_NAME and PL_DB_USER default to NAME\n"
          "and match [a-z][a-z0-9_]{0,31}; PL_DB_PASSWORD is the service user's password,\n"
          "[A-Za-z0-9_-]{12,128}. No read timeout is set (PL_DB_QUERY_TIMEOUT_MS is not\n"
          "used): the wait for the lock and a migration may take longer.\n",
          out);
    mig_print_rows(out, sh_config_print_help);
}

/* Reads the command line into r. Returns -1 to go on, else the exit status:
 * 0 after printing what was asked for, 2 after a usage error. */
static int mig_args(mig_run *r, int argc, char **argv)
{
    static const struct option opts[] = {
        {"service", required_argument, NULL, 's'},
        {"dir", required_argument, NULL, 'd'},
        {"status", no_argument, NULL, 'S'},
        {"check", no_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {"print-defaults", no_argument, NULL, 'p'},
        {"config-reference", no_argument, NULL, 'c'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 's': r->service = optarg; break;
        case 'd': r->dir = optarg; break;
        case 'S': r->status_only = true; break;
        case 'C': r->check_only = true; break;
        case 'h': mig_usage(stdout); return 0;
        case 'p': mig_print_rows(stdout, sh_config_print_defaults); return 0;
        case 'c': mig_print_rows(stdout, sh_config_print_markdown); return 0;
        default: mig_usage(stderr); return 2;
        }
    }
    if (optind != argc || r->service == NULL || r->dir == NULL || (r->status_only && r->check_only)) {
        mig_usage(stderr);
        return 2;
    }
    return -1;
}

/* ---- configuration ----------------------------------------------------------------------------- */

/* Fills r->conf from the environment and checks everything that will reach
 * SQL text. Returns 0, or -1 after saying what is wrong. */
static int mig_configure(mig_run *r)
{
    mig_config *c = &r->conf;
    char err[512];

    if (!mig_is_ident(r->service)) {
        mig_err("--service must match [a-z][a-z0-9_]{0,31}");
        return -1;
    }
    /* --status changes nothing, so the service's password must not be able to refuse it. */
    if (r->status_only && (unsetenv("PL_DB_PASSWORD") != 0 || unsetenv("PL_DB_PASSWORD_FILE") != 0)) {
        mig_err("cannot unset PL_DB_PASSWORD: %s", strerror(errno));
        return -1;
    }
    if (sh_config_load(sh_db_conf_rows, &c->db, err, sizeof(err)) != 0 ||
        sh_db_config_check(&c->db, err, sizeof(err)) != 0 || sh_config_load(mig_conf_rows, c, err, sizeof(err)) != 0) {
        mig_err("%s", err);
        return -1;
    }
    if (c->db.name == NULL)
        c->db.name = r->service;
    if (c->db.user == NULL)
        c->db.user = r->service;
    if (c->admin_password != NULL && c->admin_password[0] == '\0')
        c->admin_password = NULL; /* an empty secret file */
    const char *pw = c->db.password;
    const struct {
        bool ok;
        const char *problem;
    } checks[] = {
        {mig_is_ident(c->db.name), "PL_DB_NAME must match [a-z][a-z0-9_]{0,31}"},
        {mig_is_ident(c->db.user), "PL_DB_USER must match [a-z][a-z0-9_]{0,31}"},
        {mig_is_user_host(c->user_host), "PL_DB_USER_HOST must be 1-60 of [A-Za-z0-9%_.:/-]"},
        {r->status_only || (pw != NULL && pw[0] != '\0'),
         "the service user's password is missing: set PL_DB_PASSWORD or PL_DB_PASSWORD_FILE"},
        {r->status_only || (pw != NULL && mig_is_password(pw)),
         "the service user's password must be 12-128 of [A-Za-z0-9_-]"},
    };
    for (size_t i = 0; i < SH_ARRAY_LEN(checks); i++) {
        if (!checks[i].ok) {
            mig_err("%s", checks[i].problem);
            return -1;
        }
    }
    return 0;
}

/* ---- the migration directory ------------------------------------------------------------------- */

/* The whole regular file at path (at most max bytes) as a NUL-terminated
 * string in the arena, its length in *len; NULL after saying why not. */
static char *mig_read_file(sh_arena *a, const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        mig_err("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    char *buf = NULL;
    if (fstat(fileno(f), &st) == -1) {
        mig_err("cannot stat %s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
        mig_err("%s is not a regular file of at most %zu bytes", path, max);
    } else {
        buf = sh_arena_alloc(a, (size_t)st.st_size + 1);
        *len = fread(buf, 1, (size_t)st.st_size, f); /* less if it shrank while we read */
        buf[*len] = '\0';
        if (ferror(f)) {
            mig_err("cannot read %s: %s", path, strerror(errno));
            buf = NULL;
        }
    }
    if (fclose(f) != 0 && buf != NULL) {
        mig_err("cannot close %s: %s", path, strerror(errno));
        buf = NULL;
    }
    return buf;
}

/* Reads migration file `fname` of the directory onto `list`, with its
 * checksum. Returns 0, or -1 after saying why. */
static int mig_file_add(mig_run *r, sh_buf *list, const char *fname)
{
    mig_file f = {.version = mig_file_version(fname)};
    if (f.version < 0) {
        mig_err("malformed migration file name '%s' in %s: expected NNN_name.sql "
                "(3-9 digits, '_', then letters, digits, '_' or '-')",
                fname, r->dir);
        return -1;
    }
    f.name = sh_arena_strdup(r->arena, fname);
    f.sql = mig_read_file(r->arena, sh_arena_sprintf(r->arena, "%s/%s", r->dir, fname), MIG_FILE_MAX, &f.sql_len);
    if (f.sql == NULL)
        return -1;
    sh_sha256_hex_into(f.checksum, f.sql, f.sql_len);
    sh_buf_append(list, &f, sizeof(f));
    return 0;
}

static int mig_file_cmp(const void *a, const void *b)
{
    int x = ((const mig_file *)a)->version, y = ((const mig_file *)b)->version;
    return (x > y) - (x < y);
}

/* Reads every NNN_name.sql of the directory into r->files, sorted by version,
 * before anything touches the server. A missing directory is an empty one; any
 * other entry (bar the ignored) is an error, and so is a version used twice.
 * Returns 0, or -1 after saying why. */
static int mig_files_load(mig_run *r)
{
    DIR *d = opendir(r->dir);
    if (d == NULL) {
        if (errno == ENOENT)
            return 0;
        mig_err("cannot open directory %s: %s", r->dir, strerror(errno));
        return -1;
    }
    sh_buf list; /* of mig_file: the arena's growable buffer, 16-byte aligned */
    sh_buf_init(&list, r->arena, 16 * sizeof(mig_file));
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (e == NULL) {
            if (errno != 0) {
                mig_err("cannot read directory %s: %s", r->dir, strerror(errno));
                rc = -1;
            }
            break;
        }
        if (!mig_is_ignored(e->d_name) && mig_file_add(r, &list, e->d_name) != 0) {
            rc = -1;
            break;
        }
    }
    if (closedir(d) == -1 && rc == 0) {
        mig_err("cannot close directory %s: %s", r->dir, strerror(errno));
        rc = -1;
    }
    if (rc != 0)
        return -1;
    r->files = (mig_file *)(void *)list.data;
    r->nfiles = list.len / sizeof(mig_file);
    qsort(r->files, r->nfiles, sizeof(mig_file), mig_file_cmp);
    for (size_t i = 1; i < r->nfiles; i++) {
        if (r->files[i].version == r->files[i - 1].version) {
            mig_err("two migrations share version %d in %s: %s and %s", r->files[i].version, r->dir,
                    r->files[i - 1].name, r->files[i].name);
            return -1;
        }
    }
    return 0;
}

/* ---- statements of our own --------------------------------------------------------------------- */

static void mig_db_err(MYSQL *db, const char *what)
{
    mig_err("%s failed: %s (MySQL error %u)", what, mysql_error(db), mysql_errno(db));
}

static void mig_stmt_err(MYSQL_STMT *st, const char *what)
{
    mig_err("%s failed: %s (MySQL error %u)", what, mysql_stmt_error(st), mysql_stmt_errno(st));
}

/* Reads the whole answer of st into *rows (in the arena), *nrows. 0, or -1
 * after saying why. */
static int mig_fetch(mig_run *r, MYSQL_STMT *st, const char *what, mig_row **rows, size_t *nrows)
{
    unsigned ncols = mysql_stmt_field_count(st);
    char text[MIG_COLS_MAX][MIG_TEXT_MAX];
    unsigned long lens[MIG_COLS_MAX];
    my_bool nulls[MIG_COLS_MAX];
    MYSQL_BIND res[MIG_COLS_MAX];
    memset(res, 0, sizeof(res));
    for (unsigned i = 0; i < ncols && i < MIG_COLS_MAX; i++) {
        res[i].buffer_type = MYSQL_TYPE_STRING; /* the client library converts numbers and dates */
        res[i].buffer = text[i];
        res[i].buffer_length = MIG_TEXT_MAX;
        res[i].length = &lens[i];
        res[i].is_null = &nulls[i];
    }
    if (ncols > MIG_COLS_MAX || mysql_stmt_bind_result(st, res) != 0) {
        mig_stmt_err(st, what);
        return -1;
    }
    sh_buf list; /* of mig_row: the arena's growable buffer, 16-byte aligned */
    sh_buf_init(&list, r->arena, 16 * sizeof(mig_row));
    int f;
    while ((f = mysql_stmt_fetch(st)) == 0) {
        mig_row row = {{NULL}};
        for (unsigned i = 0; i < ncols; i++)
            row.col[i] = nulls[i] ? NULL : sh_arena_strndup(r->arena, text[i], lens[i]);
        sh_buf_append(&list, &row, sizeof(row));
    }
    if (f == MYSQL_DATA_TRUNCATED) {
        mig_err("%s failed: a value is longer than %d bytes", what, MIG_TEXT_MAX);
        return -1;
    }
    if (f != MYSQL_NO_DATA) {
        mig_stmt_err(st, what);
        return -1;
    }
    *rows = (mig_row *)(void *)list.data;
    *nrows = list.len / sizeof(mig_row);
    return 0;
}

/* Prepares and runs one statement of ours, its parameters bound as `types`
 * says ('i' an int, 's' a string), and reads its answer into *rows and *nrows
 * unless rows is NULL. 0, or -1 after saying why. */
static int mig_query(mig_run *r, const char *what, const char *sql, mig_row **rows, size_t *nrows, const char *types,
                     ...)
{
    MYSQL_BIND p[MIG_PARAMS_MAX];
    unsigned long lens[MIG_PARAMS_MAX];
    int ints[MIG_PARAMS_MAX];
    size_t n = strlen(types);
    va_list ap;
    memset(p, 0, sizeof(p));
    va_start(ap, types);
    for (size_t i = 0; i < n && i < MIG_PARAMS_MAX; i++) {
        if (types[i] == 'i') {
            ints[i] = va_arg(ap, int);
            p[i].buffer_type = MYSQL_TYPE_LONG;
            p[i].buffer = &ints[i];
        } else {
            const char *s = va_arg(ap, const char *);
            lens[i] = (unsigned long)strlen(s);
            p[i].buffer_type = MYSQL_TYPE_STRING;
            p[i].buffer = (void *)s;
            p[i].buffer_length = lens[i];
            p[i].length = &lens[i];
        }
    }
    va_end(ap);

    MYSQL_STMT *st = mysql_stmt_init(r->db);
    if (st == NULL) {
        mig_db_err(r->db, what);
        return -1;
    }
    int rc = -1;
    if (n > MIG_PARAMS_MAX || mysql_stmt_prepare(st, sql, (unsigned long)strlen(sql)) != 0 ||
        (n > 0 && mysql_stmt_bind_param(st, p) != 0) || mysql_stmt_execute(st) != 0)
        mig_stmt_err(st, what);
    else if (rows == NULL || mig_fetch(r, st, what, rows, nrows) == 0)
        rc = 0;
    if (mysql_stmt_close(st) != 0 && rc == 0) {
        mig_db_err(r->db, what);
        rc = -1;
    }
    return rc;
}

/* ---- the server -------------------------------------------------------------------------------- */

/* Connects r->db as the administrator. Multi-statements are on because
 * migration files need them; every statement of our own goes through
 * mysql_stmt_prepare, which takes one only. 0, or -1 after saying why. */
static int mig_connect(mig_run *r)
{
    const mig_config *c = &r->conf;
    unsigned timeout_s = (unsigned)((c->db.connect_timeout_ms + 999) / 1000);
    r->db = mysql_init(NULL);
    if (r->db == NULL) {
        mig_err("mysql_init failed: out of memory");
        return -1;
    }
    /* --check: as the service's own user; otherwise as the administrator */
    const char *user = r->check_only ? c->db.user : c->admin_user;
    const char *password = r->check_only ? c->db.password : c->admin_password;
    if (mysql_options(r->db, MYSQL_OPT_CONNECT_TIMEOUT, &timeout_s) != 0 ||
        mysql_options(r->db, MYSQL_SET_CHARSET_NAME, "utf8mb4") != 0) {
        mig_db_err(r->db, "setting connection options");
        return -1;
    }
    const char *sock = c->db.socket;
    if (c->db.hosts != NULL) {
        /* a cluster: the first node that answers (DDL replicates to the others) */
        sh_db_host hosts[SH_DB_MAX_HOSTS];
        char err[256];
        int n = sh_db_hosts_parse(c->db.hosts, (unsigned)c->db.port, hosts, SH_DB_MAX_HOSTS, err, sizeof(err));
        for (int i = 0; i < n; i++) {
            if (mysql_real_connect(r->db, hosts[i].host, user, password, NULL, hosts[i].port, NULL,
                                   CLIENT_MULTI_STATEMENTS) != NULL)
                return 0;
            mig_err("cannot connect to the database at %s:%u as %s: %s", hosts[i].host, hosts[i].port, user,
                    mysql_error(r->db));
        }
        return -1;
    }
    if (mysql_real_connect(r->db, sock ? NULL : c->db.host, user, password, NULL, sock ? 0 : (unsigned)c->db.port, sock,
                           CLIENT_MULTI_STATEMENTS) != NULL)
        return 0;
    if (sock != NULL)
        mig_err("cannot connect to the database at %s as %s: %s", sock, user, mysql_error(r->db));
    else
        mig_err("cannot connect to the database at %s:%u as %s: %s", c->db.host, (unsigned)c->db.port, user,
                mysql_error(r->db));
    return -1;
}

/* Waits up to MIG_LOCK_TIMEOUT_S for the run's named lock. 0, or -1 after saying why. */
static int mig_lock(mig_run *r, const char *lock_name)
{
    mig_row *rows;
    size_t n;
    if (mig_query(r, "GET_LOCK", "SELECT GET_LOCK(?, " MIG_STR(MIG_LOCK_TIMEOUT_S) ")", &rows, &n, "s", lock_name) != 0)
        return -1;
    if (n != 1 || rows[0].col[0] == NULL || strcmp(rows[0].col[0], "1") != 0) {
        mig_err("another pl-migrate has held the lock '%s' for %d s; giving up", lock_name, MIG_LOCK_TIMEOUT_S);
        return -1;
    }
    return 0;
}

/* Schema, user (its password set on every run, so a new secret takes effect),
 * a grant on that schema only, and the bookkeeping table: statements no
 * placeholder can serve, so their text holds validated names only (and the
 * password, which is why it is never printed). 0, or -1 after saying why. */
static int mig_provision(mig_run *r)
{
    const mig_config *c = &r->conf;
    sh_arena *a = r->arena;
    /* In GRANT, '_' in a database name is a wildcard: escaped, so that the
     * grant on `a_b` cannot also cover a schema named `aXb`. */
    char *grant_db = sh_arena_alloc(a, 2 * strlen(c->db.name) + 1), *g = grant_db;
    for (const char *s = c->db.name; *s != '\0'; s++) {
        if (*s == '_')
            *g++ = '\\';
        *g++ = *s;
    }
    *g = '\0';

    const struct {
        const char *what;
        char *sql;
    } steps[] = {
        {"CREATE DATABASE", sh_arena_sprintf(a,
                                             "CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4"
                                             " COLLATE utf8mb4_unicode_ci",
                                             c->db.name)},
        {"CREATE USER", sh_arena_sprintf(a, "CREATE USER IF NOT EXISTS '%s'@'%s' IDENTIFIED BY '%s'", c->db.user,
                                         c->user_host, c->db.password)},
        {"ALTER USER",
         sh_arena_sprintf(a, "ALTER USER '%s'@'%s' IDENTIFIED BY '%s'", c->db.user, c->user_host, c->db.password)},
        {"GRANT",
         sh_arena_sprintf(a, "GRANT ALL PRIVILEGES ON `%s`.* TO '%s'@'%s'", grant_db, c->db.user, c->user_host)},
        {"CREATE TABLE schema_migrations",
         sh_arena_sprintf(a,
                          "CREATE TABLE IF NOT EXISTS `%s`.schema_migrations ("
                          " version INT NOT NULL PRIMARY KEY,"
                          " name VARCHAR(255) NOT NULL,"
                          " checksum CHAR(64) NOT NULL,"
                          " applied_at DATETIME(6) NOT NULL"
                          ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci",
                          c->db.name)},
    };
    int rc = 0;
    for (size_t i = 0; i < SH_ARRAY_LEN(steps) && rc == 0; i++)
        rc = mig_query(r, steps[i].what, steps[i].sql, NULL, NULL, "");
    /* Two of the texts hold the password: no copy of it stays in the arena. */
    for (size_t i = 0; i < SH_ARRAY_LEN(steps); i++)
        sodium_memzero(steps[i].sql, strlen(steps[i].sql));
    return rc;
}

/* Whether <schema>.schema_migrations exists (--status must not create it). 0, or -1 after saying why. */
static int mig_table_exists(mig_run *r, bool *exists)
{
    mig_row *rows;
    size_t n;
    if (mig_query(r, "looking up schema_migrations",
                  "SELECT COUNT(*) FROM information_schema.TABLES"
                  " WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'schema_migrations'",
                  &rows, &n, "s", r->conf.db.name) != 0)
        return -1;
    *exists = n == 1 && rows[0].col[0] != NULL && strcmp(rows[0].col[0], "0") != 0;
    return 0;
}

/* Reads every recorded migration into r->applied, ordered by version. 0, or -1 after saying why. */
static int mig_applied_load(mig_run *r)
{
    mig_row *rows;
    size_t n;
    if (mig_query(r, "reading schema_migrations",
                  sh_arena_sprintf(r->arena,
                                   "SELECT version, name, checksum, CAST(applied_at AS CHAR)"
                                   " FROM `%s`.schema_migrations ORDER BY version",
                                   r->conf.db.name),
                  &rows, &n, "") != 0)
        return -1;
    r->applied = sh_arena_alloc(r->arena, n * sizeof(mig_applied));
    r->napplied = n;
    for (size_t i = 0; i < n; i++) {
        const char *const *col = rows[i].col;
        int64_t v;
        if (col[0] == NULL || sh_parse_int64(col[0], strlen(col[0]), INT32_MIN, INT32_MAX, &v) != 0 || col[1] == NULL ||
            col[2] == NULL) {
            mig_err("schema_migrations holds a malformed row (version %s)", col[0] ? col[0] : "NULL");
            return -1;
        }
        r->applied[i] = (mig_applied){(int)v, col[1], col[2], col[3] ? col[3] : ""};
    }
    return 0;
}

/* The file of that version, or NULL. */
static const mig_file *mig_file_find(const mig_run *r, int version)
{
    for (size_t i = 0; i < r->nfiles; i++)
        if (r->files[i].version == version)
            return &r->files[i];
    return NULL;
}

/* The recorded row of that version, or NULL: the migration is pending. */
static const mig_applied *mig_applied_find(const mig_run *r, int version)
{
    for (size_t i = 0; i < r->napplied; i++)
        if (r->applied[i].version == version)
            return &r->applied[i];
    return NULL;
}

/* Every applied migration must still be in the directory, unchanged, and no
 * pending one may be older than the newest applied one. Says every problem,
 * so one run shows them all; returns -1 if there was any, else 0. */
static int mig_verify(const mig_run *r)
{
    int rc = 0, newest = r->napplied > 0 ? r->applied[r->napplied - 1].version : -1;
    for (size_t i = 0; i < r->napplied; i++) {
        const mig_applied *a = &r->applied[i];
        const mig_file *f = mig_file_find(r, a->version);
        if (f == NULL) {
            mig_err("applied migration %s is missing from %s", a->name, r->dir);
            rc = -1;
        } else if (strcmp(f->name, a->name) != 0) {
            mig_err("applied migration %d was %s, but the file is now %s", a->version, a->name, f->name);
            rc = -1;
        } else if (strcmp(f->checksum, a->checksum) != 0) {
            mig_err("applied migration %s has changed since it was applied (sha256 %s, was %s);"
                    " add a new migration instead of editing an applied one",
                    f->name, f->checksum, a->checksum);
            rc = -1;
        }
    }
    for (size_t i = 0; i < r->nfiles; i++) {
        if (r->files[i].version < newest && mig_applied_find(r, r->files[i].version) == NULL) {
            mig_err("pending migration %s is older than applied migration %d; renumber it after %d", r->files[i].name,
                    newest, newest);
            rc = -1;
        }
    }
    return rc;
}

/* Runs one migration file (several statements) with the schema selected.
 * 0, or -1 after saying which statement failed. */
static int mig_apply_sql(mig_run *r, const mig_file *f)
{
    MYSQL *db = r->db;
    if (mysql_select_db(db, r->conf.db.name) != 0) {
        mig_db_err(db, "selecting the schema");
        return -1;
    }
    if (mysql_real_query(db, f->sql, (unsigned long)f->sql_len) != 0) {
        if (mysql_errno(db) == ER_EMPTY_QUERY)
            return 0; /* only comments: nothing to do */
        mig_err("%s: statement 1 failed: %s (MySQL error %u)", f->name, mysql_error(db), mysql_errno(db));
        return -1;
    }
    for (int stmt = 1;; stmt++) {
        MYSQL_RES *res = mysql_store_result(db);
        if (res != NULL) {
            mysql_free_result(res);
        } else if (mysql_field_count(db) != 0) {
            mig_err("%s: statement %d: reading its result failed: %s", f->name, stmt, mysql_error(db));
            return -1;
        }
        int next = mysql_next_result(db);
        if (next == -1)
            return 0;
        if (next > 0) {
            mig_err("%s: statement %d failed: %s (MySQL error %u)", f->name, stmt + 1, mysql_error(db),
                    mysql_errno(db));
            return -1;
        }
    }
}

/* Records an applied file. 0, or -1 after saying why. */
static int mig_record(mig_run *r, const mig_file *f)
{
    return mig_query(r, "recording the migration",
                     sh_arena_sprintf(r->arena,
                                      "INSERT INTO `%s`.schema_migrations (version, name, checksum, applied_at)"
                                      " VALUES (?, ?, ?, NOW(6))",
                                      r->conf.db.name),
                     NULL, NULL, "iss", f->version, f->name, f->checksum);
}

/* ---- the two modes ----------------------------------------------------------------------------- */

/* The files of DIR not recorded as applied: how many, the first of them in
 * *first (NULL: none), each printed as pending when list is set. */
static size_t mig_pending(mig_run *r, bool list, const char **first)
{
    size_t pending = 0;
    *first = NULL;
    for (size_t i = 0; i < r->nfiles; i++) {
        if (mig_applied_find(r, r->files[i].version) != NULL)
            continue;
        if (list)
            printf("%s: pending %s\n", r->service, r->files[i].name);
        if (*first == NULL)
            *first = r->files[i].name;
        pending++;
    }
    return pending;
}

/* Lists applied and pending migrations, then checks them, changing nothing.
 * 0, or -1 when a check failed (after saying why). */
static int mig_status(mig_run *r)
{
    bool exists = false;
    if (mig_table_exists(r, &exists) != 0 || (exists && mig_applied_load(r) != 0))
        return -1;
    for (size_t i = 0; i < r->napplied; i++)
        printf("%s: applied %s at %s\n", r->service, r->applied[i].name, r->applied[i].applied_at);
    const char *first;
    size_t pending = mig_pending(r, true, &first);
    printf("%s: schema %s: %zu applied, %zu pending\n", r->service, r->conf.db.name, r->napplied, pending);
    return mig_verify(r);
}

/* --check: whether every file of the directory is recorded, as the
 * service's user, changing nothing. The exit status: 0 up to date, 3
 * pending (or no schema_migrations yet), 1 when it could not tell (after
 * saying why). */
static int mig_check(mig_run *r)
{
    bool exists = false;
    if (mig_table_exists(r, &exists) != 0)
        return 1;
    if (!exists) {
        printf("%s: schema %s: not migrated yet (%zu pending)\n", r->service, r->conf.db.name, r->nfiles);
        return 3;
    }
    if (mig_applied_load(r) != 0)
        return 1;
    const char *first;
    size_t pending = mig_pending(r, false, &first);
    if (pending > 0) {
        printf("%s: schema %s: %zu pending, the first %s\n", r->service, r->conf.db.name, pending, first);
        return 3;
    }
    printf("%s: schema %s up to date (%zu applied)\n", r->service, r->conf.db.name, r->napplied);
    return 0;
}

/* Provisions, then applies and records each pending file in order, stopping
 * at the first that fails. 0, or -1 after saying why. */
static int mig_apply(mig_run *r)
{
    if (mig_provision(r) != 0 || mig_applied_load(r) != 0)
        return -1;
    if (mig_verify(r) != 0) {
        mig_err("refusing to migrate: nothing was applied");
        return -1;
    }
    size_t done = 0;
    for (size_t i = 0; i < r->nfiles; i++) {
        const mig_file *f = &r->files[i];
        if (mig_applied_find(r, f->version) != NULL)
            continue;
        if (mig_apply_sql(r, f) != 0 || mig_record(r, f) != 0) {
            mig_err("stopped at %s; %zu migration(s) applied before it", f->name, done);
            return -1;
        }
        /* Flushed at once, so that a later failure still shows what was done. */
        printf("%s: applied %s\n", r->service, f->name);
        if (fflush(stdout) != 0) {
            mig_err("cannot write to stdout: %s", strerror(errno));
            return -1;
        }
        done++;
    }
    if (done == 0)
        printf("%s: schema %s up to date (%zu applied)\n", r->service, r->conf.db.name, r->napplied);
    return 0;
}

/* Applies under the lock, so that a second run waits, then finds nothing to
 * do. 0, or -1 after saying why. */
static int mig_apply_locked(mig_run *r)
{
    const char *lock_name = sh_arena_sprintf(r->arena, "pilotlight_migrate_%s", r->service);
    if (mig_lock(r, lock_name) != 0)
        return -1;
    int rc = mig_apply(r);
    if (mig_query(r, "RELEASE_LOCK", "SELECT RELEASE_LOCK(?)", NULL, NULL, "s", lock_name) != 0)
        rc = -1;
    return rc;
}

int main(int argc, char **argv)
{
    /* static: the secrets sh_config_load reads from files are the process's
     * own until it exits, and stay reachable from here. */
    static mig_run r;
    int status = mig_args(&r, argc, argv);
    if (status >= 0)
        return status;
    mig_service = r.service;
    sh_log_init("pl-migrate", SH_LOG_INFO); /* for what libshared itself logs, such as running out of memory */
    if (sodium_init() < 0) {
        mig_err("libsodium failed to initialise");
        return 1;
    }
    if (mig_configure(&r) != 0)
        return 1;
    if (mysql_library_init(0, NULL, NULL) != 0) {
        mig_err("cannot initialise the MySQL client library");
        return 1;
    }
    r.arena = sh_arena_create(64 * 1024);
    status = 1;
    if (mig_files_load(&r) == 0 && mig_connect(&r) == 0) {
        if (r.check_only)
            status = mig_check(&r);
        else
            status = (r.status_only ? mig_status(&r) : mig_apply_locked(&r)) == 0 ? 0 : 1;
    }
    if (r.db != NULL)
        mysql_close(r.db);
    mysql_library_end();
    sh_arena_destroy(r.arena);
    if (fflush(stdout) != 0)
        status = 1;
    return status;
}
