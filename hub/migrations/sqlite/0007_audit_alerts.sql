-- Alerts of the data bureau's anomaly rules over the audit ledger (see hub/src/domain/anomaly.rs);
-- each is also published on hub.audit.alerts in the transaction that appends its entries.
CREATE TABLE audit_alerts (
    id          TEXT PRIMARY KEY,
    rule        TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX audit_alerts_by_time ON audit_alerts (occurred_at);
