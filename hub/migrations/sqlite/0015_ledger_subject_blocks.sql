-- The data-subject index, keyed by the block of 4 096 entries first (seq >> 12): subjects are
-- keyed hashes, so an index led by them took every append to a random page, and each commit
-- wrote one page per entry once the index outgrew the cache. Within the newest block the pages
-- are few and stay cached. A search walks the blocks of its period (hub/src/store/ledger.rs).
DROP INDEX ledger_entries_by_subject;
CREATE INDEX ledger_entries_by_block_subject ON ledger_entries ((seq >> 12), data_subject);
