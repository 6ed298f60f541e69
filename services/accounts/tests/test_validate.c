/* test_validate.c: email normalization, password rules, LIKE escaping, coarse
 * addresses, user agents, recovery and TOTP codes as typed. */
#include "../accounts.h"
#include "../../../libshared/tests/sh_test.h"

acc_config acc_conf;
int acc_stmt[ACC_STMT_COUNT];

static int email_ok(const char *in, const char *want)
{
    char out[ACC_EMAIL_MAX + 1];
    if (acc_email_normalize(in, strlen(in), out) != 0)
        return want == NULL;
    return want != NULL && strcmp(out, want) == 0;
}

int main(void)
{
    CHECK(email_ok("Alice@Example.COM", "alice@example.com"));
    CHECK(email_ok("a.b+tag@sub.example.org", "a.b+tag@sub.example.org"));
    CHECK(email_ok("o'hara@example.ie", "o'hara@example.ie"));
    CHECK(email_ok("no-at-sign.example.com", NULL));
    CHECK(email_ok("two@@example.com", NULL));
    CHECK(email_ok("a@b@example.com", NULL));
    CHECK(email_ok("@example.com", NULL));
    CHECK(email_ok("alice@", NULL));
    CHECK(email_ok("alice@localhost", NULL));
    CHECK(email_ok("alice@-bad.com", NULL));
    CHECK(email_ok("alice@bad-.com", NULL));
    CHECK(email_ok("alice@exa mple.com", NULL));
    CHECK(email_ok(".alice@example.com", NULL));
    CHECK(email_ok("alice.@example.com", NULL));
    CHECK(email_ok("al..ice@example.com", NULL));
    CHECK(email_ok("al\"ice@example.com", NULL));
    CHECK(email_ok("al;ice@example.com", NULL));
    CHECK(email_ok("caf\xc3\xa9@example.com", NULL));
    CHECK(email_ok("alice@example..com", NULL));
    char long_local[80];
    memset(long_local, 'a', 65);
    strcpy(long_local + 65, "@example.com");
    CHECK(email_ok(long_local, NULL));

    CHECK(acc_password_problem("short", 5, "a@example.com") != NULL);
    CHECK(acc_password_problem("long enough", 11, "a@example.com") == NULL);
    CHECK(acc_password_problem("A@Example.com", 13, "a@example.com") != NULL);
    char big[200];
    memset(big, 'x', sizeof(big));
    CHECK(acc_password_problem(big, 129, NULL) != NULL);
    CHECK(acc_password_problem(big, 128, NULL) == NULL);

    char net[ACC_ADDRESS_MAX + 1];
    acc_address_coarse("203.0.113.77", net);
    CHECK_STR(net, "203.0.113.0/24");
    acc_address_coarse("::ffff:198.51.100.9", net);
    CHECK_STR(net, "198.51.100.0/24");
    acc_address_coarse("2001:db8:1234:5678::1", net);
    CHECK_STR(net, "2001:db8:1234::/48");
    acc_address_coarse("::1", net);
    CHECK_STR(net, "::/48");
    acc_address_coarse("unix:", net);
    CHECK_STR(net, "");
    acc_address_coarse(NULL, net);
    CHECK_STR(net, "");

    char ua[ACC_USER_AGENT_MAX + 1];
    acc_user_agent_clean("Mozilla/5.0 (X11)", ua);
    CHECK_STR(ua, "Mozilla/5.0 (X11)");
    acc_user_agent_clean("caf\xc3\xa9\r\nX-Evil: 1", ua);
    CHECK_STR(ua, "caf????X-Evil: 1");
    acc_user_agent_clean(NULL, ua);
    CHECK_STR(ua, "");
    char long_ua[400];
    memset(long_ua, 'u', sizeof(long_ua) - 1);
    long_ua[sizeof(long_ua) - 1] = '\0';
    acc_user_agent_clean(long_ua, ua);
    CHECK(strlen(ua) == ACC_USER_AGENT_MAX);

    char rc[ACC_RECOVERY_CODE_LEN + 1];
    CHECK(acc_recovery_code_normalize("ABCD-efgh-ijkl-mn27", rc) == 0);
    CHECK_STR(rc, "abcdefghijklmn27");
    CHECK(acc_recovery_code_normalize(" abcd efgh ijkl mn27 ", rc) == 0);
    CHECK(acc_recovery_code_normalize("abcd-efgh-ijkl-mn2", rc) == -1);
    CHECK(acc_recovery_code_normalize("abcd-efgh-ijkl-mn278", rc) == -1);
    CHECK(acc_recovery_code_normalize("abcd-efgh-ijkl-mn18", rc) == -1); /* 1 and 8 are not base32 */
    CHECK(acc_recovery_code_normalize("", rc) == -1);

    char totp[ACC_TOTP_DIGITS + 1];
    CHECK(acc_totp_code_normalize("123 456", totp) == 0);
    CHECK_STR(totp, "123456");
    CHECK(acc_totp_code_normalize("12345", totp) == -1);
    CHECK(acc_totp_code_normalize("1234567", totp) == -1);
    CHECK(acc_totp_code_normalize("12345a", totp) == -1);

    sh_arena *a = sh_arena_create(1024);
    CHECK_STR(acc_like_prefix(a, "a_b%c\\d"), "a\\_b\\%c\\\\d%");
    CHECK_STR(acc_like_prefix(a, ""), "%");
    sh_arena_destroy(a);
    TEST_DONE();
}
