-- Chat: rooms whose live delivery was interrupted. When a message could not
-- be published (nchan, or the Redis the fronts share, unreachable), its room
-- gets a row here: nothing more is published live in that room until its
-- subscribers have been closed (its channel deleted) once delivery works
-- again and once more a few seconds later, so that every client reconnects
-- and reads what it missed from history. Only adds (expand).

CREATE TABLE IF NOT EXISTS live_resync (
    room             VARCHAR(64) CHARACTER SET ascii NOT NULL,
    first_message_id BIGINT UNSIGNED NOT NULL,   -- the first message not delivered live
    due_at           DATETIME(6) NULL,           -- set by the first close: the second one is due then
    PRIMARY KEY (room)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
