-- Accounts: users and their refresh tokens (Pilotlight's Cognito user pool).
-- utf8mb4_bin everywhere: text is stored and compared verbatim; emails are
-- lower-cased by the service before they reach the database.

CREATE TABLE users (
    id                 BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    email              VARCHAR(254) NOT NULL,
    password_hash      VARCHAR(255) NOT NULL,
    display_name       VARCHAR(100) NOT NULL,
    role               ENUM('user', 'admin') NOT NULL DEFAULT 'user',
    disabled           TINYINT(1) NOT NULL DEFAULT 0,
    primary_project_id BIGINT UNSIGNED NULL,   -- lives in the projects service: no foreign key
    failed_logins      INT UNSIGNED NOT NULL DEFAULT 0,
    locked_until       DATETIME(6) NULL,
    created_at         DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at         DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    UNIQUE KEY users_email (email),
    KEY users_role (role, disabled)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- A refresh token is stored only as its SHA-256. Tokens issued by rotation
-- share a family; presenting a spent token again revokes the whole family.
CREATE TABLE refresh_tokens (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    token_hash  CHAR(64) CHARACTER SET ascii NOT NULL,
    user_id     BIGINT UNSIGNED NOT NULL,
    family_id   CHAR(32) CHARACTER SET ascii NOT NULL,
    expires_at  DATETIME(6) NOT NULL,
    created_at  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    spent_at    DATETIME(6) NULL,
    revoked_at  DATETIME(6) NULL,
    PRIMARY KEY (id),
    UNIQUE KEY refresh_tokens_hash (token_hash),
    KEY refresh_tokens_family (family_id),
    KEY refresh_tokens_user (user_id),
    CONSTRAINT refresh_tokens_user_fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
