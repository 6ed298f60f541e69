/* test_jwt.c: the EdDSA JWT verifier against tokens made by hand. */
#include "sh_auth.h"
#include "sh_test.h"

#include <stdio.h>
#include <time.h>

static unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
static sh_auth_config ac;

static json_object *claims(int64_t now, const char *role)
{
    json_object *c = json_object_new_object();
    json_object_object_add(c, "iss", json_object_new_string("pilotlight"));
    json_object_object_add(c, "sub", json_object_new_string("42"));
    json_object_object_add(c, "iat", json_object_new_int64(now));
    json_object_object_add(c, "exp", json_object_new_int64(now + 900));
    json_object_object_add(c, "role", json_object_new_string(role));
    json_object_object_add(c, "email", json_object_new_string("a@example.com"));
    json_object_object_add(c, "jti", json_object_new_string("j1"));
    return c;
}

/* Builds header.payload and signs it with sk (or not at all). */
static char *raw_token(sh_arena *a, const char *header_json, const char *claims_json, bool sign)
{
    char *h = sh_b64url_encode(a, (const unsigned char *)header_json, strlen(header_json));
    char *c = sh_b64url_encode(a, (const unsigned char *)claims_json, strlen(claims_json));
    char *input = sh_arena_sprintf(a, "%s.%s", h, c);
    unsigned char sig[crypto_sign_BYTES];
    memset(sig, 0, sizeof(sig));
    if (sign)
        crypto_sign_detached(sig, NULL, (unsigned char *)input, strlen(input), sk);
    return sh_arena_sprintf(a, "%s.%s", input, sh_b64url_encode(a, sig, sizeof(sig)));
}

int main(void)
{
    CHECK(sodium_init() >= 0);
    crypto_sign_keypair(pk, sk);
    ac.issuer = "pilotlight";
    ac.leeway_s = 30;
    ac.nkeys = 1;
    snprintf(ac.keys[0].kid, sizeof(ac.keys[0].kid), "k1");
    memcpy(ac.keys[0].pk, pk, sizeof(pk));

    sh_arena *a = sh_arena_create(8192);
    int64_t now = (int64_t)time(NULL);
    sh_principal p;
    const char *why = NULL;

    json_object *c = claims(now, "admin");
    char *good = sh_jwt_sign(a, "k1", sk, c);
    CHECK(sh_jwt_verify(&ac, good, now, a, &p, &why) == 0);
    CHECK(p.present && p.user_id == 42 && p.is_admin);
    CHECK_STR(p.email, "a@example.com");

    /* expired (beyond the leeway), not yet valid */
    CHECK(sh_jwt_verify(&ac, good, now + 900 + 31, a, &p, &why) == -1);
    CHECK(strstr(why, "expired") != NULL);
    CHECK(sh_jwt_verify(&ac, good, now + 900 + 29, a, &p, &why) == 0);
    json_object_object_add(c, "nbf", json_object_new_int64(now + 100));
    char *early = sh_jwt_sign(a, "k1", sk, c);
    CHECK(sh_jwt_verify(&ac, early, now, a, &p, &why) == -1);
    /* extreme times: compared without overflow (UBSan would report it) */
    json_object_object_add(c, "nbf", json_object_new_int64(INT64_MIN));
    json_object_object_add(c, "exp", json_object_new_int64(INT64_MAX));
    CHECK(sh_jwt_verify(&ac, sh_jwt_sign(a, "k1", sk, c), now, a, &p, &why) == 0);
    json_object_object_add(c, "nbf", json_object_new_int64(INT64_MAX));
    CHECK(sh_jwt_verify(&ac, sh_jwt_sign(a, "k1", sk, c), now, a, &p, &why) == -1);
    json_object_object_add(c, "exp", json_object_new_int64(INT64_MIN));
    json_object_object_del(c, "nbf");
    CHECK(sh_jwt_verify(&ac, sh_jwt_sign(a, "k1", sk, c), now, a, &p, &why) == -1);
    json_object_put(c);

    /* unknown kid, wrong issuer, bad role, bad sub */
    c = claims(now, "user");
    CHECK(sh_jwt_verify(&ac, sh_jwt_sign(a, "k2", sk, c), now, a, &p, &why) == -1);
    json_object_object_add(c, "iss", json_object_new_string("someone-else"));
    CHECK(sh_jwt_verify(&ac, sh_jwt_sign(a, "k1", sk, c), now, a, &p, &why) == -1);
    json_object_put(c);
    c = claims(now, "root");
    CHECK(sh_jwt_verify(&ac, sh_jwt_sign(a, "k1", sk, c), now, a, &p, &why) == -1);
    json_object_put(c);
    c = claims(now, "user");
    json_object_object_add(c, "sub", json_object_new_string("-1"));
    CHECK(sh_jwt_verify(&ac, sh_jwt_sign(a, "k1", sk, c), now, a, &p, &why) == -1);
    json_object_put(c);

    /* alg none, HS256 signed with the public key bytes */
    char payload[256];
    snprintf(payload, sizeof(payload), "{\"iss\":\"pilotlight\",\"sub\":\"42\",\"exp\":%lld,\"role\":\"admin\"}",
             (long long)now + 900);
    CHECK(sh_jwt_verify(&ac, raw_token(a, "{\"alg\":\"none\",\"kid\":\"k1\"}", payload, false), now, a, &p, &why) ==
          -1);
    char *none_unsigned = sh_arena_sprintf(a, "%s.%s.", sh_b64url_encode(a, (unsigned char *)"{\"alg\":\"none\"}", 14),
                                           sh_b64url_encode(a, (unsigned char *)payload, strlen(payload)));
    CHECK(sh_jwt_verify(&ac, none_unsigned, now, a, &p, &why) == -1);
    {
        const char *hs = "{\"alg\":\"HS256\",\"kid\":\"k1\",\"typ\":\"JWT\"}";
        char *h = sh_b64url_encode(a, (const unsigned char *)hs, strlen(hs));
        char *pl = sh_b64url_encode(a, (const unsigned char *)payload, strlen(payload));
        char *input = sh_arena_sprintf(a, "%s.%s", h, pl);
        unsigned char mac[crypto_auth_hmacsha256_BYTES];
        crypto_auth_hmacsha256_state st;
        crypto_auth_hmacsha256_init(&st, pk, sizeof(pk));
        crypto_auth_hmacsha256_update(&st, (unsigned char *)input, strlen(input));
        crypto_auth_hmacsha256_final(&st, mac);
        char *tok = sh_arena_sprintf(a, "%s.%s", input, sh_b64url_encode(a, mac, sizeof(mac)));
        CHECK(sh_jwt_verify(&ac, tok, now, a, &p, &why) == -1);
        CHECK(strstr(why, "EdDSA") != NULL);
    }

    /* a flipped signature bit, a flipped payload bit */
    c = claims(now, "user");
    char *t = sh_jwt_sign(a, "k1", sk, c);
    json_object_put(c);
    char *flipped = sh_arena_strdup(a, t);
    size_t len = strlen(flipped);
    flipped[len - 3] = flipped[len - 3] == 'A' ? 'B' : 'A';
    CHECK(sh_jwt_verify(&ac, flipped, now, a, &p, &why) == -1);
    char *flipped2 = sh_arena_strdup(a, t);
    char *dot = strchr(flipped2, '.');
    dot[3] = dot[3] == 'A' ? 'B' : 'A';
    CHECK(sh_jwt_verify(&ac, flipped2, now, a, &p, &why) == -1);

    /* malformed shapes */
    CHECK(sh_jwt_verify(&ac, "", now, a, &p, &why) == -1);
    CHECK(sh_jwt_verify(&ac, "abc", now, a, &p, &why) == -1);
    CHECK(sh_jwt_verify(&ac, "a.b", now, a, &p, &why) == -1);
    CHECK(sh_jwt_verify(&ac, "a.b.c.d", now, a, &p, &why) == -1);
    CHECK(sh_jwt_verify(&ac, "..", now, a, &p, &why) == -1);
    CHECK(sh_jwt_verify(&ac, "!!!.@@@.###", now, a, &p, &why) == -1);
    char *padded = sh_arena_sprintf(a, "%s=", t);
    CHECK(sh_jwt_verify(&ac, padded, now, a, &p, &why) == -1);

    /* the verified-token cache: a hit is the same principal without the
     * signature check; expiry still holds; a forged token never hits;
     * configuring anew empties it; 0 entries turns it off */
    {
        ac.token_cache_entries = 16;
        sh_auth_configure(&ac);
        json_object *cc = claims(now, "admin");
        json_object_object_add(cc, "sid", json_object_new_string("0123456789abcdef0123456789abcdef"));
        json_object_object_add(cc, "name", json_object_new_string("Ada"));
        char *tok = sh_jwt_sign(a, "k1", sk, cc);
        json_object_put(cc);
        bool hit;
        CHECK(sh_jwt_verify_cached(&ac, tok, now, a, &p, &why, &hit) == 0 && !hit);
        sh_principal q;
        CHECK(sh_jwt_verify_cached(&ac, tok, now, a, &q, &why, &hit) == 0 && hit);
        CHECK(q.present && q.user_id == p.user_id && q.is_admin && strcmp(q.role, "admin") == 0);
        CHECK_STR(q.subject, "42");
        CHECK_STR(q.email, p.email);
        CHECK_STR(q.name, "Ada");
        CHECK_STR(q.session_id, "0123456789abcdef0123456789abcdef");
        CHECK_STR(q.token, tok);
        CHECK(q.expires_at == p.expires_at && q.issued_at == p.issued_at);
        /* past exp + leeway, a cached token is refused as if never seen */
        CHECK(sh_jwt_verify_cached(&ac, tok, now + 900 + 31, a, &q, &why, &hit) == -1 && !hit);
        CHECK(strstr(why, "expired") != NULL);
        CHECK(sh_jwt_verify_cached(&ac, tok, now, a, &q, &why, &hit) == 0 && !hit); /* in again */
        CHECK(sh_jwt_verify_cached(&ac, tok, now, a, &q, &why, &hit) == 0 && hit);
        /* a bit flipped in the signature: another token, verified, refused, never cached */
        char *forged = sh_arena_strdup(a, tok);
        size_t fl = strlen(forged);
        forged[fl - 3] = forged[fl - 3] == 'A' ? 'B' : 'A';
        for (int i = 0; i < 2; i++)
            CHECK(sh_jwt_verify_cached(&ac, forged, now, a, &q, &why, &hit) == -1 && !hit);
        /* more tokens than entries: it stays bounded and keeps answering right */
        for (int i = 0; i < 100; i++) {
            json_object *ci = claims(now + i, "user");
            char *ti = sh_jwt_sign(a, "k1", sk, ci);
            json_object_put(ci);
            CHECK(sh_jwt_verify_cached(&ac, ti, now, a, &q, &why, &hit) == 0 && q.user_id == 42 && !q.is_admin);
        }
        /* new keys (a rotation): the cache starts empty */
        sh_auth_configure(&ac);
        CHECK(sh_jwt_verify_cached(&ac, tok, now, a, &q, &why, &hit) == 0 && !hit);
        ac.nkeys = 0; /* the key retired: its tokens no longer verify, cached or not */
        sh_auth_configure(&ac);
        CHECK(sh_jwt_verify_cached(&ac, tok, now, a, &q, &why, &hit) == -1 && !hit);
        ac.nkeys = 1;
        ac.token_cache_entries = 0;
        sh_auth_configure(&ac);
        CHECK(sh_jwt_verify_cached(&ac, tok, now, a, &q, &why, &hit) == 0 && !hit);
        CHECK(sh_jwt_verify_cached(&ac, tok, now, a, &q, &why, &hit) == 0 && !hit);
    }

    /* base64url round trip */
    unsigned char bin[8] = {0xfb, 0xff, 0x00, 1, 2, 3, 4, 5}, back[8];
    char *enc = sh_b64url_encode(a, bin, sizeof(bin));
    CHECK(strchr(enc, '+') == NULL && strchr(enc, '/') == NULL && strchr(enc, '=') == NULL);
    CHECK(sh_b64url_decode(back, sizeof(back), enc, strlen(enc)) == 8 && memcmp(bin, back, 8) == 0);
    CHECK(sh_b64url_decode(back, 4, enc, strlen(enc)) == -1);
    sh_arena_destroy(a);
    TEST_DONE();
}
