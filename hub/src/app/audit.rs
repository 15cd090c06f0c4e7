//! The data-sharing audit: the ledger's adapter. Data-sharing events from the connectors (topic
//! hub.audit.data-sharing) and the API's administrative actions are appended to the one
//! hash chain; the anomaly rules watch every append and their alerts are kept and published
//! (hub.audit.alerts) in the same transaction; checkpoints are signed at an interval and on
//! demand; `verify` walks it all.
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use bus::{BatchHandler, Delivery, Rejected};
use contracts::{AuditAnomalyDetected, DataShared, Event, LedgerCheckpointSigned};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::grouped::GroupFailed;
use crate::store::{now_ms, ArchiveRecord, LedgerSearch, Store, Waiting, LEDGER_PAGE};
use hub_core::access::Seat;
use hub_core::anomaly::{Alert, Detector};
use hub_core::calendar::day_of;
use hub_core::ledger::{
    chain_hash, inclusion_proof, merkle_root, ChainCheck, Checkpoint, Entry, EntryKind, Hash, InclusionProof, Record,
    RowCheck, StoredEntry, Verification, GENESIS,
};
use hub_core::Case;

/// The consumer group that writes data-sharing events into the ledger.
pub const CONSUMER: &str = "hub-audit";

/// Who the hub is in the ledger, as requester of its own administrative actions.
const HUB_SYSTEM: &str = "county-hub";

/// Most bytes of an administrative request kept in its entry (the reason for a pause, say).
const KEPT_REQUEST_BYTES: usize = 2_000;

/// The hub's Ed25519 signing key, from its 32-byte seed in hex; the development key when unset.
pub fn signing_key(seed_hex: &str) -> anyhow::Result<SigningKey> {
    if seed_hex.is_empty() {
        tracing::warn!("audit.signing_key is not set: ledger checkpoints are signed with the development key");
        return Ok(SigningKey::from_bytes(&Sha256::digest(b"county hub development ledger key").into()));
    }
    let seed: [u8; 32] = hex::decode(seed_hex.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| anyhow::anyhow!("audit.signing_key must be 64 hex digits (an Ed25519 seed)"))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Reads a public key given as 64 hex digits.
pub fn public_key(hex_text: &str) -> anyhow::Result<VerifyingKey> {
    let bytes: [u8; 32] = hex::decode(hex_text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow::anyhow!("a public key is 64 hex digits"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| anyhow::anyhow!("{hex_text} is not an Ed25519 public key"))
}

pub struct Ledger {
    store: Store,
    key: SigningKey,
    /// The county's key naming data subjects (HMAC of the ID number).
    subject_key: Vec<u8>,
    /// Where entries past their retention are archived, one file per archiving.
    archive_dir: PathBuf,
    /// One append at a time (each entry chains to the one before), with the anomaly rules'
    /// memory of the entries so far.
    appending: tokio::sync::Mutex<Watch>,
    /// People's facts that came while an append held the ledger: the next append takes them all
    /// in its transaction, rather than each taking the writer in turn.
    queued: std::sync::Mutex<Vec<Queued>>,
    /// Source ids of people's facts this instance found recorded or recorded itself: a clerk
    /// reopening a file re-asks the same read all day, so these need no read of the database.
    /// A read's id names its day, and archiving takes only days long past. Cleared when full.
    recorded: std::sync::Mutex<HashSet<String>>,
}

/// Most source ids `Ledger::recorded` remembers before it starts again.
const REMEMBERED_SOURCE_IDS: usize = 100_000;

/// How many of `records` are among `new`, taking them out of it.
fn take_new<'r>(new: &mut HashSet<&str>, records: impl Iterator<Item = &'r Record>) -> usize {
    records.filter(|record| new.remove(record.source_id.as_str())).count()
}

/// Facts of a person's request waiting for the ledger, and where to tell how many were new.
struct Queued {
    records: Vec<Record>,
    answer: oneshot::Sender<Result<usize, Arc<anyhow::Error>>>,
}

/// The anomaly detector, primed from the recent ledger before its first append, and the last
/// entry it has seen: before each append it sees what other instances appended since, so every
/// instance's rules count the whole ledger and an alert is raised once, by whichever appends
/// the entry that trips it.
struct Watch {
    detector: Detector,
    primed: bool,
    seen_up_to: i64,
}

impl Ledger {
    pub fn new(
        store: Store,
        key: SigningKey,
        subject_key: Vec<u8>,
        detector: Detector,
        archive_dir: PathBuf,
    ) -> Ledger {
        Ledger {
            store,
            key,
            subject_key,
            archive_dir,
            appending: tokio::sync::Mutex::new(Watch { detector, primed: false, seen_up_to: 0 }),
            queued: std::sync::Mutex::new(Vec::new()),
            recorded: std::sync::Mutex::new(HashSet::new()),
        }
    }

    /// The subject an ID number names in the ledger (its keyed hash: the ledger never holds it).
    pub fn subject_of(&self, id_number: &str) -> String {
        contracts::data_subject(&self.subject_key, id_number.trim())
    }

    pub async fn checkpoints(&self) -> anyhow::Result<Vec<Checkpoint>> {
        self.store.checkpoints().await
    }

    pub async fn search(&self, search: &LedgerSearch) -> anyhow::Result<Vec<Entry>> {
        self.store.ledger_search(search).await
    }

    /// Exchanges per day and pair of parties: (day, requester, provider, exchanges).
    pub async fn volume(&self, from_ms: i64, until_ms: i64) -> anyhow::Result<Vec<(i32, String, String, i64)>> {
        self.store.ledger_volume(from_ms, until_ms).await
    }

    pub async fn alerts(&self, from_ms: i64, until_ms: i64) -> anyhow::Result<Vec<Alert>> {
        self.store.alerts(from_ms, until_ms, 10_000).await
    }

    pub async fn archives(&self) -> anyhow::Result<Vec<ArchiveRecord>> {
        self.store.ledger_archives().await
    }

    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Appends the records not yet in the ledger; answers how many were new. Facts already
    /// held (a clerk's list read again, say) are remembered or found by a read, and never take
    /// the writer.
    pub async fn record(&self, records: &[Record]) -> anyhow::Result<usize> {
        let unremembered: Vec<&Record> = {
            let recorded = self.recorded.lock().expect("no one panics holding the recorded ids");
            records.iter().filter(|record| !recorded.contains(&record.source_id)).collect()
        };
        if unremembered.is_empty() {
            return Ok(0);
        }
        let known = self.store.ledger_known(&unremembered).await?;
        let new: Vec<Record> = unremembered
            .iter()
            .filter(|record| !known.contains(&record.source_id))
            .map(|&record| record.clone())
            .collect();
        let taken = if new.is_empty() {
            0
        } else {
            let (answer, mut answered) = oneshot::channel();
            self.queued.lock().expect("no one panics holding the queue").push(Queued { records: new, answer });
            // Recorded while someone waits: a request is answered once its reads are recorded,
            // by this append or by one that held the ledger when they came.
            self.append(&[], None, Waiting::Person).await?;
            answered.try_recv().context("an append took these facts and did not answer")?.map_err(GroupFailed)?
        };
        let mut recorded = self.recorded.lock().expect("no one panics holding the recorded ids");
        if recorded.len() + unremembered.len() > REMEMBERED_SOURCE_IDS {
            recorded.clear();
        }
        recorded.extend(unremembered.iter().map(|record| record.source_id.clone()));
        Ok(taken)
    }

    /// Appends records (taken from events, each of `applied` then marked as applied by
    /// `consumer`) with the people's facts queued meanwhile, and keeps and publishes the alerts
    /// the new entries raise, all in one transaction; answers how many of `records` were new.
    async fn append(
        &self,
        records: &[&Record],
        applied: Option<(&str, Vec<&str>)>,
        waiting: Waiting,
    ) -> anyhow::Result<usize> {
        let mut watch = self.appending.lock().await;
        let queued = std::mem::take(&mut *self.queued.lock().expect("no one panics holding the queue"));
        if records.is_empty() && applied.is_none() && queued.is_empty() {
            return Ok(0);
        }
        let waiting = if queued.is_empty() { waiting } else { Waiting::Person };
        let all: Vec<&Record> = records.iter().copied().chain(queued.iter().flat_map(|q| &q.records)).collect();
        let appended = match self.append_locked(&mut watch, &all, applied, waiting).await {
            Ok(appended) => appended,
            Err(error) if queued.is_empty() => return Err(error),
            Err(error) => {
                let error = Arc::new(error);
                queued.into_iter().for_each(|q| drop(q.answer.send(Err(error.clone()))));
                return Err(GroupFailed(error).into());
            }
        };
        // A fact asked for twice is new to the first asking only.
        let mut new: HashSet<&str> = appended.iter().map(|entry| entry.record.source_id.as_str()).collect();
        let own = take_new(&mut new, records.iter().copied());
        for q in queued {
            drop(q.answer.send(Ok(take_new(&mut new, q.records.iter()))));
        }
        Ok(own)
    }

    /// `append` with the ledger held: answers the entries appended.
    async fn append_locked(
        &self,
        watch: &mut Watch,
        records: &[&Record],
        applied: Option<(&str, Vec<&str>)>,
        waiting: Waiting,
    ) -> anyhow::Result<Vec<Entry>> {
        if !watch.primed {
            // The rules look back days (a pair's norm): replay what they would have seen. Alerts
            // it raised were kept with their entries; raising them again would change nothing.
            let last_held = self.store.ledger_bounds().await?.map_or(0, |(_, last)| last);
            let now = now_ms();
            for entry in self.store.ledger_entries_recorded(now - watch.detector.memory_ms(), now + 1).await? {
                watch.seen_up_to = watch.seen_up_to.max(entry.seq);
                watch.detector.observe(&entry);
            }
            watch.seen_up_to = watch.seen_up_to.max(last_held);
            watch.primed = true;
        }
        // The memory moves on only if the transaction commits.
        let mut detector = watch.detector.clone();
        let mut tx = self.store.begin_for(waiting).await?;
        tx.lock_ledger().await?;
        let mut seen_up_to = watch.seen_up_to;
        for entry in tx.ledger_entries_after(seen_up_to).await? {
            seen_up_to = entry.seq;
            detector.observe(&entry); // its alerts were raised by the instance that appended it
        }
        let appended = tx.append_ledger(records).await?;
        let alerts: Vec<Alert> = appended.iter().flat_map(|entry| detector.observe(entry)).collect();
        seen_up_to = appended.last().map_or(seen_up_to, |entry| entry.seq);
        tx.save_alerts(&alerts).await?;
        tx.enqueue(&alerts.iter().map(alert_event).collect::<Vec<_>>()).await?;
        if let Some((consumer, event_ids)) = applied {
            let applied: Vec<(&str, &str)> = event_ids.into_iter().map(|id| (id, "recorded")).collect();
            tx.mark_applied(consumer, &applied).await?;
        }
        tx.commit().await?;
        watch.detector = detector;
        watch.seen_up_to = seen_up_to;
        for alert in &alerts {
            tracing::warn!(id = alert.id, requester = alert.requester, "{}", alert.message);
        }
        Ok(appended)
    }

    /// Signs a checkpoint over every entry held, unless the newest one already covers them;
    /// answers the newest checkpoint either way (None for an empty ledger).
    pub async fn checkpoint(&self) -> anyhow::Result<Option<Checkpoint>> {
        let _turn = self.appending.lock().await;
        // Under the ledger's lock: no instance appends or archives between reading and signing.
        let mut tx = self.store.begin().await?;
        tx.lock_ledger().await?;
        let Some((first_seq, size)) = self.store.ledger_bounds().await? else {
            return Ok(None);
        };
        if let Some(newest) =
            self.store.newest_checkpoint().await?.filter(|c| (c.first_seq, c.size) == (first_seq, size))
        {
            return Ok(Some(newest));
        }
        let tree = self.store.ledger_tree(first_seq, size).await?;
        let checkpoint = Checkpoint::over(&self.key, first_seq, &tree, now_ms());
        // Kept and published together (outbox): the bureau's copy on the topic never misses one.
        let published = LedgerCheckpointSigned {
            event_id: hub_core::ids::ledger_checkpoint(checkpoint.size),
            case_number: String::new(),
            occurred_at: checkpoint.created_at,
            first_seq: checkpoint.first_seq,
            size: checkpoint.size,
            last_hash: hex::encode(checkpoint.last_hash),
            merkle_root: hex::encode(checkpoint.merkle_root),
            public_key: hex::encode(checkpoint.public_key),
            signature: hex::encode(checkpoint.signature),
        };
        tx.save_checkpoint(&checkpoint).await?;
        tx.enqueue(&[published.into()]).await?;
        tx.commit().await?;
        tracing::info!(size = checkpoint.size, root = hex::encode(checkpoint.merkle_root), "ledger checkpoint signed");
        Ok(Some(checkpoint))
    }

    /// Records that the hub started, with a digest of each section of its configuration, so
    /// the bureau sees every configuration change (secrets only as digests).
    pub async fn record_start(&self, section_digests: Vec<String>, whole_digest: String) -> anyhow::Result<()> {
        let record = Record {
            data_items: section_digests,
            document_sha256: Some(whole_digest),
            ..admin_record(
                format!("start/{}", uuid::Uuid::now_v7()),
                "hub.start",
                None,
                "configuration in effect (SHA-256 per section)".into(),
                "started",
            )
        };
        self.record(&[record]).await.map(|_| ())
    }

    /// Moves the entries recorded before `before_ms` to an archive file, with a checkpoint over
    /// exactly them, and out of the database; the archiving is itself an entry (so the chain
    /// goes on from the last archived one, and the next checkpoint covers a new size). Answers
    /// the archive made, if anything was old enough.
    pub async fn archive(&self, before_ms: i64) -> anyhow::Result<Option<ArchiveRecord>> {
        let made = {
            let _turn = self.appending.lock().await;
            let mut tx = self.store.begin().await?;
            tx.lock_ledger().await?;
            let (Some((first_seq, _)), Some(last_seq)) =
                (self.store.ledger_bounds().await?, self.store.ledger_last_recorded_before(before_ms).await?)
            else {
                return Ok(None);
            };
            let mut entries = Vec::new();
            for from in (first_seq..=last_seq).step_by(LEDGER_PAGE as usize) {
                entries.extend(
                    self.store
                        .ledger_rows(from, LEDGER_PAGE.min(last_seq - from + 1))
                        .await?
                        .into_iter()
                        .map(ExportedEntry::from),
                );
            }
            let hashes: Vec<Hash> = entries.iter().map(|e| e.hash).collect();
            let archive = Archive { checkpoint: Checkpoint::sign(&self.key, first_seq, &hashes, now_ms()), entries };
            let file_name = format!("ledger-{first_seq:012}-{last_seq:012}.json");
            let bytes = serde_json::to_vec(&archive)?;
            let record = ArchiveRecord {
                first_seq,
                last_seq,
                last_hash: archive.checkpoint.last_hash,
                file_name,
                sha256: hex::encode(Sha256::digest(&bytes)),
                created_at: now_ms(),
            };
            write_durably(self.archive_dir.join(&record.file_name), bytes).await?;
            let what = format!(
                "entries {first_seq} to {last_seq}, recorded before {before_ms}, archived to {}",
                record.file_name
            );
            let archived = Record {
                document_sha256: Some(record.sha256.clone()),
                ..admin_record(format!("archive/{first_seq}-{last_seq}"), "ledger.archive", None, what, "archived")
            };
            tx.archive_entries(&record).await?;
            tx.append_ledger(&[&archived]).await?;
            tx.commit().await?;
            tracing::info!(first_seq, last_seq, file = record.file_name, "ledger entries archived");
            record
        };
        self.checkpoint().await?;
        Ok(Some(made))
    }

    /// Reads the archive files the database names and checks each on its own, against its
    /// recorded digest, and linked to the one before.
    async fn check_archives(&self, records: &[ArchiveRecord]) -> Vec<String> {
        let mut problems = Vec::new();
        let mut archives = Vec::new();
        for record in records {
            let path = self.archive_dir.join(&record.file_name);
            match tokio::fs::read(&path).await {
                Err(error) => problems.push(format!("archive {} cannot be read: {error}", path.display())),
                Ok(bytes) if hex::encode(Sha256::digest(&bytes)) != record.sha256 => {
                    problems.push(format!("archive {} was changed after it was written", record.file_name))
                }
                Ok(bytes) => match serde_json::from_slice::<Archive>(&bytes) {
                    Ok(archive) => archives.push(archive),
                    Err(error) => problems.push(format!("archive {} is not an archive: {error}", record.file_name)),
                },
            }
        }
        if problems.is_empty() {
            if let Err(problem) = check_archive_series(&archives, &self.public_key()) {
                problems.push(problem);
            }
        }
        problems
    }

    /// Checks the whole chain and every checkpoint against the hub's public key.
    pub async fn verify(&self) -> anyhow::Result<Verification> {
        // Pages read on each reading connection and checked row by row side by side; only the
        // links between rows are followed in order.
        const READ_AHEAD: usize = 4;
        let read_page = |from: i64| {
            let store = self.store.clone();
            tokio::spawn(async move {
                let page = store.ledger_rows(from, LEDGER_PAGE).await?;
                let checked = tokio::task::spawn_blocking(move || {
                    let checks = RowCheck::of_rows(&page);
                    (page, checks)
                });
                anyhow::Ok(checked.await?)
            })
        };
        let archives = self.store.ledger_archives().await?;
        let (first_seq, previous) =
            archives.last().map_or((1, GENESIS), |archive| (archive.last_seq + 1, archive.last_hash));
        let mut starts = self.store.ledger_pages().await?;
        let mut reading: std::collections::VecDeque<_> = starts.by_ref().take(READ_AHEAD).map(read_page).collect();
        let mut check = ChainCheck::new(first_seq, previous);
        while let Some(next) = reading.pop_front() {
            let (page, checks) = next.await??;
            reading.extend(starts.next().map(read_page));
            check.push_checked_page(&page, &checks);
        }
        let mut verification = check.finish(&self.store.checkpoints().await?, &self.public_key());
        verification.archives = archives.len();
        verification.problems.extend(self.check_archives(&archives).await);
        Ok(verification)
    }

    /// The entries recorded in a period with a checkpoint covering them and the last one's
    /// inclusion proof: a bundle that checks offline with the public key alone (the entries
    /// chain to each other, the last one is in the signed checkpoint).
    pub async fn export(&self, from_ms: i64, until_ms: i64) -> anyhow::Result<Option<ExportBundle>> {
        let entries: Vec<ExportedEntry> =
            self.store.ledger_rows_recorded(from_ms, until_ms).await?.into_iter().map(ExportedEntry::from).collect();
        let Some(last) = entries.last() else {
            return Ok(None);
        };
        let checkpoint = self.checkpoint().await?.context("the ledger emptied while exporting")?;
        let proof = self
            .covered_hashes(&checkpoint)
            .await?
            .and_then(|hashes| inclusion_proof(checkpoint.first_seq, &hashes, last.seq))
            .with_context(|| format!("entry {} was archived while exporting", last.seq))?;
        Ok(Some(ExportBundle { from_ms, until_ms, entries, last_entry_proof: proof, checkpoint }))
    }

    /// Proof that entry `seq` is covered by the newest checkpoint, with the entry and that
    /// checkpoint: all anyone needs, with the hub's public key, to check it offline.
    pub async fn proof(&self, seq: i64) -> anyhow::Result<Option<EntryProof>> {
        let Some(checkpoint) = self.store.newest_checkpoint().await? else {
            return Ok(None);
        };
        let Some(covered) = self.covered_hashes(&checkpoint).await? else {
            return Ok(None);
        };
        let (Some(proof), Some(entry)) =
            (inclusion_proof(checkpoint.first_seq, &covered, seq), self.store.ledger_rows(seq, 1).await?.pop())
        else {
            return Ok(None);
        };
        let entry = ProvenEntry { body: String::from_utf8(entry.body)?, previous_hash: entry.previous_hash };
        Ok(Some(EntryProof { entry, proof, checkpoint }))
    }

    /// The hashes of the entries `checkpoint` covers, to walk a proof in; None once some of
    /// them were archived.
    async fn covered_hashes(&self, checkpoint: &Checkpoint) -> anyhow::Result<Option<Vec<Hash>>> {
        match self.store.ledger_bounds().await? {
            Some((first, last)) if first == checkpoint.first_seq && last >= checkpoint.size => {
                Ok(Some(self.store.ledger_hashes(first, checkpoint.size).await?))
            }
            _ => Ok(None),
        }
    }
}

/// One entry with its inclusion proof and the checkpoint it is proven against.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntryProof {
    pub entry: ProvenEntry,
    pub proof: InclusionProof,
    pub checkpoint: Checkpoint,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProvenEntry {
    /// The entry's canonical JSON, as hashed.
    pub body: String,
    #[serde(with = "hex::serde")]
    pub previous_hash: Hash,
}

/// A period of the ledger, exported for the data bureau.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportBundle {
    pub from_ms: i64,
    pub until_ms: i64,
    pub entries: Vec<ExportedEntry>,
    pub last_entry_proof: InclusionProof,
    pub checkpoint: Checkpoint,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportedEntry {
    pub seq: i64,
    /// The entry's canonical JSON, as hashed.
    pub body: String,
    #[serde(with = "hex::serde")]
    pub previous_hash: Hash,
    #[serde(with = "hex::serde")]
    pub hash: Hash,
}

impl From<StoredEntry> for ExportedEntry {
    fn from(stored: StoredEntry) -> ExportedEntry {
        ExportedEntry {
            seq: stored.seq,
            body: String::from_utf8_lossy(&stored.body).into_owned(),
            previous_hash: stored.previous_hash,
            hash: stored.hash,
        }
    }
}

/// Checks that exported entries are as hashed and follow each other in the chain; answers
/// the last one.
fn check_run(entries: &[ExportedEntry]) -> Result<&ExportedEntry, String> {
    let mut previous: Option<&ExportedEntry> = None;
    for entry in entries {
        if chain_hash(&entry.previous_hash, entry.body.as_bytes()) != entry.hash
            || !entry.body.starts_with(&format!("{{\"seq\":{},", entry.seq))
        {
            return Err(format!("entry {} does not match its hash", entry.seq));
        }
        if previous.is_some_and(|p| p.seq + 1 != entry.seq || p.hash != entry.previous_hash) {
            return Err(format!("entry {} does not follow the entry before it", entry.seq));
        }
        previous = Some(entry);
    }
    previous.ok_or_else(|| "it holds no entries".to_string())
}

impl ExportBundle {
    fn check(&self, trusted: &VerifyingKey) -> Result<String, String> {
        if !self.checkpoint.signed_by(trusted) {
            return Err("the bundle's checkpoint is not signed by this key".into());
        }
        let last = check_run(&self.entries).map_err(|problem| format!("in the bundle, {problem}"))?;
        if self.last_entry_proof.seq != last.seq
            || self.last_entry_proof.entry_hash != last.hash
            || !self.last_entry_proof.holds_for(&self.checkpoint)
        {
            return Err(format!("the bundle's last entry {} is not proven in its checkpoint", last.seq));
        }
        Ok(format!(
            "{} entries ({} to {}) chain together and are covered by the checkpoint at {} entries signed by this key",
            self.entries.len(),
            self.entries[0].seq,
            last.seq,
            self.checkpoint.size
        ))
    }
}

/// Entries moved out of the database past their retention, with a checkpoint over exactly
/// them: it checks on its own, and its first entry links to the last of the archive before.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Archive {
    pub entries: Vec<ExportedEntry>,
    pub checkpoint: Checkpoint,
}

impl Archive {
    fn check(&self, trusted: &VerifyingKey) -> Result<String, String> {
        let checkpoint = &self.checkpoint;
        if !checkpoint.signed_by(trusted) {
            return Err("the archive's checkpoint is not signed by this key".into());
        }
        let last = check_run(&self.entries).map_err(|problem| format!("in the archive, {problem}"))?;
        let hashes: Vec<Hash> = self.entries.iter().map(|e| e.hash).collect();
        if (self.entries[0].seq, last.seq, last.hash) != (checkpoint.first_seq, checkpoint.size, checkpoint.last_hash)
            || merkle_root(&hashes) != checkpoint.merkle_root
        {
            return Err(format!(
                "the archive's entries {} to {} are not the ones its checkpoint covers",
                self.entries[0].seq, last.seq
            ));
        }
        Ok(format!(
            "archive of entries {} to {}: they chain together and match its checkpoint signed by this key",
            checkpoint.first_seq, checkpoint.size
        ))
    }

    /// The hash the archive's first entry links to.
    fn links_to(&self) -> Hash {
        self.entries.first().map_or(GENESIS, |e| e.previous_hash)
    }
}

/// Checks archives each on its own and, in order, each linking to the one before; the
/// first of the ledger (from entry 1) must start the chain.
pub fn check_archive_series(archives: &[Archive], trusted: &VerifyingKey) -> Result<String, String> {
    let mut previous: Option<&Archive> = None;
    for archive in archives {
        archive.check(trusted)?;
        let starts = archive.checkpoint.first_seq;
        match previous {
            None if starts == 1 && archive.links_to() != GENESIS => {
                return Err("the archive from entry 1 does not start the chain".into())
            }
            Some(before)
                if before.checkpoint.size + 1 != starts || before.checkpoint.last_hash != archive.links_to() =>
            {
                return Err(format!(
                    "the archive from entry {starts} does not continue the archive of entries {} to {}",
                    before.checkpoint.first_seq, before.checkpoint.size
                ));
            }
            _ => {}
        }
        previous = Some(archive);
    }
    Ok(format!("{} archives, each holding on its own and linked to the next", archives.len()))
}

/// Writes an archive file whole or not at all, and on disk before answering, never over another
/// file: the archive directory is shared by every instance. A file already there can only be
/// the leftover of an archiving whose transaction did not commit (the ledger's lock lets one
/// archiving run at a time, and a committed one removed its entries); it is kept aside.
async fn write_durably(path: PathBuf, bytes: Vec<u8>) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        use std::io::Write as _;
        let dir = path.parent().context("an archive path has a directory")?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let partial = path.with_extension(format!("partial-{}", uuid::Uuid::now_v7().simple()));
        let mut file = std::fs::File::create(&partial).with_context(|| format!("writing {}", partial.display()))?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        if path.exists() {
            let aside = path.with_extension(format!("uncommitted-{}", now_ms()));
            tracing::warn!(file = %path.display(), aside = %aside.display(), "an archive file of an uncommitted archiving was in the way; kept aside");
            std::fs::rename(&path, &aside)?;
        }
        // A link, unlike a rename, fails rather than replace a file another writer put there.
        std::fs::hard_link(&partial, &path).with_context(|| format!("archive {} already exists", path.display()))?;
        std::fs::remove_file(&partial)?;
        std::fs::File::open(dir)?.sync_all()?;
        Ok(())
    })
    .await?
}

/// Checks, with the hub's public key alone, an exported checkpoint, an entry's proof (the JSON
/// of `GET /api/v1/audit/entries/{seq}/proof`), a period's bundle (`POST /api/v1/audit/exports`)
/// or an archive file; answers what holds, or what does not.
pub fn check_offline(exported: &str, trusted: &VerifyingKey) -> Result<String, String> {
    if let Ok(bundle) = serde_json::from_str::<ExportBundle>(exported) {
        return bundle.check(trusted);
    }
    if let Ok(archive) = serde_json::from_str::<Archive>(exported) {
        return archive.check(trusted);
    }
    if let Ok(proven) = serde_json::from_str::<EntryProof>(exported) {
        if !proven.checkpoint.signed_by(trusted) {
            return Err("the checkpoint is not signed by this key".into());
        }
        if chain_hash(&proven.entry.previous_hash, proven.entry.body.as_bytes()) != proven.proof.entry_hash {
            return Err(format!("entry {}'s content does not match its hash", proven.proof.seq));
        }
        if !proven.proof.holds_for(&proven.checkpoint) {
            return Err(format!(
                "entry {} is not included in the checkpoint at {} entries",
                proven.proof.seq, proven.checkpoint.size
            ));
        }
        return Ok(format!(
            "entry {} is included, as shown, in the checkpoint at {} entries signed by this key",
            proven.proof.seq, proven.checkpoint.size
        ));
    }
    let checkpoint: Checkpoint = serde_json::from_str(exported)
        .map_err(|e| format!("neither a checkpoint, an entry proof, a bundle nor an archive: {e}"))?;
    if checkpoint.signed_by(trusted) {
        Ok(format!(
            "the checkpoint at {} entries (Merkle root {}) is signed by this key",
            checkpoint.size,
            hex::encode(checkpoint.merkle_root)
        ))
    } else {
        Err("the checkpoint is not signed by this key".into())
    }
}

/// What a response showed of people's data: which cases (number, applicant's ID number) and
/// what of them. Handlers attach it to their responses; `record_in_ledger` writes it down, so
/// nothing is parsed back out of a response.
#[derive(Debug, Clone)]
pub struct PersonalDataShown {
    pub what: &'static str,
    pub cases: Vec<(String, String)>,
}

impl PersonalDataShown {
    pub fn of<'a>(what: &'static str, cases: impl IntoIterator<Item = &'a Case>) -> PersonalDataShown {
        PersonalDataShown {
            what,
            cases: cases
                .into_iter()
                .map(|case| (case.case_number.clone(), case.application.applicant.id_number.clone()))
                .collect(),
        }
    }
}

/// An administrative action, by an officer who asked or by the hub itself, as a ledger record.
fn admin_record(source_id: String, action: &str, asker: Option<Asker>, purpose: String, outcome: &str) -> Record {
    let (department, officer) = asker.map_or((String::new(), None), |asker| (asker.department, asker.officer));
    Record {
        kind: EntryKind::Admin,
        source_id,
        occurred_at: now_ms(),
        action: action.to_string(),
        requester_system: HUB_SYSTEM.into(),
        requester_department: department,
        requester_officer: officer,
        provider: HUB_SYSTEM.into(),
        data_subject: None,
        data_items: Vec::new(),
        legal_basis: String::new(),
        purpose,
        case_number: None,
        channel: None,
        document_sha256: None,
        outcome: outcome.to_string(),
    }
}

/// Who asks: the token's holder and unit (never headers the caller could set), and the
/// purpose the caller states.
pub struct Asker {
    pub department: String,
    pub officer: Option<String>,
    pub purpose: String,
}

impl Asker {
    /// The seat asking, with the purpose it states.
    pub fn of(seat: Option<&Seat>, purpose: String) -> Asker {
        match seat {
            Some(seat) => Asker { department: seat_department(seat), officer: Some(seat.holder.clone()), purpose },
            None => Asker { department: String::new(), officer: None, purpose },
        }
    }
}

/// The department a seat speaks for in the ledger: its unit, or its role's name.
fn seat_department(seat: &Seat) -> String {
    seat.unit.clone().unwrap_or_else(|| seat.role.title().to_string())
}

impl Ledger {
    /// Records an administrative action done outside the API (the command line's tokens).
    pub async fn record_admin(&self, action: &str, officer: &str, purpose: String) -> anyhow::Result<()> {
        let asker = Asker { department: HUB_SYSTEM.into(), officer: Some(officer.to_string()), purpose: String::new() };
        self.record(&[admin_record(format!("admin/{}", uuid::Uuid::now_v7()), action, Some(asker), purpose, "200")])
            .await
            .map(|_| ())
    }

    /// Records a request the API refused: who (if the token was known), what, why.
    pub async fn record_denial(&self, action: &str, seat: Option<&Seat>, reason: &str, status: &str) {
        let asker = seat.map(|seat| Asker::of(Some(seat), String::new()));
        let record = Record {
            kind: EntryKind::Denied,
            ..admin_record(format!("denied/{}", uuid::Uuid::now_v7()), action, asker, reason.to_string(), status)
        };
        if let Err(error) = self.record(&[record]).await {
            tracing::error!(error = format!("{error:#}"), "a refused request could not be written to the audit ledger");
        }
    }

    /// Records an administrative request made through the API, whatever its outcome: what was
    /// asked (the first bytes of the request) and the answer's status.
    pub async fn record_admin_request(&self, action: &str, asker: Asker, asked: &[u8], status: &str) {
        let asked: String = String::from_utf8_lossy(asked).chars().take(KEPT_REQUEST_BYTES).collect();
        let record = admin_record(format!("admin/{}", uuid::Uuid::now_v7()), action, Some(asker), asked, status);
        if let Err(error) = self.record(&[record]).await {
            tracing::error!(
                error = format!("{error:#}"),
                "an administrative action could not be written to the audit ledger"
            );
        }
    }

    /// Records that someone read cases' personal data through the API: one entry per case,
    /// requester, purpose and China-Standard-Time day (the first such read; the same clerk
    /// reopening a file that day adds nothing the bureau would ask about).
    pub async fn record_reads(&self, asker: &Asker, path: &str, shown: PersonalDataShown) {
        let now = now_ms();
        let reader = hex::encode(
            &Sha256::digest(format!(
                "{}\u{1f}{}\u{1f}{}",
                asker.department,
                asker.officer.as_deref().unwrap_or_default(),
                asker.purpose
            ))[..8],
        );
        let records: Vec<Record> = shown
            .cases
            .into_iter()
            .map(|(case_number, id_number)| Record {
                kind: EntryKind::Read,
                source_id: format!("read/{}/{reader}/{case_number}/{}", day_of(now), shown.what),
                occurred_at: now,
                action: format!("GET {path}"),
                requester_system: HUB_SYSTEM.into(),
                requester_department: asker.department.clone(),
                requester_officer: asker.officer.clone(),
                provider: HUB_SYSTEM.into(),
                data_subject: Some(contracts::data_subject(&self.subject_key, &id_number)),
                data_items: vec![shown.what.to_string()],
                legal_basis: String::new(),
                purpose: asker.purpose.clone(),
                case_number: Some(case_number),
                channel: None,
                document_sha256: None,
                outcome: "200".into(),
            })
            .collect();
        if let Err(error) = self.record(&records).await {
            tracing::error!(
                error = format!("{error:#}"),
                "a read of personal data could not be written to the audit ledger"
            );
        }
    }
}

fn alert_event(alert: &Alert) -> Event {
    AuditAnomalyDetected {
        event_id: alert.id.clone(),
        case_number: String::new(),
        occurred_at: alert.occurred_at,
        rule: alert.rule.code().into(),
        requester: alert.requester.clone(),
        provider: alert.provider.clone(),
        count: alert.count,
        entries: alert.entries.clone(),
        message: alert.message.clone(),
    }
    .into()
}

/// A data-sharing event as a ledger record.
pub fn exchange_record(shared: &DataShared) -> Record {
    let present = |text: &str| (!text.is_empty()).then(|| text.to_string());
    Record {
        kind: EntryKind::Exchange,
        source_id: shared.event_id.clone(),
        occurred_at: shared.occurred_at,
        action: shared.exchange.clone(),
        requester_system: shared.requester_system.clone(),
        requester_department: shared.requester_department.clone(),
        requester_officer: shared.requester_officer.clone(),
        provider: shared.provider.clone(),
        data_subject: present(&shared.data_subject),
        data_items: shared.data_items.clone(),
        legal_basis: shared.legal_basis.clone(),
        purpose: shared.purpose.clone(),
        case_number: present(&shared.case_number),
        channel: present(&shared.channel),
        document_sha256: shared.document_sha256.clone(),
        outcome: shared.outcome.clone(),
    }
}

/// Writes the connectors' data-sharing events into the ledger, once each.
pub struct AuditRecorder {
    pub ledger: Arc<Ledger>,
}

#[async_trait]
impl BatchHandler for AuditRecorder {
    async fn handle(&self, batch: &[Delivery]) -> anyhow::Result<Vec<Rejected>> {
        // The hub's own checkpoints travel on the topic too; they are marked read, not recorded.
        let exchanges: Vec<Record> = batch
            .iter()
            .filter_map(|delivery| match &delivery.event {
                Event::DataShared(shared) => Some(exchange_record(shared)),
                _ => None,
            })
            .collect();
        let delivered = batch.iter().map(|delivery| delivery.event.event_id()).collect();
        let records: Vec<&Record> = exchanges.iter().collect();
        self.ledger.append(&records, Some((CONSUMER, delivered)), Waiting::NoOne).await?;
        Ok(Vec::new())
    }
}

/// Keeps the ledger until `shutdown`: signs a checkpoint every `every` and, when a retention
/// is set (`retention_days` > 0), archives the entries past it at start and every hour. One
/// instance does it (elected), so there is one checkpoint per interval.
pub async fn keep(ledger: Arc<Ledger>, every: Duration, retention_days: u32, shutdown: CancellationToken) {
    let mut checkpoints = tokio::time::interval(every);
    checkpoints.tick().await;
    let mut archivings = tokio::time::interval(Duration::from_secs(3_600));
    loop {
        tokio::select! {
            _ = checkpoints.tick() => {
                if let Err(error) = ledger.checkpoint().await {
                    tracing::warn!(error = format!("{error:#}"), "signing a ledger checkpoint failed; trying at the next tick");
                }
            }
            _ = archivings.tick(), if retention_days > 0 => {
                if let Err(error) = ledger.archive(now_ms() - i64::from(retention_days) * 86_400_000).await {
                    tracing::warn!(error = format!("{error:#}"), "archiving old ledger entries failed; trying at the next tick");
                }
            }
            _ = shutdown.cancelled() => return,
        }
    }
}
