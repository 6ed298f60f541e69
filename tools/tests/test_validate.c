/* test_validate.c: what pl-migrate lets into SQL text, and migration file names. */
#include "../migrate.h"
#include "../../libshared/tests/sh_test.h"

/* A string of n copies of c (n < 300). */
static const char *repeat(char c, size_t n)
{
    static char buf[300];
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

int main(void)
{
    CHECK(mig_is_ident("accounts"));
    CHECK(mig_is_ident("a"));
    CHECK(mig_is_ident("pltest_0a1b2c3d"));
    CHECK(mig_is_ident(repeat('a', 32)));
    CHECK(!mig_is_ident(repeat('a', 33)));
    CHECK(!mig_is_ident(""));
    CHECK(!mig_is_ident("Accounts"));
    CHECK(!mig_is_ident("1abc"));
    CHECK(!mig_is_ident("_abc"));
    CHECK(!mig_is_ident("a-b"));
    CHECK(!mig_is_ident("a`b"));
    CHECK(!mig_is_ident("a'b"));
    CHECK(!mig_is_ident("a b"));
    CHECK(!mig_is_ident("a%"));
    CHECK(!mig_is_ident("caf\xc3\xa9"));

    CHECK(mig_is_password("Abcdefghijkl"));
    CHECK(mig_is_password("aZ09_-aZ09_-"));
    CHECK(mig_is_password(repeat('x', 128)));
    CHECK(!mig_is_password(repeat('x', 129)));
    CHECK(!mig_is_password("Abcdefghijk"));
    CHECK(!mig_is_password(""));
    CHECK(!mig_is_password("abcdefghijkl'"));
    CHECK(!mig_is_password("abcdefghijkl\\"));
    CHECK(!mig_is_password("abcdefghijkl "));
    CHECK(!mig_is_password("abcdefghijkl\n"));
    CHECK(!mig_is_password("abcdefghijkl%"));

    CHECK(mig_is_user_host("%"));
    CHECK(mig_is_user_host("localhost"));
    CHECK(mig_is_user_host("10.0.%"));
    CHECK(mig_is_user_host("10.0.0.0/255.255.255.0"));
    CHECK(mig_is_user_host("::1"));
    CHECK(mig_is_user_host("app-1.example_net"));
    CHECK(mig_is_user_host(repeat('h', 60)));
    CHECK(!mig_is_user_host(repeat('h', 61)));
    CHECK(!mig_is_user_host(""));
    CHECK(!mig_is_user_host("%'"));
    CHECK(!mig_is_user_host("a b"));
    CHECK(!mig_is_user_host("a@b"));
    CHECK(!mig_is_user_host("a`b"));

    CHECK(mig_file_version("001_init.sql") == 1);
    CHECK(mig_file_version("010_add-roles.sql") == 10);
    CHECK(mig_file_version("123456789_x.sql") == 123456789);
    CHECK(mig_file_version("0001_B.sql") == 1);
    CHECK(mig_file_version("001_a_b-c9.sql") == 1);
    CHECK(mig_file_version("01_x.sql") == -1);         /* too few digits */
    CHECK(mig_file_version("1234567890_x.sql") == -1); /* too many */
    CHECK(mig_file_version("001_.sql") == -1);         /* no name */
    CHECK(mig_file_version("001__x.sql") == -1);       /* the name starts with a letter or digit */
    CHECK(mig_file_version("001_-x.sql") == -1);
    CHECK(mig_file_version("001x.sql") == -1);
    CHECK(mig_file_version("001-x.sql") == -1);
    CHECK(mig_file_version("001_a.SQL") == -1);
    CHECK(mig_file_version("001_a.b.sql") == -1);
    CHECK(mig_file_version("001_a b.sql") == -1);
    CHECK(mig_file_version("001_a.sql~") == -1);
    CHECK(mig_file_version("_001_a.sql") == -1);
    CHECK(mig_file_version(".sql") == -1);
    CHECK(mig_file_version("") == -1);
    char long_name[300];
    strcpy(long_name, "001_");
    strcat(long_name, repeat('a', 247)); /* 4 + 247 + 4 = 255 bytes */
    strcat(long_name, ".sql");
    CHECK(mig_file_version(long_name) == 1);
    strcpy(long_name, "001_");
    strcat(long_name, repeat('a', 248));
    strcat(long_name, ".sql");
    CHECK(mig_file_version(long_name) == -1);

    CHECK(mig_is_ignored(".hidden"));
    CHECK(mig_is_ignored(".001_a.sql.swp"));
    CHECK(mig_is_ignored("README.md"));
    CHECK(mig_is_ignored(".md"));
    CHECK(!mig_is_ignored("001_a.sql"));
    CHECK(!mig_is_ignored("notes.txt"));
    CHECK(!mig_is_ignored("md"));
    TEST_DONE();
}
