-- The digest of each settled bag (its Signed<BagBody>, signature included):
-- a byte-identical re-upload (the gate never got the answer) is answered
-- with the original settlement instead of bag_reused. NULL for bags
-- settled before this column existed; those answer bag_reused as before.
ALTER TABLE bags ADD COLUMN digest BYTEA;
