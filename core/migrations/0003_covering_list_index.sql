-- Wallet schema, version 3: the list index covers every column the list
-- query reads, so a list walks the index alone and never touches the table
-- rows, whose `encoded` blobs (~600 bytes each) made the scan read the whole
-- file (measured in core/benches/wallet_open.rs). It replaces the
-- order-only index of version 2.
CREATE INDEX instruments_list ON instruments (
    updated_at DESC, id, kind, holding, label, currency, amount, event_id, valid_until, uses_left, status, sequence
);
DROP INDEX instruments_by_update;
