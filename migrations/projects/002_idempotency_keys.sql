-- Idempotency-Key (libshared/include/sh_idempotency.h): one row per user and
-- key, claimed in the transaction of the request's writes and holding its
-- answer, replayed to a retry. Rows live PL_IDEMPOTENCY_TTL_S; the service
-- deletes expired ones as it goes.

CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope        VARCHAR(32) NOT NULL,            -- whose key: u<user id>
    idem_key     VARCHAR(255) NOT NULL,           -- as the client sent it
    fingerprint  CHAR(64) NOT NULL,               -- SHA-256 of method, path, query and body
    status       SMALLINT UNSIGNED NULL,          -- the answer: NULL until the request commits
    content_type VARCHAR(255) NULL,
    headers      TEXT NULL,                       -- the handler's header lines (Location, ETag...)
    body         MEDIUMBLOB NULL,
    created_at   DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    expires_at   DATETIME(6) NOT NULL,
    PRIMARY KEY (scope, idem_key),
    KEY idempotency_keys_expiry (expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = ascii COLLATE = ascii_bin;
