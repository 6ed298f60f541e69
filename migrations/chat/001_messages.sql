-- Chat: every message is stored before it is published live, so history can
-- always close the gap a disconnected client left.

CREATE TABLE messages (
    id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    room          VARCHAR(64) CHARACTER SET ascii NOT NULL,
    author_id     BIGINT UNSIGNED NOT NULL,     -- an accounts user id (no cross-schema key)
    author_name   VARCHAR(100) NOT NULL,
    body          TEXT NOT NULL,                -- 1..4,000 characters, verbatim
    client_msg_id VARCHAR(64) NULL,             -- makes a retried send idempotent
    created_at    DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    KEY messages_room (room, id),
    UNIQUE KEY messages_client (author_id, client_msg_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Single-use tickets for live subscriptions (browsers cannot set headers on a
-- WebSocket). Stored only as a hash.
CREATE TABLE live_tickets (
    ticket_hash CHAR(64) CHARACTER SET ascii NOT NULL,
    user_id     BIGINT UNSIGNED NOT NULL,
    room        VARCHAR(64) CHARACTER SET ascii NOT NULL,
    expires_at  DATETIME(6) NOT NULL,
    used_at     DATETIME(6) NULL,
    PRIMARY KEY (ticket_hash),
    KEY live_tickets_expiry (expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
