/* auth.c: JWT (EdDSA) verification for every service, signing for accounts. */
#include "sh_auth.h"
#include "sh_log.h"
#include "sh_str.h"

#include <stddef.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <time.h>

#define A(field) offsetof(sh_auth_config, field)
const sh_conf_row sh_auth_conf_rows[] = {
    {"PL_JWT_ISSUER", SH_CONF_STRING, A(issuer), "pilotlight", 0, 0, NULL, 0, "the iss of access tokens"},
    {"PL_JWT_LEEWAY_S", SH_CONF_INT, A(leeway_s), "30", 0, 600, NULL, 0, "clock skew allowed on exp/nbf"},
    {"PL_JWT_PUBLIC_KEYS_FILE", SH_CONF_STRING, A(public_keys_file), NULL, 0, 0, NULL, 0,
     "file of \"kid base64url-Ed25519-public-key\" lines that verify access tokens"},
    {"PL_REVOCATION_POLL_MS", SH_CONF_INT, A(revocation_poll_ms), "1000", 0, 60000, NULL, 0,
     "revoked tokens (a disabled user, an ended session) are refused within this plus a request (0: never read)"},
    {"PL_REVOCATIONS_PATH", SH_CONF_STRING, A(revocations_path), "/api/accounts/_revocations", 0, 0, NULL, 0,
     "the revocation feed's path on the gateway (PL_GATEWAY_URL)"},
    {"PL_REVOCATION_SIGNAL_FILE", SH_CONF_STRING, A(revocation_signal_file), NULL, 0, 0, NULL, 0,
     "a file every pool on this host maps, where accounts counts the revocations it commits: with it a pool reads "
     "the feed when one happened, not every PL_REVOCATION_POLL_MS (accounts and the pool on one host; unset: polling)"},
    {"PL_REVOCATION_MAX_STALE_S", SH_CONF_INT, A(revocation_max_stale_s), "300", 1, 86400, NULL, 0,
     "with the signal file: the feed is read at least this often anyway, when a token is checked (a revocation "
     "made outside accounts' handlers)"},
    {"PL_TOKEN_CACHE_ENTRIES", SH_CONF_INT, A(token_cache_entries), "256", 0, 65536, NULL, 0,
     "verified access tokens each worker remembers, so a token's signature is checked once per worker (0: every "
     "request)"},
    SH_CONF_END,
};
#undef A

static sh_auth_config sh_auth_cfg;

static void sh_token_cache_clear(void);

void sh_auth_configure(const sh_auth_config *ac)
{
    sh_auth_cfg = *ac;
    sh_token_cache_clear();
}

const sh_auth_config *sh_auth_config_get(void) { return &sh_auth_cfg; }

int sh_auth_load_public_keys(sh_auth_config *ac, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open public keys %s", path);
        return -1;
    }
    char line[512];
    ac->nkeys = 0;
    int lineno = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0' || line[0] == '#')
            continue;
        char kid[SH_AUTH_KID_MAX], key[128];
        if (sscanf(line, "%63s %127s", kid, key) != 2 || ac->nkeys == SH_AUTH_MAX_KEYS) {
            snprintf(err, errlen, "%s:%d: expected \"kid base64url-key\" (at most %d keys)", path, lineno,
                     SH_AUTH_MAX_KEYS);
            fclose(f);
            return -1;
        }
        sh_auth_key *k = &ac->keys[ac->nkeys];
        if (sh_b64url_decode(k->pk, sizeof(k->pk), key, strlen(key)) != (long)sizeof(k->pk)) {
            snprintf(err, errlen, "%s:%d: the key is not a base64url Ed25519 public key", path, lineno);
            fclose(f);
            return -1;
        }
        snprintf(k->kid, sizeof(k->kid), "%s", kid);
        ac->nkeys++;
    }
    fclose(f);
    if (ac->nkeys == 0) {
        snprintf(err, errlen, "%s holds no key", path);
        return -1;
    }
    return 0;
}

/* Decodes one base64url JSON segment into an object (caller puts). */
static json_object *sh_jwt_json_segment(const char *s, size_t len)
{
    unsigned char buf[2048];
    if (len > 2700)
        return NULL;
    long n = sh_b64url_decode(buf, sizeof(buf) - 1, s, len);
    if (n <= 0)
        return NULL;
    const char *why;
    json_object *o = sh_json_parse((const char *)buf, (size_t)n, 4, &why);
    if (o != NULL && !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static bool sh_jwt_int_claim(json_object *claims, const char *name, int64_t *out)
{
    json_object *v;
    if (!json_object_object_get_ex(claims, name, &v))
        return false;
    if (!json_object_is_type(v, json_type_int))
        return false;
    *out = json_object_get_int64(v);
    return true;
}

int sh_jwt_verify(const sh_auth_config *ac, const char *token, int64_t now, sh_arena *a, sh_principal *p,
                  const char **why)
{
    memset(p, 0, sizeof(*p));
    size_t tlen = strlen(token);
    if (tlen > SH_AUTH_TOKEN_MAX) {
        *why = "the token is too long";
        return -1;
    }
    const char *dot1 = memchr(token, '.', tlen);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', tlen - (size_t)(dot1 + 1 - token)) : NULL;
    if (dot1 == NULL || dot2 == NULL || memchr(dot2 + 1, '.', tlen - (size_t)(dot2 + 1 - token)) != NULL) {
        *why = "the token must have three segments";
        return -1;
    }
    size_t hlen = (size_t)(dot1 - token), plen = (size_t)(dot2 - dot1 - 1), slen = tlen - (size_t)(dot2 + 1 - token);
    if (hlen == 0 || plen == 0 || slen == 0) {
        *why = "a token segment is empty";
        return -1;
    }

    json_object *header = sh_jwt_json_segment(token, hlen);
    if (header == NULL) {
        *why = "the token header is not base64url JSON";
        return -1;
    }
    const char *alg = sh_json_get_str(header, "alg");
    const char *kid = sh_json_get_str(header, "kid");
    json_object *crit;
    bool has_crit = json_object_object_get_ex(header, "crit", &crit);
    const sh_auth_key *key = NULL;
    for (int i = 0; kid != NULL && i < ac->nkeys; i++)
        if (strcmp(ac->keys[i].kid, kid) == 0)
            key = &ac->keys[i];
    int bad = alg == NULL || strcmp(alg, "EdDSA") != 0 ? 1 : key == NULL ? 2 : has_crit ? 3 : 0;
    json_object_put(header);
    if (bad) {
        *why = bad == 1   ? "the token algorithm must be EdDSA"
               : bad == 2 ? "the token key id is unknown"
                          : "the token has critical extensions";
        return -1;
    }

    unsigned char sig[crypto_sign_BYTES + 1];
    if (sh_b64url_decode(sig, sizeof(sig), dot2 + 1, slen) != crypto_sign_BYTES) {
        *why = "the token signature is malformed";
        return -1;
    }
    if (crypto_sign_verify_detached(sig, (const unsigned char *)token, (unsigned long long)(dot2 - token), key->pk) !=
        0) {
        *why = "the token signature does not verify";
        return -1;
    }

    json_object *claims = sh_jwt_json_segment(dot1 + 1, plen);
    if (claims == NULL) {
        *why = "the token claims are not base64url JSON";
        return -1;
    }
    int64_t exp = 0, nbf = 0, uid = 0;
    const char *iss = sh_json_get_str(claims, "iss");
    const char *sub = sh_json_get_str(claims, "sub");
    const char *role = sh_json_get_str(claims, "role");
    const char *email = sh_json_get_str(claims, "email");
    const char *name = sh_json_get_str(claims, "name");
    int rc = -1;
    if (!sh_jwt_int_claim(claims, "exp", &exp))
        *why = "the token has no expiry";
    else if (exp < now - ac->leeway_s) /* not exp + leeway: exp may be INT64_MAX */
        *why = "the token has expired";
    else if (json_object_object_get_ex(claims, "nbf", NULL) &&
             (!sh_jwt_int_claim(claims, "nbf", &nbf) || nbf > now + ac->leeway_s))
        *why = "the token is not valid yet";
    else if (iss == NULL || strcmp(iss, ac->issuer) != 0)
        *why = "the token issuer is not accepted";
    else if (sub == NULL || sh_parse_int64(sub, strlen(sub), 1, INT64_MAX, &uid) != 0)
        *why = "the token subject is not a user id";
    else if (role == NULL || (strcmp(role, "user") != 0 && strcmp(role, "admin") != 0))
        *why = "the token role is unknown";
    else {
        p->present = true;
        p->user_id = uid;
        p->subject = sh_arena_strdup(a, sub);
        p->role = strcmp(role, "admin") == 0 ? "admin" : "user";
        p->is_admin = strcmp(role, "admin") == 0;
        p->email = email ? sh_arena_strdup(a, email) : NULL;
        p->name = name ? sh_arena_strdup(a, name) : NULL;
        p->token = sh_arena_strdup(a, token);
        p->expires_at = exp;
        int64_t iat = 0;
        p->issued_at = sh_jwt_int_claim(claims, "iat", &iat) ? iat : 0;
        const char *sid = sh_json_get_str(claims, "sid");
        p->session_id = sid != NULL && strlen(sid) <= SH_AUTH_SESSION_ID_MAX ? sh_arena_strdup(a, sid) : NULL;
        rc = 0;
    }
    json_object_put(claims);
    return rc;
}

/* --- the verified-token cache ----------------------------------------------------- */

#define SH_TC_WAYS      4
#define SH_TC_MAC_BYTES 32
#define SH_TC_TEXT_MAX  600 /* email, name and sid of one principal, NULs included */

typedef struct {
    unsigned char mac[SH_TC_MAC_BYTES]; /* all zero: empty */
    int64_t good_until;                 /* exp + leeway: a hit after this verifies again */
    uint64_t used;                      /* the cache's clock at the last hit */
    int64_t user_id, expires_at, issued_at;
    bool is_admin;
    int16_t email_at, name_at, sid_at; /* offsets into text, -1: absent */
    char text[SH_TC_TEXT_MAX];
} sh_tc_entry;

static sh_tc_entry *sh_tc; /* nsets * SH_TC_WAYS entries, or NULL */
static size_t sh_tc_nsets;
static uint64_t sh_tc_clock;
static unsigned char sh_tc_key[crypto_generichash_KEYBYTES];
static bool sh_tc_keyed;

static void sh_token_cache_clear(void)
{
    free(sh_tc);
    sh_tc = NULL;
    sh_tc_nsets = 0;
}

/* The cache, made on first use for the configured size (a power of two of sets). */
static bool sh_tc_ready(const sh_auth_config *ac)
{
    if (sh_tc != NULL)
        return true;
    if (ac->token_cache_entries < SH_TC_WAYS)
        return false;
    size_t sets = 1;
    while (sets * 2 * SH_TC_WAYS <= (size_t)ac->token_cache_entries)
        sets *= 2;
    sh_tc = calloc(sets * SH_TC_WAYS, sizeof(sh_tc_entry));
    if (sh_tc == NULL)
        return false;
    if (!sh_tc_keyed) { /* a key of this process's own (a forked worker inherits the master's: same secrecy) */
        randombytes_buf(sh_tc_key, sizeof(sh_tc_key));
        sh_tc_keyed = true;
    }
    sh_tc_nsets = sets;
    return true;
}

static const char *sh_tc_text(sh_arena *a, const sh_tc_entry *e, int16_t at)
{
    return at < 0 ? NULL : sh_arena_strdup(a, e->text + at);
}

/* Copies s into e->text at *off; its offset, -1 for NULL, -2 when it does not fit. */
static int16_t sh_tc_put(sh_tc_entry *e, size_t *off, const char *s)
{
    if (s == NULL)
        return -1;
    size_t n = strlen(s) + 1;
    if (*off + n > sizeof(e->text))
        return -2;
    memcpy(e->text + *off, s, n);
    int16_t at = (int16_t)*off;
    *off += n;
    return at;
}

int sh_jwt_verify_cached(const sh_auth_config *ac, const char *token, int64_t now, sh_arena *a, sh_principal *p,
                         const char **why, bool *cached)
{
    *cached = false;
    size_t tlen = strlen(token);
    if (tlen > SH_AUTH_TOKEN_MAX || !sh_tc_ready(ac))
        return sh_jwt_verify(ac, token, now, a, p, why);
    unsigned char mac[SH_TC_MAC_BYTES];
    if (crypto_generichash(mac, sizeof(mac), (const unsigned char *)token, tlen, sh_tc_key, sizeof(sh_tc_key)) != 0)
        return sh_jwt_verify(ac, token, now, a, p, why);
    uint64_t h;
    memcpy(&h, mac, sizeof(h));
    sh_tc_entry *set = &sh_tc[(h & (sh_tc_nsets - 1)) * SH_TC_WAYS], *victim = &set[0];
    sh_tc_clock++;
    for (int i = 0; i < SH_TC_WAYS; i++) {
        sh_tc_entry *e = &set[i];
        if (sodium_memcmp(e->mac, mac, sizeof(mac)) == 0 && e->good_until != 0) {
            if (now > e->good_until) { /* expired: verify again (and fail) */
                e->good_until = 0;
                memset(e->mac, 0, sizeof(e->mac));
                break;
            }
            e->used = sh_tc_clock;
            memset(p, 0, sizeof(*p));
            p->present = true;
            p->user_id = e->user_id;
            p->subject = sh_arena_sprintf(a, "%lld", (long long)e->user_id);
            p->is_admin = e->is_admin;
            p->role = e->is_admin ? "admin" : "user";
            p->email = sh_tc_text(a, e, e->email_at);
            p->name = sh_tc_text(a, e, e->name_at);
            p->session_id = sh_tc_text(a, e, e->sid_at);
            p->token = sh_arena_strdup(a, token);
            p->expires_at = e->expires_at;
            p->issued_at = e->issued_at;
            *cached = true;
            return 0;
        }
        if (e->used < victim->used)
            victim = e;
    }
    if (sh_jwt_verify(ac, token, now, a, p, why) != 0)
        return -1;
    /* a subject that is not the id's canonical text is not cached (it is rebuilt from the id) */
    char canonical[24];
    snprintf(canonical, sizeof(canonical), "%lld", (long long)p->user_id);
    size_t off = 0;
    sh_tc_entry e = {.good_until = p->expires_at > INT64_MAX - ac->leeway_s ? INT64_MAX : p->expires_at + ac->leeway_s,
                     .used = sh_tc_clock,
                     .user_id = p->user_id,
                     .expires_at = p->expires_at,
                     .issued_at = p->issued_at,
                     .is_admin = p->is_admin};
    e.email_at = sh_tc_put(&e, &off, p->email);
    e.name_at = sh_tc_put(&e, &off, p->name);
    e.sid_at = sh_tc_put(&e, &off, p->session_id);
    if (e.email_at == -2 || e.name_at == -2 || e.sid_at == -2 || strcmp(p->subject, canonical) != 0)
        return 0;
    memcpy(e.mac, mac, sizeof(mac));
    *victim = e;
    return 0;
}

char *sh_jwt_sign(sh_arena *a, const char *kid, const unsigned char sk[crypto_sign_SECRETKEYBYTES], json_object *claims)
{
    json_object *header = json_object_new_object();
    json_object_object_add(header, "alg", json_object_new_string("EdDSA"));
    json_object_object_add(header, "typ", json_object_new_string("JWT"));
    json_object_object_add(header, "kid", json_object_new_string(kid));
    size_t hlen, clen;
    const char *hjson = sh_json_to_string(header, &hlen);
    char *h64 = sh_b64url_encode(a, (const unsigned char *)hjson, hlen);
    json_object_put(header);
    const char *cjson = sh_json_to_string(claims, &clen);
    char *c64 = sh_b64url_encode(a, (const unsigned char *)cjson, clen);
    char *signing_input = sh_arena_sprintf(a, "%s.%s", h64, c64);
    unsigned char sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, NULL, (const unsigned char *)signing_input, strlen(signing_input), sk);
    return sh_arena_sprintf(a, "%s.%s", signing_input, sh_b64url_encode(a, sig, sizeof(sig)));
}

/* --- revocations ------------------------------------------------------------------- */

typedef struct {
    _Atomic uint32_t seq;             /* odd while it is written (a seqlock) */
    _Atomic int refreshing;           /* one process reads the feed at a time */
    _Atomic int64_t fetched_us;       /* monotonic: when the feed was last read */
    _Atomic uint64_t seen_generation; /* the signal's generation that read saw */
    int64_t last_id;
    int64_t keep_s;
    int n;
    sh_revocation entries[SH_AUTH_REVOCATIONS_MAX];
} sh_revocation_table;

static sh_revocation_table sh_revocations_own;
static sh_revocation_table *sh_revocations = &sh_revocations_own;
static sh_revocation_fetch_fn sh_revocation_fetch;

/* The revocation signal: a small file mapped by every pool on the host. */
#define SH_SIGNAL_MAGIC 0x706c7265766f6b31ULL /* "plrevok1" */
typedef struct {
    _Atomic uint64_t magic;
    _Atomic int64_t inflight;    /* revocations begun and not yet signalled */
    _Atomic uint64_t generation; /* revocations signalled (committed or not) */
} sh_revocation_signal;

static sh_revocation_signal *sh_signal;

int sh_auth_signal_open(void)
{
    const char *path = sh_auth_cfg.revocation_signal_file;
    if (path == NULL)
        return 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 ||
        ((size_t)st.st_size < sizeof(sh_revocation_signal) && ftruncate(fd, sizeof(sh_revocation_signal)) != 0)) {
        sh_log_msgf(SH_LOG_ERROR, "revocation_signal_failed", "%s: %s (polling the feed instead)", path,
                    strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    void *p = mmap(NULL, sizeof(sh_revocation_signal), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        sh_log_msgf(SH_LOG_ERROR, "revocation_signal_failed", "mmap %s: %s (polling the feed instead)", path,
                    strerror(errno));
        return -1;
    }
    sh_signal = p;
    uint64_t zero = 0; /* a new file: ours to stamp (another process may race us to it: same stamp) */
    atomic_compare_exchange_strong(&sh_signal->magic, &zero, SH_SIGNAL_MAGIC);
    if (atomic_load(&sh_signal->magic) != SH_SIGNAL_MAGIC) {
        sh_log_msgf(SH_LOG_ERROR, "revocation_signal_failed", "%s is not a revocation signal (polling instead)", path);
        munmap(p, sizeof(sh_revocation_signal));
        sh_signal = NULL;
        return -1;
    }
    return 0;
}

typedef struct {
    bool signalled;
} sh_signal_handle;

void sh_auth_revocation_committed(void *handle)
{
    sh_signal_handle *h = handle;
    if (h == NULL || h->signalled)
        return;
    h->signalled = true;
    atomic_fetch_add(&sh_signal->generation, 1); /* before inflight drops: a reader seeing 0 sees the new one */
    atomic_fetch_sub(&sh_signal->inflight, 1);
}

void *sh_auth_revocation_begin(sh_req *req)
{
    if (sh_signal == NULL)
        return NULL;
    sh_signal_handle *h = sh_arena_calloc(req->arena, sizeof(*h));
    atomic_fetch_add(&sh_signal->inflight, 1);
    /* never committed (rolled back, or the commit hook not run): signalled
     * when the request ends anyway, a read for nothing at worst */
    sh_arena_cleanup(req->arena, sh_auth_revocation_committed, h);
    return h;
}

int sh_auth_revocations_share(void)
{
    void *p = mmap(NULL, sizeof(sh_revocation_table), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    sh_revocations = p; /* zeroed: nothing read yet */
    return 0;
}

void sh_auth_on_revocation_fetch(sh_revocation_fetch_fn fn) { sh_revocation_fetch = fn; }

/* Reads the feed into the table: old entries out, new ones in. */
static void sh_auth_revocations_read(sh_req *req)
{
    sh_revocation_table *t = sh_revocations;
    sh_revocation fresh[256];
    int n = 0;
    int64_t last = t->last_id, keep = t->keep_s;
    /* the generation before the read: one signalled while it runs reads again */
    uint64_t generation = sh_signal != NULL ? atomic_load(&sh_signal->generation) : 0;
    int rc = sh_revocation_fetch(req, t->last_id, fresh, (int)SH_ARRAY_LEN(fresh), &n, &last, &keep);
    atomic_store(&t->fetched_us, sh_now_us());
    if (rc == 0)
        atomic_store(&t->seen_generation, generation);
    if (rc != 0) {
        sh_log_msg(SH_LOG_WARN, "revocations_unread", "the revocation feed could not be read: trying again later");
        return;
    }
    int64_t now = (int64_t)time(NULL);
    atomic_fetch_add(&t->seq, 1);
    int kept = 0;
    for (int i = 0; i < t->n; i++)
        if (t->entries[i].not_before + keep >= now)
            t->entries[kept++] = t->entries[i];
    for (int i = 0; i < n && kept < SH_AUTH_REVOCATIONS_MAX; i++)
        t->entries[kept++] = fresh[i];
    if (n > 0 && kept == SH_AUTH_REVOCATIONS_MAX)
        sh_log_msg(SH_LOG_ERROR, "revocations_full", "the revocation table is full: the newest were dropped");
    t->n = kept;
    t->last_id = last;
    t->keep_s = keep;
    atomic_fetch_add(&t->seq, 1);
}

/* Whether an entry refuses the principal's token. */
static bool sh_auth_revokes(const sh_revocation *r, const sh_principal *p)
{
    return r->user_id == p->user_id && p->issued_at < r->not_before &&
           (r->session_id[0] == '\0' || (p->session_id != NULL && strcmp(r->session_id, p->session_id) == 0));
}

bool sh_auth_revoked(sh_req *req, const sh_principal *p)
{
    sh_revocation_table *t = sh_revocations;
    if (sh_revocation_fetch != NULL && sh_auth_cfg.revocation_poll_ms > 0) {
        int64_t fetched = atomic_load(&t->fetched_us), age = sh_now_us() - fetched;
        bool stale = fetched == 0 || age > sh_auth_cfg.revocation_poll_ms * 1000;
        /* With the signal: read only when a revocation was signalled since,
         * or one is under way (a writer that died midway leaves it so: back
         * to polling), or it has been long. */
        if (sh_signal != NULL && stale && fetched != 0 && atomic_load(&sh_signal->inflight) == 0 &&
            atomic_load(&sh_signal->generation) == atomic_load(&t->seen_generation) &&
            age <= sh_auth_cfg.revocation_max_stale_s * 1000000)
            stale = false;
        int idle = 0;
        if (stale && atomic_compare_exchange_strong(&t->refreshing, &idle, 1)) {
            sh_auth_revocations_read(req);
            atomic_store(&t->refreshing, 0);
        }
    }
    for (;;) {
        uint32_t seq = atomic_load(&t->seq);
        if (seq & 1u)
            continue; /* a writer in another process: a few instructions */
        bool revoked = false;
        for (int i = 0; i < t->n && i < SH_AUTH_REVOCATIONS_MAX && !revoked; i++)
            revoked = sh_auth_revokes(&t->entries[i], p);
        if (atomic_load(&t->seq) == seq)
            return revoked;
    }
}

/* The token a request presents: the Authorization header's, else (when the
 * route allows it) the access_token query parameter's. NULL when none; -1 in
 * *bad with the reply sent when what was presented is malformed. */
static const char *sh_auth_token_of(sh_req *req, unsigned route_flags, int *bad)
{
    *bad = 0;
    const char *h = sh_req_header(req, "Authorization");
    if (h != NULL) {
        if (strncasecmp(h, "Bearer ", 7) != 0) {
            sh_resp_header(req, "WWW-Authenticate", "Bearer realm=\"pilotlight\", error=\"invalid_request\"");
            *bad = sh_reply_error(req, 401, "invalid_token", "The Authorization header must be \"Bearer <token>\".");
            return NULL;
        }
        h += 7;
        while (*h == ' ')
            h++;
        return h;
    }
    const char *raw;
    size_t len;
    int found = (route_flags & SH_TOKEN_QUERY) ? sh_query_find(req->query, "access_token", &raw, &len) : 0;
    if (found == 0)
        return NULL;
    char *token = sh_arena_alloc(req->arena, len + 1);
    long n = found > 0 ? sh_percent_decode(token, raw, len, true) : -1;
    if (n < 0) {
        *bad = sh_reply_field_error(req, 400, "invalid_parameter", "access_token",
                                    "Query parameter access_token is given more than once or badly encoded.");
        return NULL;
    }
    token[n] = '\0';
    if (n > SH_AUTH_TOKEN_MAX) {
        *bad = sh_reply_field_error(req, 400, "invalid_parameter", "access_token",
                                    "Query parameter access_token is longer than %d bytes.", SH_AUTH_TOKEN_MAX);
        return NULL;
    }
    return token;
}

int sh_auth_or_reply(sh_req *req, unsigned route_flags)
{
    bool required = (route_flags & (SH_AUTH | SH_ADMIN)) != 0;
    int bad;
    const char *token = sh_auth_token_of(req, route_flags, &bad);
    if (bad != 0)
        return bad;
    if (token == NULL) {
        if (!required)
            return 0;
        sh_resp_header(req, "WWW-Authenticate", "Bearer realm=\"pilotlight\"");
        return sh_reply_error(req, 401, "missing_token", "This request needs an access token (Authorization: Bearer).");
    }
    const char *why = NULL;
    bool cached;
    if (sh_jwt_verify_cached(&sh_auth_cfg, token, (int64_t)time(NULL), req->arena, &req->auth, &why, &cached) != 0) {
        sh_resp_header(req, "WWW-Authenticate", "Bearer realm=\"pilotlight\", error=\"invalid_token\"");
        return sh_reply_error(req, 401, "invalid_token", "The access token is not valid: %s.", why);
    }
    if (sh_auth_revoked(req, &req->auth)) {
        memset(&req->auth, 0, sizeof(req->auth));
        sh_resp_header(req, "WWW-Authenticate", "Bearer realm=\"pilotlight\", error=\"invalid_token\"");
        return sh_reply_error(req, 401, "invalid_token",
                              "The access token was revoked (the session ended or the account changed).");
    }
    if ((route_flags & SH_ADMIN) && !req->auth.is_admin)
        return sh_reply_error(req, 403, "forbidden", "Only an admin may do this.");
    return 0;
}
