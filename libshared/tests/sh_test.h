/* sh_test.h: the few macros the unit tests need. A failed check prints where
 * and continues; the test exits non-zero if any check failed. */
#ifndef SH_TEST_H
#define SH_TEST_H

#include <stdio.h>
#include <string.h>

static int sh_test_failures;
static int sh_test_checks;

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        sh_test_checks++;                                                                                              \
        if (!(cond)) {                                                                                                 \
            sh_test_failures++;                                                                                        \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                                   \
        }                                                                                                              \
    } while (0)

#define CHECK_STR(a, b)                                                                                                \
    do {                                                                                                               \
        const char *sh_a = (a), *sh_b = (b);                                                                           \
        sh_test_checks++;                                                                                              \
        if (sh_a == NULL || sh_b == NULL || strcmp(sh_a, sh_b) != 0) {                                                 \
            sh_test_failures++;                                                                                        \
            fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, sh_a ? sh_a : "(null)",                   \
                    sh_b ? sh_b : "(null)");                                                                           \
        }                                                                                                              \
    } while (0)

#define TEST_DONE()                                                                                                    \
    do {                                                                                                               \
        printf("%d checks, %d failed\n", sh_test_checks, sh_test_failures);                                            \
        return sh_test_failures == 0 ? 0 : 1;                                                                          \
    } while (0)

#endif
