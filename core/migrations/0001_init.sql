-- Wallet schema, version 1.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

-- Private keys, sealed under the storage key (nonce || ciphertext || tag).
CREATE TABLE keys (
    public     BLOB PRIMARY KEY CHECK (length(public) = 32),
    role       TEXT NOT NULL CHECK (role IN ('account', 'holder')),
    sealed     BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

-- One row per instrument; the summary columns let lists skip decoding.
CREATE TABLE instruments (
    id           BLOB PRIMARY KEY CHECK (length(id) = 16),
    kind         TEXT NOT NULL CHECK (kind IN ('ticket', 'note', 'coupon')),
    holder       BLOB NOT NULL,
    holding      TEXT NOT NULL CHECK (holding IN ('held', 'pending-out', 'gone')),
    label        TEXT NOT NULL,
    currency     TEXT,
    amount       INTEGER,
    event_id     TEXT,
    valid_until  INTEGER NOT NULL,
    uses_left    INTEGER NOT NULL,
    status       TEXT NOT NULL,
    sequence     INTEGER NOT NULL,
    exam_counter INTEGER NOT NULL,
    encoded      BLOB NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX instruments_by_kind ON instruments (kind, holding, updated_at);

CREATE TABLE pending (
    id         BLOB PRIMARY KEY CHECK (length(id) = 16),
    protocol   TEXT NOT NULL,
    state      BLOB NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE history (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    time          INTEGER NOT NULL,
    direction     TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    kind          TEXT NOT NULL,
    instrument_id BLOB NOT NULL,
    currency      TEXT,
    amount        INTEGER,
    counterparty  BLOB,
    exchange      BLOB,
    memo          TEXT NOT NULL
);

CREATE TABLE examinations (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    instrument_id BLOB NOT NULL,
    gate          BLOB NOT NULL,
    instruction   TEXT NOT NULL,
    counter       INTEGER NOT NULL,
    time          INTEGER NOT NULL,
    certificate   BLOB NOT NULL
);
CREATE INDEX examinations_by_instrument ON examinations (instrument_id, seq);
