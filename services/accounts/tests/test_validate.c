/* test_validate.c: email normalization, password rules, LIKE escaping. */
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

    sh_arena *a = sh_arena_create(1024);
    CHECK_STR(acc_like_prefix(a, "a_b%c\\d"), "a\\_b\\%c\\\\d%");
    CHECK_STR(acc_like_prefix(a, ""), "%");
    sh_arena_destroy(a);
    TEST_DONE();
}
