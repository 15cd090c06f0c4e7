-- PostgreSQL roles for a production hub. Run once as the database owner after the hub's first
-- start has migrated the schema (or let the owner run migrations, the hub run as hub_app).
--
-- The hub connects as hub_app. It reads and writes the case tables, but the audit ledger only
-- grows: hub_app may insert and select there, never update or truncate. The triggers of
-- migrations 0006 and 0008 refuse changes even to the owner; these grants make the refusal a
-- permission. The one removal allowed is retention's: hub_app may delete ledger entries, and the
-- trigger lets only entries an archive holds go (an archive row is itself insert-only, and
-- `hub audit verify` checks every archive file against the digest recorded with it).
CREATE ROLE hub_app LOGIN;
GRANT USAGE ON SCHEMA public TO hub_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO hub_app;
-- The outbox, case serials and other identities draw from sequences.
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO hub_app;
REVOKE UPDATE, DELETE, TRUNCATE ON ledger_entries, ledger_checkpoints, ledger_archives FROM hub_app;
GRANT SELECT, INSERT ON ledger_entries, ledger_checkpoints, ledger_archives TO hub_app;
GRANT DELETE ON ledger_entries TO hub_app;
