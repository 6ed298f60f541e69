/* sh_auth.h: access tokens. Every service verifies EdDSA (Ed25519) JWTs with the
 * public keys alone; only accounts signs. The verifier accepts nothing but
 * alg "EdDSA" with a known kid (never "none", never HMAC), checks the signature,
 * exp/nbf with a small leeway, and iss. */
#ifndef SH_AUTH_H
#define SH_AUTH_H

#include "sh_codec.h"
#include "sh_http.h"

#include <sodium.h>

#define SH_AUTH_MAX_KEYS 4
#define SH_AUTH_KID_MAX 64

typedef struct {
    char kid[SH_AUTH_KID_MAX];
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
} sh_auth_key;

typedef struct {
    const char *issuer;
    int64_t leeway_s;
    sh_auth_key keys[SH_AUTH_MAX_KEYS];
    int nkeys;
} sh_auth_config;

/* Loads public keys from a file of "kid base64url-public-key" lines (the first
 * is the current key; later ones are older keys still accepted). Returns 0, or
 * -1 with a message in err. */
int sh_auth_load_public_keys(sh_auth_config *ac, const char *path, char *err, size_t errlen);

/* Installs the verifier configuration (copied). Call once before serving. */
void sh_auth_configure(const sh_auth_config *ac);
const sh_auth_config *sh_auth_config_get(void);

/* Dispatcher hook: verifies the bearer token into req->auth, or answers
 * 401 missing_token / invalid_token (with WWW-Authenticate) or 403 forbidden. */
int sh_auth_require_or_reply(sh_req *req, bool admin);

/* Verifies a compact JWT; fills *p. Returns 0, or -1 with a short reason. Pure
 * apart from the clock `now` (seconds since the epoch). */
int sh_jwt_verify(const sh_auth_config *ac, const char *token, int64_t now, sh_arena *a, sh_principal *p,
                  const char **why);

/* Signs a JWT with header {"alg":"EdDSA","typ":"JWT","kid":kid} over the given
 * claims; returns the token in the arena. */
char *sh_jwt_sign(sh_arena *a, const char *kid, const unsigned char sk[crypto_sign_SECRETKEYBYTES],
                  json_object *claims);

#endif
