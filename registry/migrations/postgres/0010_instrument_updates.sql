-- Registering an endorsement rewrites its instrument's row. No query reads
-- instruments by holder (every lookup is by id), so the index on holder only
-- made each of those updates insert two index entries and kept it from being
-- a heap-only (HOT) update. Without it, and with room left on each page for
-- the new version, the update touches no index at all. The fill factor
-- applies to pages written from now on.
DROP INDEX IF EXISTS instruments_holder;
ALTER TABLE instruments SET (fillfactor = 70);
