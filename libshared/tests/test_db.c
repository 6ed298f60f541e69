/* test_db.c: what of sh_db needs no server: PL_DB_HOSTS lists (entries,
 * ports, separators, refusals) and the settings' cross-checks. */
#include "sh_db.h"
#include "sh_test.h"

static void test_hosts(void)
{
    sh_db_host h[SH_DB_MAX_HOSTS];
    char err[256];
    CHECK(sh_db_hosts_parse("db1 db2:3307,10.0.0.3", 3306, h, SH_DB_MAX_HOSTS, err, sizeof(err)) == 3);
    CHECK_STR(h[0].host, "db1");
    CHECK(h[0].port == 3306);
    CHECK_STR(h[1].host, "db2");
    CHECK(h[1].port == 3307);
    CHECK_STR(h[2].host, "10.0.0.3");
    CHECK(h[2].port == 3306);
    CHECK(sh_db_hosts_parse("  ,[::1]:3308\tdb-x.example_1 ", 3306, h, SH_DB_MAX_HOSTS, err, sizeof(err)) == 2);
    CHECK_STR(h[0].host, "::1");
    CHECK(h[0].port == 3308);
    CHECK_STR(h[1].host, "db-x.example_1");
    CHECK(sh_db_hosts_parse("[fe80::1]", 3306, h, SH_DB_MAX_HOSTS, err, sizeof(err)) == 1);
    CHECK(h[0].port == 3306);

    const char *bad[] = {"",      " , ",  "db1:", "db1:0",  "db1:65536",  "db1:33a",
                         ":3306", "db;1", "[::1", "[::1]x", "db1:123456", "a/b"};
    for (size_t i = 0; i < SH_ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        CHECK(sh_db_hosts_parse(bad[i], 3306, h, SH_DB_MAX_HOSTS, err, sizeof(err)) == -1);
        CHECK(strstr(err, "PL_DB_HOSTS") != NULL);
    }
    CHECK(sh_db_hosts_parse("a b c", 3306, h, 2, err, sizeof(err)) == -1);
    CHECK(strstr(err, "more than 2") != NULL);
}

static void test_config_check(void)
{
    char err[256];
    sh_db_config c = {.host = "127.0.0.1", .port = 3306};
    CHECK(sh_db_config_check(&c, err, sizeof(err)) == 0);
    c.hosts = "db1 db2 db3";
    CHECK(sh_db_config_check(&c, err, sizeof(err)) == 0);
    c.socket = "/run/mysqld.sock";
    CHECK(sh_db_config_check(&c, err, sizeof(err)) == -1);
    CHECK(strstr(err, "exclude each other") != NULL);
    c.socket = NULL;
    c.hosts = "db1:x";
    CHECK(sh_db_config_check(&c, err, sizeof(err)) == -1);
}

int main(void)
{
    test_hosts();
    test_config_check();
    TEST_DONE();
}
