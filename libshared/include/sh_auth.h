/* sh_auth.h: access tokens (RFC 7519 JWTs signed with EdDSA, RFC 8037). Every service verifies EdDSA (Ed25519) JWTs with the
 * public keys alone; only accounts signs. The verifier accepts nothing but
 * alg "EdDSA" with a known kid (never "none", never HMAC), checks the signature,
 * exp/nbf with a small leeway, and iss.
 * Layer 2 of libshared (auth); see docs/architecture.md. */
#ifndef SH_AUTH_H
#define SH_AUTH_H

#include "sh_codec.h"
#include "sh_config.h"
#include "sh_req.h"

#include <sodium.h>

#define SH_AUTH_MAX_KEYS        4
#define SH_AUTH_KID_MAX         64
#define SH_AUTH_TOKEN_MAX       4096 /* bytes: a longer token is refused unread */
#define SH_AUTH_SESSION_ID_MAX  32   /* a session id (sid claim): 32 hex digits */
#define SH_AUTH_REVOCATIONS_MAX 2048

typedef struct {
    char kid[SH_AUTH_KID_MAX];
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
} sh_auth_key;

typedef struct {
    const char *issuer;
    int64_t leeway_s;
    const char *public_keys_file;       /* where keys[] were read from (NULL: none) */
    int64_t revocation_poll_ms;         /* how stale the revocations may get (0: never read) */
    const char *revocations_path;       /* the feed's path on the gateway */
    int64_t token_cache_entries;        /* verified tokens a process remembers (0: none) */
    const char *revocation_signal_file; /* see sh_auth_signal_open, or NULL */
    int64_t revocation_max_stale_s;     /* with the signal: read the feed at least this often */
    sh_auth_key keys[SH_AUTH_MAX_KEYS];
    int nkeys;
} sh_auth_config;

/* PL_JWT_ISSUER, PL_JWT_LEEWAY_S and PL_JWT_PUBLIC_KEYS_FILE over an sh_auth_config. */
extern const sh_conf_row sh_auth_conf_rows[];

/* Revocations: access tokens of a user (or of one of their sessions) issued
 * before a time, refused by every service within seconds, with no round
 * trip to accounts per request. Accounts keeps the feed; each pool holds the
 * recent revocations in a table shared by its processes (mapped by the
 * master before it forks), read again from the feed at most every
 * revocation_poll_ms, by one process at a time, when a token is checked
 * (an idle pool reads nothing). A feed that cannot be read keeps the table
 * as it is (and is tried again a poll later): the tokens it holds stay
 * refused, newer revocations wait. */
typedef struct {
    int64_t id; /* the feed's position */
    int64_t user_id;
    char session_id[SH_AUTH_SESSION_ID_MAX + 1]; /* "" for all the user's sessions */
    int64_t not_before;                          /* tokens issued (iat) before this second are refused */
} sh_revocation;

/* Reads the feed after position `after`: up to max entries into out; *n is
 * how many, *last_id the position to read from next time, *keep_s how long
 * an entry matters (the longest token lifetime). 0, or -1 when it cannot. */
typedef int (*sh_revocation_fetch_fn)(sh_req *req, int64_t after, sh_revocation *out, int max, int *n, int64_t *last_id,
                                      int64_t *keep_s);

/* In the master, before the first fork: the table its processes share.
 * Without it (a command, a unit test) a process has a table of its own. */
int sh_auth_revocations_share(void);
/* Who reads the feed (the service layer installs it); NULL: nobody. */
void sh_auth_on_revocation_fetch(sh_revocation_fetch_fn fn);
/* Whether p's token is revoked, reading the feed first when it is stale. */
bool sh_auth_revoked(sh_req *req, const sh_principal *p);

/* The revocation signal (PL_REVOCATION_SIGNAL_FILE): a file every pool on a
 * host maps, holding two counters. Accounts brackets each revocation:
 * sh_auth_revocation_begin (in flight +1) as it writes it, and
 * sh_auth_revocation_committed(handle) once it is committed (generation +1,
 * then in flight -1; run by sh_db_on_commit, so before the answer goes out;
 * a revocation never committed is signalled when its request ends). A pool then knows its table
 * is current while the generation it last read at is still the generation
 * and nothing is in flight, and reads the feed only when that changed (or
 * after revocation_max_stale_s): an idle pool's first request, and every
 * request of a quiet one, need no round trip to accounts. In flight stays up
 * when a writer died midway: the pools poll (revocation_poll_ms) until the
 * file is made anew (./pilotlight down removes it).
 * sh_auth_signal_open maps it (in the master, before forking; the
 * configuration installed): 0, or -1 (logged: the pool polls as without it). */
int sh_auth_signal_open(void);
void *sh_auth_revocation_begin(sh_req *req); /* NULL without a signal */
void sh_auth_revocation_committed(void *handle);

/* Loads public keys from a file of "kid base64url-public-key" lines (the first
 * is the current key; later ones are older keys still accepted). Returns 0, or
 * -1 with a message in err. */
int sh_auth_load_public_keys(sh_auth_config *ac, const char *path, char *err, size_t errlen);

/* Installs the verifier configuration (copied). Call once before serving. */
void sh_auth_configure(const sh_auth_config *ac);
const sh_auth_config *sh_auth_config_get(void);

/* Dispatcher check for a route's flags (SH_AUTH, SH_ADMIN, SH_TOKEN_QUERY):
 * verifies the bearer token (RFC 6750: the Authorization header, or with
 * SH_TOKEN_QUERY the access_token query parameter) into req->auth. Answers
 * 401 missing_token / invalid_token (with WWW-Authenticate) or 403 forbidden;
 * without SH_AUTH/SH_ADMIN a missing token is no error (req->auth.present
 * stays false). 0 when the handler may run. */
int sh_auth_or_reply(sh_req *req, unsigned route_flags);

/* sh_jwt_verify, remembered: a token this process verified before (and that
 * has not expired since) is not verified again. The cache is keyed by a MAC
 * of the whole token under a random per-process key (BLAKE2b), so a lookup
 * reveals nothing an attacker could steer; it holds token_cache_entries
 * principals at most (4-way sets, least recently used out), each until the
 * token's exp plus the leeway, and sh_auth_configure empties it (new keys,
 * new issuer). Revocations are checked on every request, after this.
 * Returns as sh_jwt_verify; *cached says whether the signature check was
 * skipped. */
int sh_jwt_verify_cached(const sh_auth_config *ac, const char *token, int64_t now, sh_arena *a, sh_principal *p,
                         const char **why, bool *cached);

/* Verifies a compact JWT; fills *p. Returns 0, or -1 with a short reason. Pure
 * apart from the clock `now` (seconds since the epoch). */
int sh_jwt_verify(const sh_auth_config *ac, const char *token, int64_t now, sh_arena *a, sh_principal *p,
                  const char **why);

/* Signs a JWT with header {"alg":"EdDSA","typ":"JWT","kid":kid} over the given
 * claims; returns the token in the arena. */
char *sh_jwt_sign(sh_arena *a, const char *kid, const unsigned char sk[crypto_sign_SECRETKEYBYTES],
                  json_object *claims);

#endif
