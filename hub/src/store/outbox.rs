//! The transactional outbox: events written with the state change that caused them, published
//! by the relay, and the record of what each consumer has applied (idempotent consumers).
use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::Context as _;
use async_trait::async_trait;
use bus::{Effect, Outbox, OutboxMessage, OutboxStore};
use contracts::Event;
use sqlx::Row;

use super::{now_ms, text, Backend, Param, Params, Store, StoreTx, ROWS_PER_STATEMENT};

impl Store {
    /// Messages written to each topic through the outbox.
    pub async fn messages_per_topic(&self) -> anyhow::Result<BTreeMap<String, i64>> {
        let rows = sqlx::query("SELECT topic, COUNT(*) FROM outbox GROUP BY topic").fetch_all(&self.reads).await?;
        Ok(rows.iter().map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1))).collect())
    }

    /// Number of messages written through the outbox and their mean size in bytes.
    pub async fn outbox_volume(&self) -> anyhow::Result<(i64, usize)> {
        let row = sqlx::query("SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM outbox")
            .fetch_one(&self.reads)
            .await?;
        let (count, bytes): (i64, i64) = (row.get(0), row.get(1));
        Ok((count, if count == 0 { 0 } else { (bytes / count) as usize }))
    }

    /// Removes outbox messages published before `published_before` and applied-event records
    /// older than `applied_before` (epoch ms), a slice at a time so writers are never held up
    /// long; answers how many of each went.
    pub async fn prune(&self, published_before: i64, applied_before: i64) -> anyhow::Result<(u64, u64)> {
        const SLICE: i64 = 10_000;
        let mut removed = (0, 0);
        loop {
            let gone = sqlx::query(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE published_at IS NOT NULL AND published_at < $1 LIMIT $2)",
            )
            .bind(published_before)
            .bind(SLICE)
            .execute(&self.pool)
            .await?
            .rows_affected();
            removed.0 += gone;
            if gone < SLICE as u64 {
                break;
            }
        }
        loop {
            let gone = sqlx::query(
                "DELETE FROM processed_events WHERE (consumer, event_id) IN \
                 (SELECT consumer, event_id FROM processed_events WHERE applied_at < $1 LIMIT $2)",
            )
            .bind(applied_before)
            .bind(SLICE)
            .execute(&self.pool)
            .await?
            .rows_affected();
            removed.1 += gone;
            if gone < SLICE as u64 {
                break;
            }
        }
        Ok(removed)
    }

    /// Makes the outbox publish again every event that some consumer named in the catalogue
    /// has not applied yet, and marks the rest settled. The relay runs it when the broker turns
    /// out to be another cluster (an embedded broker after a restart starts empty), so whatever
    /// was in flight is sent again; idempotent consumers drop what they had already applied.
    pub async fn resettle_outbox(&self) -> anyhow::Result<(u64, u64)> {
        let now = now_ms();
        let (mut republished, mut settled) = (0, 0);
        for topic in &self.catalogue.topics {
            if topic.consumers.is_empty() {
                continue;
            }
            let consumers: Vec<String> =
                topic.consumers.iter().map(|c| format!("'{}'", c.replace('\'', "''"))).collect();
            let applied_by_all = format!(
                "(SELECT COUNT(*) FROM processed_events p WHERE p.event_id = outbox.event_id AND p.consumer IN ({})) = {}",
                consumers.join(","),
                consumers.len()
            );
            settled += sqlx::query(&format!(
                "UPDATE outbox SET settled_at = $1 WHERE topic = $2 AND settled_at IS NULL AND {applied_by_all}"
            ))
            .bind(now)
            .bind(&topic.name)
            .execute(&self.pool)
            .await?
            .rows_affected();
            republished += sqlx::query("UPDATE outbox SET published_at = NULL WHERE topic = $1 AND settled_at IS NULL AND published_at IS NOT NULL")
                .bind(&topic.name)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok((republished, settled))
    }
}

/// Which of `event_ids` `consumer` has already applied, as `connection` sees it.
async fn applied_in(
    connection: &mut sqlx::AnyConnection,
    backend: Backend,
    consumer: &str,
    event_ids: &[&str],
) -> anyhow::Result<HashSet<String>> {
    let mut applied = HashSet::new();
    for chunk in event_ids.chunks(ROWS_PER_STATEMENT) {
        let mut params = Params::new(backend);
        let sql = format!(
            "SELECT event_id FROM processed_events WHERE consumer = {} AND event_id IN ({})",
            params.next(),
            params.list(chunk.len())
        );
        let mut query = sqlx::query(&sql).bind(consumer);
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *connection).await? {
            applied.insert(row.get::<String, _>(0));
        }
    }
    Ok(applied)
}

impl StoreTx<'_> {
    /// Which of `event_ids` `consumer` has already applied.
    pub async fn applied_among(&mut self, consumer: &str, event_ids: &[&str]) -> anyhow::Result<HashSet<String>> {
        applied_in(&mut self.tx, self.store.backend, consumer, event_ids).await
    }

    /// Records that `consumer` applied each `(event_id, outcome)`; ones recorded before stay as they were.
    pub async fn mark_applied(&mut self, consumer: &str, applied: &[(&str, &str)]) -> anyhow::Result<()> {
        let marks: Vec<(&str, &str, &str)> = applied.iter().map(|(id, outcome)| (consumer, *id, *outcome)).collect();
        self.mark_applied_by(&marks).await
    }

    /// `mark_applied` for `(consumer, event_id, outcome)` of several consumers at once.
    pub async fn mark_applied_by(&mut self, applied: &[(&str, &str, &str)]) -> anyhow::Result<()> {
        let now = now_ms();
        let rows = applied
            .iter()
            .map(|(consumer, event_id, outcome)| vec![text(consumer), text(event_id), Param::Int(now), text(outcome)])
            .collect();
        self.execute_rows(
            "INSERT INTO processed_events (consumer, event_id, applied_at, outcome)",
            "ON CONFLICT DO NOTHING",
            rows,
        )
        .await
    }

    /// Writes events to the outbox, in order, each to the topic the catalogue assigns its record.
    pub async fn enqueue(&mut self, events: &[Event]) -> anyhow::Result<()> {
        let now = now_ms();
        let rows = events
            .iter()
            .map(|event| {
                let record = event.record_name();
                let topic = self
                    .store
                    .catalogue
                    .topic_of(&record)
                    .with_context(|| format!("no topic in the catalogue carries {record}"))?;
                Ok(vec![
                    text(event.event_id()),
                    text(&topic.name),
                    text(event.case_number()),
                    Param::Bytes(contracts::encode(event)?),
                    Param::Int(now),
                ])
            })
            .collect::<anyhow::Result<_>>()?;
        self.execute_rows(
            "INSERT INTO outbox (event_id, topic, message_key, payload, created_at)",
            "ON CONFLICT DO NOTHING",
            rows,
        )
        .await?;
        self.enqueued |= !events.is_empty();
        Ok(())
    }
}

#[async_trait]
impl OutboxStore for Store {
    async fn unpublished_ids(&self, after: i64, limit: i64) -> anyhow::Result<Vec<i64>> {
        let query = sqlx::query("SELECT id FROM outbox WHERE published_at IS NULL AND id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(limit);
        let rows = match self.backend {
            Backend::Sqlite => query.fetch_all(&self.reads).await?,
            Backend::Postgres => {
                // Statistics taken before a backlog built up count few unpublished rows, and the
                // planner then collects them all to sort (measured: 0.4 s a read at 300,000
                // left). Without sorting, the read is an ordered scan of the partial index.
                let mut tx = self.reads.begin().await?;
                sqlx::query("SET LOCAL enable_sort = off").execute(&mut *tx).await?;
                let rows = query.fetch_all(&mut *tx).await?;
                tx.commit().await?;
                rows
            }
        };
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn messages(&self, ids: &[i64]) -> anyhow::Result<Vec<OutboxMessage>> {
        let mut messages = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "SELECT id, topic, message_key, payload FROM outbox WHERE id IN ({}) ORDER BY id",
                Params::new(self.backend).list(chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            messages.extend(query.fetch_all(&self.reads).await?.iter().map(outbox_message));
        }
        Ok(messages)
    }

    async fn unpublished_messages(&self, after: i64, limit: i64) -> anyhow::Result<Vec<OutboxMessage>> {
        let rows = sqlx::query(
            "SELECT id, topic, message_key, payload FROM outbox WHERE published_at IS NULL AND id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.reads)
        .await?;
        Ok(rows.iter().map(outbox_message).collect())
    }

    fn ids_follow_commit_order(&self) -> bool {
        self.backend == Backend::Sqlite
    }

    async fn mark_published(&self, ids: &[i64]) -> anyhow::Result<()> {
        let now = now_ms();
        for chunk in ids.chunks(500) {
            let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
            sqlx::query(&format!("UPDATE outbox SET published_at = $1 WHERE id IN ({})", list.join(",")))
                .bind(now)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    async fn broker_cluster(&self) -> anyhow::Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT cluster_id FROM relay_broker").fetch_optional(&self.pool).await?)
    }

    async fn keep_broker_cluster(&self, cluster: &str) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO relay_broker (singleton, cluster_id) VALUES (1, $1) \
             ON CONFLICT (singleton) DO UPDATE SET cluster_id = excluded.cluster_id",
        )
        .bind(cluster)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

impl Store {
    /// `Outbox::apply_all` for several consumers' effects (a consumer may come more than once)
    /// in one transaction; per request, whether each effect was newly applied.
    pub async fn apply_each(&self, requests: &[(&str, &[Effect])]) -> anyhow::Result<Vec<Vec<bool>>> {
        let mut tx = self.begin().await?;
        let mut consumers: Vec<&str> = requests.iter().map(|(consumer, _)| *consumer).collect();
        consumers.sort_unstable();
        consumers.dedup();
        let mut seen = HashMap::new();
        for consumer in consumers {
            let ids: Vec<&str> = requests
                .iter()
                .filter(|(of, _)| *of == consumer)
                .flat_map(|(_, effects)| effects.iter().map(|e| e.source_event_id.as_str()))
                .collect();
            seen.insert(consumer, tx.applied_among(consumer, &ids).await?);
        }
        let mut marks = Vec::new();
        let mut events = Vec::new();
        let mut fresh = Vec::with_capacity(requests.len());
        for (consumer, effects) in requests {
            let seen = seen.get_mut(consumer).expect("looked up above");
            fresh.push(
                effects
                    .iter()
                    .map(|effect| {
                        let new = seen.insert(effect.source_event_id.clone());
                        if new {
                            marks.push((*consumer, effect.source_event_id.as_str(), "applied"));
                            events.extend(effect.events.iter().cloned());
                        }
                        new
                    })
                    .collect(),
            );
        }
        tx.mark_applied_by(&marks).await?;
        tx.enqueue(&events).await?;
        tx.commit().await?;
        Ok(fresh)
    }
}

#[async_trait]
impl Outbox for Store {
    async fn applied_among(&self, consumer: &str, source_event_ids: &[&str]) -> anyhow::Result<HashSet<String>> {
        // A look, not a claim: `apply_all` checks again in its transaction, so this needs no
        // turn at SQLite's one writer.
        let mut connection = self.reads.acquire().await?;
        applied_in(&mut connection, self.backend, consumer, source_event_ids).await
    }

    async fn apply_all(&self, consumer: &str, effects: &[Effect]) -> anyhow::Result<Vec<bool>> {
        Ok(self.apply_each(&[(consumer, effects)]).await?.remove(0))
    }
}

/// A row of `id, topic, message_key, payload` from the outbox.
fn outbox_message(row: &sqlx::any::AnyRow) -> OutboxMessage {
    OutboxMessage { id: row.get(0), topic: row.get(1), key: row.get(2), payload: row.get(3) }
}
