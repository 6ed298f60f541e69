/* test_json.c: strict parsing with nesting and UTF-8 limits. */
#include "sh_json.h"
#include "sh_test.h"

#include <stdlib.h>

static json_object *parse(const char *s, const char **why) { return sh_json_parse(s, strlen(s), 8, why); }

int main(void)
{
    const char *why = NULL;
    json_object *o = parse("{\"a\": [1, 2, {\"b\": \"c\"}]}", &why);
    CHECK(o != NULL);
    json_object_put(o);

    CHECK(parse("", &why) == NULL);
    CHECK(parse("{", &why) == NULL);
    CHECK(parse("{\"a\":1}}", &why) == NULL);
    CHECK(parse("{\"a\":1} x", &why) == NULL);
    CHECK(parse("{'a':1}", &why) == NULL);
    CHECK(parse("{\"a\":1,}", &why) == NULL);
    CHECK(parse("[1,2,]", &why) == NULL);
    CHECK(parse("{\"a\":1,\"a\":2}", &why) == NULL);
    CHECK(why != NULL && strstr(why, "duplicate") != NULL);
    CHECK(parse("{\"a\":{\"b\":1,\"b\":1}}", &why) == NULL);
    CHECK(parse("[{\"x\":1},{\"x\":1,\"y\":{\"x\":2,\"x\":3}}]", &why) == NULL);
    o = parse("[{\"x\":1},{\"x\":1,\"y\":{\"x\":2}}]", &why);
    CHECK(o != NULL);
    json_object_put(o);
    CHECK(parse("{\"a\":01}", &why) == NULL);
    CHECK(parse("{\"a\":1.}", &why) == NULL);
    CHECK(parse("{\"a\":.5}", &why) == NULL);
    CHECK(parse("{\"a\":+1}", &why) == NULL);
    CHECK(parse("{\"a\":NaN}", &why) == NULL);
    CHECK(parse("{\"a\":\"\\x\"}", &why) == NULL);
    CHECK(parse("{\"a\":\"\\ud800\"}", &why) == NULL);
    CHECK(parse("{\"a\":\"tab\there\"}", &why) == NULL);
    o = parse("{\"a\":\"\\ud83d\\ude00\", \"b\": -0.5e+3, \"c\": [true, false, null]}", &why);
    CHECK(o != NULL);
    json_object_put(o);
    CHECK(parse("null", &why) == NULL);
    CHECK(why != NULL && strcmp(why, "the body is null") == 0);
    /* a bare number or literal is complete at the end of input */
    o = parse("123", &why);
    CHECK(o != NULL && json_object_get_int64(o) == 123);
    json_object_put(o);
    o = parse(" true ", &why);
    CHECK(o != NULL && json_object_is_type(o, json_type_boolean));
    json_object_put(o);
    o = parse("{\"a\":1}  \n", &why);
    CHECK(o != NULL);
    json_object_put(o);

    /* nesting */
    o = parse("[[[[[[[1]]]]]]]", &why); /* 7 levels */
    CHECK(o != NULL);
    json_object_put(o);
    CHECK(parse("[[[[[[[[[1]]]]]]]]]", &why) == NULL); /* 9 levels */
    CHECK(why != NULL && strstr(why, "nesting") != NULL);

    /* bytes */
    CHECK(sh_json_parse("{\"a\":\"\xff\"}", 9, 8, &why) == NULL);
    CHECK(sh_json_parse("{\"a\":\"\0\"}", 8, 8, &why) == NULL);
    o = parse("{\"a\":\"caf\xc3\xa9\"}", &why);
    CHECK(o != NULL);
    CHECK_STR(sh_json_get_str(o, "a"), "caf\xc3\xa9");
    json_object_put(o);

    /* escaped NUL is parsed; the field rules reject it later */
    o = parse("{\"a\":\"x\\u0000y\"}", &why);
    CHECK(o != NULL && json_object_get_string_len(json_object_object_get(o, "a")) == 3);
    json_object_put(o);

    /* output never escapes '/' */
    o = json_object_new_object();
    json_object_object_add(o, "url", json_object_new_string("/api/x"));
    CHECK_STR(sh_json_to_string(o, NULL), "{\"url\":\"/api/x\"}");
    CHECK(sh_json_get_int(o, "missing", -5) == -5);
    json_object_put(o);

    /* a huge, flat document is fine; a deep one is refused without recursion blowing up */
    size_t n = 200000;
    char *deep = malloc(2 * n + 1);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = '\0';
    CHECK(sh_json_parse(deep, 2 * n, 32, &why) == NULL);
    free(deep);
    TEST_DONE();
}
