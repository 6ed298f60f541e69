/* main.c: the accounts service: configuration, prepared statements, the route
 * table, and two operator commands (keygen, create-admin). */
#include "accounts.h"
#include "sh_log.h"
#include "sh_ratelimit.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

acc_config acc_conf;
int acc_stmt[ACC_STMT_COUNT];

#define F(field) offsetof(acc_config, field)
static const sh_conf_row acc_config_rows[] = {
    {"PL_JWT_SIGNING_KEY_FILE", SH_CONF_STRING, F(signing_key_file), NULL, 0, 0, NULL, SH_CONF_REQUIRED,
     "the Ed25519 signing key (\"kid base64url-seed\"; accounts only)"},
    {"PL_ACCESS_TOKEN_TTL_S", SH_CONF_INT, F(access_ttl_s), "900", 30, 86400, NULL, 0, "access token lifetime"},
    {"PL_REFRESH_TOKEN_TTL_S", SH_CONF_INT, F(refresh_ttl_s), "2592000", 60, 31536000, NULL, 0,
     "refresh token lifetime"},
    {"PL_PWHASH_OPSLIMIT", SH_CONF_INT, F(pwhash_opslimit), "2", 1, 20, NULL, 0, "argon2id passes"},
    {"PL_PWHASH_MEMLIMIT_KIB", SH_CONF_INT, F(pwhash_memlimit_kib), "65536", 8, 4194304, NULL, 0,
     "argon2id memory per hash, KiB"},
    {"PL_LOCKOUT_THRESHOLD", SH_CONF_INT, F(lockout_threshold), "5", 1, 1000, NULL, 0,
     "failed logins in a row that lock an account"},
    {"PL_LOCKOUT_BASE_S", SH_CONF_INT, F(lockout_base_s), "60", 1, 86400, NULL, 0,
     "first lock's length; each further failure doubles it"},
    {"PL_LOCKOUT_MAX_S", SH_CONF_INT, F(lockout_max_s), "900", 1, 86400, NULL, 0, "longest lock"},
    {"PL_SMTP_URL", SH_CONF_STRING, F(smtp_url), NULL, 0, 0, NULL, 0,
     "the SMTP server mail goes to: smtp://host:port or smtps://host:port (unset: mail waits in the outbox)"},
    {"PL_SMTP_USER", SH_CONF_STRING, F(smtp_user), NULL, 0, 0, NULL, 0,
     "SMTP login (with it, TLS is required: smtps://, or STARTTLS on smtp://)"},
    {"PL_SMTP_PASSWORD", SH_CONF_SECRET, F(smtp_password), NULL, 0, 0, NULL, 0, "SMTP password"},
    {"PL_SMTP_TIMEOUT_MS", SH_CONF_INT, F(smtp_timeout_ms), "10000", 100, 600000, NULL, 0,
     "one mail's delivery, connection included (a slower server: retried later)"},
    {"PL_MAIL_FROM", SH_CONF_STRING, F(mail_from), "Pilotlight <no-reply@localhost>", 0, 0, NULL, 0,
     "the From of every mail: an address, or \"Name <address>\""},
    {"PL_LIMIT_LOGIN_RATE", SH_CONF_RATE, F(login_interval_us), "5r/s", 1, 1000000, NULL, 0,
     "POST /api/accounts/login: requests per client address, on average"},
    {"PL_LIMIT_LOGIN_BURST", SH_CONF_INT, F(login_burst), "20", 1, 1000000, NULL, 0,
     "POST /api/accounts/login: requests per client address at once above that rate"},
    {"PL_LIMIT_SIGNUP_RATE", SH_CONF_RATE, F(signup_interval_us), "1r/s", 1, 1000000, NULL, 0,
     "POST /api/accounts/signup: requests per client address, on average"},
    {"PL_LIMIT_SIGNUP_BURST", SH_CONF_INT, F(signup_burst), "10", 1, 1000000, NULL, 0,
     "POST /api/accounts/signup: requests per client address at once above that rate"},
    {"PL_LIMIT_REFRESH_RATE", SH_CONF_RATE, F(refresh_interval_us), "5r/s", 1, 1000000, NULL, 0,
     "POST /api/accounts/refresh: requests per client address, on average"},
    {"PL_LIMIT_REFRESH_BURST", SH_CONF_INT, F(refresh_burst), "20", 1, 1000000, NULL, 0,
     "POST /api/accounts/refresh: requests per client address at once above that rate"},
    SH_CONF_END,
};
#undef F

static const char *const acc_sql[ACC_STMT_COUNT] = {
    [ACC_USER_INSERT] = "INSERT INTO users (email, password_hash, display_name) VALUES (?, ?, ?)",
    [ACC_USER_BY_ID] = "SELECT " ACC_USER_COLUMNS " FROM users WHERE id = ?",
    [ACC_USER_FOR_LOGIN] = "SELECT id, password_hash, disabled, "
                           "COALESCE(GREATEST(0, CEIL(TIMESTAMPDIFF(MICROSECOND, NOW(6), locked_until) / 1000000)), 0) "
                           "FROM users WHERE email = ?",
    [ACC_USER_LOGIN_FAILED] =
        "UPDATE users SET locked_until = IF(failed_logins + 1 >= ?, NOW(6) + INTERVAL "
        "LEAST(?, ? * POW(2, LEAST(CAST(failed_logins AS SIGNED) + 1 - ?, 20))) SECOND, locked_until), "
        "failed_logins = failed_logins + 1 WHERE id = ?",
    [ACC_USER_LOGIN_OK] = "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?",
    [ACC_USER_PASSWORD_HASH] = "SELECT password_hash FROM users WHERE id = ?",
    [ACC_USER_SET_DISPLAY_NAME] = "UPDATE users SET display_name = ?, updated_at = NOW(6) WHERE id = ?",
    [ACC_USER_SET_PRIMARY_PROJECT] = "UPDATE users SET primary_project_id = ?, updated_at = NOW(6) WHERE id = ?",
    [ACC_USER_SET_PASSWORD] = "UPDATE users SET password_hash = ?, updated_at = NOW(6) WHERE id = ?",
    [ACC_USER_LIST] = "SELECT " ACC_USER_COLUMNS " FROM users WHERE id > ? AND email LIKE ? ESCAPE '\\\\' "
                      "ORDER BY id LIMIT ?",
    [ACC_USER_LOCK] = "SELECT role, disabled FROM users WHERE id = ? FOR UPDATE",
    [ACC_ADMINS_LOCK] = "SELECT id FROM users WHERE role = 'admin' AND disabled = 0 ORDER BY id FOR UPDATE",
    [ACC_USER_SET_ROLE] = "UPDATE users SET role = ?, updated_at = NOW(6) WHERE id = ?",
    [ACC_USER_SET_DISABLED] = "UPDATE users SET disabled = ?, updated_at = NOW(6) WHERE id = ?",
    [ACC_USER_ID_BY_EMAIL] = "SELECT id FROM users WHERE email = ?",
    [ACC_USER_CLEAR_PRIMARY] = "UPDATE users SET primary_project_id = NULL, updated_at = NOW(6) "
                               "WHERE id = ? AND primary_project_id = ?",
    [ACC_RT_INSERT] = "INSERT INTO refresh_tokens (token_hash, user_id, family_id, expires_at) "
                      "VALUES (?, ?, ?, NOW(6) + INTERVAL ? SECOND)",
    [ACC_RT_FIND_FOR_UPDATE] =
        "SELECT rt.id, rt.user_id, rt.family_id, rt.expires_at < NOW(6), rt.spent_at IS NOT NULL, "
        "rt.revoked_at IS NOT NULL, u.disabled FROM refresh_tokens rt JOIN users u ON u.id = rt.user_id "
        "WHERE rt.token_hash = ? FOR UPDATE",
    [ACC_RT_SPEND] = "UPDATE refresh_tokens SET spent_at = NOW(6) WHERE id = ? AND spent_at IS NULL",
    [ACC_RT_REVOKE_FAMILY] = "UPDATE refresh_tokens SET revoked_at = NOW(6) WHERE family_id = ? AND revoked_at IS NULL",
    [ACC_RT_REVOKE_USER] = "UPDATE refresh_tokens SET revoked_at = NOW(6) WHERE user_id = ? AND revoked_at IS NULL",
    [ACC_RT_FAMILY_BY_HASH] = "SELECT family_id FROM refresh_tokens WHERE token_hash = ?",
    [ACC_RT_PURGE_EXPIRED] = "DELETE FROM refresh_tokens WHERE user_id = ? AND expires_at < NOW(6) - INTERVAL 1 DAY",
    [ACC_OUTBOX_INSERT] = "INSERT INTO outbox (to_addr, subject, text_body, html_body) VALUES (?, ?, ?, ?)",
    [ACC_OUTBOX_DUE] = "SELECT id, to_addr, subject, text_body, html_body, attempts FROM outbox "
                       "WHERE sent_at IS NULL AND next_attempt_at <= NOW(6) ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED",
    [ACC_OUTBOX_SENT] = "UPDATE outbox SET sent_at = NOW(6), attempts = attempts + 1, last_error = NULL WHERE id = ?",
    [ACC_OUTBOX_FAILED] = "UPDATE outbox SET attempts = attempts + 1, last_error = LEFT(?, 255), "
                          "next_attempt_at = NOW(6) + INTERVAL ? SECOND WHERE id = ?",
    [ACC_OUTBOX_NEXT] = "SELECT GREATEST(0, CEIL(TIMESTAMPDIFF(MICROSECOND, NOW(6), MIN(next_attempt_at)) / 1000000)) "
                        "FROM outbox WHERE sent_at IS NULL",
    [ACC_OUTBOX_PURGE] = "DELETE FROM outbox WHERE sent_at < NOW(6) - INTERVAL 7 DAY LIMIT 100",
    [ACC_REVOCATION_INSERT] = "INSERT INTO revocations (user_id, family_id, not_before) VALUES (?, ?, ?)",
    [ACC_REVOCATIONS_AFTER] = "SELECT id, user_id, COALESCE(family_id, ''), not_before FROM revocations "
                              "WHERE id > ? AND not_before > UNIX_TIMESTAMP() - ? ORDER BY id LIMIT ?",
    [ACC_REVOCATIONS_LAST] = "SELECT COALESCE(MAX(id), 0) FROM revocations",
};

static const char *const acc_roles[] = {"user", "admin", NULL};

static const sh_field acc_signup_fields[] = {
    SH_FIELD_STR("email", SH_REQUIRED, 1, ACC_EMAIL_MAX),
    SH_FIELD_STR("password", SH_REQUIRED, 1, 1000),
    SH_FIELD_STR("display_name", SH_REQUIRED, 1, 100),
    SH_RULE_END,
};
static const sh_field acc_login_fields[] = {
    SH_FIELD_STR("email", SH_REQUIRED, 1, 1000),
    SH_FIELD_STR("password", SH_REQUIRED, 1, 1000),
    SH_FIELD_BOOL("cookie", 0),
    SH_RULE_END,
};
static const sh_field acc_refresh_fields[] = {
    SH_FIELD_STR("refresh_token", 0, 1, 200),
    SH_FIELD_BOOL("cookie", 0),
    SH_RULE_END,
};
static const sh_field acc_me_fields[] = {
    SH_FIELD_STR("display_name", 0, 1, 100),
    SH_FIELD_ID("primary_project_id", SH_NULLABLE),
    SH_FIELD_STR("password", 0, 1, 1000),
    SH_FIELD_STR("current_password", 0, 1, 1000),
    SH_RULE_END,
};
static const sh_field acc_user_fields[] = {
    SH_FIELD_ENUM("role", 0, acc_roles),
    SH_FIELD_BOOL("disabled", 0),
    SH_RULE_END,
};
static const sh_param acc_list_params[] = {
    SH_QUERY_INT("limit", 1, 100),
    SH_QUERY_CURSOR("cursor"),
    SH_QUERY_STR("email_prefix", ACC_EMAIL_MAX),
    SH_RULE_END,
};
static const sh_param acc_id_param[] = {SH_PATH_ID("id"), SH_RULE_END};
static const sh_field acc_clear_primary_fields[] = {SH_FIELD_ID("project_id", SH_REQUIRED), SH_RULE_END};

static const sh_field acc_test_mail_fields[] = {
    SH_FIELD_STR("to", SH_REQUIRED, 1, ACC_EMAIL_MAX),
    SH_FIELD_STR("tag", 0, 0, 100),
    SH_RULE_END,
};

static const sh_param acc_revocations_params[] = {SH_QUERY_INT("after", 0, INT64_MAX), SH_RULE_END};

static const sh_rate acc_login_rate = {"login", &acc_conf.login_interval_us, &acc_conf.login_burst};
static const sh_rate acc_signup_rate = {"signup", &acc_conf.signup_interval_us, &acc_conf.signup_burst};
static const sh_rate acc_refresh_rate = {"refresh", &acc_conf.refresh_interval_us, &acc_conf.refresh_burst};

static const sh_route acc_routes[] = {
    SH_ROUTE_LIMITED("POST", "/api/accounts/signup", acc_signup, SH_JSON, NULL, acc_signup_fields, &acc_signup_rate),
    SH_ROUTE_LIMITED("POST", "/api/accounts/login", acc_login, SH_JSON, NULL, acc_login_fields, &acc_login_rate),
    /* a web client sends these with the refresh cookie alone, often without a body */
    SH_ROUTE_LIMITED("POST", "/api/accounts/refresh", acc_token_refresh, SH_JSON | SH_BODY_OPTIONAL, NULL,
                     acc_refresh_fields, &acc_refresh_rate),
    SH_ROUTE("POST", "/api/accounts/logout", acc_logout, SH_JSON | SH_BODY_OPTIONAL, NULL, acc_refresh_fields),
    SH_ROUTE("GET", "/api/accounts/me", acc_me_get, SH_AUTH, NULL, NULL),
    SH_ROUTE("PATCH", "/api/accounts/me", acc_me_update, SH_AUTH | SH_JSON, NULL, acc_me_fields),
    SH_ROUTE("GET", "/api/accounts/users", acc_users_list, SH_ADMIN, acc_list_params, NULL),
    SH_ROUTE("GET", "/api/accounts/users/{id}", acc_user_get, SH_ADMIN, acc_id_param, NULL),
    SH_ROUTE("PATCH", "/api/accounts/users/{id}", acc_user_update, SH_ADMIN | SH_JSON, acc_id_param, acc_user_fields),
    SH_ROUTE("GET", "/api/accounts/.well-known/jwks.json", acc_jwks, 0, NULL, NULL),
    SH_ROUTE("POST", "/api/accounts/users/{id}/primary-project/clear", acc_user_clear_primary, SH_INTERNAL | SH_JSON,
             acc_id_param, acc_clear_primary_fields),
    SH_ROUTE("GET", "/api/accounts/_revocations", acc_revocations_list, SH_INTERNAL, acc_revocations_params, NULL),
    SH_ROUTE("POST", "/api/accounts/_test/mail", acc_test_mail, SH_TEST | SH_JSON, NULL, acc_test_mail_fields),
    SH_ROUTE_END,
};

static int acc_setup(void)
{
    char err[512];
    if (strpbrk(acc_conf.mail_from, "\r\n") != NULL) {
        fprintf(stderr, "pl-accounts: PL_MAIL_FROM must be one line\n");
        return -1;
    }
    if (acc_conf.smtp_url == NULL)
        sh_log_msg(SH_LOG_WARN, "mail_disabled", "PL_SMTP_URL is not set: mail waits in the outbox");
    if (acc_keys_load(err, sizeof(err)) != 0) {
        sh_log_msg(SH_LOG_ERROR, "config_error", err);
        fprintf(stderr, "pl-accounts: %s\n", err);
        return -1;
    }
    return acc_passwords_setup();
}

/* SIGHUP: the signing key again (key rotation); the public keys were just
 * read again by libshared, and the signing key must be their first. */
static int acc_reload(void)
{
    char err[512];
    if (acc_keys_load(err, sizeof(err)) != 0) {
        sh_log_msgf(SH_LOG_ERROR, "reload_failed", "keeping the old keys: %s", err);
        return -1;
    }
    return 0;
}

static int acc_worker_init(sh_db *db)
{
    for (int i = 0; i < ACC_STMT_COUNT; i++)
        acc_stmt[i] = sh_db_register(db, acc_sql[i]);
    return 0;
}

static const sh_service acc_service = {
    .name = "accounts",
    .routes = acc_routes,
    .reload = acc_reload,
    .config_rows = acc_config_rows,
    .config = &acc_conf,
    .setup = acc_setup,
    .worker_init = acc_worker_init,
    .on_wake = acc_on_wake,
    .revocations_fetch = acc_revocations_fetch,
};

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "keygen") == 0)
        return acc_keys_generate(argv[2], argv[3]) == 0 ? 0 : 1;
    if (argc == 3 && strcmp(argv[1], "create-admin") == 0)
        return sh_service_command(&acc_service, acc_create_admin, argv[2]);
    if (argc > 1 && (strcmp(argv[1], "keygen") == 0 || strcmp(argv[1], "create-admin") == 0)) {
        fprintf(stderr, "usage: pl-accounts keygen SIGNING_KEY_FILE PUBLIC_KEYS_FILE\n"
                        "       pl-accounts create-admin EMAIL   (password on stdin)\n");
        return 2;
    }
    return sh_service_main(argc, argv, &acc_service);
}
