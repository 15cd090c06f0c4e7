-- Matter versions taken from the provincial platform's catalogue: a changed guide is a new
-- version, and cases accepted under it must find it again after a restart.
CREATE TABLE matter_versions (
    implementation_code TEXT NOT NULL,
    version             INTEGER NOT NULL,
    body                TEXT NOT NULL,
    synced_at           BIGINT NOT NULL,
    PRIMARY KEY (implementation_code, version)
);
