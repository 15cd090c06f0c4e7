-- What operators must find again after a restart: connector incidents (opened, resolved) and
-- connectors paused by an operator.
CREATE TABLE connector_incidents (
    connector   TEXT NOT NULL,
    id          BIGINT NOT NULL,
    opened_at   BIGINT NOT NULL,
    reason      TEXT NOT NULL,
    resolved_at BIGINT,
    resolved_by TEXT,
    PRIMARY KEY (connector, id)
);

CREATE TABLE connector_pauses (
    connector TEXT PRIMARY KEY,
    reason    TEXT NOT NULL,
    paused_at BIGINT NOT NULL
);
