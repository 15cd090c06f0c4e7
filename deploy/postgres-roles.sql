-- PostgreSQL roles for a production hub. Run once as the database owner after the hub's first
-- start has migrated the schema (or let the owner run migrations, the hub run as hub_app).
--
-- The hub connects as hub_app. It reads and writes the case tables, but the audit ledger only
-- grows: hub_app may insert and select there, never update, delete or truncate. The triggers of
-- migration 0006 refuse changes even to the owner; these grants make the refusal a permission.
CREATE ROLE hub_app LOGIN;
GRANT USAGE ON SCHEMA public TO hub_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO hub_app;
REVOKE UPDATE, DELETE, TRUNCATE ON ledger_entries, ledger_checkpoints FROM hub_app;
GRANT SELECT, INSERT ON ledger_entries, ledger_checkpoints TO hub_app;
