/* sh_codec.h: byte encodings shared by tokens, cursors and stored hashes:
 * base64url without padding (RFC 4648 §5) and SHA-256 (FIPS 180-4) in lower-case
 * hex, and the API's pagination cursors. Pure functions over libsodium; results
 * live in the caller's arena.
 * Layer 0 of libshared (core); see docs/architecture.md. */
#ifndef SH_CODEC_H
#define SH_CODEC_H

#include "sh_arena.h"

#define SH_SHA256_HEX_LEN 64

/* base64url of data[0..len), no padding: a NUL-terminated string in the arena. */
char *sh_b64url_encode(sh_arena *a, const unsigned char *data, size_t len);
/* Decodes base64url s[0..len) into out (at most cap bytes). Returns the length
 * written, or -1 when s is not unpadded base64url or decodes to more than cap. */
long sh_b64url_decode(unsigned char *out, size_t cap, const char *s, size_t len);

/* SHA-256 of data[0..len) as 64 lower-case hex digits into out (at least
 * SH_SHA256_HEX_LEN + 1 bytes, NUL-terminated). Returns out. */
char *sh_sha256_hex_into(char out[SH_SHA256_HEX_LEN + 1], const void *data, size_t len);
/* The same, for a NUL-terminated string, as a new string in the arena. */
char *sh_sha256_hex(sh_arena *a, const char *s);

/* Pagination cursors, opaque to clients: the last id a page showed, as base64url
 * text. Encode returns an arena string; decode returns 0 with *last_id, or -1
 * for anything this API did not hand out. */
char *sh_cursor_encode(sh_arena *a, int64_t last_id);
int sh_cursor_decode(const char *cursor, int64_t *last_id);

#endif
