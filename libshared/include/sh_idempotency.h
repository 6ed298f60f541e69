/* sh_idempotency.h: the Idempotency-Key request header
 * (draft-ietf-httpapi-idempotency-key-header). A client that may retry a POST
 * sends a unique key with it (a UUID); a retry with the same key gets the
 * first attempt's answer again, marked Idempotent-Replayed: true, and writes
 * nothing. On a route flagged SH_IDEMPOTENT the dispatcher runs the handler
 * inside a transaction that first claims the key (a row of the service's
 * idempotency_keys table) and at the end stores the answer in that row: the
 * handler's writes and the record of its answer commit together, or neither
 * does, and the answer is sent only after the COMMIT. The handler's own
 * transactions nest in it (sh_db.h). An answer of 500 or more is not kept:
 * its writes are rolled back and a retry runs again.
 *
 * Refusals: 400 invalid_header (a key that is not 1 to 255 visible ASCII
 * characters, bare or as a quoted string), 409 idempotency_key_in_use (the
 * first request with the key is still running; Retry-After: 1), 422
 * idempotency_key_reused (the key came with another method, path, query or
 * body). A key is kept PL_IDEMPOTENCY_TTL_S seconds; keys are per user.
 * Layer 3 of libshared (idempotency); see docs/architecture.md. */
#ifndef SH_IDEMPOTENCY_H
#define SH_IDEMPOTENCY_H

#include "sh_config.h"
#include "sh_db.h"
#include "sh_req.h"

#define SH_IDEM_KEY_MAX 255

typedef struct {
    int64_t ttl_s; /* how long a key and its answer are kept */
} sh_idem_config;

/* PL_IDEMPOTENCY_TTL_S over an sh_idem_config. */
extern const sh_conf_row sh_idem_conf_rows[];

/* Installs the settings (copied). The defaults hold until then. */
void sh_idem_configure(const sh_idem_config *ic);

/* In each worker of a service with an SH_IDEMPOTENT route: registers the
 * statements on the worker's handle. 0, or -1. */
int sh_idem_register(sh_db *db);

/* Runs the matched route's handler (req->route, input already checked):
 * under the request's Idempotency-Key when the route is SH_IDEMPOTENT and the
 * request has one, else directly. Returns the status answered (a reply is
 * sent unless the handler sent none). */
int sh_idem_run(sh_req *req);

/* The key of an Idempotency-Key header value: a bare key, or an RFC 8941
 * sf-string ("..."); 1 to SH_IDEM_KEY_MAX characters of 0x21-0x7E (visible
 * ASCII: no space), no '"' or '\\'. Returns it in req's arena, or NULL when malformed. Pure. */
const char *sh_idem_parse_key(sh_req *req, const char *header);

#endif
