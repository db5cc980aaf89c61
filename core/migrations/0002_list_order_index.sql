-- Wallet schema, version 2: the list query orders by (updated_at DESC, id);
-- without this index SQLite sorts every row on each list (measured in
-- core/benches/wallet_open.rs).
CREATE INDEX instruments_by_update ON instruments (updated_at DESC, id);
