-- Applied-event records are pruned by age.
CREATE INDEX processed_events_by_age ON processed_events (applied_at);
