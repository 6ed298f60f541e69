/* sh_ratelimit.h: rate limits a route declares, for requests from the public
 * listener (the internal one's callers are functions and operators), kept per
 * caller: the user of
 * a valid access token on an authenticated route (users behind one address do
 * not share a limit), else the client's address. The generic cell rate
 * algorithm (GCRA): `rate` requests per second on average, up to `burst` at
 * once. Every answer of a limited route carries the IETF RateLimit header
 * fields (draft-ietf-httpapi-ratelimit-headers: RateLimit-Policy: "name";q=
 * burst;w=seconds, RateLimit: "name";r=remaining;t=seconds), and a refusal is
 * 429 rate_limited with Retry-After, so a client can pace itself. The
 * counters live in a table shared by a pool's processes (mapped by the master
 * before it forks): each pool keeps its own, so N pools of a service let N
 * times the rate through. Layer 2 of libshared (ratelimit); see
 * docs/architecture.md. */
#ifndef SH_RATELIMIT_H
#define SH_RATELIMIT_H

#include "sh_req.h"

/* A route's limit is a struct sh_rate (sh_req.h). */

/* In the master, before the first fork: the table its processes share.
 * Without it (a command, a unit test) a process keeps a table of its own. */
int sh_rate_share(void);

/* Counts the request against the route's limit for `key` ("u7", "a10.0.0.5"):
 * 0 with the RateLimit headers added, or the status of the 429 it sent. */
int sh_rate_check_or_reply(sh_req *req, const sh_rate *rate, const char *key);

#endif
