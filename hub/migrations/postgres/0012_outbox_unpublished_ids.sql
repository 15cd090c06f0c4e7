-- The relay reads the oldest unpublished ids in id order. Only the unpublished rows are in this
-- index, so that read is an ordered scan of what is left to send, however large the published
-- part of the table or the backlog.
CREATE INDEX outbox_unpublished_ids ON outbox (id) WHERE published_at IS NULL;
