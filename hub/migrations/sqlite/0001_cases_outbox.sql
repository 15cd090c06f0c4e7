-- Cases, their history, the transactional outbox and the consumers' applied-event log.
CREATE TABLE cases (
    case_number   TEXT PRIMARY KEY,
    request_id    TEXT NOT NULL UNIQUE,
    state         TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    service_point TEXT NOT NULL,
    department    TEXT,
    snapshot      TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX cases_by_state ON cases (state, department);

CREATE TABLE case_events (
    case_number TEXT NOT NULL REFERENCES cases (case_number),
    seq         BIGINT NOT NULL,
    event_id    TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (case_number, seq)
);

CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT NOT NULL UNIQUE,
    topic        TEXT NOT NULL,
    message_key  TEXT NOT NULL,
    payload      BLOB NOT NULL,
    created_at   BIGINT NOT NULL,
    published_at BIGINT,
    settled_at   BIGINT
);
CREATE INDEX outbox_unpublished ON outbox (published_at, id);

CREATE TABLE processed_events (
    consumer   TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    applied_at BIGINT NOT NULL,
    outcome    TEXT NOT NULL,
    PRIMARY KEY (consumer, event_id)
);

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('case_serial', 0);
