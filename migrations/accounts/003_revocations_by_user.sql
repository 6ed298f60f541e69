-- Accounts: the revocations of one user, quickly: a token issued right after
-- a revocation of its user (or session) is dated past it, so that it is not
-- refused by it (keys.c, ACC_REVOCATION_PENDING). Only adds (expand).

ALTER TABLE revocations ADD INDEX IF NOT EXISTS revocations_user (user_id, not_before);
