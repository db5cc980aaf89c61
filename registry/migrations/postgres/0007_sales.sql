-- Sales the registry refunded to the buyer (an item went elsewhere, a
-- double-sale proof, or the delivery deadline passed): a delivery bound to
-- one of these offers is refused afterwards.
CREATE TABLE sale_refunds (
    offer_id    BYTEA PRIMARY KEY,
    buyer       BYTEA NOT NULL,
    reason      TEXT NOT NULL,
    refunded_at BIGINT NOT NULL
);

-- Double-sale proofs: a holder key committed an offered item to another
-- exchange while the offer was open.
CREATE TABLE double_sales (
    offer_id    BYTEA NOT NULL,
    item        BIGINT NOT NULL,
    signer      BYTEA NOT NULL,
    proof       BYTEA NOT NULL,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (offer_id, item)
);
