/* pl-migrate: gives one service its own schema and DB user, then applies the
 * service's migrations (DIR/NNN_name.sql) in numeric order, each exactly once.
 *
 * It runs as a DB administrator under GET_LOCK('pilotlight_migrate_<name>'),
 * so two concurrent runs are safe. Its inputs are operator configuration, but
 * every identifier and password is still validated strictly before it can
 * reach SQL text, and every value MySQL lets us bind goes through a prepared
 * statement. Migration files themselves are trusted code and run verbatim
 * (several statements each), with the service's schema selected.
 *
 * Works against MariaDB 10.11 and MySQL 8. Exit status: 0 done, 1 refused or
 * failed (one clear message on stderr), 2 usage error. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mysql.h>
#include <mysqld_error.h>
#include <sodium.h>

#define MIG_IDENT_MAX      32          /* [a-z][a-z0-9_]{0,31} */
#define MIG_PASSWORD_MIN   12
#define MIG_PASSWORD_MAX   128
#define MIG_HOST_MAX       60
#define MIG_NAME_MAX       255         /* schema_migrations.name */
#define MIG_FILE_MAX       (16 << 20)  /* a migration larger than this is a mistake */
#define MIG_LOCK_TIMEOUT_S 60
#define MIG_HEX_LEN        (crypto_hash_sha256_BYTES * 2)
#define MIG_STR_(x)        #x
#define MIG_STR(x)         MIG_STR_(x)

/* MySQL 8's client library dropped my_bool for bool; MariaDB's keeps it. */
#if !defined(MARIADB_PACKAGE_VERSION) && MYSQL_VERSION_ID >= 80000
typedef bool my_bool;
#endif

typedef struct {
    const char *service;
    const char *dir;
    bool        status_only;

    const char *db_socket;      /* NULL: TCP to db_host:db_port */
    const char *db_host;
    unsigned    db_port;
    const char *admin_user;
    char       *admin_password; /* NULL: no password (unix_socket auth) */
    const char *db_name;
    const char *db_user;
    char       *db_password;    /* NULL only with --status */
    const char *user_host;
} mig_conf_t;

/* One NNN_name.sql file found in the directory. */
typedef struct {
    int    version;
    char   name[MIG_NAME_MAX + 1];   /* the file name, e.g. "001_init.sql" */
    char   checksum[MIG_HEX_LEN + 1];
    char  *sql;                      /* whole file, NUL-terminated */
    size_t sql_len;
} mig_file_t;

/* One row of <schema>.schema_migrations. */
typedef struct {
    int  version;
    char name[MIG_NAME_MAX + 1];
    char checksum[MIG_HEX_LEN + 1];
    char applied_at[32];
} mig_applied_t;

static const char *mig_service = "?";

static void mig_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
mig_err(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "pl-migrate: %s: ", mig_service);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void
mig_usage(FILE *out)
{
    fputs(
"usage: pl-migrate --service NAME --dir DIR [--status]\n"
"\n"
"Creates database NAME and DB user NAME (if missing), sets the user's password,\n"
"grants it ALL on that schema only, then applies DIR/NNN_name.sql files not yet\n"
"recorded in <schema>.schema_migrations, in numeric order. --status only lists\n"
"applied and pending migrations and changes nothing.\n"
"\n"
"environment:\n"
"  PL_DB_SOCKET               unix socket of the server (used instead of host/port)\n"
"  PL_DB_HOST, PL_DB_PORT     default 127.0.0.1, 3306\n"
"  PL_DB_ADMIN_USER           default root\n"
"  PL_DB_ADMIN_PASSWORD(_FILE) empty: no password (unix_socket auth as OS root)\n"
"  PL_DB_NAME, PL_DB_USER     default NAME; [a-z][a-z0-9_]{0,31}\n"
"  PL_DB_PASSWORD(_FILE)      the service user's password; [A-Za-z0-9_-]{12,128}\n"
"  PL_DB_USER_HOST            host part of the service user, default %\n", out);
}

/* ---- validation --------------------------------------------------------- */

static bool
mig_is_ident(const char *s)
{
    size_t i;

    if (s[0] < 'a' || s[0] > 'z') {
        return false;
    }
    for (i = 1; s[i] != '\0'; i++) {
        if (i >= MIG_IDENT_MAX) {
            return false;
        }
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_')) {
            return false;
        }
    }
    return true;
}

static bool
mig_is_password(const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        if (i >= MIG_PASSWORD_MAX) {
            return false;
        }
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-')) {
            return false;
        }
    }
    return i >= MIG_PASSWORD_MIN;
}

/* A MySQL account host: a name, an address, or a pattern with % and _. */
static bool
mig_is_user_host(const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        if (i >= MIG_HOST_MAX) {
            return false;
        }
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9')
              || strchr("%_.:-/", s[i]) != NULL)) {
            return false;
        }
    }
    return i > 0;
}

/* "NNN_name.sql": 3 to 9 digits, '_', [A-Za-z0-9][A-Za-z0-9_-]*, ".sql". */
static int
mig_parse_file_name(const char *fname, int *version)
{
    size_t      len = strlen(fname), digits = 0, i;
    const char *name;
    long        v = 0;

    if (len > MIG_NAME_MAX || len < 4 || strcmp(fname + len - 4, ".sql") != 0) {
        return -1;
    }
    while (fname[digits] >= '0' && fname[digits] <= '9') {
        v = v * 10 + (fname[digits] - '0');
        digits++;
        if (digits > 9) {
            return -1;
        }
    }
    if (digits < 3 || fname[digits] != '_') {
        return -1;
    }
    name = fname + digits + 1;
    if (name == fname + len - 4) {
        return -1;                      /* "001_.sql" */
    }
    for (i = 0; name + i < fname + len - 4; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                  || (i > 0 && (c == '_' || c == '-'));
        if (!ok) {
            return -1;
        }
    }
    *version = (int) v;
    return 0;
}

/* ---- configuration ------------------------------------------------------ */

static const char *
mig_env(const char *name, const char *dflt)
{
    const char *v = getenv(name);

    return (v != NULL && v[0] != '\0') ? v : dflt;
}

/* Reads a whole small file into a new NUL-terminated buffer. */
static char *
mig_read_file(const char *path, size_t max, size_t *len_out)
{
    struct stat st;
    char       *buf = NULL;
    size_t      got = 0;
    int         fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        mig_err("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) == -1) {
        mig_err("cannot stat %s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode) || (size_t) st.st_size > max) {
        mig_err("%s is not a regular file of at most %zu bytes", path, max);
        goto fail;
    }
    buf = malloc((size_t) st.st_size + 1);
    if (buf == NULL) {
        mig_err("out of memory reading %s", path);
        goto fail;
    }
    while (got < (size_t) st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t) st.st_size - got);
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1) {
            mig_err("cannot read %s: %s", path, strerror(errno));
            goto fail;
        }
        if (n == 0) {
            break;                      /* shrank while we read: take what is there */
        }
        got += (size_t) n;
    }
    buf[got] = '\0';
    if (close(fd) == -1) {
        mig_err("cannot close %s: %s", path, strerror(errno));
        free(buf);
        return NULL;
    }
    *len_out = got;
    return buf;

fail:
    free(buf);
    (void) close(fd);
    return NULL;
}

/* A secret from VAR or VAR_FILE (trailing newline stripped); NULL when neither
 * is set; *failed set when the file cannot be read. */
static char *
mig_secret(const char *var, bool *failed)
{
    char        file_var[64];
    const char *v, *path;
    char       *s;
    size_t      len;
    int         n;

    v = mig_env(var, NULL);
    if (v != NULL) {
        s = strdup(v);
        if (s == NULL) {
            mig_err("out of memory");
            *failed = true;
        }
        return s;
    }
    n = snprintf(file_var, sizeof(file_var), "%s_FILE", var);
    if (n < 0 || (size_t) n >= sizeof(file_var)) {
        *failed = true;
        return NULL;
    }
    path = mig_env(file_var, NULL);
    if (path == NULL) {
        return NULL;
    }
    s = mig_read_file(path, 4096, &len);
    if (s == NULL) {
        *failed = true;
        return NULL;
    }
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r')) {
        s[--len] = '\0';
    }
    if (len == 0) {
        free(s);
        return NULL;
    }
    return s;
}

static int
mig_conf_load(mig_conf_t *c)
{
    const char   *port;
    char         *end;
    unsigned long p;
    bool          failed = false;

    if (!mig_is_ident(c->service)) {
        mig_err("--service must match [a-z][a-z0-9_]{0,31}");
        return -1;
    }
    c->db_socket = mig_env("PL_DB_SOCKET", NULL);
    c->db_host = mig_env("PL_DB_HOST", "127.0.0.1");
    port = mig_env("PL_DB_PORT", "3306");
    errno = 0;
    p = strtoul(port, &end, 10);
    if (errno != 0 || *end != '\0' || p == 0 || p > 65535) {
        mig_err("PL_DB_PORT must be a port number, not '%s'", port);
        return -1;
    }
    c->db_port = (unsigned) p;
    c->admin_user = mig_env("PL_DB_ADMIN_USER", "root");
    c->db_name = mig_env("PL_DB_NAME", c->service);
    c->db_user = mig_env("PL_DB_USER", c->service);
    c->user_host = mig_env("PL_DB_USER_HOST", "%");

    if (!mig_is_ident(c->db_name)) {
        mig_err("PL_DB_NAME must match [a-z][a-z0-9_]{0,31}");
        return -1;
    }
    if (!mig_is_ident(c->db_user)) {
        mig_err("PL_DB_USER must match [a-z][a-z0-9_]{0,31}");
        return -1;
    }
    if (!mig_is_user_host(c->user_host)) {
        mig_err("PL_DB_USER_HOST must be 1-60 of [A-Za-z0-9%%_.:/-]");
        return -1;
    }

    c->admin_password = mig_secret("PL_DB_ADMIN_PASSWORD", &failed);
    if (failed) {
        return -1;
    }
    if (c->status_only) {
        return 0;
    }
    c->db_password = mig_secret("PL_DB_PASSWORD", &failed);
    if (failed) {
        return -1;
    }
    if (c->db_password == NULL) {
        mig_err("the service user's password is missing: set PL_DB_PASSWORD or PL_DB_PASSWORD_FILE");
        return -1;
    }
    if (!mig_is_password(c->db_password)) {
        mig_err("the service user's password must be 12-128 of [A-Za-z0-9_-]");
        return -1;
    }
    return 0;
}

/* ---- the migration directory -------------------------------------------- */

static int
mig_file_cmp(const void *a, const void *b)
{
    const mig_file_t *x = a, *y = b;

    return (x->version > y->version) - (x->version < y->version);
}

static void
mig_files_free(mig_file_t *files, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(files[i].sql);
    }
    free(files);
}

/* Should this directory entry be skipped rather than parsed? */
static bool
mig_is_ignored(const char *fname)
{
    size_t len = strlen(fname);

    return fname[0] == '.' || (len >= 3 && strcmp(fname + len - 3, ".md") == 0);
}

/* Reads every NNN_name.sql of dir, sorted by version, with checksums. A missing
 * directory is an empty one; any other entry (bar dotfiles and *.md) is an
 * error, and so is a version used twice. */
static int
mig_files_load(const char *dir, mig_file_t **out, size_t *n_out)
{
    DIR           *d;
    struct dirent *e;
    mig_file_t    *files = NULL, *f;
    size_t         n = 0, cap = 0, i;
    char           path[PATH_MAX];
    unsigned char  hash[crypto_hash_sha256_BYTES];
    int            rc = -1, len;

    *out = NULL;
    *n_out = 0;
    d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT) {
            return 0;
        }
        mig_err("cannot open directory %s: %s", dir, strerror(errno));
        return -1;
    }
    for (;;) {
        errno = 0;
        e = readdir(d);
        if (e == NULL) {
            if (errno != 0) {
                mig_err("cannot read directory %s: %s", dir, strerror(errno));
                goto done;
            }
            break;
        }
        if (mig_is_ignored(e->d_name)) {
            continue;
        }
        if (n == cap) {
            size_t      ncap = cap ? cap * 2 : 16;
            mig_file_t *nf = realloc(files, ncap * sizeof(*files));
            if (nf == NULL) {
                mig_err("out of memory");
                goto done;
            }
            files = nf;
            cap = ncap;
        }
        f = &files[n];
        memset(f, 0, sizeof(*f));
        if (mig_parse_file_name(e->d_name, &f->version) != 0) {
            mig_err("malformed migration file name '%s' in %s: expected NNN_name.sql "
                    "(3-9 digits, '_', then letters, digits, '_' or '-')", e->d_name, dir);
            goto done;
        }
        memcpy(f->name, e->d_name, strlen(e->d_name) + 1);
        len = snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (len < 0 || (size_t) len >= sizeof(path)) {
            mig_err("path too long: %s/%s", dir, e->d_name);
            goto done;
        }
        f->sql = mig_read_file(path, MIG_FILE_MAX, &f->sql_len);
        if (f->sql == NULL) {
            goto done;
        }
        n++;
        if (crypto_hash_sha256(hash, (const unsigned char *) f->sql, f->sql_len) != 0) {
            mig_err("cannot hash %s", path);
            goto done;
        }
        sodium_bin2hex(f->checksum, sizeof(f->checksum), hash, sizeof(hash));
    }
    if (n > 0) {
        qsort(files, n, sizeof(*files), mig_file_cmp);
    }
    for (i = 1; i < n; i++) {
        if (files[i].version == files[i - 1].version) {
            mig_err("two migrations share version %d in %s: %s and %s",
                    files[i].version, dir, files[i - 1].name, files[i].name);
            goto done;
        }
    }
    rc = 0;

done:
    if (closedir(d) == -1 && rc == 0) {
        mig_err("cannot close directory %s: %s", dir, strerror(errno));
        rc = -1;
    }
    if (rc == 0) {
        *out = files;
        *n_out = n;
    } else {
        mig_files_free(files, n);
    }
    return rc;
}

/* ---- database helpers --------------------------------------------------- */

static void
mig_db_err(MYSQL *db, const char *what)
{
    mig_err("%s failed: %s (MySQL error %u)", what, mysql_error(db), mysql_errno(db));
}

static void
mig_stmt_err(MYSQL_STMT *st, const char *what)
{
    mig_err("%s failed: %s (MySQL error %u)", what, mysql_stmt_error(st), mysql_stmt_errno(st));
}

static void
mig_bind_str(MYSQL_BIND *b, const char *s, unsigned long *len)
{
    memset(b, 0, sizeof(*b));
    *len = (unsigned long) strlen(s);
    b->buffer_type = MYSQL_TYPE_STRING;
    b->buffer = (void *) s;
    b->buffer_length = *len;
    b->length = len;
}

/* Prepares and executes sql with the given parameters; returns the statement
 * (caller closes it) or NULL after reporting the error. */
static MYSQL_STMT *
mig_stmt_run(MYSQL *db, const char *what, const char *sql, MYSQL_BIND *params)
{
    MYSQL_STMT *st = mysql_stmt_init(db);

    if (st == NULL) {
        mig_db_err(db, what);
        return NULL;
    }
    if (mysql_stmt_prepare(st, sql, (unsigned long) strlen(sql)) != 0
        || (params != NULL && mysql_stmt_bind_param(st, params) != 0)
        || mysql_stmt_execute(st) != 0) {
        mig_stmt_err(st, what);
        (void) mysql_stmt_close(st);
        return NULL;
    }
    return st;
}

/* Runs a statement that returns no rows. */
static int
mig_exec(MYSQL *db, const char *what, const char *sql, MYSQL_BIND *params)
{
    MYSQL_STMT *st = mig_stmt_run(db, what, sql, params);

    if (st == NULL) {
        return -1;
    }
    if (mysql_stmt_close(st) != 0) {
        mig_db_err(db, what);
        return -1;
    }
    return 0;
}

/* Runs a statement that returns one row of one integer (NULL → *is_null). */
static int
mig_query_int(MYSQL *db, const char *what, const char *sql, MYSQL_BIND *params,
              long long *out, bool *is_null)
{
    MYSQL_STMT *st;
    MYSQL_BIND  res;
    my_bool     null = 0;
    int         rc = -1, f;

    st = mig_stmt_run(db, what, sql, params);
    if (st == NULL) {
        return -1;
    }
    memset(&res, 0, sizeof(res));
    res.buffer_type = MYSQL_TYPE_LONGLONG;
    res.buffer = out;
    res.is_null = &null;
    if (mysql_stmt_bind_result(st, &res) != 0) {
        mig_stmt_err(st, what);
        goto done;
    }
    f = mysql_stmt_fetch(st);
    if (f == 1 || f == MYSQL_DATA_TRUNCATED) {
        mig_stmt_err(st, what);
        goto done;
    }
    if (f == MYSQL_NO_DATA) {
        mig_err("%s returned no row", what);
        goto done;
    }
    while ((f = mysql_stmt_fetch(st)) == 0) {
        /* drain: a second row would be a bug in our SQL, but must not desync */
    }
    if (f == 1) {
        mig_stmt_err(st, what);
        goto done;
    }
    *is_null = null != 0;
    rc = 0;

done:
    if (mysql_stmt_close(st) != 0 && rc == 0) {
        mig_db_err(db, what);
        rc = -1;
    }
    return rc;
}

/* Formats SQL text around validated identifiers (never around input that was
 * not checked by mig_is_ident / mig_is_password / mig_is_user_host). */
static int
mig_sql(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
mig_sql(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    int     n;

    va_start(ap, fmt);
    n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t) n >= size) {
        mig_err("internal error: SQL text too long");
        return -1;
    }
    return 0;
}

static MYSQL *
mig_connect(const mig_conf_t *c)
{
    MYSQL       *db = mysql_init(NULL);
    unsigned int timeout = 10;

    if (db == NULL) {
        mig_err("mysql_init failed: out of memory");
        return NULL;
    }
    if (mysql_options(db, MYSQL_OPT_CONNECT_TIMEOUT, &timeout) != 0
        || mysql_options(db, MYSQL_SET_CHARSET_NAME, "utf8mb4") != 0) {
        mig_db_err(db, "setting connection options");
        mysql_close(db);
        return NULL;
    }
    /* Multi-statements are on for the connection because migration files need
     * them; every statement of our own goes through mysql_stmt_prepare, which
     * accepts only one. */
    if (mysql_real_connect(db, c->db_socket ? NULL : c->db_host, c->admin_user,
                           c->admin_password, NULL, c->db_socket ? 0 : c->db_port,
                           c->db_socket, CLIENT_MULTI_STATEMENTS) == NULL) {
        if (c->db_socket != NULL) {
            mig_err("cannot connect to the database at %s as %s: %s",
                    c->db_socket, c->admin_user, mysql_error(db));
        } else {
            mig_err("cannot connect to the database at %s:%u as %s: %s",
                    c->db_host, c->db_port, c->admin_user, mysql_error(db));
        }
        mysql_close(db);
        return NULL;
    }
    return db;
}

static int
mig_lock(MYSQL *db, const char *lock_name)
{
    MYSQL_BIND    p[1];
    unsigned long len;
    long long     got = 0;
    bool          is_null = false;

    mig_bind_str(&p[0], lock_name, &len);
    if (mig_query_int(db, "GET_LOCK", "SELECT GET_LOCK(?, " MIG_STR(MIG_LOCK_TIMEOUT_S) ")", p, &got, &is_null) != 0) {
        return -1;
    }
    if (is_null || got != 1) {
        mig_err("another pl-migrate has held the lock '%s' for %d s; giving up",
                lock_name, MIG_LOCK_TIMEOUT_S);
        return -1;
    }
    return 0;
}

static int
mig_unlock(MYSQL *db, const char *lock_name)
{
    MYSQL_BIND    p[1];
    unsigned long len;
    long long     got = 0;
    bool          is_null = false;

    mig_bind_str(&p[0], lock_name, &len);
    return mig_query_int(db, "RELEASE_LOCK", "SELECT RELEASE_LOCK(?)", p, &got, &is_null);
}

/* Schema, user (password set every run, so a new secret takes effect), grant
 * on that schema only, and the bookkeeping table. */
static int
mig_provision(MYSQL *db, const mig_conf_t *c)
{
    char sql[512];
    char grant_db[MIG_IDENT_MAX * 2 + 1];
    size_t i, j = 0;

    /* In GRANT, '_' in a database name is a wildcard: escape it so that the
     * grant on `a_b` cannot also cover a schema named `aXb`. */
    for (i = 0; c->db_name[i] != '\0'; i++) {
        if (c->db_name[i] == '_') {
            grant_db[j++] = '\\';
        }
        grant_db[j++] = c->db_name[i];
    }
    grant_db[j] = '\0';

    if (mig_sql(sql, sizeof(sql),
                "CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
                c->db_name) != 0
        || mig_exec(db, "CREATE DATABASE", sql, NULL) != 0) {
        return -1;
    }
    /* MySQL accepts no placeholder for a password: it is inlined, and safe to
     * inline only because mig_is_password allows [A-Za-z0-9_-] alone. The
     * statement text is never printed. */
    if (mig_sql(sql, sizeof(sql), "CREATE USER IF NOT EXISTS '%s'@'%s' IDENTIFIED BY '%s'",
                c->db_user, c->user_host, c->db_password) != 0
        || mig_exec(db, "CREATE USER", sql, NULL) != 0) {
        return -1;
    }
    if (mig_sql(sql, sizeof(sql), "ALTER USER '%s'@'%s' IDENTIFIED BY '%s'",
                c->db_user, c->user_host, c->db_password) != 0
        || mig_exec(db, "ALTER USER", sql, NULL) != 0) {
        return -1;
    }
    sodium_memzero(sql, sizeof(sql));
    if (mig_sql(sql, sizeof(sql), "GRANT ALL PRIVILEGES ON `%s`.* TO '%s'@'%s'",
                grant_db, c->db_user, c->user_host) != 0
        || mig_exec(db, "GRANT", sql, NULL) != 0) {
        return -1;
    }
    if (mig_sql(sql, sizeof(sql),
                "CREATE TABLE IF NOT EXISTS `%s`.schema_migrations ("
                " version INT NOT NULL PRIMARY KEY,"
                " name VARCHAR(255) NOT NULL,"
                " checksum CHAR(64) NOT NULL,"
                " applied_at DATETIME(6) NOT NULL"
                ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci",
                c->db_name) != 0
        || mig_exec(db, "CREATE TABLE schema_migrations", sql, NULL) != 0) {
        return -1;
    }
    return 0;
}

/* Does <schema>.schema_migrations exist? (--status must not create it.) */
static int
mig_table_exists(MYSQL *db, const mig_conf_t *c, bool *exists)
{
    MYSQL_BIND    p[1];
    unsigned long len;
    long long     n = 0;
    bool          is_null = false;

    mig_bind_str(&p[0], c->db_name, &len);
    if (mig_query_int(db, "looking up schema_migrations",
                      "SELECT COUNT(*) FROM information_schema.TABLES"
                      " WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'schema_migrations'",
                      p, &n, &is_null) != 0) {
        return -1;
    }
    *exists = n > 0;
    return 0;
}

/* Reads every recorded migration, ordered by version. */
static int
mig_applied_load(MYSQL *db, const mig_conf_t *c, mig_applied_t **out, size_t *n_out)
{
    MYSQL_STMT    *st;
    MYSQL_BIND     res[4];
    mig_applied_t  row, *rows = NULL;
    unsigned long  lens[4];
    my_bool        nulls[4];
    size_t         n = 0, cap = 0;
    char           sql[256];
    int            rc = -1, f;

    *out = NULL;
    *n_out = 0;
    if (mig_sql(sql, sizeof(sql),
                "SELECT version, name, checksum, CAST(applied_at AS CHAR)"
                " FROM `%s`.schema_migrations ORDER BY version", c->db_name) != 0) {
        return -1;
    }
    st = mig_stmt_run(db, "reading schema_migrations", sql, NULL);
    if (st == NULL) {
        return -1;
    }
    memset(res, 0, sizeof(res));
    res[0].buffer_type = MYSQL_TYPE_LONG;
    res[0].buffer = &row.version;
    res[1].buffer_type = MYSQL_TYPE_STRING;
    res[1].buffer = row.name;
    res[1].buffer_length = sizeof(row.name);
    res[2].buffer_type = MYSQL_TYPE_STRING;
    res[2].buffer = row.checksum;
    res[2].buffer_length = sizeof(row.checksum);
    res[3].buffer_type = MYSQL_TYPE_STRING;
    res[3].buffer = row.applied_at;
    res[3].buffer_length = sizeof(row.applied_at);
    for (f = 0; f < 4; f++) {
        res[f].length = &lens[f];
        res[f].is_null = &nulls[f];
    }
    if (mysql_stmt_bind_result(st, res) != 0) {
        mig_stmt_err(st, "reading schema_migrations");
        goto done;
    }
    for (;;) {
        memset(&row, 0, sizeof(row));
        f = mysql_stmt_fetch(st);
        if (f == MYSQL_NO_DATA) {
            break;
        }
        if (f == 1) {
            mig_stmt_err(st, "reading schema_migrations");
            goto done;
        }
        if (f == MYSQL_DATA_TRUNCATED || nulls[0] || nulls[1] || nulls[2]) {
            mig_err("schema_migrations holds a malformed row (version %d)", row.version);
            goto done;
        }
        if (n == cap) {
            size_t         ncap = cap ? cap * 2 : 16;
            mig_applied_t *nr = realloc(rows, ncap * sizeof(*rows));
            if (nr == NULL) {
                mig_err("out of memory");
                goto done;
            }
            rows = nr;
            cap = ncap;
        }
        rows[n++] = row;
    }
    rc = 0;

done:
    if (mysql_stmt_close(st) != 0 && rc == 0) {
        mig_db_err(db, "reading schema_migrations");
        rc = -1;
    }
    if (rc == 0) {
        *out = rows;
        *n_out = n;
    } else {
        free(rows);
    }
    return rc;
}

static const mig_file_t *
mig_file_find(const mig_file_t *files, size_t n, int version)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (files[i].version == version) {
            return &files[i];
        }
    }
    return NULL;
}

static const mig_applied_t *
mig_applied_find(const mig_applied_t *rows, size_t n, int version)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (rows[i].version == version) {
            return &rows[i];
        }
    }
    return NULL;
}

/* Every applied migration must still be in the directory, unchanged, and no
 * pending one may be older than the newest applied one. Reports every
 * problem, returns -1 if there was any. */
static int
mig_verify(const char *dir, const mig_file_t *files, size_t nf,
           const mig_applied_t *rows, size_t na)
{
    const mig_file_t *f;
    size_t            i;
    int               rc = 0, newest = na > 0 ? rows[na - 1].version : -1;

    for (i = 0; i < na; i++) {
        f = mig_file_find(files, nf, rows[i].version);
        if (f == NULL) {
            mig_err("applied migration %s is missing from %s", rows[i].name, dir);
            rc = -1;
        } else if (strcmp(f->name, rows[i].name) != 0) {
            mig_err("applied migration %d was %s, but the file is now %s",
                    rows[i].version, rows[i].name, f->name);
            rc = -1;
        } else if (strcmp(f->checksum, rows[i].checksum) != 0) {
            mig_err("applied migration %s has changed since it was applied (sha256 %s, was %s);"
                    " add a new migration instead of editing an applied one",
                    f->name, f->checksum, rows[i].checksum);
            rc = -1;
        }
    }
    for (i = 0; i < nf; i++) {
        if (files[i].version < newest && mig_applied_find(rows, na, files[i].version) == NULL) {
            mig_err("pending migration %s is older than applied migration %d;"
                    " renumber it after %d", files[i].name, newest, newest);
            rc = -1;
        }
    }
    return rc;
}

/* Runs one migration file (several statements) with the schema selected. */
static int
mig_apply_sql(MYSQL *db, const mig_conf_t *c, const mig_file_t *f)
{
    MYSQL_RES *res;
    int        stmt = 1, next;

    if (mysql_select_db(db, c->db_name) != 0) {
        mig_db_err(db, "selecting the schema");
        return -1;
    }
    if (mysql_real_query(db, f->sql, (unsigned long) f->sql_len) != 0) {
        if (mysql_errno(db) == ER_EMPTY_QUERY) {
            return 0;                   /* only comments: nothing to do */
        }
        mig_err("%s: statement 1 failed: %s (MySQL error %u)", f->name,
                mysql_error(db), mysql_errno(db));
        return -1;
    }
    for (;;) {
        res = mysql_store_result(db);
        if (res != NULL) {
            mysql_free_result(res);
        } else if (mysql_field_count(db) != 0) {
            mig_err("%s: statement %d: reading its result failed: %s", f->name, stmt,
                    mysql_error(db));
            return -1;
        }
        next = mysql_next_result(db);
        if (next == -1) {
            return 0;
        }
        stmt++;
        if (next > 0) {
            mig_err("%s: statement %d failed: %s (MySQL error %u)", f->name, stmt,
                    mysql_error(db), mysql_errno(db));
            return -1;
        }
    }
}

static int
mig_record(MYSQL *db, const mig_conf_t *c, const mig_file_t *f)
{
    MYSQL_BIND    p[3];
    unsigned long len_name, len_sum;
    char          sql[256];

    if (mig_sql(sql, sizeof(sql),
                "INSERT INTO `%s`.schema_migrations (version, name, checksum, applied_at)"
                " VALUES (?, ?, ?, NOW(6))", c->db_name) != 0) {
        return -1;
    }
    memset(&p[0], 0, sizeof(p[0]));
    p[0].buffer_type = MYSQL_TYPE_LONG;
    p[0].buffer = (void *) &f->version;
    mig_bind_str(&p[1], f->name, &len_name);
    mig_bind_str(&p[2], f->checksum, &len_sum);
    return mig_exec(db, "recording the migration", sql, p);
}

/* ---- the two modes ------------------------------------------------------ */

static int
mig_run_status(MYSQL *db, const mig_conf_t *c, const mig_file_t *files, size_t nf)
{
    mig_applied_t       *rows = NULL;
    const mig_applied_t *row;
    size_t               na = 0, i, pending = 0;
    bool                 exists = false;
    int                  rc = 0;

    if (mig_table_exists(db, c, &exists) != 0) {
        return -1;
    }
    if (exists && mig_applied_load(db, c, &rows, &na) != 0) {
        return -1;
    }
    for (i = 0; i < na; i++) {
        printf("%s: applied %s at %s\n", c->service, rows[i].name, rows[i].applied_at);
    }
    for (i = 0; i < nf; i++) {
        row = mig_applied_find(rows, na, files[i].version);
        if (row == NULL) {
            printf("%s: pending %s\n", c->service, files[i].name);
            pending++;
        }
    }
    printf("%s: schema %s: %zu applied, %zu pending\n", c->service, c->db_name, na, pending);
    if (mig_verify(c->dir, files, nf, rows, na) != 0) {
        rc = -1;
    }
    free(rows);
    return rc;
}

static int
mig_run_apply(MYSQL *db, const mig_conf_t *c, const mig_file_t *files, size_t nf)
{
    mig_applied_t *rows = NULL;
    size_t         na = 0, i, done = 0;
    int            rc = -1;

    if (mig_provision(db, c) != 0 || mig_applied_load(db, c, &rows, &na) != 0) {
        return -1;
    }
    if (mig_verify(c->dir, files, nf, rows, na) != 0) {
        mig_err("refusing to migrate: nothing was applied");
        goto done;
    }
    for (i = 0; i < nf; i++) {
        if (mig_applied_find(rows, na, files[i].version) != NULL) {
            continue;
        }
        if (mig_apply_sql(db, c, &files[i]) != 0 || mig_record(db, c, &files[i]) != 0) {
            mig_err("stopped at %s; %zu migration(s) applied before it", files[i].name, done);
            goto done;
        }
        printf("%s: applied %s\n", c->service, files[i].name);
        if (fflush(stdout) != 0) {
            mig_err("cannot write to stdout: %s", strerror(errno));
            goto done;
        }
        done++;
    }
    if (done == 0) {
        printf("%s: schema %s up to date (%zu applied)\n", c->service, c->db_name, na);
    }
    rc = 0;

done:
    free(rows);
    return rc;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"service", required_argument, NULL, 's'},
        {"dir",     required_argument, NULL, 'd'},
        {"status",  no_argument,       NULL, 'S'},
        {"help",    no_argument,       NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    mig_conf_t  conf;
    mig_file_t *files = NULL;
    size_t      nf = 0;
    MYSQL      *db = NULL;
    char        lock_name[64];
    bool        locked = false, lib_ready = false;
    int         opt, rc = 1, n;

    memset(&conf, 0, sizeof(conf));
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 's': conf.service = optarg; break;
        case 'd': conf.dir = optarg; break;
        case 'S': conf.status_only = true; break;
        case 'h': mig_usage(stdout); return 0;
        default:  mig_usage(stderr); return 2;
        }
    }
    if (optind != argc || conf.service == NULL || conf.dir == NULL) {
        mig_usage(stderr);
        return 2;
    }
    mig_service = conf.service;

    if (sodium_init() < 0) {
        mig_err("libsodium failed to initialise");
        return 1;
    }
    if (mig_conf_load(&conf) != 0) {
        goto done;
    }
    /* Read and check every file before touching the server. */
    if (mig_files_load(conf.dir, &files, &nf) != 0) {
        goto done;
    }
    n = snprintf(lock_name, sizeof(lock_name), "pilotlight_migrate_%s", conf.service);
    if (n < 0 || (size_t) n >= sizeof(lock_name)) {
        mig_err("internal error: lock name too long");
        goto done;
    }
    if (mysql_library_init(0, NULL, NULL) != 0) {
        mig_err("cannot initialise the MySQL client library");
        goto done;
    }
    lib_ready = true;
    db = mig_connect(&conf);
    if (db == NULL) {
        goto done;
    }
    if (conf.status_only) {
        rc = mig_run_status(db, &conf, files, nf) == 0 ? 0 : 1;
        goto done;
    }
    if (mig_lock(db, lock_name) != 0) {
        goto done;
    }
    locked = true;
    rc = mig_run_apply(db, &conf, files, nf) == 0 ? 0 : 1;

done:
    if (locked && mig_unlock(db, lock_name) != 0) {
        rc = 1;
    }
    if (db != NULL) {
        mysql_close(db);
    }
    if (lib_ready) {
        mysql_library_end();
    }
    mig_files_free(files, nf);
    if (conf.db_password != NULL) {
        sodium_memzero(conf.db_password, strlen(conf.db_password));
        free(conf.db_password);
    }
    if (conf.admin_password != NULL) {
        sodium_memzero(conf.admin_password, strlen(conf.admin_password));
        free(conf.admin_password);
    }
    if (fflush(stdout) != 0) {
        rc = 1;
    }
    return rc;
}
