/* test_totp.c: the TOTP generator against RFC 6238's test vectors (appendix
 * B: HMAC-SHA1, -SHA256 and -SHA512, 8 digits, 30-second steps), and the
 * validator's window, its constant-time walk and its refusals. */
#include "../accounts.h"
#include "../../../libshared/tests/sh_test.h"

#include <liboath/oath.h>

acc_config acc_conf;
int acc_stmt[ACC_STMT_COUNT];

/* RFC 6238 appendix B: time, then the expected code for SHA1, SHA256, SHA512. */
static const struct {
    int64_t t;
    const char *sha1, *sha256, *sha512;
} vectors[] = {
    {59, "94287082", "46119246", "90693936"},         {1111111109, "07081804", "68084774", "25091201"},
    {1111111111, "14050471", "67062674", "99943326"}, {1234567890, "89005924", "91819424", "93441116"},
    {2000000000, "69279037", "90698825", "38618901"}, {20000000000, "65353130", "77737706", "47863826"},
};

int main(void)
{
    CHECK(acc_totp_setup() == 0);
    /* the seeds: ASCII "1234567890" repeated to 20, 32 and 64 bytes */
    const unsigned char *k1 = (const unsigned char *)"12345678901234567890";
    const unsigned char *k256 = (const unsigned char *)"12345678901234567890123456789012";
    const unsigned char *k512 =
        (const unsigned char *)"1234567890123456789012345678901234567890123456789012345678901234";
    for (size_t i = 0; i < SH_ARRAY_LEN(vectors); i++) {
        char out[9];
        CHECK(acc_totp_code(k1, 20, vectors[i].t, 8, 0, out) == 0);
        CHECK_STR(out, vectors[i].sha1);
        CHECK(acc_totp_code(k256, 32, vectors[i].t, 8, OATH_TOTP_HMAC_SHA256, out) == 0);
        CHECK_STR(out, vectors[i].sha256);
        CHECK(acc_totp_code(k512, 64, vectors[i].t, 8, OATH_TOTP_HMAC_SHA512, out) == 0);
        CHECK_STR(out, vectors[i].sha512);
    }

    /* the 6-digit code is the last six of the eight (RFC 4226's truncation mod 10^6) */
    char six[7];
    CHECK(acc_totp_code(k1, 20, 59, 6, 0, six) == 0);
    CHECK_STR(six, "287082");
    CHECK(acc_totp_code(k1, 20, -1, 6, 0, six) == -1);
    CHECK(acc_totp_code(k1, 20, 59, 5, 0, six) == -1);

    /* the validator: the step of now, one either side, nothing further */
    int64_t now = 1111111111, step = now / 30;
    char code[7];
    CHECK(acc_totp_code(k1, 20, now, 6, 0, code) == 0);
    CHECK(acc_totp_match(k1, 20, now, code) == step);
    CHECK(acc_totp_match(k1, 20, now + 30, code) == step);
    CHECK(acc_totp_match(k1, 20, now - 30, code) == step);
    CHECK(acc_totp_match(k1, 20, now + 60, code) == -1);
    CHECK(acc_totp_match(k1, 20, now - 60, code) == -1);
    CHECK(acc_totp_match(k1, 20, now, "000000") == -1 || strcmp(code, "000000") == 0);
    CHECK(acc_totp_match(k1, 20, now, "12345") == -1);
    CHECK(acc_totp_match(k1, 20, now, "1234567") == -1);
    CHECK(acc_totp_match(k1, 20, now, "") == -1);
    /* another key's code does not pass */
    CHECK(acc_totp_match((const unsigned char *)"abcdefghijabcdefghij", 20, now, code) != step);

    /* secrets: 20 random bytes as 32 base32 characters, that decode back */
    sh_arena *a = sh_arena_create(4096);
    char *s1 = acc_totp_secret_new(a), *s2 = acc_totp_secret_new(a);
    CHECK(s1 != NULL && strlen(s1) == 32 && strcmp(s1, s2) != 0);
    unsigned char key[64];
    CHECK(acc_totp_secret_decode(s1, key, sizeof(key)) == 20);
    CHECK(acc_totp_secret_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", key, sizeof(key)) == 20);
    CHECK(memcmp(key, k1, 20) == 0);
    CHECK(acc_totp_secret_decode("not base32!", key, sizeof(key)) == -1);
    CHECK(acc_totp_secret_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", key, 10) == -1);

    /* the otpauth URI, every part percent-encoded */
    CHECK_STR(acc_totp_uri(a, "Pilot light", "a+b@example.com", "GEZDGNBVGY3TQOJQ"),
              "otpauth://totp/Pilot%20light:a%2Bb%40example.com?secret=GEZDGNBVGY3TQOJQ&issuer=Pilot%20light"
              "&algorithm=SHA1&digits=6&period=30");
    sh_arena_destroy(a);
    TEST_DONE();
}
