/* sh_budget.h: the invocation budget no call loop can escape: depth and budget
 * bookkeeping of a call tree, with no I/O.
 *
 * Every call tree carries X-Invoke-Depth (hops from the client's request) and
 * X-Invoke-Budget (invocations the rest of the tree may still make). A client's
 * request starts at depth 0 with the configured budget. An invocation costs 1;
 * the caller hands the callee what it has left minus that 1, and takes off
 * what the callee reports it spent (X-Invoke-Spent, written by sh_reply_raw
 * from req->invoke_spent), so the whole tree never makes more invocations
 * than the budget, however it fans out. The headers are trusted only on
 * requests from the internal listener. A refusal is 508 (RFC 5842's Loop
 * Detected), counted in the scoreboard and logged.
 * Layer 2 of libshared (budget); see docs/architecture.md. */
#ifndef SH_BUDGET_H
#define SH_BUDGET_H

#include "sh_config.h"
#include "sh_req.h"

typedef struct {
    int64_t max_depth; /* deepest call chain */
    int64_t budget;    /* invocations one client request's tree may make */
} sh_budget_config;

/* PL_INVOKE_MAX_DEPTH and PL_INVOKE_BUDGET over an sh_budget_config. */
extern const sh_conf_row sh_budget_conf_rows[];

/* Installs the limits (copied). The defaults hold until then. */
void sh_budget_configure(const sh_budget_config *bc);

/* Dispatcher check: sets req's depth, budget and spent from the headers of an
 * internal request (a client's starts afresh); answers 400 invalid_request for
 * malformed headers and 508 invocation_depth_exceeded past the depth limit. */
int sh_budget_begin_or_reply(sh_req *req);

/* Before an invocation: 0 with *child_budget (what the callee may spend), or -1
 * when the call may not be made, with *code ("invocation_budget_exceeded" or
 * "invocation_depth_exceeded") and *why (a human sentence in req's arena). */
int sh_budget_reserve(sh_req *req, int64_t *child_budget, const char **code, const char **why);

/* After an invocation that was made: books 1 for the call plus what its subtree
 * reported spending (all it was given when it reported nothing, or more). */
void sh_budget_account(sh_req *req, int64_t child_budget, bool has_spent, int64_t spent);

#endif
