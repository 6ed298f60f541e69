/* curl.c: libcurl loaded on first use (see sh_curl.h). */
#include "sh_curl.h"
#include "sh_log.h"

#include <dlfcn.h>
#include <stdbool.h>

static sh_curl_api sh_curl_table;
static bool sh_curl_loaded, sh_curl_failed;

/* One symbol of the library into *slot; false when it is missing. */
static bool sh_curl_sym(void *lib, const char *name, void *slot)
{
    void *p = dlsym(lib, name);
    if (p == NULL)
        return false;
    *(void **)slot = p; /* POSIX: a function pointer's representation is a void *'s */
    return true;
}

const sh_curl_api *sh_curl(void)
{
    if (sh_curl_loaded)
        return &sh_curl_table;
    if (sh_curl_failed)
        return NULL;
    void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    CURLcode (*global_init)(long) = NULL;
    sh_curl_api t;
    bool ok =
        lib != NULL && sh_curl_sym(lib, "curl_global_init", &global_init) &&
        sh_curl_sym(lib, "curl_easy_init", &t.easy_init) && sh_curl_sym(lib, "curl_easy_setopt", &t.easy_setopt) &&
        sh_curl_sym(lib, "curl_easy_perform", &t.easy_perform) &&
        sh_curl_sym(lib, "curl_easy_getinfo", &t.easy_getinfo) && sh_curl_sym(lib, "curl_easy_reset", &t.easy_reset) &&
        sh_curl_sym(lib, "curl_easy_cleanup", &t.easy_cleanup) &&
        sh_curl_sym(lib, "curl_easy_strerror", &t.easy_strerror) &&
        sh_curl_sym(lib, "curl_slist_append", &t.slist_append) &&
        sh_curl_sym(lib, "curl_slist_free_all", &t.slist_free_all);
    if (!ok || global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        sh_log_msgf(SH_LOG_ERROR, "curl_unavailable", "libcurl.so.4: %s",
                    lib == NULL ? dlerror()
                    : ok        ? "curl_global_init failed"
                                : "a function is missing");
        if (lib != NULL)
            dlclose(lib);
        sh_curl_failed = true;
        return NULL;
    }
    sh_curl_table = t;
    sh_curl_loaded = true;
    return &sh_curl_table; /* never unloaded: the process keeps it to its end */
}
