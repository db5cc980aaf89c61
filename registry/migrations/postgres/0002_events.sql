-- Events an organiser created; tickets are issued and sold against them.
CREATE TABLE events (
    event_id     TEXT PRIMARY KEY,
    organiser    BYTEA NOT NULL,
    title        TEXT NOT NULL,
    zones        TEXT NOT NULL,
    valid_from   BIGINT NOT NULL,
    valid_until  BIGINT NOT NULL,
    currency     TEXT NOT NULL,
    price_minor  BIGINT NOT NULL CHECK (price_minor >= 0),
    transferable BIGINT NOT NULL,
    uses         BIGINT NOT NULL CHECK (uses > 0),
    created_at   BIGINT NOT NULL
);
