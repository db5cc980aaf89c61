-- Gifts left at the registry for a recipient's account (seed 002 claims
-- 40-41): the instrument is registered to the registry's issuer key until
-- the recipient accepts (to its holder key) or declines (back to the
-- sender's return key). The state changes once, by a conditional update.
CREATE TABLE gifts (
    gift_id       BYTEA PRIMARY KEY,
    instrument    BYTEA NOT NULL REFERENCES instruments (id),
    sender        BYTEA NOT NULL,
    recipient     BYTEA NOT NULL,
    return_holder BYTEA NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'accepted', 'declined')),
    settled_to    BYTEA,
    created_at    BIGINT NOT NULL
);
CREATE INDEX gifts_recipient ON gifts (recipient, state);
