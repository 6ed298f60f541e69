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
    const char *mail_from; /* "Name <address>" or an address */
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
    ACC_USER_PASSWORD_HASH,
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
    ACC_RT_INSERT,
    ACC_RT_FIND_FOR_UPDATE,
    ACC_RT_SPEND,
    ACC_RT_REVOKE_FAMILY,
    ACC_RT_REVOKE_USER,
    ACC_RT_FAMILY_BY_HASH,
    ACC_RT_PURGE_EXPIRED,
    ACC_OUTBOX_INSERT,
    ACC_OUTBOX_DUE,
    ACC_OUTBOX_SENT,
    ACC_OUTBOX_FAILED,
    ACC_OUTBOX_NEXT,
    ACC_OUTBOX_PURGE,
    ACC_REVOCATION_INSERT,
    ACC_REVOCATIONS_AFTER,
    ACC_REVOCATIONS_LAST,
    ACC_STMT_COUNT
};

extern int acc_stmt[ACC_STMT_COUNT];

/* The columns acc_user_json reads, in order. */
#define ACC_USER_COLUMNS                                                                                               \
    "id, email, display_name, role, disabled, primary_project_id, "                                                    \
    "DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s.%fZ'), DATE_FORMAT(updated_at, '%Y-%m-%dT%H:%i:%s.%fZ')"

/* A user row (ACC_USER_COLUMNS) as the API shows it; never the hash. */
json_object *acc_user_json(const sh_row *row);
/* Loads one user by id into *out (a row in the request arena). 0, 1 when absent, -1 on error. */
int acc_user_load(sh_req *req, int64_t id, sh_row *out);

/* --- validate.c: pure rules shared with the unit tests --------------------------- */

#define ACC_EMAIL_MAX    254
#define ACC_PASSWORD_MIN 10
#define ACC_PASSWORD_MAX 128

/* Lower-cases and checks an email address into out (ACC_EMAIL_MAX + 1 bytes). */
int acc_email_normalize(const char *in, size_t len, char *out);
/* NULL when the password is acceptable for this (normalized) email, else why not. */
const char *acc_password_problem(const char *password, size_t len, const char *email);
/* Escapes LIKE wildcards (\ % _) of s with '\' into the arena, adding a trailing %. */
char *acc_like_prefix(sh_arena *a, const char *s);

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
/* Signs an access token for a user. */
/* Signs an access token for a user; session_id (the refresh-token family, its
 * "sid" claim) may be NULL. */
char *acc_access_token(sh_req *req, int64_t user_id, const char *email, const char *name, const char *role,
                       const char *session_id);
/* Issues a refresh token in the family *family_io (NULL: a new family, whose id
 * is stored there) for user_id; returns the token text (only its hash is
 * stored), or NULL after a database error. */
char *acc_refresh_token_issue(sh_req *req, int64_t user_id, const char **family_io);
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

/* Handlers. */
int acc_revocations_list(sh_req *req);
int acc_test_mail(sh_req *req);
int acc_signup(sh_req *req);
int acc_login(sh_req *req);
int acc_token_refresh(sh_req *req);
int acc_logout(sh_req *req);
int acc_me_get(sh_req *req);
int acc_me_update(sh_req *req);
int acc_users_list(sh_req *req);
int acc_user_get(sh_req *req);
int acc_user_update(sh_req *req);
int acc_jwks(sh_req *req);
int acc_user_clear_primary(sh_req *req);

/* Command line: pl-accounts create-admin EMAIL (password on stdin). */
int acc_create_admin(sh_req *req, void *email);

#endif
