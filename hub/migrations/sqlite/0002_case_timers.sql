-- The durable deadline timer of each case: the next day a time-limit warning may fall due.
ALTER TABLE cases ADD COLUMN timer_day BIGINT;
CREATE INDEX cases_by_timer ON cases (timer_day) WHERE timer_day IS NOT NULL;
CREATE INDEX case_events_by_kind ON case_events (kind);

-- Every e-mail the hub sent or tried to send, one row per message and recipient.
CREATE TABLE notifications (
    event_id         TEXT NOT NULL,
    recipient        TEXT NOT NULL,
    template         TEXT NOT NULL,
    template_version INTEGER NOT NULL,
    outcome          TEXT NOT NULL,
    sent_at          BIGINT NOT NULL,
    PRIMARY KEY (event_id, recipient)
);
