-- Sales the registry refunded to the buyer (an item went elsewhere, a
-- double-sale proof, or the delivery deadline passed): a delivery bound to
-- one of these offers is refused afterwards.
CREATE TABLE sale_refunds (
    offer_id    BLOB PRIMARY KEY,
    buyer       BLOB NOT NULL,
    reason      TEXT NOT NULL,
    refunded_at INTEGER NOT NULL
);

-- Double-sale proofs: a holder key committed an offered item to another
-- exchange while the offer was open.
CREATE TABLE double_sales (
    offer_id    BLOB NOT NULL,
    item        INTEGER NOT NULL,
    signer      BLOB NOT NULL,
    proof       BLOB NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (offer_id, item)
);
