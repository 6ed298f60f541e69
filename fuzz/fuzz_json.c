/* fuzz_json.c: libFuzzer target for sh_json_parse (libshared/src/json.c), the
 * parser of every request body: strict grammar, nesting limit, UTF-8, NUL,
 * duplicate keys. Besides crashes and sanitizer reports it checks that what
 * the parser accepts serializes to JSON it accepts again, to the same text
 * (a body a service echoes back must stay valid JSON), and runs the body
 * field rules over the accepted object's members. Input: the body itself. */
#include "fuzz.h"
#include "sh_router.h"
#include "sh_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const choices[] = {"planning", "active", "on_hold", "done", NULL};
static const sh_field rules[] = {
    SH_FIELD_STR("name", 0, 1, 200), SH_FIELD_INT("n", SH_NULLABLE, -1000, 1000), SH_FIELD_ID("id", 0),
    SH_FIELD_BOOL("b", 0),           SH_FIELD_ENUM("state", 0, choices),          {"obj", SH_T_OBJECT, 0, 0, 0, NULL},
};

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    const char *why = NULL;
    json_object *o = sh_json_parse((const char *)data, size, SH_JSON_DEFAULT_MAX_DEPTH, &why);
    if (o == NULL) {
        if (why == NULL || why[0] == '\0')
            abort(); /* every refusal has a reason for the 400 */
        return 0;
    }
    size_t len = 0;
    const char *text = sh_json_to_string(o, &len);
    char *copy = strndup(text, len);
    if (copy == NULL)
        abort();
    const char *why2 = NULL;
    json_object *again = sh_json_parse(copy, len, SH_JSON_DEFAULT_MAX_DEPTH + 1, &why2);
    if (again == NULL) {
        fprintf(stderr, "accepted JSON serialized to text it refuses (%s): %s\n", why2, copy);
        abort();
    }
    size_t len2 = 0;
    const char *text2 = sh_json_to_string(again, &len2);
    if (len2 != len || memcmp(text2, copy, len) != 0) {
        fprintf(stderr, "serialization is not stable: %s -> %s\n", copy, text2);
        abort();
    }
    if (json_object_is_type(o, json_type_object)) {
        sh_arena *a = sh_arena_create(4096);
        for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
            json_object *v = NULL;
            if (!json_object_object_get_ex(o, rules[i].name, &v))
                continue;
            sh_value out;
            const char *rwhy = NULL;
            if (sh_rule_check_json(&rules[i], v, a, &out, &rwhy) != 0 && rwhy == NULL)
                abort();
        }
        sh_arena_destroy(a);
    }
    json_object_put(again);
    free(copy);
    json_object_put(o);
    return 0;
}
