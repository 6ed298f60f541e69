/* sh_json.h: JSON in and out through json-c, with the limits a server needs:
 * a nesting limit, strict syntax, valid UTF-8, nothing after the value.
 * Layer 0 of libshared (core); see docs/architecture.md. */
#ifndef SH_JSON_H
#define SH_JSON_H

#include "sh_core.h"

#include <json-c/json.h>

#define SH_JSON_DEFAULT_MAX_DEPTH 32

/* Parses data[0..len). Returns a new object (caller puts it), or NULL with *why set
 * to a short human reason ("nesting deeper than 32 levels", ...). */
json_object *sh_json_parse(const char *data, size_t len, int max_depth, const char **why);

/* Serializes compactly, without escaping '/'. The string belongs to `obj`. */
const char *sh_json_to_string(json_object *obj, size_t *len);

/* Typed getters on an object's member; NULL/false/fallback when absent or mistyped. */
const char *sh_json_get_str(json_object *obj, const char *key);
int64_t sh_json_get_int(json_object *obj, const char *key, int64_t fallback);

#endif
