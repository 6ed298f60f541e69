/* budget.c: invocation depth and budget bookkeeping (see sh_budget.h). */
#include "sh_budget.h"
#include "sh_log.h"
#include "sh_scoreboard.h"
#include "sh_str.h"

#include <stddef.h>
#include <string.h>

#define B(field) offsetof(sh_budget_config, field)
const sh_conf_row sh_budget_conf_rows[] = {
    {"PL_INVOKE_MAX_DEPTH", SH_CONF_INT, B(max_depth), "8", 1, 64, NULL, 0, "deepest call chain (508 beyond)"},
    {"PL_INVOKE_BUDGET", SH_CONF_INT, B(budget), "32", 0, 100000, NULL, 0,
     "invocations one client request's whole call tree may make (508 beyond)"},
    SH_CONF_END,
};
#undef B

static sh_budget_config sh_budget_cfg = {8, 32};

void sh_budget_configure(const sh_budget_config *bc) { sh_budget_cfg = *bc; }

/* Counts and logs a refusal, of this request (depth) or of a call it wanted to make. */
static void sh_budget_refused(sh_req *req, bool depth)
{
    sh_scoreboard *sb = sh_sb_current();
    if (sb != NULL)
        atomic_fetch_add(depth ? &sb->invoke_refused_depth : &sb->invoke_refused_budget, 1);
    sh_logline l;
    sh_log_begin(&l, SH_LOG_WARN, "invoke_refused");
    sh_log_str(&l, "request_id", req->request_id);
    sh_log_str(&l, "reason", depth ? "depth" : "budget");
    sh_log_int(&l, "depth", req->invoke_depth);
    sh_log_int(&l, "budget", req->invoke_budget);
    sh_log_str(&l, "handler", req->route ? req->route->name : "-");
    sh_log_end(&l);
}

/* 1 with *out when the header is there, 0 when absent, -1 when malformed. */
static int sh_budget_header(sh_req *req, const char *name, int64_t *out)
{
    const char *v = sh_req_header(req, name);
    if (v == NULL)
        return 0;
    return sh_parse_int64(v, strlen(v), 0, 1000000, out) == 0 ? 1 : -1;
}

int sh_budget_begin_or_reply(sh_req *req)
{
    req->invoke_depth = 0;
    req->invoke_budget = sh_budget_cfg.budget;
    req->invoke_spent = 0;
    if (!req->internal)
        return 0; /* a client's request: nginx strips the headers, and we ignore them */
    int64_t depth = 0, budget = 0;
    int d = sh_budget_header(req, "X-Invoke-Depth", &depth);
    int b = sh_budget_header(req, "X-Invoke-Budget", &budget);
    if (d < 0 || b < 0)
        return sh_reply_error(req, 400, "invalid_request",
                              "X-Invoke-Depth and X-Invoke-Budget must be small non-negative integers.");
    if (d > 0)
        req->invoke_depth = depth;
    if (b > 0)
        req->invoke_budget = budget < sh_budget_cfg.budget ? budget : sh_budget_cfg.budget;
    if (req->invoke_depth > sh_budget_cfg.max_depth) {
        sh_budget_refused(req, true);
        return sh_reply_error(req, 508, "invocation_depth_exceeded", "This call chain is deeper than %lld invocations.",
                              (long long)sh_budget_cfg.max_depth);
    }
    return 0;
}

int sh_budget_reserve(sh_req *req, int64_t *child_budget, const char **code, const char **why)
{
    if (req->invoke_budget <= 0) {
        sh_budget_refused(req, false);
        *code = "invocation_budget_exceeded";
        *why = sh_arena_sprintf(req->arena, "This call tree has used its budget of %lld invocations.",
                                (long long)sh_budget_cfg.budget);
        return -1;
    }
    if (req->invoke_depth + 1 > sh_budget_cfg.max_depth) {
        sh_budget_refused(req, true);
        *code = "invocation_depth_exceeded";
        *why = sh_arena_sprintf(req->arena, "This call chain is deeper than %lld invocations.",
                                (long long)sh_budget_cfg.max_depth);
        return -1;
    }
    *child_budget = req->invoke_budget - 1;
    return 0;
}

void sh_budget_account(sh_req *req, int64_t child_budget, bool has_spent, int64_t spent)
{
    if (!has_spent || spent > child_budget)
        spent = child_budget;
    req->invoke_budget -= 1 + spent;
    req->invoke_spent += 1 + spent;
    sh_scoreboard *sb = sh_sb_current();
    if (sb != NULL)
        atomic_fetch_add(&sb->invocations_made, 1);
}
