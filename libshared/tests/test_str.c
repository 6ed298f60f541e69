/* test_str.c: UTF-8 validation, percent-decoding, JSON escaping, integers. */
#include "sh_str.h"
#include "sh_test.h"

#include <stdint.h>

int main(void)
{
    CHECK(sh_utf8_valid("plain ascii", 11));
    CHECK(sh_utf8_valid("caf\xc3\xa9", 5));
    CHECK(sh_utf8_valid("\xf0\x9f\x98\x80", 4)); /* emoji */
    CHECK(!sh_utf8_valid("\xc3", 1));            /* truncated */
    CHECK(!sh_utf8_valid("\xc0\xaf", 2));        /* overlong '/' */
    char scrub[] = "caf\xc3\xa9 \xff/\xc0\xaf";
    sh_utf8_scrub(scrub, strlen(scrub));
    CHECK_STR(scrub, "caf?? ?/??"); /* invalid anywhere: every non-ASCII byte goes */
    char keep[] = "caf\xc3\xa9";
    sh_utf8_scrub(keep, strlen(keep));
    CHECK_STR(keep, "caf\xc3\xa9");
    CHECK(!sh_utf8_valid("\xe0\x80\xaf", 3));     /* overlong */
    CHECK(!sh_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    CHECK(!sh_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    CHECK(!sh_utf8_valid("\xff", 1));
    CHECK(!sh_utf8_valid("a\x80", 2));
    CHECK(sh_utf8_length("caf\xc3\xa9", 5) == 4);

    char out[64];
    CHECK(sh_percent_decode(out, "a%20b+c", 7, true) == 5);
    CHECK_STR(out, "a b c");
    CHECK(sh_percent_decode(out, "a+b", 3, false) == 3);
    CHECK_STR(out, "a+b");
    CHECK(sh_percent_decode(out, "%zz", 3, true) == -1);
    CHECK(sh_percent_decode(out, "%2", 2, true) == -1);
    CHECK(sh_percent_decode(out, "%", 1, true) == -1);
    CHECK(sh_percent_decode(out, "%00x", 4, true) == 2);

    CHECK(sh_json_escape(out, sizeof(out), "a\"b\\c\n\x01", 7) == strlen("a\\\"b\\\\c\\n\\u0001"));
    CHECK_STR(out, "a\\\"b\\\\c\\n\\u0001");
    char tiny[4];
    CHECK(sh_json_escape(tiny, sizeof(tiny), "abcdef", 6) == 6);
    CHECK(strlen(tiny) == 3);

    int64_t v;
    CHECK(sh_parse_int64("42", 2, 0, 100, &v) == 0 && v == 42);
    CHECK(sh_parse_int64("-7", 2, -10, 10, &v) == 0 && v == -7);
    CHECK(sh_parse_int64("9223372036854775807", 19, INT64_MIN, INT64_MAX, &v) == 0 && v == INT64_MAX);
    CHECK(sh_parse_int64("9223372036854775808", 19, INT64_MIN, INT64_MAX, &v) == -1);
    CHECK(sh_parse_int64("-9223372036854775808", 20, INT64_MIN, INT64_MAX, &v) == 0 && v == INT64_MIN);
    CHECK(sh_parse_int64("99999999999999999999", 20, INT64_MIN, INT64_MAX, &v) == -1);
    CHECK(sh_parse_int64("", 0, 0, 10, &v) == -1);
    CHECK(sh_parse_int64("-", 1, -10, 10, &v) == -1);
    CHECK(sh_parse_int64("+1", 2, 0, 10, &v) == -1);
    CHECK(sh_parse_int64("1 ", 2, 0, 10, &v) == -1);
    CHECK(sh_parse_int64("11", 2, 0, 10, &v) == -1);

    CHECK(sh_strcaseeq("Content-Type", "content-type"));
    CHECK(!sh_strcaseeq("abc", "abd"));
    CHECK(sh_ct_equal("abc", "abc", 3));
    CHECK(!sh_ct_equal("abc", "abd", 3));
    TEST_DONE();
}
