/* keys.c: the signing key, access and refresh tokens, the refresh cookie, and
 * the JWKS that lets anyone verify our tokens with the public keys alone.
 *
 * Key files: the signing key file holds one line "kid base64url-seed" (32-byte
 * Ed25519 seed, mode 0600, accounts only); the public keys file holds lines
 * "kid base64url-public-key", the current key first, older keys after it so
 * tokens they signed still verify during a rotation. */
#include "accounts.h"
#include "sh_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ACC_REFRESH_COOKIE "pl_refresh"

acc_signing_key acc_key;

int acc_keys_load(char *err, size_t errlen)
{
    acc_signing_key key;
    FILE *f = fopen(acc_conf.signing_key_file, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open the signing key %s: %s", acc_conf.signing_key_file, strerror(errno));
        return -1;
    }
    char line[256] = "", kid[SH_AUTH_KID_MAX], seed64[128];
    unsigned char seed[crypto_sign_SEEDBYTES];
    bool ok = fgets(line, sizeof(line), f) != NULL && sscanf(line, "%63s %127s", kid, seed64) == 2 &&
              sh_b64url_decode(seed, sizeof(seed), seed64, strlen(seed64)) == (long)sizeof(seed);
    fclose(f);
    sodium_memzero(line, sizeof(line));
    sodium_memzero(seed64, sizeof(seed64));
    if (!ok) {
        sodium_memzero(seed, sizeof(seed));
        snprintf(err, errlen, "%s: expected one line \"kid base64url-seed\"", acc_conf.signing_key_file);
        return -1;
    }
    crypto_sign_seed_keypair(key.pk, key.sk, seed);
    sodium_memzero(seed, sizeof(seed));
    snprintf(key.kid, sizeof(key.kid), "%s", kid);

    /* The signing key must be the current public key, or nobody could verify. */
    const sh_auth_config *ac = sh_auth_config_get();
    if (ac->nkeys == 0 || strcmp(ac->keys[0].kid, key.kid) != 0 ||
        memcmp(ac->keys[0].pk, key.pk, sizeof(key.pk)) != 0) {
        snprintf(err, errlen, "the signing key %s is not the first key of PL_JWT_PUBLIC_KEYS_FILE", key.kid);
        sodium_memzero(&key, sizeof(key));
        return -1;
    }
    acc_key = key;
    sodium_memzero(&key, sizeof(key));
    return 0;
}

/* Writes path atomically with the given mode. */
static int acc_write_file(const char *path, const char *text, mode_t mode)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    bool ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int acc_keys_generate(const char *signing_key_file, const char *public_keys_file)
{
    if (sodium_init() < 0)
        return -1;
    unsigned char seed[crypto_sign_SEEDBYTES], pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    unsigned char rnd[4];
    randombytes_buf(seed, sizeof(seed));
    randombytes_buf(rnd, sizeof(rnd));
    crypto_sign_seed_keypair(pk, sk, seed);
    sodium_memzero(sk, sizeof(sk));

    char kid[48];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(kid, sizeof(kid), "k%04d%02d%02d-%02x%02x%02x%02x", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, rnd[0],
             rnd[1], rnd[2], rnd[3]);
    sh_arena *a = sh_arena_create(8192);
    char *seed64 = sh_b64url_encode(a, seed, sizeof(seed));
    sodium_memzero(seed, sizeof(seed));

    /* the new public key first, then the previous keys (at most SH_AUTH_MAX_KEYS in all) */
    sh_buf pub;
    sh_buf_init(&pub, a, 1024);
    sh_buf_printf(&pub, "%s %s\n", kid, sh_b64url_encode(a, pk, sizeof(pk)));
    FILE *old = fopen(public_keys_file, "r");
    int kept = 1;
    if (old != NULL) {
        char line[512];
        while (fgets(line, sizeof(line), old) != NULL && kept < SH_AUTH_MAX_KEYS) {
            if (line[0] == '#' || line[0] == '\n')
                continue;
            sh_buf_puts(&pub, line);
            kept++;
        }
        fclose(old);
    }
    char *secret = sh_arena_sprintf(a, "%s %s\n", kid, seed64);
    /* Public keys first: a verifier that already knows the new key is harmless,
     * a signer whose key nobody knows is not. */
    int rc =
        acc_write_file(public_keys_file, pub.data, 0644) == 0 && acc_write_file(signing_key_file, secret, 0600) == 0
            ? 0
            : -1;
    sodium_memzero(secret, strlen(secret));
    if (rc == 0)
        printf("new signing key %s (public keys: %d)\n", kid, kept);
    else
        fprintf(stderr, "cannot write the key files: %s\n", strerror(errno));
    sh_arena_destroy(a);
    return rc;
}

char *acc_access_token(sh_req *req, const sh_row *user, const char *session_id)
{
    int64_t user_id = sh_row_int(user, 0), now = (int64_t)time(NULL), iat = now;
    /* A revocation dated this very second (a password reset, "log out
     * everywhere") refuses tokens issued before its not_before: one issued
     * after it, in the same second, is dated at not_before so that it lives. */
    sh_result r;
    if (sh_db_query(req, acc_stmt[ACC_REVOCATION_PENDING], &r, "is", user_id, session_id) != 0 || r.nrows != 1)
        return NULL;
    if (sh_row_int(&r.rows[0], 0) > iat)
        iat = sh_row_int(&r.rows[0], 0);
    unsigned char jti[16];
    randombytes_buf(jti, sizeof(jti));
    json_object *c = json_object_new_object();
    json_object_object_add(c, "iss", json_object_new_string(sh_auth_config_get()->issuer));
    json_object_object_add(c, "sub", json_object_new_string(sh_arena_sprintf(req->arena, "%lld", (long long)user_id)));
    json_object_object_add(c, "iat", json_object_new_int64(iat));
    json_object_object_add(c, "nbf", json_object_new_int64(now));
    json_object_object_add(c, "exp", json_object_new_int64(iat + acc_conf.access_ttl_s));
    json_object_object_add(c, "jti", json_object_new_string(sh_b64url_encode(req->arena, jti, sizeof(jti))));
    json_object_object_add(c, "role", json_object_new_string(sh_row_str(user, 3)));
    json_object_object_add(c, "email", json_object_new_string(sh_row_str(user, 1)));
    json_object_object_add(c, "email_verified", json_object_new_boolean(sh_row_int(user, 8) != 0));
    json_object_object_add(c, "name", json_object_new_string(sh_row_str(user, 2)));
    if (session_id != NULL)
        json_object_object_add(c, "sid", json_object_new_string(session_id));
    char *token = sh_jwt_sign(req->arena, acc_key.kid, acc_key.sk, c);
    json_object_put(c);
    return token;
}

char *acc_client_hash(sh_req *req)
{
    const char *ua = sh_req_header(req, "User-Agent"), *addr = req->remote_addr;
    return sh_sha256_hex(req->arena, sh_arena_sprintf(req->arena, "%s\n%s", ua ? ua : "", addr ? addr : ""));
}

char *acc_refresh_token_issue(sh_req *req, int64_t user_id, const char **family_io)
{
    const char *family = *family_io;
    unsigned char raw[32];
    randombytes_buf(raw, sizeof(raw));
    char *token = sh_b64url_encode(req->arena, raw, sizeof(raw));
    if (family == NULL) {
        unsigned char fam[16];
        randombytes_buf(fam, sizeof(fam));
        char *hex = sh_arena_alloc(req->arena, sizeof(fam) * 2 + 1);
        sodium_bin2hex(hex, sizeof(fam) * 2 + 1, fam, sizeof(fam));
        family = hex;
        *family_io = family;
    }
    char agent[ACC_USER_AGENT_MAX + 1], address[ACC_ADDRESS_MAX + 1];
    acc_user_agent_clean(sh_req_header(req, "User-Agent"), agent);
    acc_address_coarse(req->remote_addr, address);
    if (sh_db_query(req, acc_stmt[ACC_RT_INSERT], NULL, "sisis", sh_sha256_hex(req->arena, token), user_id, family,
                    acc_conf.refresh_ttl_s, acc_client_hash(req)) != 0 ||
        sh_db_query(req, acc_stmt[ACC_SESSION_UPSERT], NULL, "siss", family, user_id, agent, address) != 0)
        return NULL;
    return token;
}

void acc_refresh_cookie(sh_req *req, const char *token)
{
    if (token != NULL)
        sh_resp_header(req, "Set-Cookie", "%s=%s; Path=/api/accounts/; Max-Age=%lld; HttpOnly; SameSite=Strict%s",
                       ACC_REFRESH_COOKIE, token, (long long)acc_conf.refresh_ttl_s, req->https ? "; Secure" : "");
    else
        sh_resp_header(req, "Set-Cookie", "%s=; Path=/api/accounts/; Max-Age=0; HttpOnly; SameSite=Strict%s",
                       ACC_REFRESH_COOKIE, req->https ? "; Secure" : "");
}

const char *acc_refresh_token_of(sh_req *req)
{
    const char *t = sh_field_str(req, "refresh_token");
    return t != NULL ? t : sh_req_cookie(req, ACC_REFRESH_COOKIE);
}

int acc_reply_tokens(sh_req *req, const sh_row *user, const char *refresh_token, const char *session_id, bool cookie)
{
    char *access = acc_access_token(req, user, session_id);
    if (access == NULL)
        return sh_db_reply_error(req);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "access_token", json_object_new_string(access));
    json_object_object_add(o, "token_type", json_object_new_string("Bearer"));
    json_object_object_add(o, "expires_in", json_object_new_int64(acc_conf.access_ttl_s));
    if (cookie)
        acc_refresh_cookie(req, refresh_token); /* page scripts never see it */
    else
        json_object_object_add(o, "refresh_token", json_object_new_string(refresh_token));
    json_object_object_add(o, "refresh_expires_in", json_object_new_int64(acc_conf.refresh_ttl_s));
    json_object_object_add(o, "user", acc_user_json(user));
    return sh_reply_json(req, 200, o);
}

int acc_jwks(sh_req *req)
{
    const sh_auth_config *ac = sh_auth_config_get();
    json_object *keys = json_object_new_array();
    for (int i = 0; i < ac->nkeys; i++) {
        json_object *k = json_object_new_object();
        json_object_object_add(k, "kty", json_object_new_string("OKP"));
        json_object_object_add(k, "crv", json_object_new_string("Ed25519"));
        json_object_object_add(k, "kid", json_object_new_string(ac->keys[i].kid));
        json_object_object_add(
            k, "x", json_object_new_string(sh_b64url_encode(req->arena, ac->keys[i].pk, sizeof(ac->keys[i].pk))));
        json_object_object_add(k, "alg", json_object_new_string("EdDSA"));
        json_object_object_add(k, "use", json_object_new_string("sig"));
        json_object_array_add(keys, k);
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "keys", keys);
    sh_resp_header(req, "Cache-Control", "public, max-age=300");
    return sh_reply_json(req, 200, o);
}
