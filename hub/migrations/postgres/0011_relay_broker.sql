-- The cluster id of the broker the outbox was last published to: a relay finding another
-- cluster (a rebuilt one, a memory broker restarted) knows the log it counted on is gone.
CREATE TABLE relay_broker (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    cluster_id TEXT NOT NULL
);
