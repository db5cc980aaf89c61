-- The registered-ticket list: one row per instrument, its current holder.
CREATE TABLE instruments (
    id            BYTEA PRIMARY KEY,
    kind          TEXT NOT NULL,
    issuer        BYTEA NOT NULL,
    genesis       BYTEA NOT NULL,
    holder        BYTEA NOT NULL,
    holder_since  BIGINT NOT NULL,
    sequence      BIGINT NOT NULL CHECK (sequence >= 0),
    tip           BYTEA NOT NULL,
    status        TEXT NOT NULL,
    uses_left     BIGINT NOT NULL CHECK (uses_left >= 0),
    former_head   BIGINT,
    currency      TEXT,
    value_minor   BIGINT CHECK (value_minor IS NULL OR value_minor > 0),
    account       BYTEA,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX instruments_holder ON instruments (holder);

-- Registered endorsements: the primary key is what makes two registry
-- processes unable to register two links for one (instrument, sequence).
CREATE TABLE endorsements (
    instrument    BYTEA NOT NULL REFERENCES instruments (id),
    sequence      BIGINT NOT NULL CHECK (sequence > 0),
    digest        BYTEA NOT NULL,
    previous      BYTEA NOT NULL,
    signer        BYTEA NOT NULL,
    new_holder    BYTEA NOT NULL,
    bytes         BYTEA NOT NULL,
    registered_at BIGINT NOT NULL,
    PRIMARY KEY (instrument, sequence)
);

-- Former holders, each linked to the record before it (seed 003 [1466]).
CREATE TABLE former_holders (
    instrument     BYTEA NOT NULL REFERENCES instruments (id),
    from_sequence  BIGINT NOT NULL,
    until_sequence BIGINT NOT NULL,
    holder         BYTEA NOT NULL,
    previous_from  BIGINT,
    recorded_at    BIGINT NOT NULL,
    PRIMARY KEY (instrument, from_sequence),
    FOREIGN KEY (instrument, previous_from) REFERENCES former_holders (instrument, from_sequence)
);

CREATE TABLE equivocations (
    instrument   BYTEA NOT NULL,
    sequence     BIGINT NOT NULL,
    proof_digest BYTEA NOT NULL,
    signer       BYTEA NOT NULL,
    proof        BYTEA NOT NULL,
    recorded_at  BIGINT NOT NULL,
    PRIMARY KEY (instrument, sequence, proof_digest)
);

CREATE TABLE flagged (
    key        BYTEA PRIMARY KEY,
    reason     TEXT NOT NULL,
    flagged_at BIGINT NOT NULL
);

CREATE TABLE denied (
    instrument BYTEA PRIMARY KEY,
    version    BIGINT NOT NULL UNIQUE,
    reason     TEXT NOT NULL,
    denied_at  BIGINT NOT NULL
);

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('deny', 0), ('trust', 0);

CREATE TABLE nonces (
    key     BYTEA NOT NULL,
    nonce   BYTEA NOT NULL,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (key, nonce)
);
CREATE INDEX nonces_seen ON nonces (seen_at);

CREATE TABLE parties (
    key       BYTEA PRIMARY KEY,
    role      TEXT NOT NULL,
    name      TEXT NOT NULL,
    not_after BIGINT NOT NULL
);

CREATE TABLE accounts (
    account  BYTEA NOT NULL,
    currency TEXT NOT NULL,
    balance  BIGINT NOT NULL CHECK (balance >= 0),
    PRIMARY KEY (account, currency)
);

CREATE TABLE money (
    currency TEXT PRIMARY KEY,
    issued   BIGINT NOT NULL,
    redeemed BIGINT NOT NULL,
    paid_in  BIGINT NOT NULL,
    paid_out BIGINT NOT NULL
);

CREATE TABLE ledger (
    reference TEXT PRIMARY KEY,
    account   BYTEA NOT NULL,
    currency  TEXT NOT NULL,
    kind      TEXT NOT NULL,
    amount    BIGINT NOT NULL,
    at        BIGINT NOT NULL
);

CREATE TABLE notices (
    id         BIGSERIAL PRIMARY KEY,
    recipient  BYTEA NOT NULL,
    kind       TEXT NOT NULL,
    instrument BYTEA,
    payload    BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX notices_recipient ON notices (recipient, id);
