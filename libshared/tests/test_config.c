/* test_config.c: env rows, defaults, bounds, enums, secrets from files. */
#include "sh_config.h"
#include "sh_test.h"

#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct {
    int64_t workers;
    bool verbose;
    int mode;
    const char *name;
    int64_t perms;
    const char *password;
    int64_t rate_us;
} conf_t;

static const char *const modes[] = {"a", "b", NULL};
static const sh_conf_row rows[] = {
    {"T_WORKERS", SH_CONF_INT, offsetof(conf_t, workers), "4", 1, 16, NULL, 0, "workers"},
    {"T_VERBOSE", SH_CONF_BOOL, offsetof(conf_t, verbose), "no", 0, 0, NULL, 0, "verbose"},
    {"T_MODE", SH_CONF_ENUM, offsetof(conf_t, mode), "a", 0, 0, modes, 0, "mode"},
    {"T_NAME", SH_CONF_STRING, offsetof(conf_t, name), NULL, 0, 0, NULL, SH_CONF_REQUIRED, "name"},
    {"T_PERMS", SH_CONF_OCTAL, offsetof(conf_t, perms), "0660", 0, 0, NULL, 0, "perms"},
    {"T_PASSWORD", SH_CONF_SECRET, offsetof(conf_t, password), NULL, 0, 0, NULL, 0, "password"},
    {"T_RATE", SH_CONF_RATE, offsetof(conf_t, rate_us), "10r/s", 1, 1000, NULL, 0, "rate"},
    SH_CONF_END,
};

int main(void)
{
    conf_t c;
    char err[256];
    memset(&c, 0, sizeof(c));
    unsetenv("T_NAME");
    CHECK(sh_config_load(rows, &c, err, sizeof(err)) == -1);
    CHECK(strstr(err, "T_NAME is required") != NULL);

    setenv("T_NAME", "svc", 1);
    CHECK(sh_config_load(rows, &c, err, sizeof(err)) == 0);
    CHECK(c.workers == 4 && !c.verbose && c.mode == 0 && c.perms == 0660);
    CHECK_STR(c.name, "svc");
    CHECK(c.password == NULL);

    setenv("T_WORKERS", "17", 1);
    CHECK(sh_config_load(rows, &c, err, sizeof(err)) == -1);
    CHECK(strstr(err, "T_WORKERS=17") != NULL);
    setenv("T_WORKERS", "12", 1);
    setenv("T_VERBOSE", "on", 1);
    setenv("T_MODE", "b", 1);
    CHECK(sh_config_load(rows, &c, err, sizeof(err)) == 0);
    CHECK(c.workers == 12 && c.verbose && c.mode == 1);
    setenv("T_MODE", "c", 1);
    CHECK(sh_config_load(rows, &c, err, sizeof(err)) == -1);
    CHECK(strstr(err, "expected one of a, b") != NULL);
    setenv("T_MODE", "", 1); /* empty means unset: the default */
    CHECK(sh_config_load(rows, &c, err, sizeof(err)) == 0 && c.mode == 0);
    setenv("T_PERMS", "0999", 1);
    CHECK(sh_config_load(rows, &c, err, sizeof(err)) == -1);
    unsetenv("T_PERMS");

    char path[] = "/tmp/pl-test-secret-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, "s3cret\n", 7) == 7);
    close(fd);
    setenv("T_PASSWORD_FILE", path, 1);
    CHECK(sh_config_load(rows, &c, err, sizeof(err)) == 0);
    CHECK_STR(c.password, "s3cret");
    free((char *)c.password);
    setenv("T_PASSWORD", "direct", 1); /* the variable wins over the file */
    CHECK(sh_config_load(rows, &c, err, sizeof(err)) == 0);
    CHECK_STR(c.password, "direct");
    unsetenv("T_PASSWORD");
    setenv("T_PASSWORD_FILE", "/nonexistent/secret", 1);
    CHECK(sh_config_load(rows, &c, err, sizeof(err)) == -1);
    setenv("T_PASSWORD_FILE", "/tmp", 1); /* a directory is no secret file */
    CHECK(sh_config_load(rows, &c, err, sizeof(err)) == -1 && strstr(err, "not a regular file") != NULL);
    unlink(path);
    unsetenv("T_PASSWORD_FILE");

    /* rates: the microseconds between two requests */
    CHECK(sh_config_load(rows, &c, err, sizeof(err)) == 0 && c.rate_us == 100000);
    setenv("T_RATE", "30 r/m", 1);
    CHECK(sh_config_load(rows, &c, err, sizeof(err)) == 0 && c.rate_us == 2000000);
    setenv("T_RATE", "1000r/s", 1);
    CHECK(sh_config_load(rows, &c, err, sizeof(err)) == 0 && c.rate_us == 1000);
    const char *bad_rates[] = {"1001r/s", "0r/s", "-5r/s", "10", "10r/h", "r/s", "10r/s ", "99999999999999999999r/s"};
    for (size_t i = 0; i < sizeof(bad_rates) / sizeof(bad_rates[0]); i++) {
        setenv("T_RATE", bad_rates[i], 1);
        CHECK(sh_config_load(rows, &c, err, sizeof(err)) == -1);
        CHECK(strstr(err, "expected a rate like 10r/s") != NULL);
    }
    unsetenv("T_RATE");
    TEST_DONE();
}
