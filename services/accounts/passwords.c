/* passwords.c: argon2id password hashes (libsodium crypto_pwhash_str). */
#include "accounts.h"
#include "sh_log.h"

#include <string.h>

static char acc_dummy_hash[crypto_pwhash_STRBYTES];

char *acc_password_hash(sh_arena *a, const char *password, size_t len)
{
    char *out = sh_arena_alloc(a, crypto_pwhash_STRBYTES);
    if (crypto_pwhash_str_alg(out, password, len, (unsigned long long)acc_conf.pwhash_opslimit,
                              (size_t)acc_conf.pwhash_memlimit_kib * 1024, crypto_pwhash_ALG_ARGON2ID13) != 0) {
        sh_log_msg(SH_LOG_ERROR, "pwhash_failed", "crypto_pwhash_str failed (out of memory?)");
        return NULL;
    }
    return out;
}

bool acc_password_verify(const char *hash, const char *password, size_t len)
{
    if (hash == NULL) {
        /* no such user: spend the same time as a real check, then fail */
        bool matched = crypto_pwhash_str_verify(acc_dummy_hash, password, len) == 0;
        (void)matched; /* whatever it says, there is no user */
        return false;
    }
    return crypto_pwhash_str_verify(hash, password, len) == 0;
}

int acc_passwords_setup(void)
{
    static const char dummy[] = "pilotlight-dummy-password";
    if (crypto_pwhash_str_alg(acc_dummy_hash, dummy, sizeof(dummy) - 1, (unsigned long long)acc_conf.pwhash_opslimit,
                              (size_t)acc_conf.pwhash_memlimit_kib * 1024, crypto_pwhash_ALG_ARGON2ID13) != 0) {
        sh_log_msg(SH_LOG_ERROR, "startup_failed", "cannot compute a password hash with the configured limits");
        return -1;
    }
    return 0;
}
