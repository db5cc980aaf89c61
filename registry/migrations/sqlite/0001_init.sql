-- The registered-ticket list: one row per instrument, its current holder.
CREATE TABLE instruments (
    id            BLOB PRIMARY KEY,
    kind          TEXT NOT NULL,
    issuer        BLOB NOT NULL,
    genesis       BLOB NOT NULL,
    holder        BLOB NOT NULL,
    holder_since  INTEGER NOT NULL,
    sequence      INTEGER NOT NULL CHECK (sequence >= 0),
    tip           BLOB NOT NULL,
    status        TEXT NOT NULL,
    uses_left     INTEGER NOT NULL CHECK (uses_left >= 0),
    former_head   INTEGER,
    currency      TEXT,
    value_minor   INTEGER CHECK (value_minor IS NULL OR value_minor > 0),
    account       BLOB,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX instruments_holder ON instruments (holder);

-- Registered endorsements: the primary key is what makes two registry
-- processes unable to register two links for one (instrument, sequence).
CREATE TABLE endorsements (
    instrument    BLOB NOT NULL REFERENCES instruments (id),
    sequence      INTEGER NOT NULL CHECK (sequence > 0),
    digest        BLOB NOT NULL,
    previous      BLOB NOT NULL,
    signer        BLOB NOT NULL,
    new_holder    BLOB NOT NULL,
    bytes         BLOB NOT NULL,
    registered_at INTEGER NOT NULL,
    PRIMARY KEY (instrument, sequence)
);

-- Former holders, each linked to the record before it (seed 003 [1466]).
CREATE TABLE former_holders (
    instrument     BLOB NOT NULL REFERENCES instruments (id),
    from_sequence  INTEGER NOT NULL,
    until_sequence INTEGER NOT NULL,
    holder         BLOB NOT NULL,
    previous_from  INTEGER,
    recorded_at    INTEGER NOT NULL,
    PRIMARY KEY (instrument, from_sequence),
    FOREIGN KEY (instrument, previous_from) REFERENCES former_holders (instrument, from_sequence)
);

CREATE TABLE equivocations (
    instrument   BLOB NOT NULL,
    sequence     INTEGER NOT NULL,
    proof_digest BLOB NOT NULL,
    signer       BLOB NOT NULL,
    proof        BLOB NOT NULL,
    recorded_at  INTEGER NOT NULL,
    PRIMARY KEY (instrument, sequence, proof_digest)
);

CREATE TABLE flagged (
    key        BLOB PRIMARY KEY,
    reason     TEXT NOT NULL,
    flagged_at INTEGER NOT NULL
);

CREATE TABLE denied (
    instrument BLOB PRIMARY KEY,
    version    INTEGER NOT NULL UNIQUE,
    reason     TEXT NOT NULL,
    denied_at  INTEGER NOT NULL
);

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('deny', 0), ('trust', 0);

CREATE TABLE nonces (
    key     BLOB NOT NULL,
    nonce   BLOB NOT NULL,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (key, nonce)
);
CREATE INDEX nonces_seen ON nonces (seen_at);

CREATE TABLE parties (
    key       BLOB PRIMARY KEY,
    role      TEXT NOT NULL,
    name      TEXT NOT NULL,
    not_after INTEGER NOT NULL
);

CREATE TABLE accounts (
    account  BLOB NOT NULL,
    currency TEXT NOT NULL,
    balance  INTEGER NOT NULL CHECK (balance >= 0),
    PRIMARY KEY (account, currency)
);

CREATE TABLE money (
    currency TEXT PRIMARY KEY,
    issued   INTEGER NOT NULL,
    redeemed INTEGER NOT NULL,
    paid_in  INTEGER NOT NULL,
    paid_out INTEGER NOT NULL
);

CREATE TABLE ledger (
    reference TEXT PRIMARY KEY,
    account   BLOB NOT NULL,
    currency  TEXT NOT NULL,
    kind      TEXT NOT NULL,
    amount    INTEGER NOT NULL,
    at        INTEGER NOT NULL
);

CREATE TABLE notices (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient  BLOB NOT NULL,
    kind       TEXT NOT NULL,
    instrument BLOB,
    payload    BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX notices_recipient ON notices (recipient, id);
