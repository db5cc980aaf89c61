-- Used-after-transfer proofs (tessera_core::UsedAfterTransferProof): a
-- holder key presented sequence `sequence` of the instrument at a gate
-- after it had endorsed that sequence on. Built by the registry from a
-- gate's bag and its registered links; stored once (keyed like
-- equivocations), the signer flagged in `flagged`.
CREATE TABLE used_after_transfer (
    instrument   BYTEA NOT NULL,
    sequence     BIGINT NOT NULL,
    proof_digest BYTEA NOT NULL,
    signer       BYTEA NOT NULL,
    proof        BYTEA NOT NULL,
    recorded_at  BIGINT NOT NULL,
    PRIMARY KEY (instrument, sequence, proof_digest)
);

-- The holder's signed answer (Signed<PresentationBody>) of each admission
-- settled from a bag, so that a link registered after the bag (the buyer
-- reconciling later) is checked against the admissions before it. NULL
-- for refusals and for records settled before this column existed.
ALTER TABLE examinations ADD COLUMN answer BYTEA;
CREATE INDEX examinations_answered ON examinations (instrument) WHERE answer IS NOT NULL;
