-- The entries' hashes in order, apart from their bodies: a checkpoint builds its Merkle tree from
-- every hash held, and read from the table that meant reading every page of every body (a
-- gigabyte at a million entries). Appends add at this index's end, so it costs them little.
CREATE INDEX ledger_entries_hashes ON ledger_entries (seq, hash);
