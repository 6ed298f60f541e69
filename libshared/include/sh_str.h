/* sh_str.h: byte-string helpers shared by the parsers: strict UTF-8 validation,
 * percent-decoding, JSON string escaping, safe integer parsing. Pure functions.
 * Layer 0 of libshared (core); see docs/architecture.md. */
#ifndef SH_STR_H
#define SH_STR_H

#include "sh_core.h"

/* True when s[0..len) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
bool sh_utf8_valid(const char *s, size_t len);
/* Number of code points in valid UTF-8 s[0..len). */
size_t sh_utf8_length(const char *s, size_t len);

/* Makes s[0..len) valid UTF-8 in place: when it is not, every byte >= 0x80
 * becomes '?' (hostile bytes echoed in a message must not break the JSON). */
void sh_utf8_scrub(char *s, size_t len);

/* Decodes %XX escapes (and '+' as space when `plus_is_space`) from src[0..len) into
 * dst (at least len+1 bytes). Returns the decoded length, or -1 on a malformed escape. */
long sh_percent_decode(char *dst, const char *src, size_t len, bool plus_is_space);

/* Writes s[0..len) as a JSON string body (no quotes) into out[0..cap), always
 * NUL-terminating; control characters become \u00XX. Returns the bytes it needed
 * (like snprintf): a result >= cap means the output was cut. */
size_t sh_json_escape(char *out, size_t cap, const char *s, size_t len);

/* Parses a whole decimal integer (optional leading '-', no '+', no spaces) within
 * [min, max]. Returns 0 and sets *out, or -1. */
int sh_parse_int64(const char *s, size_t len, int64_t min, int64_t max, int64_t *out);

/* Case-insensitive ASCII comparison of the first n bytes, or of whole strings. */
bool sh_strcaseeq(const char *a, const char *b);

/* Constant-time comparison of two equal-length byte strings. */
bool sh_ct_equal(const void *a, const void *b, size_t n);

/* Finds query parameter `name` in a raw query string ("a=1&b=%20"): 1 with
 * *val and *len set to its raw, still percent-encoded value (pointing into query;
 * "" for a bare "name" or "name="), 0 when absent, -1 when it appears more
 * than once. */
int sh_query_find(const char *query, const char *name, const char **val, size_t *len);

#endif
