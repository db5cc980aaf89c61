-- Events an organiser created; tickets are issued and sold against them.
CREATE TABLE events (
    event_id     TEXT PRIMARY KEY,
    organiser    BLOB NOT NULL,
    title        TEXT NOT NULL,
    zones        TEXT NOT NULL,
    valid_from   INTEGER NOT NULL,
    valid_until  INTEGER NOT NULL,
    currency     TEXT NOT NULL,
    price_minor  INTEGER NOT NULL CHECK (price_minor >= 0),
    transferable INTEGER NOT NULL,
    uses         INTEGER NOT NULL CHECK (uses > 0),
    created_at   INTEGER NOT NULL
);
