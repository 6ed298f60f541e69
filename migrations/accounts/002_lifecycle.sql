-- Accounts: the account lifecycle (issue 15): verified addresses, one-time
-- tokens (email verification, password reset, MFA login tickets), sessions,
-- a revocation feed the other services follow, TOTP and recovery codes, and
-- the mail outbox. Only adds (expand): the release before it runs unchanged.

ALTER TABLE users
    ADD COLUMN IF NOT EXISTS email_verified     TINYINT(1) NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS mfa_secret         VARBINARY(64) NULL,       -- TOTP key (RFC 6238), when enrolled or enrolling
    ADD COLUMN IF NOT EXISTS mfa_enabled        TINYINT(1) NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS mfa_last_step      BIGINT NULL,              -- the last TOTP time step accepted (no replay)
    ADD COLUMN IF NOT EXISTS verify_sent_at     DATETIME(6) NULL,         -- rate limit of verification mails
    ADD COLUMN IF NOT EXISTS reset_sent_at      DATETIME(6) NULL;         -- rate limit of reset mails

-- A single-use token mailed (or handed) to a user: only its SHA-256 is kept.
-- purpose: what it may do; data: what it carries (the new address of an
-- email change).
CREATE TABLE IF NOT EXISTS one_time_tokens (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    token_hash  CHAR(64) CHARACTER SET ascii NOT NULL,
    purpose     ENUM('verify_email', 'change_email', 'reset_password', 'mfa_login') NOT NULL,
    user_id     BIGINT UNSIGNED NOT NULL,
    data        VARCHAR(254) NULL,
    expires_at  DATETIME(6) NOT NULL,
    used_at     DATETIME(6) NULL,
    created_at  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    UNIQUE KEY one_time_tokens_hash (token_hash),
    KEY one_time_tokens_user (user_id, purpose),
    CONSTRAINT one_time_tokens_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- A session is a refresh-token family: what the user sees in their list.
CREATE TABLE IF NOT EXISTS sessions (
    family_id    CHAR(32) CHARACTER SET ascii NOT NULL,
    user_id      BIGINT UNSIGNED NOT NULL,
    created_at   DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    last_used_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    user_agent   VARCHAR(255) NOT NULL DEFAULT '',
    address      VARCHAR(64) CHARACTER SET ascii NOT NULL DEFAULT '',  -- coarse: a /24 or /48
    ended_at     DATETIME(6) NULL,
    PRIMARY KEY (family_id),
    KEY sessions_user (user_id, ended_at),
    CONSTRAINT sessions_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The client a refresh token was issued to, and what replaced it: the same
-- token presented again within the grace window by the same client gets a
-- successor of its own instead of revoking the family.
ALTER TABLE refresh_tokens
    ADD COLUMN IF NOT EXISTS client_hash CHAR(64) CHARACTER SET ascii NOT NULL DEFAULT '';

-- Access tokens of a user (or of one session, when family_id is set) issued
-- before not_before are refused by every service: they read this feed
-- (GET /api/accounts/_revocations?after=ID) every second or so.
CREATE TABLE IF NOT EXISTS revocations (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    user_id     BIGINT UNSIGNED NOT NULL,
    family_id   CHAR(32) CHARACTER SET ascii NULL,
    not_before  BIGINT NOT NULL,                    -- seconds since the epoch
    created_at  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    KEY revocations_created (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- MFA recovery codes: single use, only their SHA-256 kept.
CREATE TABLE IF NOT EXISTS recovery_codes (
    id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    user_id    BIGINT UNSIGNED NOT NULL,
    code_hash  CHAR(64) CHARACTER SET ascii NOT NULL,
    used_at    DATETIME(6) NULL,
    PRIMARY KEY (id),
    UNIQUE KEY recovery_codes_hash (user_id, code_hash),
    CONSTRAINT recovery_codes_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Mail to send: written in the same transaction as the change that causes
-- it, sent after the commit, retried with backoff until the SMTP server takes
-- it. Kept a while after it was sent, then purged.
CREATE TABLE IF NOT EXISTS outbox (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    to_addr         VARCHAR(254) NOT NULL,
    subject         VARCHAR(200) NOT NULL,
    text_body       MEDIUMTEXT NOT NULL,
    html_body       MEDIUMTEXT NOT NULL,
    created_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    attempts        INT UNSIGNED NOT NULL DEFAULT 0,
    next_attempt_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    sent_at         DATETIME(6) NULL,
    last_error      VARCHAR(255) NULL,
    PRIMARY KEY (id),
    KEY outbox_due (sent_at, next_attempt_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
