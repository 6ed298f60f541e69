/* fuzz_jwt.c: libFuzzer target for sh_jwt_verify (libshared/src/auth.c).
 * Input, by its first byte: even: the rest is a bearer token as a client
 * sends it; odd: the rest is "header JSON\nclaims JSON", made into a token
 * signed with the verifier's own key, so that the parsing behind the
 * signature check (claims, expiry, subject, role) is reached as well. */
#include "fuzz.h"
#include "sh_auth.h"

#include <stdlib.h>
#include <string.h>

#define FUZZ_NOW 1800000000LL

static sh_auth_config ac;
static unsigned char sk[crypto_sign_SECRETKEYBYTES];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (sodium_init() < 0)
        abort();
    unsigned char seed[crypto_sign_SEEDBYTES];
    memset(seed, 7, sizeof(seed)); /* fixed: a crash must reproduce */
    crypto_sign_seed_keypair(ac.keys[0].pk, sk, seed);
    strcpy(ac.keys[0].kid, "k1");
    ac.nkeys = 1;
    ac.issuer = "pilotlight";
    ac.leeway_s = 30;
    return 0;
}

static char *signed_token(sh_arena *a, const char *text, size_t len)
{
    const char *nl = memchr(text, '\n', len);
    if (nl == NULL)
        return NULL;
    char *h = sh_b64url_encode(a, (const unsigned char *)text, (size_t)(nl - text));
    char *c = sh_b64url_encode(a, (const unsigned char *)nl + 1, len - (size_t)(nl + 1 - text));
    char *input = sh_arena_sprintf(a, "%s.%s", h, c);
    unsigned char sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, NULL, (const unsigned char *)input, strlen(input), sk);
    return sh_arena_sprintf(a, "%s.%s", input, sh_b64url_encode(a, sig, sizeof(sig)));
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size == 0 || size > 8192)
        return 0;
    sh_arena *a = sh_arena_create(8192);
    const char *token;
    if (data[0] & 1)
        token = signed_token(a, (const char *)data + 1, size - 1);
    else
        token = sh_arena_strndup(a, (const char *)data + 1, size - 1);
    if (token != NULL) {
        sh_principal p;
        const char *why = NULL;
        int rc = sh_jwt_verify(&ac, token, FUZZ_NOW, a, &p, &why);
        if (rc == 0) {
            if (!p.present || p.user_id < 1 || p.role == NULL || p.subject == NULL || p.token == NULL ||
                p.expires_at < FUZZ_NOW - 30)
                abort();
        } else if (rc != -1 || why == NULL || p.present) {
            abort();
        }
    }
    sh_arena_destroy(a);
    return 0;
}
