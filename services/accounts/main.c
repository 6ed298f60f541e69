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
    {"PL_REQUIRE_VERIFIED_EMAIL", SH_CONF_BOOL, F(require_verified_email), "0", 0, 0, NULL, 0,
     "1: login refuses an account whose address is not verified yet (403 email_not_verified, and the link is "
     "mailed again); 0: it may log in (the web client shows a banner)"},
    {"PL_REFRESH_GRACE_S", SH_CONF_INT, F(refresh_grace_s), "10", 0, 300, NULL, 0,
     "a refresh token presented again this soon after it was spent, by the same client (user agent and address), "
     "gets a successor of its own instead of ending the session (two tabs at once); 0: never"},
    {"PL_MAIL_INTERVAL_S", SH_CONF_INT, F(mail_interval_s), "60", 0, 86400, NULL, 0,
     "an account gets at most one verification mail, one address change and one password reset mail per this many "
     "seconds"},
    {"PL_MFA_ISSUER", SH_CONF_STRING, F(mfa_issuer), "Pilotlight", 0, 0, NULL, 0,
     "the name authenticator apps show for a TOTP secret (no ':')"},
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
    {"PL_LIMIT_MAIL_RATE", SH_CONF_RATE, F(mail_limit_interval_us), "1r/s", 1, 1000000, NULL, 0,
     "POSTs that send mail (password/forgot, email/verify/resend, me/email): requests per user (per client address "
     "without a token), on average"},
    {"PL_LIMIT_MAIL_BURST", SH_CONF_INT, F(mail_limit_burst), "10", 1, 1000000, NULL, 0,
     "POSTs that send mail: requests at once above that rate"},
    {"PL_LIMIT_CODE_RATE", SH_CONF_RATE, F(code_interval_us), "5r/s", 1, 1000000, NULL, 0,
     "POSTs that check a code, a password or a mailed token (login/mfa, password/reset, email/verify, me/mfa/*, "
     "me/delete): requests per user (per client address without a token), on average"},
    {"PL_LIMIT_CODE_BURST", SH_CONF_INT, F(code_burst), "20", 1, 1000000, NULL, 0,
     "POSTs that check a code, a password or a mailed token: requests at once above that rate"},
    SH_CONF_END,
};
#undef F

/* Seconds an account stays locked, from locked_until. */
#define ACC_LOCK_LEFT "COALESCE(GREATEST(0, CEIL(TIMESTAMPDIFF(MICROSECOND, NOW(6), locked_until) / 1000000)), 0)"
/* Seconds until the next mail of a kind may go (? = the interval), from its *_sent_at. */
#define ACC_MAIL_WAIT(col) "COALESCE(GREATEST(0, CEIL(? - TIMESTAMPDIFF(MICROSECOND, " col ", NOW(6)) / 1000000)), 0)"
#define ACC_TIME(col)      "DATE_FORMAT(" col ", '%Y-%m-%dT%H:%i:%s.%fZ')"

static const char *const acc_sql[ACC_STMT_COUNT] = {
    [ACC_USER_INSERT] = "INSERT INTO users (email, password_hash, display_name) VALUES (?, ?, ?)",
    [ACC_USER_BY_ID] = "SELECT " ACC_USER_COLUMNS " FROM users WHERE id = ?",
    [ACC_USER_FOR_LOGIN] = "SELECT id, password_hash, disabled, " ACC_LOCK_LEFT ", email_verified, mfa_enabled, email "
                           "FROM users WHERE email = ?",
    [ACC_USER_LOGIN_FAILED] =
        "UPDATE users SET locked_until = IF(failed_logins + 1 >= ?, NOW(6) + INTERVAL "
        "LEAST(?, ? * POW(2, LEAST(CAST(failed_logins AS SIGNED) + 1 - ?, 20))) SECOND, locked_until), "
        "failed_logins = failed_logins + 1 WHERE id = ?",
    [ACC_USER_LOGIN_OK] = "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?",
    [ACC_USER_AUTH_STATE] = "SELECT password_hash, " ACC_LOCK_LEFT ", mfa_enabled, mfa_secret, email, role, disabled "
                            "FROM users WHERE id = ?",
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
    [ACC_USER_MAIL_LOCK] = "SELECT " ACC_MAIL_WAIT("verify_sent_at") ", " ACC_MAIL_WAIT(
        "reset_sent_at") ", "
                         "email, email_verified, disabled, display_name FROM users WHERE id = ? FOR UPDATE",
    [ACC_USER_SET_VERIFY_SENT] = "UPDATE users SET verify_sent_at = NOW(6) WHERE id = ?",
    [ACC_USER_SET_RESET_SENT] = "UPDATE users SET reset_sent_at = NOW(6) WHERE id = ?",
    [ACC_USER_SET_VERIFIED] = "UPDATE users SET email_verified = 1, updated_at = NOW(6) WHERE id = ? AND email = ?",
    [ACC_USER_SET_EMAIL] = "UPDATE users SET email = ?, email_verified = 1, updated_at = NOW(6) WHERE id = ?",
    [ACC_USER_DELETE] = "DELETE FROM users WHERE id = ?",
    [ACC_USER_SET_MFA_SECRET] = "UPDATE users SET mfa_secret = ?, mfa_last_step = NULL, updated_at = NOW(6) "
                                "WHERE id = ? AND mfa_enabled = 0",
    [ACC_USER_ENABLE_MFA] = "UPDATE users SET mfa_enabled = 1, updated_at = NOW(6) "
                            "WHERE id = ? AND mfa_enabled = 0 AND mfa_secret = ?",
    [ACC_USER_CLEAR_MFA] =
        "UPDATE users SET mfa_secret = NULL, mfa_enabled = 0, mfa_last_step = NULL, updated_at = NOW(6) WHERE id = ?",
    /* a code's time step is taken once: a later step, or none yet */
    [ACC_USER_SET_MFA_STEP] =
        "UPDATE users SET mfa_last_step = ? WHERE id = ? AND (mfa_last_step IS NULL OR mfa_last_step < ?)",
    [ACC_RECOVERY_INSERT] = "INSERT INTO recovery_codes (user_id, code_hash) VALUES (?, ?)",
    [ACC_RECOVERY_DELETE] = "DELETE FROM recovery_codes WHERE user_id = ?",
    [ACC_RECOVERY_USE] =
        "UPDATE recovery_codes SET used_at = NOW(6) WHERE user_id = ? AND code_hash = ? AND used_at IS NULL",
    [ACC_OTT_INSERT] = "INSERT INTO one_time_tokens (token_hash, purpose, user_id, data, expires_at) "
                       "VALUES (?, ?, ?, ?, NOW(6) + INTERVAL ? SECOND)",
    [ACC_OTT_FIND] = "SELECT id, purpose, user_id, data, expires_at <= NOW(6), used_at IS NOT NULL "
                     "FROM one_time_tokens WHERE token_hash = ? FOR UPDATE",
    [ACC_OTT_USE] = "UPDATE one_time_tokens SET used_at = NOW(6) WHERE id = ? AND used_at IS NULL",
    /* a newer link, or a change that makes the older ones wrong, ends the older ones */
    [ACC_OTT_EXPIRE] = "UPDATE one_time_tokens SET expires_at = LEAST(expires_at, NOW(6)) "
                       "WHERE user_id = ? AND purpose = ? AND used_at IS NULL",
    [ACC_OTT_EXPIRE_OLDER] = "UPDATE one_time_tokens SET expires_at = LEAST(expires_at, NOW(6)) "
                             "WHERE user_id = ? AND purpose = ? AND used_at IS NULL AND id < ?",
    [ACC_OTT_WAIT] =
        "SELECT " ACC_MAIL_WAIT("MAX(created_at)") " FROM one_time_tokens WHERE user_id = ? AND purpose = ?",
    [ACC_OTT_PURGE] = "DELETE FROM one_time_tokens WHERE user_id = ? AND expires_at < NOW(6) - INTERVAL 1 DAY",
    [ACC_RT_INSERT] = "INSERT INTO refresh_tokens (token_hash, user_id, family_id, expires_at, client_hash) "
                      "VALUES (?, ?, ?, NOW(6) + INTERVAL ? SECOND, ?)",
    [ACC_RT_FIND_FOR_UPDATE] =
        "SELECT rt.id, rt.user_id, rt.family_id, rt.expires_at < NOW(6), rt.spent_at IS NOT NULL, "
        "rt.revoked_at IS NOT NULL, u.disabled, rt.spent_at > NOW(6) - INTERVAL ? SECOND, rt.client_hash "
        "FROM refresh_tokens rt JOIN users u ON u.id = rt.user_id WHERE rt.token_hash = ? FOR UPDATE",
    [ACC_RT_SPEND] = "UPDATE refresh_tokens SET spent_at = NOW(6) WHERE id = ? AND spent_at IS NULL",
    [ACC_RT_REVOKE_FAMILY] = "UPDATE refresh_tokens SET revoked_at = NOW(6) WHERE family_id = ? AND revoked_at IS NULL",
    [ACC_RT_REVOKE_USER] = "UPDATE refresh_tokens SET revoked_at = NOW(6) WHERE user_id = ? AND revoked_at IS NULL",
    [ACC_RT_FAMILY_BY_HASH] = "SELECT family_id, user_id FROM refresh_tokens WHERE token_hash = ?",
    [ACC_RT_PURGE_EXPIRED] = "DELETE FROM refresh_tokens WHERE user_id = ? AND expires_at < NOW(6) - INTERVAL 1 DAY",
    /* a session is live while its family has a token that may still refresh */
    [ACC_RT_LIVE_FAMILIES] = "SELECT DISTINCT family_id FROM refresh_tokens WHERE user_id = ? AND family_id <> ? "
                             "AND revoked_at IS NULL AND spent_at IS NULL AND expires_at > NOW(6)",
    [ACC_RT_FAMILY_LIVE] = "SELECT 1 FROM refresh_tokens WHERE family_id = ? AND user_id = ? "
                           "AND revoked_at IS NULL AND spent_at IS NULL AND expires_at > NOW(6) LIMIT 1",
    [ACC_SESSION_UPSERT] = "INSERT INTO sessions (family_id, user_id, user_agent, address) VALUES (?, ?, ?, ?) "
                           "ON DUPLICATE KEY UPDATE last_used_at = NOW(6), user_agent = VALUES(user_agent), "
                           "address = VALUES(address)",
    [ACC_SESSION_END] = "UPDATE sessions SET ended_at = NOW(6) WHERE family_id = ? AND ended_at IS NULL",
    [ACC_SESSION_END_USER] = "UPDATE sessions SET ended_at = NOW(6) WHERE user_id = ? AND ended_at IS NULL",
    [ACC_SESSION_LIST] = "SELECT s.family_id, " ACC_TIME("s.created_at") ", " ACC_TIME(
        "s.last_used_at") ", s.user_agent, s.address "
                          "FROM sessions s WHERE s.user_id = ? AND s.ended_at IS NULL AND EXISTS (SELECT 1 FROM "
                          "refresh_tokens rt "
                          "WHERE rt.family_id = s.family_id AND rt.revoked_at IS NULL AND rt.spent_at IS NULL AND "
                          "rt.expires_at > NOW(6)) "
                          "ORDER BY s.last_used_at DESC, s.family_id LIMIT 100",
    [ACC_OUTBOX_INSERT] = "INSERT INTO outbox (to_addr, subject, text_body, html_body) VALUES (?, ?, ?, ?)",
    [ACC_OUTBOX_DUE] = "SELECT id, to_addr, subject, text_body, html_body, attempts FROM outbox "
                       "WHERE sent_at IS NULL AND next_attempt_at <= NOW(6) ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED",
    [ACC_OUTBOX_LEASE] = "UPDATE outbox SET next_attempt_at = NOW(6) + INTERVAL ? SECOND WHERE id = ?",
    /* a sent mail keeps no body: its links (single-use tokens) are not kept in clear */
    [ACC_OUTBOX_SENT] = "UPDATE outbox SET sent_at = NOW(6), attempts = attempts + 1, last_error = NULL, "
                        "text_body = '', html_body = '' WHERE id = ?",
    [ACC_OUTBOX_FAILED] = "UPDATE outbox SET attempts = attempts + 1, last_error = LEFT(?, 255), "
                          "next_attempt_at = NOW(6) + INTERVAL ? SECOND WHERE id = ?",
    [ACC_OUTBOX_NEXT] = "SELECT GREATEST(0, CEIL(TIMESTAMPDIFF(MICROSECOND, NOW(6), MIN(next_attempt_at)) / 1000000)) "
                        "FROM outbox WHERE sent_at IS NULL",
    [ACC_OUTBOX_PURGE] = "DELETE FROM outbox WHERE sent_at < NOW(6) - INTERVAL 7 DAY LIMIT 100",
    [ACC_REVOCATION_INSERT] = "INSERT INTO revocations (user_id, family_id, not_before) VALUES (?, ?, ?)",
    [ACC_REVOCATIONS_AFTER] = "SELECT id, user_id, COALESCE(family_id, ''), not_before FROM revocations "
                              "WHERE id > ? AND not_before > UNIX_TIMESTAMP() - ? ORDER BY id LIMIT ?",
    [ACC_REVOCATIONS_LAST] = "SELECT COALESCE(MAX(id), 0) FROM revocations",
    [ACC_REVOCATIONS_PURGE] = "DELETE FROM revocations WHERE created_at < NOW(6) - INTERVAL 1 DAY "
                              "AND not_before < UNIX_TIMESTAMP() - ? LIMIT 1000",
    [ACC_REVOCATION_PENDING] = "SELECT COALESCE(MAX(not_before), 0) FROM revocations WHERE user_id = ? "
                               "AND (family_id IS NULL OR family_id = ?) AND not_before > UNIX_TIMESTAMP()",
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

static const sh_field acc_mfa_login_fields[] = {
    SH_FIELD_STR("mfa_ticket", SH_REQUIRED, 1, 200),
    SH_FIELD_STR("code", 0, 1, 20),
    SH_FIELD_STR("recovery_code", 0, 1, 40),
    SH_FIELD_BOOL("cookie", 0),
    SH_RULE_END,
};
static const sh_field acc_token_fields[] = {SH_FIELD_STR("token", SH_REQUIRED, 1, 200), SH_RULE_END};
static const sh_field acc_forgot_fields[] = {SH_FIELD_STR("email", SH_REQUIRED, 1, 1000), SH_RULE_END};
static const sh_field acc_reset_fields[] = {
    SH_FIELD_STR("token", SH_REQUIRED, 1, 200),
    SH_FIELD_STR("password", SH_REQUIRED, 1, 1000),
    SH_RULE_END,
};
static const sh_field acc_email_change_fields[] = {
    SH_FIELD_STR("email", SH_REQUIRED, 1, ACC_EMAIL_MAX),
    SH_FIELD_STR("current_password", SH_REQUIRED, 1, 1000),
    SH_RULE_END,
};
static const sh_field acc_password_fields[] = {SH_FIELD_STR("current_password", SH_REQUIRED, 1, 1000), SH_RULE_END};
static const sh_field acc_code_fields[] = {SH_FIELD_STR("code", SH_REQUIRED, 1, 20), SH_RULE_END};
/* a password, and with MFA on a code or a recovery code */
static const sh_field acc_confirm_fields[] = {
    SH_FIELD_STR("current_password", SH_REQUIRED, 1, 1000),
    SH_FIELD_STR("code", 0, 1, 20),
    SH_FIELD_STR("recovery_code", 0, 1, 40),
    SH_RULE_END,
};
static const sh_param acc_session_param[] = {SH_PATH_STR("id", 64), SH_RULE_END};

static const sh_param acc_revocations_params[] = {SH_QUERY_INT("after", 0, INT64_MAX), SH_RULE_END};

static const sh_rate acc_login_rate = {"login", &acc_conf.login_interval_us, &acc_conf.login_burst};
static const sh_rate acc_signup_rate = {"signup", &acc_conf.signup_interval_us, &acc_conf.signup_burst};
static const sh_rate acc_refresh_rate = {"refresh", &acc_conf.refresh_interval_us, &acc_conf.refresh_burst};
static const sh_rate acc_mail_rate = {"mail", &acc_conf.mail_limit_interval_us, &acc_conf.mail_limit_burst};
static const sh_rate acc_code_rate = {"code", &acc_conf.code_interval_us, &acc_conf.code_burst};

static const sh_route acc_routes[] = {
    SH_ROUTE_LIMITED("POST", "/api/accounts/signup", acc_signup, SH_JSON, NULL, acc_signup_fields, &acc_signup_rate),
    SH_ROUTE_LIMITED("POST", "/api/accounts/login", acc_login, SH_JSON, NULL, acc_login_fields, &acc_login_rate),
    SH_ROUTE_LIMITED("POST", "/api/accounts/login/mfa", acc_login_mfa, SH_JSON, NULL, acc_mfa_login_fields,
                     &acc_code_rate),
    /* a web client sends these with the refresh cookie alone, often without a body */
    SH_ROUTE_LIMITED("POST", "/api/accounts/refresh", acc_token_refresh, SH_JSON | SH_BODY_OPTIONAL, NULL,
                     acc_refresh_fields, &acc_refresh_rate),
    SH_ROUTE("POST", "/api/accounts/logout", acc_logout, SH_JSON | SH_BODY_OPTIONAL, NULL, acc_refresh_fields),
    SH_ROUTE("GET", "/api/accounts/me", acc_me_get, SH_AUTH, NULL, NULL),
    /* a password change checks the current one: limited like the other checks */
    SH_ROUTE_LIMITED("PATCH", "/api/accounts/me", acc_me_update, SH_AUTH | SH_JSON, NULL, acc_me_fields,
                     &acc_code_rate),
    SH_ROUTE_LIMITED("POST", "/api/accounts/me/delete", acc_me_delete, SH_AUTH | SH_JSON, NULL, acc_confirm_fields,
                     &acc_code_rate),
    SH_ROUTE_LIMITED("POST", "/api/accounts/me/email", acc_email_change, SH_AUTH | SH_JSON, NULL,
                     acc_email_change_fields, &acc_mail_rate),
    SH_ROUTE("GET", "/api/accounts/me/sessions", acc_sessions_list, SH_AUTH, NULL, NULL),
    SH_ROUTE("DELETE", "/api/accounts/me/sessions", acc_sessions_end_all, SH_AUTH, NULL, NULL),
    SH_ROUTE("DELETE", "/api/accounts/me/sessions/{id}", acc_session_end, SH_AUTH, acc_session_param, NULL),
    SH_ROUTE_LIMITED("POST", "/api/accounts/me/mfa/enrol", acc_mfa_enrol, SH_AUTH | SH_JSON, NULL, acc_password_fields,
                     &acc_code_rate),
    SH_ROUTE_LIMITED("POST", "/api/accounts/me/mfa/confirm", acc_mfa_confirm, SH_AUTH | SH_JSON, NULL, acc_code_fields,
                     &acc_code_rate),
    SH_ROUTE_LIMITED("POST", "/api/accounts/me/mfa/disable", acc_mfa_disable, SH_AUTH | SH_JSON, NULL,
                     acc_confirm_fields, &acc_code_rate),
    SH_ROUTE_LIMITED("POST", "/api/accounts/me/mfa/recovery-codes", acc_mfa_recovery_codes, SH_AUTH | SH_JSON, NULL,
                     acc_confirm_fields, &acc_code_rate),
    SH_ROUTE_LIMITED("POST", "/api/accounts/email/verify", acc_email_verify, SH_JSON, NULL, acc_token_fields,
                     &acc_code_rate),
    SH_ROUTE_LIMITED("POST", "/api/accounts/email/verify/resend", acc_email_verify_resend, SH_AUTH, NULL, NULL,
                     &acc_mail_rate),
    SH_ROUTE_LIMITED("POST", "/api/accounts/password/forgot", acc_password_forgot, SH_JSON, NULL, acc_forgot_fields,
                     &acc_mail_rate),
    SH_ROUTE_LIMITED("POST", "/api/accounts/password/reset", acc_password_reset, SH_JSON, NULL, acc_reset_fields,
                     &acc_code_rate),
    SH_ROUTE("GET", "/api/accounts/users", acc_users_list, SH_ADMIN, acc_list_params, NULL),
    SH_ROUTE("GET", "/api/accounts/users/{id}", acc_user_get, SH_ADMIN, acc_id_param, NULL),
    SH_ROUTE("PATCH", "/api/accounts/users/{id}", acc_user_update, SH_ADMIN | SH_JSON, acc_id_param, acc_user_fields),
    SH_ROUTE("DELETE", "/api/accounts/users/{id}", acc_user_delete, SH_ADMIN, acc_id_param, NULL),
    SH_ROUTE("DELETE", "/api/accounts/users/{id}/mfa", acc_user_mfa_reset, SH_ADMIN, acc_id_param, NULL),
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
    if (strchr(acc_conf.mfa_issuer, ':') != NULL || acc_conf.mfa_issuer[0] == '\0') {
        fprintf(stderr, "pl-accounts: PL_MFA_ISSUER must be a name without ':'\n");
        return -1;
    }
    if (acc_totp_setup() != 0) {
        fprintf(stderr, "pl-accounts: liboath could not be initialised\n");
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
