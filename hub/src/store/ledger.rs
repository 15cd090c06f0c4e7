//! The audit ledger's rows: appending sealed entries, reading them back in order, checkpoints.
use std::borrow::Borrow;
use std::collections::HashSet;

use anyhow::Context as _;
use sqlx::Row as _;

use super::{now_ms, Backend, Param, Params, Store, StoreTx, ROWS_PER_STATEMENT};
use hub_core::anomaly::Alert;
use hub_core::ledger::{seal, Checkpoint, Entry, Hash, MerkleRoot, Record, SearchColumns, StoredEntry, GENESIS};

/// Rows read per round trip when walking the whole ledger.
pub const LEDGER_PAGE: i64 = 1_000;

fn hash_of(text: &str) -> anyhow::Result<Hash> {
    let mut hash: Hash = [0; 32];
    const_hex::decode_to_slice(text, &mut hash)
        .with_context(|| format!("ledger hash {text} is not 32 bytes of hex"))?;
    Ok(hash)
}

/// A sealed entry as the parameters of its row in `ledger_entries`.
fn ledger_row(stored: StoredEntry) -> anyhow::Result<Vec<Param>> {
    let columns = stored.columns;
    Ok(vec![
        Param::Int(stored.seq),
        Param::Text(columns.source_id),
        Param::Int(columns.recorded_at),
        Param::Text(columns.kind),
        Param::MaybeText(columns.data_subject),
        Param::MaybeText(columns.case_number),
        Param::Text(columns.requester_department),
        Param::Text(columns.provider),
        Param::Text(String::from_utf8(stored.body)?),
        Param::Text(const_hex::encode(stored.previous_hash)),
        Param::Text(const_hex::encode(stored.hash)),
    ])
}

/// Source ids asked about per query.
const KNOWN_CHUNK: usize = 1_000;

/// Which of `records` the ledger holds, by source id (at most `KNOWN_CHUNK` at a time).
async fn known_source_ids<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    backend: Backend,
    records: &[impl Borrow<Record>],
) -> anyhow::Result<Vec<String>> {
    let placeholders = Params::new(backend).list(records.len());
    let sql = format!("SELECT source_id FROM ledger_entries WHERE source_id IN ({placeholders})");
    let mut query = sqlx::query(&sql);
    for record in records {
        query = query.bind(&record.borrow().source_id);
    }
    Ok(query.fetch_all(executor).await?.iter().map(|row| row.get::<String, _>(0)).collect())
}

impl StoreTx<'_> {
    /// Takes the ledger for the rest of this transaction: each entry chains to the one before,
    /// so appends (and checkpoints, archives) go one at a time across every instance. SQLite's
    /// single writer already serialises them.
    pub async fn lock_ledger(&mut self) -> anyhow::Result<()> {
        if self.store.backend == Backend::Postgres {
            sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock(hashtext(current_schema()), hashtext('hub.ledger'))) AS locked")
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    /// Entries after `seq`, in order: what other instances appended since this one last looked.
    pub async fn ledger_entries_after(&mut self, seq: i64) -> anyhow::Result<Vec<Entry>> {
        let rows = sqlx::query("SELECT body FROM ledger_entries WHERE seq > $1 ORDER BY seq")
            .bind(seq)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(|row| Ok(serde_json::from_str(row.get::<String, _>(0).as_str())?)).collect()
    }

    /// Appends the records not yet in the ledger (by source id), in order; answers the entries
    /// they became.
    pub async fn append_ledger(&mut self, records: &[&Record]) -> anyhow::Result<Vec<Entry>> {
        self.lock_ledger().await?;
        let backend = self.store.backend;
        let mut known = HashSet::new();
        for chunk in records.chunks(KNOWN_CHUNK) {
            known.extend(known_source_ids(&mut *self.tx, backend, chunk).await?);
        }
        // The chain goes on from the last entry held or, when every entry is archived, from the
        // last one archived.
        let tail = sqlx::query(
            "SELECT seq, hash FROM (SELECT seq, hash FROM ledger_entries ORDER BY seq DESC LIMIT 1) AS held \
             UNION ALL SELECT last_seq, last_hash FROM (SELECT last_seq, last_hash FROM ledger_archives ORDER BY last_seq DESC LIMIT 1) AS archived \
             ORDER BY 1 DESC LIMIT 1",
        )
        .fetch_optional(&mut *self.tx)
        .await?;
        let (mut seq, mut previous) = match tail {
            Some(row) => (row.get::<i64, _>(0), hash_of(row.get::<String, _>(1).as_str())?),
            None => (0, GENESIS),
        };
        let recorded_at = now_ms();
        let mut appended = Vec::new();
        let mut new_records = records.iter().filter(|record| known.insert(record.source_id.clone()));
        // Sealing (JSON, SHA-256, hex) costs about what SQLite's insert does: the next chunk is
        // sealed on this thread while SQLite's own thread inserts the one before.
        let mut seal_chunk = |appended: &mut Vec<Entry>| -> anyhow::Result<Vec<Vec<Param>>> {
            let mut rows = Vec::with_capacity(ROWS_PER_STATEMENT);
            for record in new_records.by_ref().take(ROWS_PER_STATEMENT) {
                seq += 1;
                let entry = Entry { seq, recorded_at, record: (*record).clone() };
                let stored = seal(&entry, &previous);
                previous = stored.hash;
                rows.push(ledger_row(stored)?);
                appended.push(entry);
            }
            Ok(rows)
        };
        let head = "INSERT INTO ledger_entries (seq, source_id, recorded_at, kind, data_subject, case_number, requester_department, provider, body, previous_hash, hash)";
        let mut chunk = seal_chunk(&mut appended)?;
        while !chunk.is_empty() {
            let (inserted, next) =
                futures::join!(self.execute_rows(head, "", chunk), async { seal_chunk(&mut appended) });
            inserted?;
            chunk = next?;
        }
        Ok(appended)
    }

    /// Records an archive and removes the entries it holds (the database allows removing only
    /// entries an archive holds).
    pub async fn archive_entries(&mut self, archive: &ArchiveRecord) -> anyhow::Result<()> {
        sqlx::query("INSERT INTO ledger_archives (first_seq, last_seq, last_hash, file_name, sha256, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(archive.first_seq)
            .bind(archive.last_seq)
            .bind(hex::encode(archive.last_hash))
            .bind(&archive.file_name)
            .bind(&archive.sha256)
            .bind(archive.created_at)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query("DELETE FROM ledger_entries WHERE seq >= $1 AND seq <= $2")
            .bind(archive.first_seq)
            .bind(archive.last_seq)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Keeps the anomaly alerts not kept yet (by id).
    pub async fn save_alerts(&mut self, alerts: &[Alert]) -> anyhow::Result<()> {
        for alert in alerts {
            sqlx::query(
                "INSERT INTO audit_alerts (id, rule, occurred_at, body) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(&alert.id)
            .bind(alert.rule.code())
            .bind(alert.occurred_at)
            .bind(serde_json::to_string(alert)?)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
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
    /// Stored entries numbered `from` to `from + count - 1`, in order, with their search
    /// columns. The rows come as one joined value: the driver's cost per row, not hashing,
    /// bounded how fast the ledger verified. Neither hex nor JSON (which escapes control
    /// characters) holds the separators, nor the mark of an absent value.
    pub async fn ledger_rows(&self, from: i64, count: i64) -> anyhow::Result<Vec<StoredEntry>> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT group_concat(seq || char(31) || previous_hash || char(31) || hash || char(31) || source_id || char(31) \
                 || recorded_at || char(31) || kind || char(31) || COALESCE(data_subject, char(21)) || char(31) \
                 || COALESCE(case_number, char(21)) || char(31) || requester_department || char(31) || provider || char(31) || body, char(30)) \
                 FROM (SELECT * FROM ledger_entries WHERE seq >= $1 AND seq < $2 ORDER BY seq)"
            }
            Backend::Postgres => {
                "SELECT string_agg(seq::text || chr(31) || previous_hash || chr(31) || hash || chr(31) || source_id || chr(31) \
                 || recorded_at::text || chr(31) || kind || chr(31) || COALESCE(data_subject, chr(21)) || chr(31) \
                 || COALESCE(case_number, chr(21)) || chr(31) || requester_department || chr(31) || provider || chr(31) || body, chr(30) ORDER BY seq) \
                 FROM ledger_entries WHERE seq >= $1 AND seq < $2"
            }
        };
        let joined: Option<String> =
            sqlx::query(sql).bind(from).bind(from + count).fetch_one(&self.reads).await?.get(0);
        let Some(joined) = joined else { return Ok(Vec::new()) };
        joined
            .split('\u{1e}')
            .map(|row| {
                let mut fields = row.splitn(11, '\u{1f}');
                let mut field = || fields.next().context("a ledger row lacks a field");
                let seq = field()?.parse()?;
                let (previous_hash, hash) = (hash_of(field()?)?, hash_of(field()?)?);
                let maybe = |text: &str| (text != "\u{15}").then(|| text.to_string());
                let columns = SearchColumns {
                    source_id: field()?.to_string(),
                    recorded_at: field()?.parse()?,
                    kind: field()?.to_string(),
                    data_subject: maybe(field()?),
                    case_number: maybe(field()?),
                    requester_department: field()?.to_string(),
                    provider: field()?.to_string(),
                };
                Ok(StoredEntry { seq, previous_hash, hash, columns, body: field()?.as_bytes().to_vec() })
            })
            .collect()
    }

    /// The first and last entry numbers, if any.
    pub async fn ledger_bounds(&self) -> anyhow::Result<Option<(i64, i64)>> {
        let row = sqlx::query("SELECT MIN(seq), MAX(seq) FROM ledger_entries").fetch_one(&self.reads).await?;
        Ok(row.get::<Option<i64>, _>(0).zip(row.get::<Option<i64>, _>(1)))
    }

    /// Which of these facts the ledger holds already (a read, outside any transaction).
    pub async fn ledger_known(&self, records: &[&Record]) -> anyhow::Result<HashSet<String>> {
        let mut known = HashSet::new();
        for chunk in records.chunks(KNOWN_CHUNK) {
            known.extend(known_source_ids(&self.reads, self.backend, chunk).await?);
        }
        Ok(known)
    }

    /// The last entry recorded before `before_ms`, if any is held.
    pub async fn ledger_last_recorded_before(&self, before_ms: i64) -> anyhow::Result<Option<i64>> {
        Ok(sqlx::query("SELECT MAX(seq) FROM ledger_entries WHERE recorded_at < $1")
            .bind(before_ms)
            .fetch_one(&self.reads)
            .await?
            .get(0))
    }

    /// The archives made so far, oldest first.
    pub async fn ledger_archives(&self) -> anyhow::Result<Vec<ArchiveRecord>> {
        let rows = sqlx::query("SELECT first_seq, last_seq, last_hash, file_name, sha256, created_at FROM ledger_archives ORDER BY first_seq").fetch_all(&self.reads).await?;
        rows.iter()
            .map(|row| {
                let last_hash = hash_of(row.get::<String, _>(2).as_str())?;
                Ok(ArchiveRecord {
                    first_seq: row.get(0),
                    last_seq: row.get(1),
                    last_hash,
                    file_name: row.get(3),
                    sha256: row.get(4),
                    created_at: row.get(5),
                })
            })
            .collect()
    }

    /// Stored entries recorded in `[from_ms, until_ms)`, in order.
    pub async fn ledger_rows_recorded(&self, from_ms: i64, until_ms: i64) -> anyhow::Result<Vec<StoredEntry>> {
        let range =
            sqlx::query("SELECT MIN(seq), MAX(seq) FROM ledger_entries WHERE recorded_at >= $1 AND recorded_at < $2")
                .bind(from_ms)
                .bind(until_ms)
                .fetch_one(&self.reads)
                .await?;
        match (range.get::<Option<i64>, _>(0), range.get::<Option<i64>, _>(1)) {
            (Some(first), Some(last)) => self.ledger_rows(first, last - first + 1).await,
            _ => Ok(Vec::new()),
        }
    }

    /// Where the pages of the whole ledger start, for reading it a page at a time.
    pub async fn ledger_pages(&self) -> anyhow::Result<std::iter::StepBy<std::ops::RangeInclusive<i64>>> {
        let (first, last) = self.ledger_bounds().await?.unwrap_or((1, 0));
        Ok((first..=last).step_by(LEDGER_PAGE as usize))
    }

    /// Walks every stored entry in order, a page at a time.
    pub async fn walk_ledger(&self, mut visit: impl FnMut(&StoredEntry)) -> anyhow::Result<()> {
        for from in self.ledger_pages().await? {
            self.ledger_rows(from, LEDGER_PAGE).await?.iter().for_each(&mut visit);
        }
        Ok(())
    }

    /// The hashes of entries `first` to `last`, in order: what a proof of inclusion is walked in.
    pub async fn ledger_hashes(&self, first: i64, last: i64) -> anyhow::Result<Vec<Hash>> {
        // Sized once: a million hashes grown by doubling would fault in fresh pages each time.
        let mut hashes = Vec::with_capacity(usize::try_from(last - first + 1).unwrap_or_default());
        self.each_ledger_hash_page(first, last, |page| hashes.extend_from_slice(page)).await?;
        Ok(hashes)
    }

    /// The Merkle root over entries `first` to `last`, built a page at a time without holding
    /// the hashes: what a checkpoint signs.
    pub async fn ledger_tree(&self, first: i64, last: i64) -> anyhow::Result<MerkleRoot> {
        let mut tree = MerkleRoot::default();
        self.each_ledger_hash_page(first, last, |page| tree.push(page)).await?;
        Ok(tree)
    }

    /// The hashes of entries `first` to `last`, in order, a page at a time, read without the
    /// bodies (on SQLite from their own index); an error if any of them is missing.
    async fn each_ledger_hash_page(&self, first: i64, last: i64, mut visit: impl FnMut(&[Hash])) -> anyhow::Result<()> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT group_concat(hash, '') FROM (SELECT hash FROM ledger_entries INDEXED BY ledger_entries_hashes WHERE seq >= $1 AND seq < $2 ORDER BY seq)"
            }
            Backend::Postgres => "SELECT string_agg(hash, '' ORDER BY seq) FROM ledger_entries WHERE seq >= $1 AND seq < $2",
        };
        let (mut page, mut read) = (Vec::new(), 0);
        for from in (first..=last).step_by(LEDGER_PAGE as usize) {
            let joined: Option<String> = sqlx::query(sql)
                .bind(from)
                .bind((from + LEDGER_PAGE).min(last + 1))
                .fetch_one(&self.reads)
                .await?
                .get(0);
            let bytes = hex::decode(joined.unwrap_or_default()).context("a ledger hash is not hex")?;
            anyhow::ensure!(bytes.len() % 32 == 0, "a ledger hash is not 32 bytes");
            page.clear();
            page.extend(bytes.chunks_exact(32).map(|hash| Hash::try_from(hash).expect("chunks of 32")));
            read += page.len() as i64;
            visit(&page);
        }
        anyhow::ensure!(read == last - first + 1, "the ledger has gaps between {first} and {last}");
        Ok(())
    }

    /// Every checkpoint, oldest first.
    pub async fn checkpoints(&self) -> anyhow::Result<Vec<Checkpoint>> {
        let rows = sqlx::query("SELECT body FROM ledger_checkpoints ORDER BY size").fetch_all(&self.reads).await?;
        rows.iter().map(|row| Ok(serde_json::from_str(row.get::<String, _>(0).as_str())?)).collect()
    }

    /// The newest checkpoint, if any (read alone: a year of checkpoints is thousands).
    pub async fn newest_checkpoint(&self) -> anyhow::Result<Option<Checkpoint>> {
        let row = sqlx::query("SELECT body FROM ledger_checkpoints ORDER BY size DESC LIMIT 1")
            .fetch_optional(&self.reads)
            .await?;
        row.map(|row| Ok(serde_json::from_str(row.get::<String, _>(0).as_str())?)).transpose()
    }

    /// Exchanges per China-Standard-Time day (days since 1970-01-01) and pair of parties
    /// (requesting department, provider) recorded in `[from_ms, until_ms)`.
    pub async fn ledger_volume(&self, from_ms: i64, until_ms: i64) -> anyhow::Result<Vec<(i32, String, String, i64)>> {
        let rows = sqlx::query(
            "SELECT (recorded_at + 28800000) / 86400000 AS day, requester_department, provider, COUNT(*) FROM ledger_entries \
             WHERE kind = 'exchange' AND recorded_at >= $1 AND recorded_at < $2 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        )
        .bind(from_ms)
        .bind(until_ms)
        .fetch_all(&self.reads)
        .await?;
        Ok(rows.iter().map(|row| (row.get::<i64, _>(0) as i32, row.get(1), row.get(2), row.get(3))).collect())
    }

    /// Entries matching the data bureau's search, newest first: by data subject, requesting
    /// department, period, and whether a case stands behind them.
    pub async fn ledger_search(&self, search: &LedgerSearch) -> anyhow::Result<Vec<Entry>> {
        let mut texts: Vec<&str> = Vec::new();
        let mut sql = match &search.data_subject {
            None => String::from("SELECT body FROM ledger_entries WHERE recorded_at >= $1 AND recorded_at < $2"),
            // The subject's index is led by the block of 4 096 entries (`seq >> 12`, as in the
            // migration that made it): one look-up in each block of the period.
            Some(subject) => {
                texts.push(subject);
                String::from(
                    "WITH RECURSIVE span (low, high) AS \
                     (SELECT MIN(seq) >> 12, MAX(seq) >> 12 FROM ledger_entries WHERE recorded_at >= $1 AND recorded_at < $2), \
                     block (n) AS (SELECT low FROM span WHERE low IS NOT NULL UNION ALL SELECT n + 1 FROM block, span WHERE n < high) \
                     SELECT body FROM block JOIN ledger_entries ON (seq >> 12) = n AND data_subject = $3 \
                     WHERE recorded_at >= $1 AND recorded_at < $2",
                )
            }
        };
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

impl Store {
    /// Anomaly alerts raised by entries that occurred in `[from_ms, until_ms)`, newest first.
    pub async fn alerts(&self, from_ms: i64, until_ms: i64, limit: i64) -> anyhow::Result<Vec<Alert>> {
        let rows = sqlx::query("SELECT body FROM audit_alerts WHERE occurred_at >= $1 AND occurred_at < $2 ORDER BY occurred_at DESC, id LIMIT $3")
            .bind(from_ms)
            .bind(until_ms)
            .bind(limit.clamp(1, 10_000))
            .fetch_all(&self.reads)
            .await?;
        rows.iter().map(|row| Ok(serde_json::from_str(row.get::<String, _>(0).as_str())?)).collect()
    }

    /// Entries recorded in `[from_ms, until_ms)`, in order, as entries (their content).
    pub async fn ledger_entries_recorded(&self, from_ms: i64, until_ms: i64) -> anyhow::Result<Vec<Entry>> {
        self.ledger_rows_recorded(from_ms, until_ms)
            .await?
            .iter()
            .map(|row| Ok(serde_json::from_slice(&row.body)?))
            .collect()
    }
}

/// An archive file of old entries, as the database remembers it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArchiveRecord {
    pub first_seq: i64,
    pub last_seq: i64,
    #[serde(with = "hex::serde")]
    pub last_hash: Hash,
    /// In the configured archive directory.
    pub file_name: String,
    /// SHA-256 of the file as written, hex.
    pub sha256: String,
    pub created_at: i64,
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
