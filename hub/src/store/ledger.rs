//! The audit ledger's rows: appending sealed entries, reading them back in order, checkpoints.
use std::collections::HashSet;

use anyhow::Context as _;
use sqlx::Row as _;

use super::{now_ms, Store, StoreTx};
use crate::domain::ledger::{seal, Checkpoint, Entry, Hash, Record, StoredEntry, GENESIS};

/// Rows read per round trip when walking the whole ledger.
const PAGE: i64 = 20_000;

fn hash_of(text: &str) -> anyhow::Result<Hash> {
    let bytes = hex::decode(text).with_context(|| format!("ledger hash {text} is not hex"))?;
    Hash::try_from(bytes).map_err(|_| anyhow::anyhow!("ledger hash {text} is not 32 bytes"))
}

fn kind_text(record: &Record) -> String {
    serde_json::to_value(record.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

impl StoreTx<'_> {
    /// Appends the records not yet in the ledger (by source id), in order; answers how many
    /// were new. Callers serialise their appends (one `Ledger` per hub); a second process
    /// appending at the same time fails on the entry number and retries.
    pub async fn append_ledger(&mut self, records: &[Record]) -> anyhow::Result<usize> {
        let tx = &mut *self.tx;
        let mut known = HashSet::new();
        for chunk in records.chunks(500) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!("SELECT source_id FROM ledger_entries WHERE source_id IN ({})", placeholders.join(", "));
            let mut query = sqlx::query(&sql);
            for record in chunk {
                query = query.bind(&record.source_id);
            }
            for row in query.fetch_all(&mut *tx).await? {
                known.insert(row.get::<String, _>(0));
            }
        }
        let tail = sqlx::query("SELECT seq, hash FROM ledger_entries ORDER BY seq DESC LIMIT 1").fetch_optional(&mut *tx).await?;
        let (mut seq, mut previous) = match tail {
            Some(row) => (row.get::<i64, _>(0), hash_of(row.get::<String, _>(1).as_str())?),
            None => (0, GENESIS),
        };
        let recorded_at = now_ms();
        let mut appended = 0;
        for record in records {
            if !known.insert(record.source_id.clone()) {
                continue;
            }
            seq += 1;
            let stored = seal(&Entry { seq, recorded_at, record: record.clone() }, &previous);
            sqlx::query(
                "INSERT INTO ledger_entries (seq, source_id, recorded_at, kind, data_subject, case_number, requester_department, provider, body, previous_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(seq)
            .bind(&record.source_id)
            .bind(recorded_at)
            .bind(kind_text(record))
            .bind(&record.data_subject)
            .bind(&record.case_number)
            .bind(&record.requester_department)
            .bind(&record.provider)
            .bind(String::from_utf8(stored.body)?)
            .bind(hex::encode(stored.previous_hash))
            .bind(hex::encode(stored.hash))
            .execute(&mut *tx)
            .await?;
            previous = stored.hash;
            appended += 1;
        }
        Ok(appended)
    }
}

impl StoreTx<'_> {
    pub async fn save_checkpoint(&mut self, checkpoint: &Checkpoint) -> anyhow::Result<()> {
        sqlx::query("INSERT INTO ledger_checkpoints (size, created_at, body) VALUES ($1, $2, $3)")
            .bind(checkpoint.size)
            .bind(checkpoint.created_at)
            .bind(serde_json::to_string(checkpoint)?)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}

impl Store {
    /// Stored entries from `from` (inclusive), at most `limit`, in order.
    pub async fn ledger_rows(&self, from: i64, limit: i64) -> anyhow::Result<Vec<StoredEntry>> {
        let rows = sqlx::query("SELECT seq, body, previous_hash, hash FROM ledger_entries WHERE seq >= $1 ORDER BY seq LIMIT $2")
            .bind(from)
            .bind(limit)
            .fetch_all(&self.reads)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredEntry {
                    seq: row.get(0),
                    body: row.get::<String, _>(1).into_bytes(),
                    previous_hash: hash_of(row.get::<String, _>(2).as_str())?,
                    hash: hash_of(row.get::<String, _>(3).as_str())?,
                })
            })
            .collect()
    }

    /// Walks every stored entry in order, a page at a time.
    pub async fn walk_ledger(&self, mut visit: impl FnMut(&StoredEntry)) -> anyhow::Result<()> {
        let mut from = 0;
        loop {
            let page = self.ledger_rows(from, PAGE).await?;
            page.iter().for_each(&mut visit);
            match page.last() {
                Some(last) if page.len() as i64 == PAGE => from = last.seq + 1,
                _ => return Ok(()),
            }
        }
    }

    /// Every checkpoint, oldest first.
    pub async fn checkpoints(&self) -> anyhow::Result<Vec<Checkpoint>> {
        let rows = sqlx::query("SELECT body FROM ledger_checkpoints ORDER BY size").fetch_all(&self.reads).await?;
        rows.iter().map(|row| Ok(serde_json::from_str(row.get::<String, _>(0).as_str())?)).collect()
    }

    /// Entries matching the data bureau's search, newest first: by data subject, requesting
    /// department, period, and whether a case stands behind them.
    pub async fn ledger_search(&self, search: &LedgerSearch) -> anyhow::Result<Vec<Entry>> {
        let mut sql = String::from("SELECT body FROM ledger_entries WHERE recorded_at >= $1 AND recorded_at < $2");
        let mut texts: Vec<&str> = Vec::new();
        if let Some(subject) = &search.data_subject {
            texts.push(subject);
            sql.push_str(&format!(" AND data_subject = ${}", texts.len() + 2));
        }
        if let Some(department) = &search.department {
            texts.push(department);
            sql.push_str(&format!(" AND (requester_department = ${n} OR provider = ${n})", n = texts.len() + 2));
        }
        if search.without_case {
            sql.push_str(" AND (case_number IS NULL OR case_number = '')");
        }
        sql.push_str(&format!(" ORDER BY seq DESC LIMIT {}", search.limit.clamp(1, 10_000)));
        let mut query = sqlx::query(&sql).bind(search.from_ms).bind(search.until_ms);
        for text in texts {
            query = query.bind(text);
        }
        let rows = query.fetch_all(&self.reads).await?;
        rows.iter().map(|row| Ok(serde_json::from_str(row.get::<String, _>(0).as_str())?)).collect()
    }
}

/// What the data bureau looks for in the ledger.
#[derive(Debug, Clone)]
pub struct LedgerSearch {
    pub data_subject: Option<String>,
    /// As requester or provider.
    pub department: Option<String>,
    pub from_ms: i64,
    pub until_ms: i64,
    pub without_case: bool,
    pub limit: i64,
}
