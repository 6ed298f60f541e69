/* accounts.h: what the accounts service's files share: its configuration, its
 * prepared statements, and the helpers that turn rows into JSON and issue
 * tokens. The accounts service is Pilotlight's Cognito: it owns users and is
 * the only holder of the token-signing key. */
#ifndef ACCOUNTS_H
#define ACCOUNTS_H

#include "sh_auth.h"
#include "sh_db.h"
#include "sh_service.h"

typedef struct {
    const char *signing_key_file;
    const char *public_keys_file;
    int64_t access_ttl_s;
    int64_t refresh_ttl_s;
    int64_t pwhash_opslimit;
    int64_t pwhash_memlimit_kib;
    int64_t lockout_threshold;
    int64_t lockout_base_s;
    int64_t lockout_max_s;
    const char *smtp_url; /* smtp://host:port or smtps://...; NULL: mail waits in the outbox */
    const char *smtp_user;
    const char *smtp_password;
    int64_t smtp_timeout_ms;
    int64_t login_interval_us, login_burst; /* PL_LIMIT_LOGIN_*: per client address */
    int64_t signup_interval_us, signup_burst;
    int64_t refresh_interval_us, refresh_burst;
    const char *mail_from;       /* "Name <address>" or an address */
    bool require_verified_email; /* login refuses an unverified address */
    int64_t refresh_grace_s;     /* a spent refresh token again, same client, within this: a sibling */
    int64_t mail_interval_s;     /* at least this between two mails of one kind (verify, change, reset) of an account */
    const char *mfa_issuer;      /* the issuer an authenticator app shows */
    int64_t mail_limit_interval_us, mail_limit_burst; /* PL_LIMIT_MAIL_*: POSTs that send mail */
    int64_t code_interval_us, code_burst;             /* PL_LIMIT_CODE_*: POSTs that check a code or secret */
} acc_config;

extern acc_config acc_conf;

/* The signing key, loaded once in the master (setup) and inherited by workers. */
typedef struct {
    char kid[SH_AUTH_KID_MAX];
    unsigned char sk[crypto_sign_SECRETKEYBYTES];
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
} acc_signing_key;

extern acc_signing_key acc_key;

enum {
    ACC_USER_INSERT,
    ACC_USER_BY_ID,
    ACC_USER_FOR_LOGIN,
    ACC_USER_LOGIN_FAILED,
    ACC_USER_LOGIN_OK,
    ACC_USER_AUTH_STATE,
    ACC_USER_SET_DISPLAY_NAME,
    ACC_USER_SET_PRIMARY_PROJECT,
    ACC_USER_SET_PASSWORD,
    ACC_USER_LIST,
    ACC_USER_LOCK,
    ACC_ADMINS_LOCK,
    ACC_USER_SET_ROLE,
    ACC_USER_SET_DISABLED,
    ACC_USER_ID_BY_EMAIL,
    ACC_USER_CLEAR_PRIMARY,
    ACC_USER_MAIL_LOCK,
    ACC_USER_SET_VERIFY_SENT,
    ACC_USER_SET_RESET_SENT,
    ACC_USER_SET_VERIFIED,
    ACC_USER_SET_EMAIL,
    ACC_USER_DELETE,
    ACC_USER_SET_MFA_SECRET,
    ACC_USER_ENABLE_MFA,
    ACC_USER_CLEAR_MFA,
    ACC_USER_SET_MFA_STEP,
    ACC_RECOVERY_INSERT,
    ACC_RECOVERY_DELETE,
    ACC_RECOVERY_USE,
    ACC_OTT_INSERT,
    ACC_OTT_FIND,
    ACC_OTT_USE,
    ACC_OTT_EXPIRE,
    ACC_OTT_EXPIRE_OLDER,
    ACC_OTT_PURGE,
    ACC_OTT_WAIT,
    ACC_RT_INSERT,
    ACC_RT_FIND_FOR_UPDATE,
    ACC_RT_SPEND,
    ACC_RT_REVOKE_FAMILY,
    ACC_RT_REVOKE_USER,
    ACC_RT_FAMILY_BY_HASH,
    ACC_RT_PURGE_EXPIRED,
    ACC_RT_LIVE_FAMILIES,
    ACC_RT_FAMILY_LIVE,
    ACC_SESSION_UPSERT,
    ACC_SESSION_END,
    ACC_SESSION_END_USER,
    ACC_SESSION_LIST,
    ACC_OUTBOX_INSERT,
    ACC_OUTBOX_DUE,
    ACC_OUTBOX_LEASE,
    ACC_OUTBOX_SENT,
    ACC_OUTBOX_FAILED,
    ACC_OUTBOX_NEXT,
    ACC_OUTBOX_PURGE,
    ACC_REVOCATION_INSERT,
    ACC_REVOCATIONS_AFTER,
    ACC_REVOCATIONS_LAST,
    ACC_REVOCATIONS_PURGE,
    ACC_REVOCATION_PENDING,
    ACC_STMT_COUNT
};

extern int acc_stmt[ACC_STMT_COUNT];

/* The columns acc_user_json reads, in order. */
#define ACC_USER_COLUMNS                                                                                               \
    "id, email, display_name, role, disabled, primary_project_id, "                                                    \
    "DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s.%fZ'), DATE_FORMAT(updated_at, '%Y-%m-%dT%H:%i:%s.%fZ'), "             \
    "email_verified, mfa_enabled"

/* A user row (ACC_USER_COLUMNS) as the API shows it; never the hash. */
json_object *acc_user_json(const sh_row *row);
/* Loads one user by id into *out (a row in the request arena). 0, 1 when absent, -1 on error. */
int acc_user_load(sh_req *req, int64_t id, sh_row *out);

/* --- validate.c: pure rules shared with the unit tests --------------------------- */

#define ACC_EMAIL_MAX         254
#define ACC_PASSWORD_MIN      10
#define ACC_PASSWORD_MAX      128
#define ACC_ADDRESS_MAX       64  /* a coarse address: "203.0.113.0/24", "2001:db8:1::/48" */
#define ACC_USER_AGENT_MAX    255 /* bytes kept of a User-Agent */
#define ACC_RECOVERY_CODE_LEN 16  /* characters of a recovery code (80 bits), without its dashes */
#define ACC_TOTP_DIGITS       6
#define ACC_TOTP_STEP_S       30

/* Lower-cases and checks an email address into out (ACC_EMAIL_MAX + 1 bytes). */
int acc_email_normalize(const char *in, size_t len, char *out);
/* NULL when the password is acceptable for this (normalized) email, else why not. */
const char *acc_password_problem(const char *password, size_t len, const char *email);
/* Escapes LIKE wildcards (\ % _) of s with '\' into the arena, adding a trailing %. */
char *acc_like_prefix(sh_arena *a, const char *s);
/* The network a client address is in, as a session shows it: an IPv4
 * address's /24 ("203.0.113.0/24"; an IPv4-mapped IPv6 address counts as
 * IPv4), an IPv6 address's /48 ("2001:db8:1::/48"); "" for anything else
 * (NULL included). out holds ACC_ADDRESS_MAX + 1 bytes. */
void acc_address_coarse(const char *addr, char out[ACC_ADDRESS_MAX + 1]);
/* A User-Agent as stored: printable ASCII (anything else becomes '?'), at
 * most ACC_USER_AGENT_MAX bytes; "" for NULL. */
void acc_user_agent_clean(const char *in, char out[ACC_USER_AGENT_MAX + 1]);
/* A recovery code as typed ("ABCD-efgh-ijkl-mnop", spaces and dashes anywhere) into
 * its stored form (16 lower-case base32 characters). 0, or -1 when it cannot be one. */
int acc_recovery_code_normalize(const char *in, char out[ACC_RECOVERY_CODE_LEN + 1]);
/* A TOTP code as typed ("123 456") into its 6 digits. 0, or -1 when it cannot be one. */
int acc_totp_code_normalize(const char *in, char out[ACC_TOTP_DIGITS + 1]);

/* --- totp.c: TOTP (RFC 6238) over liboath; pure ----------------------------------------- */

#define ACC_TOTP_KEY_BYTES 20 /* 160 bits, RFC 4226's recommendation for HMAC-SHA1 */
#define ACC_TOTP_WINDOW    1  /* steps accepted either side of now (clock drift) */

/* liboath's global setup: once, in the master. 0 or -1. */
int acc_totp_setup(void);
/* The code of time t (seconds since the epoch), `digits` digits, HMAC-SHA1
 * (flags 0) or OATH_TOTP_HMAC_SHA256 / _SHA512, into out (digits + 1 bytes). 0 or -1. */
int acc_totp_code(const unsigned char *key, size_t keylen, int64_t t, unsigned digits, int flags, char *out);
/* The time step (t / 30) within ACC_TOTP_WINDOW of now whose 6-digit code is
 * `code`, or -1. Every step of the window is computed and compared in
 * constant time, whatever matches. */
int64_t acc_totp_match(const unsigned char *key, size_t keylen, int64_t now, const char *code);
/* A new random key, as base32 text (the secret an app is given) in the arena. */
char *acc_totp_secret_new(sh_arena *a);
/* Decodes a base32 secret into key (cap bytes). The length, or -1. */
long acc_totp_secret_decode(const char *secret, unsigned char *key, size_t cap);
/* otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=...&algorithm=SHA1&digits=6&period=30 */
char *acc_totp_uri(sh_arena *a, const char *issuer, const char *account, const char *secret);

/* --- passwords.c ---------------------------------------------------------------------- */

/* argon2id hash of a password (crypto_pwhash_str) into the arena; NULL on failure. */
char *acc_password_hash(sh_arena *a, const char *password, size_t len);
/* True when password matches hash. With hash NULL, spends the same time and fails. */
bool acc_password_verify(const char *hash, const char *password, size_t len);
/* Prepares the dummy hash used when no user matches (in the master). */
int acc_passwords_setup(void);

/* --- keys.c ---------------------------------------------------------------------------- */

int acc_keys_load(char *err, size_t errlen);
/* Creates a new signing key; the public keys file keeps older keys behind it. */
int acc_keys_generate(const char *signing_key_file, const char *public_keys_file);
/* Signs an access token for a user row (ACC_USER_COLUMNS); session_id (the
 * refresh-token family, its "sid" claim) may be NULL. Its iat is never before
 * a revocation of the user (or session) still to come in this second, so a
 * token issued right after one is not refused by it. NULL after a database error. */
char *acc_access_token(sh_req *req, const sh_row *user, const char *session_id);
/* Issues a refresh token in the family *family_io (NULL: a new family, whose id
 * is stored there) for user_id, to the client of this request (its user agent
 * and address, hashed); the session (the family) is created or marked used.
 * Returns the token text (only its hash is stored), or NULL after a database
 * error. */
char *acc_refresh_token_issue(sh_req *req, int64_t user_id, const char **family_io);
/* The client a refresh token is issued to: SHA-256 hex of its user agent and address. */
char *acc_client_hash(sh_req *req);
/* Answers 200 with an access + refresh pair for the user (the cookie when asked). */
int acc_reply_tokens(sh_req *req, const sh_row *user, const char *refresh_token, const char *session_id, bool cookie);
/* Sets or clears (token NULL) the refresh cookie. */
void acc_refresh_cookie(sh_req *req, const char *token);
/* The refresh token a request carries: body field, else the cookie. */
const char *acc_refresh_token_of(sh_req *req);

/* --- mail.c ---------------------------------------------------------------------------- */

/* Queues a mail in the outbox: call it inside the transaction of the change
 * that causes it, so that both commit or neither. It is sent once the
 * request has answered (and retried with backoff, with no request needed).
 * `to` is a normalized address; subject, text and html are ours (a user's
 * words in html go through acc_html_escape). 0, or -1 on a database error. */
int acc_mail_queue(sh_req *req, const char *to, const char *subject, const char *text, const char *html);
/* Sends what is due in the outbox, marks it, and asks the pool to wake a
 * worker when the next one is due (nothing when the outbox is empty). */
void acc_outbox_flush(sh_req *req);
/* The pool's wake: acc_outbox_flush. */
void acc_on_wake(sh_req *req);
/* PL_PUBLIC_URL + path + token, for the links of a mail (in the arena). */
char *acc_mail_link(sh_req *req, const char *path, const char *token);
/* s with & < > " ' escaped for HTML text or attributes (in the arena). */
char *acc_html_escape(sh_arena *a, const char *s);

/* --- revocations.c ----------------------------------------------------------------------- */

/* Every service refuses the user's access tokens (those of one session, when
 * session_id is given) issued before not_before (seconds since the epoch)
 * within about a second (the feed, sh_auth_revoked), and the user's live chat
 * subscriptions are closed (chat is asked once the request has answered).
 * Call it inside the transaction of the change. 0, or -1 on a database error. */
int acc_revoke(sh_req *req, int64_t user_id, const char *session_id, int64_t not_before);
/* The feed as the service layer reads it (sh_revocation_fetch_fn), straight
 * from the table: accounts keeps it. */
int acc_revocations_fetch(sh_req *req, int64_t after, sh_revocation *out, int max, int *n, int64_t *last_id,
                          int64_t *keep_s);

/* --- onetime.c: single-use tokens (mailed links, MFA tickets) ------------------------- */

#define ACC_OTT_VERIFY_EMAIL   "verify_email"
#define ACC_OTT_CHANGE_EMAIL   "change_email"
#define ACC_OTT_RESET_PASSWORD "reset_password"
#define ACC_OTT_MFA_LOGIN      "mfa_login"

#define ACC_VERIFY_TTL_S 86400 /* a verification link: 24 h */
#define ACC_RESET_TTL_S  1800  /* a reset link: 30 min */
#define ACC_TICKET_TTL_S 300   /* an MFA ticket: 5 min */

/* A one-time token found by acc_ott_take_or_reply. */
typedef struct {
    int64_t id;
    int64_t user_id;
    const char *purpose;
    const char *data; /* the address of an email verification or change, else NULL */
} acc_ott;

/* Issues a token of `purpose` for user_id, valid ttl_s: returns its text (in
 * the arena; only its SHA-256 is stored), or NULL after a database error.
 * With `replace`, the user's older unused tokens of that purpose expire. */
char *acc_ott_issue(sh_req *req, int64_t user_id, const char *purpose, const char *data, int64_t ttl_s, bool replace);
/* Inside a transaction: finds the token (locked) among the given purposes
 * (NULL-ended). 0 with *out, or the status of the reply sent: 422
 * token_unknown / token_expired / token_used, naming `field`. */
int acc_ott_take_or_reply(sh_req *req, const char *token, const char *const *purposes, const char *field, acc_ott *out);
/* Marks a taken token used. 0, or -1 (database error, or used meanwhile). */
int acc_ott_use(sh_req *req, int64_t id);
/* In a transaction: the user's unused tokens of each of the NULL-ended
 * purposes expire now (their next use answers token_expired). 0 or -1. */
int acc_ott_expire(sh_req *req, int64_t user_id, const char *const *purposes);
/* What a new password (changed or reset) ends: the reset links mailed for the
 * old one, the address changes asked for with it (by whoever knew it), and
 * the MFA tickets of logins it began. */
extern const char *const acc_ott_ended_by_new_password[];
/* What disabling an account ends: every link and ticket mailed or handed
 * out before (enabled again, the user asks anew). */
extern const char *const acc_ott_ended_by_disable[];

/* --- credentials.c: checking a user's secrets, every wrong answer counted ---------------- */

/* What the checks need of a user (ACC_USER_AUTH_STATE). */
typedef struct {
    int64_t id;
    const char *password_hash;
    int64_t lock_left; /* seconds the account stays locked */
    bool mfa_enabled;
    const char *mfa_secret; /* base32, or NULL */
    const char *email;
    const char *role;
    bool disabled;
} acc_auth_state;

/* Loads the user's state into *st: 0, or the status of the reply sent (404
 * not_found, database errors). */
int acc_auth_state_or_reply(sh_req *req, int64_t user_id, acc_auth_state *st);
/* 429 account_locked with Retry-After when the account is locked (0 otherwise). */
int acc_lock_or_reply(sh_req *req, const acc_auth_state *st);
/* Counts a wrong password or code toward the lockout. 0 or -1. */
int acc_count_failure(sh_req *req, int64_t user_id);
/* The body field `field` must be the user's password: 0, or the status of
 * the reply sent (429 account_locked; 403 wrong_password, counted). */
int acc_password_check_or_reply(sh_req *req, const acc_auth_state *st, const char *field);
/* A TOTP code as typed must match the user's secret at a time step later
 * than any accepted before, which it takes (counted when wrong): 0, or the
 * status of the reply sent (422 invalid_field, `status` invalid_mfa_code or
 * mfa_code_used). The lock is the caller's to check. */
int acc_mfa_code_or_reply(sh_req *req, const acc_auth_state *st, const char *typed, int status);
/* With MFA on, the body must carry a current TOTP `code` (never accepted
 * twice: mfa_last_step) or an unused `recovery_code` (spent here): 0, or the
 * status of the reply sent (422 mfa_code_required / invalid_field, 429
 * account_locked, `status` invalid_mfa_code or mfa_code_used, counted). With
 * MFA off, 0. */
int acc_mfa_check_or_reply(sh_req *req, const acc_auth_state *st, int status);

/* --- sessions (sessions.c) ------------------------------------------------------------------ */

/* Ends every live session of the user but `keep` (a session id, or NULL for
 * all): their refresh tokens are revoked and their access tokens refused
 * (acc_revoke). Inside the change's transaction. 0 or -1. */
int acc_sessions_end_others(sh_req *req, int64_t user_id, const char *keep);

/* --- email.c ------------------------------------------------------------------------------ */

/* Queues a short notice to `to` (our own words only: no user's text goes
 * into a mail unescaped). In the caller's transaction. 0 or -1. */
int acc_notice_queue(sh_req *req, const char *to, const char *subject, const char *text);
/* Issues a verification token for `to` and queues its mail (in the caller's
 * transaction); marks the account's verify_sent_at. 0 or -1. */
int acc_verify_mail_queue(sh_req *req, int64_t user_id, const char *to, const char *purpose);

/* --- deletion.c ---------------------------------------------------------------------------- */

/* Deletes user_id everywhere: the projects service deletes their projects,
 * chat anonymises their messages and removes their projects' rooms, then the
 * account goes (with everything of it in this schema). Answers 204, or 503
 * service_unavailable (nothing deleted here) and the invocation errors. */
int acc_user_delete_everywhere(sh_req *req, int64_t user_id);

/* Handlers. */
int acc_revocations_list(sh_req *req);
int acc_test_mail(sh_req *req);
int acc_signup(sh_req *req);
int acc_login(sh_req *req);
int acc_login_mfa(sh_req *req);
int acc_token_refresh(sh_req *req);
int acc_logout(sh_req *req);
int acc_sessions_list(sh_req *req);
int acc_session_end(sh_req *req);
int acc_sessions_end_all(sh_req *req);
int acc_me_get(sh_req *req);
int acc_me_update(sh_req *req);
int acc_me_delete(sh_req *req);
int acc_email_verify(sh_req *req);
int acc_email_verify_resend(sh_req *req);
int acc_email_change(sh_req *req);
int acc_password_forgot(sh_req *req);
int acc_password_reset(sh_req *req);
int acc_mfa_enrol(sh_req *req);
int acc_mfa_confirm(sh_req *req);
int acc_mfa_disable(sh_req *req);
int acc_mfa_recovery_codes(sh_req *req);
int acc_users_list(sh_req *req);
int acc_user_get(sh_req *req);
int acc_user_update(sh_req *req);
int acc_user_delete(sh_req *req);
int acc_user_mfa_reset(sh_req *req);
int acc_jwks(sh_req *req);
int acc_user_clear_primary(sh_req *req);

/* Command line: pl-accounts create-admin EMAIL (password on stdin). */
int acc_create_admin(sh_req *req, void *email);

#endif
