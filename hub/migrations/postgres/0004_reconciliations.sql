-- Daily reconciliations of the bank's statement against the fee orders and payments: every
-- run's report, for the finance office and the auditors.
CREATE TABLE reconciliations (
    day    TEXT NOT NULL,
    run_at BIGINT NOT NULL,
    report TEXT NOT NULL,
    PRIMARY KEY (day, run_at)
);
