-- A clerk's token may be bound to the window (窗口) they work.
ALTER TABLE api_tokens ADD COLUMN window_code TEXT;

-- The report figures (办件通报) kept as they happen: each case event's counted facts
-- (hub_core::reports::lines_of), written in the transaction that appends the event, beside the
-- units the case belongs to, so that a period's report is one grouped scan of its days.
CREATE TABLE report_lines (
    case_number TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    figure      TEXT NOT NULL,
    day         INTEGER NOT NULL,
    amount      BIGINT NOT NULL,
    point       TEXT NOT NULL,
    township    TEXT NOT NULL,
    window_code TEXT,
    receiver    TEXT NOT NULL,
    department  TEXT,
    decider     TEXT,
    PRIMARY KEY (case_number, seq, figure)
);
-- A period's report reads its days from this index alone: it holds every column a report filters
-- or groups by, so a township's or a window's month is a range scan, never a row lookup.
CREATE INDEX report_lines_by_day ON report_lines
    (day, figure, amount, township, point, window_code, department, receiver, decider);
