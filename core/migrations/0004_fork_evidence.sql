-- Wallet schema, version 4: chains the wallet refused as a fork against a
-- registered certificate it holds. The wallet cannot prove such a fork
-- itself (the certificate carries only a digest of the registered link),
-- so it keeps the refused chain and uploads it at its next reconciliation;
-- the registry, which stores the registered link, builds the proof. A row
-- is deleted once the registry has answered for its instrument. The wallet
-- keeps at most `MAX_FORK_EVIDENCE` rows (core/src/wallet.rs).
CREATE TABLE fork_evidence (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    instrument_id BLOB NOT NULL,
    tip BLOB NOT NULL,
    encoded BLOB NOT NULL,
    kept_at INTEGER NOT NULL,
    UNIQUE (instrument_id, tip)
);
