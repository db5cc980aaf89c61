-- The references from endorsements and former-holder records, checked once
-- per statement instead of once per row.
--
-- A foreign key runs one `SELECT ... FOR KEY SHARE` on the referenced table
-- for every inserted row: 18 of the ~45 µs the server spent per registered
-- endorsement (docs/benchmarks.md). Ingest inserts a batch of a thousand
-- rows in one statement, so the same rule is enforced here by one anti-join
-- over the statement's new rows, after the statement, in the same
-- transaction: an endorsement or former-holder record whose instrument does
-- not exist, or a former-holder record whose previous record does not, still
-- fails the statement (SQLSTATE 23503, foreign_key_violation) and rolls the
-- transaction back, whoever the writer is.
--
-- What the key's row lock gave -- the referenced row cannot vanish under a
-- concurrent writer -- comes from refusing, in the database, every delete of
-- an instrument or a former-holder record and every change of their keys:
-- nothing in the registry deletes either, and the registered-ticket list
-- keeps its history by design (DESIGN §3.3).
ALTER TABLE endorsements DROP CONSTRAINT endorsements_instrument_fkey;
ALTER TABLE former_holders DROP CONSTRAINT former_holders_instrument_fkey;
ALTER TABLE former_holders DROP CONSTRAINT former_holders_instrument_previous_from_fkey;

-- Run after each statement that inserts into or updates endorsements or
-- former_holders, over the statement's new rows: two anti-joins, each
-- probing a primary key (one query with both conditions under an OR cannot
-- be planned as a join and would scan).
CREATE FUNCTION check_references() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    missing BYTEA;
BEGIN
    SELECT n.instrument INTO missing FROM new_rows n
    WHERE NOT EXISTS (SELECT 1 FROM instruments i WHERE i.id = n.instrument)
    LIMIT 1;
    IF NOT FOUND AND TG_TABLE_NAME = 'former_holders' THEN
        -- Planned on first use, per table (PL/pgSQL compiles a trigger
        -- function once per table), so endorsements never plan it.
        SELECT n.instrument INTO missing FROM new_rows n
        WHERE n.previous_from IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM former_holders f WHERE f.instrument = n.instrument AND f.from_sequence = n.previous_from)
        LIMIT 1;
    END IF;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'insert or update on table "%" violates its references', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Instrument %s, or the previous former-holder record, is not present.',
                                  encode(missing, 'hex'));
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION refuse_history_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on table "%" is refused: the registered-ticket list keeps its history', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER endorsements_reference_instruments
    AFTER INSERT ON endorsements REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION check_references();
CREATE TRIGGER endorsements_reference_instruments_on_update
    AFTER UPDATE ON endorsements REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION check_references();
CREATE TRIGGER former_holders_references
    AFTER INSERT ON former_holders REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION check_references();
CREATE TRIGGER former_holders_references_on_update
    AFTER UPDATE ON former_holders REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION check_references();

CREATE TRIGGER instruments_keep_history
    BEFORE DELETE OR TRUNCATE ON instruments
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_history_change();
CREATE TRIGGER instruments_keep_ids
    BEFORE UPDATE OF id ON instruments
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION refuse_history_change();
CREATE TRIGGER former_holders_keep_history
    BEFORE DELETE OR TRUNCATE ON former_holders
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_history_change();
CREATE TRIGGER former_holders_keep_keys
    BEFORE UPDATE OF instrument, from_sequence ON former_holders
    FOR EACH ROW WHEN (OLD.instrument IS DISTINCT FROM NEW.instrument OR OLD.from_sequence IS DISTINCT FROM NEW.from_sequence)
    EXECUTE FUNCTION refuse_history_change();
