-- Projects: each user's projects. owner_id is an accounts user id; it lives in
-- another service's schema, so there is no foreign key.

CREATE TABLE projects (
    id             BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    owner_id       BIGINT UNSIGNED NOT NULL,
    name           VARCHAR(200) NOT NULL,
    description    TEXT NOT NULL,            -- at most 10,000 characters (checked by the service)
    state          ENUM('planning', 'active', 'on_hold', 'done') NOT NULL DEFAULT 'planning',
    internal_notes TEXT NOT NULL,            -- admins only
    version        BIGINT UNSIGNED NOT NULL DEFAULT 1,   -- bumped by every change: the ETag
    created_at     DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at     DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    KEY projects_owner (owner_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
