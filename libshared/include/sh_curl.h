/* sh_curl.h: libcurl, loaded when a process first needs it (dlopen(3)).
 * fork(2) copies page tables mapping by mapping, and libcurl with the ~30
 * libraries it needs (TLS, HTTP/2, LDAP, Kerberos, SSH, IDN...) would triple
 * the mappings every cold start copies. So nothing links libcurl: a worker
 * loads it (about 4 ms) the first time it calls out over HTTP or SMTP (an
 * invocation through the gateway, a mail) and keeps it; a master whose
 * workers call out on every request loads it before forking instead
 * (sh_service.calls_out_per_request: chat's posts; or invocations that all
 * go through the gateway).
 * Layer 0 of libshared (core); see docs/architecture.md. */
#ifndef SH_CURL_H
#define SH_CURL_H

#include <curl/curl.h>

/* libcurl's functions Pilotlight calls, with libcurl's own signatures and
 * meanings (https://curl.se/libcurl/c/): easy_setopt and easy_getinfo are
 * variadic and unchecked here, so pass the documented type (long, not int). */
typedef struct {
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *curl, CURLoption option, ...);
    CURLcode (*easy_perform)(CURL *curl);
    CURLcode (*easy_getinfo)(CURL *curl, CURLINFO info, ...);
    void (*easy_reset)(CURL *curl);
    void (*easy_cleanup)(CURL *curl);
    const char *(*easy_strerror)(CURLcode code);
    struct curl_slist *(*slist_append)(struct curl_slist *list, const char *string);
    void (*slist_free_all)(struct curl_slist *list);
} sh_curl_api;

/* libcurl, loaded (libcurl.so.4) and globally initialised on the first call:
 * the same table on every later call; NULL when it cannot be loaded (logged
 * once as curl_unavailable: the call that needed it fails as its dependency
 * being unavailable). Not thread-safe (nor is curl_global_init). */
const sh_curl_api *sh_curl(void);

#endif
