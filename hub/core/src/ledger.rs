//! The data-sharing ledger for the county data bureau: every exchange of data with another
//! party and every administrative action, hash-chained, with signed Merkle checkpoints.
//!
//! Each entry's hash covers the previous entry's hash and the entry's canonical bytes, so an
//! edited, deleted, reordered or inserted row breaks the chain at that row. Someone able to
//! rewrite the whole chain after a row is still caught by the checkpoints: each signs, with
//! the hub's Ed25519 key, the range of entries it covers, the hash of the last one and the
//! Merkle root of their hashes, and the root gives an inclusion proof for any one entry.
//!
//! Entries past their retention leave the database for archive files; the chain goes on
//! across them (the first entry kept links to the last one archived), so a checkpoint covers
//! the entries from the first one kept, and each archive carries its own checkpoint.
use std::borrow::Cow;

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use rs_merkle::algorithms::Sha256 as MerkleSha256;
use rs_merkle::{MerkleProof, MerkleTree};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub type Hash = [u8; 32];

/// The hash the first entry chains to.
pub const GENESIS: Hash = [0; 32];

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// Data sent to or fetched from another party (a connector exchange, a certificate fetch).
    Exchange,
    /// Personal data read through the hub's API.
    Read,
    /// An administrative action: configuration, connector pause/resume/reset, tokens, exports.
    Admin,
    /// A request the API refused (no valid token, a role or a case not one's own): who asked
    /// for what, and why not.
    Denied,
}

/// One ledger entry as it is written, before it is sealed into the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub kind: EntryKind,
    /// Unique per recorded fact (the event id of a data-sharing event, say): recording the same
    /// fact twice keeps one entry.
    pub source_id: String,
    pub occurred_at: i64,
    /// What was done: `certificate.fetch`, `postal.order`, `connector.pause`, ...
    pub action: String,
    pub requester_system: String,
    pub requester_department: String,
    pub requester_officer: Option<String>,
    pub provider: String,
    /// The person the data is about, as the county's keyed hash of the ID number.
    pub data_subject: Option<String>,
    pub data_items: Vec<String>,
    pub legal_basis: String,
    pub purpose: String,
    pub case_number: Option<String>,
    pub channel: Option<String>,
    /// SHA-256 of the document exchanged, if any.
    pub document_sha256: Option<String>,
    pub outcome: String,
}

/// A record sealed into the chain at position `seq` (from 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: i64,
    pub recorded_at: i64,
    #[serde(flatten)]
    pub record: Record,
}

impl Entry {
    /// The bytes the chain hashes: the entry's JSON, whose field order is fixed by the struct.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an entry always serialises")
    }
}

/// Hash of an entry given the hash of the one before it.
pub fn chain_hash(previous: &Hash, canonical: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(canonical);
    hasher.finalize().into()
}

/// An entry as stored: its canonical bytes, the hashes linking it, and the columns kept beside
/// it for searching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub seq: i64,
    pub body: Vec<u8>,
    pub previous_hash: Hash,
    pub hash: Hash,
    pub columns: SearchColumns,
}

/// Seals `entry` after `previous`.
pub fn seal(entry: &Entry, previous: &Hash) -> StoredEntry {
    let body = entry.canonical_bytes();
    let hash = chain_hash(previous, &body);
    StoredEntry { seq: entry.seq, body, previous_hash: *previous, hash, columns: SearchColumns::of(entry) }
}

/// What the ledger's table repeats of each entry beside its body, so the bureau's searches use
/// indexes. Outside the hash, so `verify` checks them against the body: an edited column would
/// hide an entry from a search while the chain still holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchColumns {
    pub source_id: String,
    pub recorded_at: i64,
    pub kind: String,
    pub data_subject: Option<String>,
    pub case_number: Option<String>,
    pub requester_department: String,
    pub provider: String,
}

impl SearchColumns {
    pub fn of(entry: &Entry) -> SearchColumns {
        let record = &entry.record;
        SearchColumns {
            source_id: record.source_id.clone(),
            recorded_at: entry.recorded_at,
            kind: serde_json::to_value(record.kind)
                .ok()
                .and_then(|kind| kind.as_str().map(str::to_string))
                .unwrap_or_default(),
            data_subject: record.data_subject.clone(),
            case_number: record.case_number.clone(),
            requester_department: record.requester_department.clone(),
            provider: record.provider.clone(),
        }
    }

    /// The first column that does not say what `body` says, if any.
    pub fn disagreement(&self, body: &[u8]) -> Option<&'static str> {
        let Ok(held) = serde_json::from_slice::<BodyColumns>(body) else {
            return Some("body");
        };
        [
            ("source_id", held.source_id == self.source_id.as_str()),
            ("recorded_at", held.recorded_at == self.recorded_at),
            ("kind", held.kind == self.kind.as_str()),
            ("data_subject", held.data_subject.as_deref() == self.data_subject.as_deref()),
            ("case_number", held.case_number.as_deref() == self.case_number.as_deref()),
            ("requester_department", held.requester_department == self.requester_department.as_str()),
            ("provider", held.provider == self.provider.as_str()),
        ]
        .into_iter()
        .find(|(_, agrees)| !agrees)
        .map(|(column, _)| column)
    }
}

/// The fields of an entry's body that the table repeats, read in place: verifying a million
/// entries should not copy every string of them.
#[derive(Deserialize)]
struct BodyColumns<'a> {
    #[serde(borrow)]
    source_id: Cow<'a, str>,
    recorded_at: i64,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    data_subject: Option<Cow<'a, str>>,
    #[serde(borrow)]
    case_number: Option<Cow<'a, str>>,
    #[serde(borrow)]
    requester_department: Cow<'a, str>,
    #[serde(borrow)]
    provider: Cow<'a, str>,
}

/// A signed statement of the ledger's state: entries `first_seq` to `size`, the last one's
/// hash, and the Merkle root of their hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The first entry covered: 1, or the first one kept after older ones were archived.
    pub first_seq: i64,
    /// The last entry covered, which is also how many entries the ledger has ever had.
    pub size: i64,
    #[serde(with = "hex::serde")]
    pub last_hash: Hash,
    #[serde(with = "hex::serde")]
    pub merkle_root: Hash,
    pub created_at: i64,
    /// The signer's public key, so a checkpoint names the key it claims.
    #[serde(with = "hex::serde")]
    pub public_key: [u8; 32],
    #[serde(with = "hex::serde")]
    pub signature: [u8; 64],
}

impl Checkpoint {
    fn signed_bytes(&self) -> Vec<u8> {
        let mut bytes = b"county-hub-ledger-checkpoint/v2".to_vec();
        bytes.extend_from_slice(&self.first_seq.to_be_bytes());
        bytes.extend_from_slice(&self.size.to_be_bytes());
        bytes.extend_from_slice(&self.last_hash);
        bytes.extend_from_slice(&self.merkle_root);
        bytes.extend_from_slice(&self.created_at.to_be_bytes());
        bytes
    }

    /// Signs the state of entries `first_seq` onwards, whose hashes are `hashes`, in order.
    pub fn sign(key: &SigningKey, first_seq: i64, hashes: &[Hash], created_at: i64) -> Checkpoint {
        let mut tree = MerkleRoot::default();
        tree.push(hashes);
        Checkpoint::over(key, first_seq, &tree, created_at)
    }

    /// Signs the state of entries `first_seq` onwards, whose hashes went into `tree`.
    pub fn over(key: &SigningKey, first_seq: i64, tree: &MerkleRoot, created_at: i64) -> Checkpoint {
        let mut checkpoint = Checkpoint {
            first_seq,
            size: first_seq + tree.count as i64 - 1,
            last_hash: tree.last,
            merkle_root: tree.root(),
            created_at,
            public_key: key.verifying_key().to_bytes(),
            signature: [0; 64],
        };
        checkpoint.signature = key.sign(&checkpoint.signed_bytes()).to_bytes();
        checkpoint
    }

    /// Whether `trusted` signed this checkpoint as it stands.
    pub fn signed_by(&self, trusted: &VerifyingKey) -> bool {
        self.public_key == trusted.to_bytes()
            && trusted.verify(&self.signed_bytes(), &Signature::from_bytes(&self.signature)).is_ok()
    }

    /// How many entries it covers.
    pub fn entries(&self) -> i64 {
        self.size - self.first_seq + 1
    }
}

/// Merkle root of the entry hashes (the empty ledger's root is `GENESIS`): each layer hashes
/// its nodes in pairs and carries an odd last one up as it is, the tree `rs_merkle` builds for
/// the proofs.
pub fn merkle_root(hashes: &[Hash]) -> Hash {
    let mut tree = MerkleRoot::default();
    tree.push(hashes);
    tree.root()
}

/// The Merkle root of hashes given a run at a time, holding one subtree root per bit of the
/// count so far rather than the hashes: a checkpoint over a million entries held them all
/// twice over (about 90 MB a signing at 870 000 entries). In that tree the first 2^k hashes,
/// for the largest 2^k below the count, form a perfect subtree, and the rest form the right
/// subtree the same way; so the root is the perfect subtrees of the count's binary digits,
/// joined from the right.
#[derive(Debug, Clone, Default)]
pub struct MerkleRoot {
    /// Perfect subtrees, left to right, each (height, root), the heights falling.
    subtrees: Vec<(u32, Hash)>,
    count: u64,
    last: Hash,
}

impl MerkleRoot {
    /// Takes the next hashes in order. Each perfect subtree of a run is hashed a layer at a
    /// time, each layer on every core: a million entries hash a million pairs.
    pub fn push(&mut self, mut hashes: &[Hash]) {
        while !hashes.is_empty() {
            // The largest perfect subtree that starts here: as high as the count's lowest
            // digit allows (its subtrees are whole) and no more than the hashes given.
            let height = self.count.trailing_zeros().min(hashes.len().ilog2());
            let (subtree, rest) = hashes.split_at(1 << height);
            let mut layer = subtree.to_vec();
            while layer.len() > 1 {
                layer = parent_layer(&layer);
            }
            self.join(height, layer[0]);
            self.count += subtree.len() as u64;
            self.last = subtree[subtree.len() - 1];
            hashes = rest;
        }
    }

    /// Adds a perfect subtree to the right of the rest, pairing it with its equals.
    fn join(&mut self, mut height: u32, mut root: Hash) {
        while let Some(&(left_height, left)) = self.subtrees.last() {
            if left_height != height {
                break;
            }
            self.subtrees.pop();
            (height, root) = (height + 1, pair(&left, &root));
        }
        self.subtrees.push((height, root));
    }

    /// The root over every hash given so far.
    pub fn root(&self) -> Hash {
        let mut subtrees = self.subtrees.iter().rev().map(|(_, root)| *root);
        let Some(rightmost) = subtrees.next() else { return GENESIS };
        subtrees.fold(rightmost, |right, left| pair(&left, &right))
    }

    /// How many hashes were given.
    pub fn count(&self) -> u64 {
        self.count
    }
}

/// The parent of two nodes.
fn pair(left: &Hash, right: &Hash) -> Hash {
    Sha256::new().chain_update(left).chain_update(right).finalize().into()
}

/// The layer above `layer`.
fn parent_layer(layer: &[Hash]) -> Vec<Hash> {
    let parents = |nodes: &[Hash]| -> Vec<Hash> {
        nodes
            .chunks(2)
            .map(|nodes| match nodes {
                [left, right] => pair(left, right),
                [odd] => *odd,
                _ => unreachable!("chunks of two"),
            })
            .collect()
    };
    if layer.len() < 8_192 {
        return parents(layer);
    }
    // Pieces of even length, so no pair is split between two of them.
    on_every_core(layer, 2, parents)
}

/// `work` applied to `items` in one piece per core, each piece's length a multiple of
/// `multiple`, the results joined in order.
fn on_every_core<T: Sync, R: Send>(items: &[T], multiple: usize, work: impl Fn(&[T]) -> Vec<R> + Sync) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores == 1 {
        return work(items);
    }
    let piece = items.len().div_ceil(cores).next_multiple_of(multiple).max(1);
    let work = &work;
    std::thread::scope(|scope| {
        let workers: Vec<_> = items.chunks(piece).map(|piece| scope.spawn(move || work(piece))).collect();
        workers.into_iter().flat_map(|worker| worker.join().expect("hashing never panics")).collect()
    })
}

/// Proof that the entry at `seq` is among entries `first_seq` to `size`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    pub seq: i64,
    #[serde(with = "hex::serde")]
    pub entry_hash: Hash,
    pub first_seq: i64,
    pub size: i64,
    /// The sibling hashes from the leaf up, hex.
    pub path: Vec<String>,
}

/// Proof for entry `seq` among the entries from `first_seq` whose hashes are `hashes`.
pub fn inclusion_proof(first_seq: i64, hashes: &[Hash], seq: i64) -> Option<InclusionProof> {
    let index = usize::try_from(seq - first_seq).ok().filter(|i| *i < hashes.len())?;
    let proof = MerkleTree::<MerkleSha256>::from_leaves(hashes).proof(&[index]);
    Some(InclusionProof {
        seq,
        entry_hash: hashes[index],
        first_seq,
        size: first_seq + hashes.len() as i64 - 1,
        path: proof.proof_hashes_hex(),
    })
}

impl InclusionProof {
    /// Whether the proof leads from the entry hash to the checkpoint's root.
    pub fn holds_for(&self, checkpoint: &Checkpoint) -> bool {
        let Ok(path) = self
            .path
            .iter()
            .map(|h| hex::decode(h).ok().and_then(|b| Hash::try_from(b).ok()).ok_or(()))
            .collect::<Result<Vec<Hash>, ()>>()
        else {
            return false;
        };
        (self.first_seq, self.size) == (checkpoint.first_seq, checkpoint.size)
            && (self.first_seq..=self.size).contains(&self.seq)
            && MerkleProof::<MerkleSha256>::new(path).verify(
                checkpoint.merkle_root,
                &[(self.seq - self.first_seq) as usize],
                &[self.entry_hash],
                checkpoint.entries() as usize,
            )
    }
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// Entries held in the database.
    pub entries: i64,
    pub checkpoints: usize,
    /// Archive files checked, each on its own and linked to the next.
    pub archives: usize,
    /// The first entry that does not hold, and why; None when the whole ledger holds.
    pub first_bad_entry: Option<i64>,
    pub problems: Vec<String>,
}

impl Verification {
    pub fn holds(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What a stored row shows on its own, without the rows around it: whether its hash is that of
/// its body after the previous hash it stores, whether its body states the position it is
/// stored at, and the first search column its body disagrees with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowCheck {
    intact: bool,
    states_its_position: bool,
    disagreement: Option<&'static str>,
}

impl RowCheck {
    pub fn of_rows(rows: &[StoredEntry]) -> Vec<RowCheck> {
        rows.iter()
            .map(|row| RowCheck {
                intact: chain_hash(&row.previous_hash, &row.body) == row.hash,
                states_its_position: row.body.starts_with(format!("{{\"seq\":{},", row.seq).as_bytes()),
                disagreement: row.columns.disagreement(&row.body),
            })
            .collect()
    }
}

/// Walks the chain from `previous` (GENESIS, or the last hash of the archive before) and checks
/// every checkpoint against it. Entries come in stored order; `first_seq` is where they should
/// start. Pure: the caller reads the rows.
pub struct ChainCheck {
    expected_seq: i64,
    previous: Hash,
    hashes: Vec<Hash>,
    first_bad_entry: Option<i64>,
    problems: Vec<String>,
}

impl ChainCheck {
    pub fn new(first_seq: i64, previous: Hash) -> ChainCheck {
        ChainCheck {
            expected_seq: first_seq,
            previous,
            hashes: Vec::new(),
            first_bad_entry: None,
            problems: Vec::new(),
        }
    }

    fn fail(&mut self, seq: i64, problem: String) {
        if self.first_bad_entry.is_none() {
            self.first_bad_entry = Some(seq);
            self.problems.push(problem);
        }
    }

    /// Follows the links of the next stored rows, each already checked on its own
    /// (`RowCheck::of_rows`, which pages can go through side by side).
    pub fn push_checked_page(&mut self, page: &[StoredEntry], checks: &[RowCheck]) {
        for (stored, check) in page.iter().zip(checks) {
            self.push_checked(stored, check);
        }
    }

    fn push_checked(&mut self, stored: &StoredEntry, check: &RowCheck) {
        let seq = self.expected_seq;
        self.expected_seq += 1;
        if stored.seq != seq {
            self.fail(seq, format!("entry {seq} is missing or out of place (found entry {} there)", stored.seq));
        } else if stored.previous_hash != self.previous {
            self.fail(seq, format!("entry {seq} does not link to the entry before it"));
        } else if !check.intact {
            self.fail(
                seq,
                format!("entry {seq} was changed after it was written (its hash does not match its content)"),
            );
        } else if !check.states_its_position {
            self.fail(seq, format!("entry {seq} does not state its own position"));
        } else if let Some(column) = check.disagreement {
            self.fail(seq, format!("entry {seq}'s searchable column {column} does not match its content"));
        }
        self.previous = stored.hash;
        self.hashes.push(stored.hash);
    }

    /// Finishes the walk and checks the checkpoints (oldest first) against it: each must be
    /// signed by `trusted` and agree with the chain at its size; the newest one's Merkle root is
    /// recomputed (the chain binds every earlier prefix to its last hash). Checkpoints over
    /// archived entries only are checked for their signature; their archives for the rest.
    pub fn finish(mut self, checkpoints: &[Checkpoint], trusted: &VerifyingKey) -> Verification {
        let first_seq = self.expected_seq - self.hashes.len() as i64;
        for (position, checkpoint) in checkpoints.iter().enumerate() {
            let index = checkpoint.size - first_seq;
            if !checkpoint.signed_by(trusted) {
                self.problems.push(format!("checkpoint at {} entries is not signed by the hub's key", checkpoint.size));
            } else if index < 0 {
                continue;
            } else if index >= self.hashes.len() as i64 {
                self.problems
                    .push(format!("checkpoint at {} entries covers entries the ledger does not hold", checkpoint.size));
            } else if self.hashes[index as usize] != checkpoint.last_hash {
                let problem = format!("the ledger no longer matches the checkpoint at {} entries", checkpoint.size);
                self.problems.push(problem);
                // The chain was rewritten consistently: the checkpoint points at where.
                self.first_bad_entry.get_or_insert(checkpoint.size);
            } else if position + 1 == checkpoints.len()
                && checkpoint.first_seq == first_seq
                && merkle_root(&self.hashes[..=index as usize]) != checkpoint.merkle_root
            {
                self.problems.push(format!(
                    "the Merkle root of the checkpoint at {} entries does not match the entries",
                    checkpoint.size
                ));
            }
        }
        Verification {
            entries: self.hashes.len() as i64,
            checkpoints: checkpoints.len(),
            archives: 0,
            first_bad_entry: self.first_bad_entry,
            problems: self.problems,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: i64) -> Record {
        Record {
            kind: EntryKind::Exchange,
            source_id: format!("event/{n}"),
            occurred_at: 1_795_392_000_000 + n,
            action: "certificate.fetch".into(),
            requester_system: "county-hub".into(),
            requester_department: "11610429MB2912345A".into(),
            requester_officer: Some("李受理".into()),
            provider: "provincial-ecert-repository".into(),
            data_subject: Some("ab".repeat(32)),
            data_items: vec!["营业执照".into()],
            legal_basis: "《优化营商环境条例》第三十五条".into(),
            purpose: "办理食品经营许可".into(),
            case_number: Some(format!("6104291000{n:08}")),
            channel: Some("counter".into()),
            document_sha256: None,
            outcome: "ok".into(),
        }
    }

    fn ledger(count: i64) -> Vec<StoredEntry> {
        let mut previous = GENESIS;
        (1..=count)
            .map(|seq| {
                let stored = seal(&Entry { seq, recorded_at: seq, record: record(seq) }, &previous);
                previous = stored.hash;
                stored
            })
            .collect()
    }

    #[test]
    fn the_merkle_root_is_the_root_of_the_tree_the_proofs_walk() {
        let hashes: Vec<Hash> = ledger(20_000).iter().map(|stored| stored.hash).collect();
        for size in (0..=70).chain([4_095, 8_192, 8_193, 16_385, 20_000]) {
            let leaves = &hashes[..size];
            let tree = MerkleTree::<MerkleSha256>::from_leaves(leaves).root().unwrap_or(GENESIS);
            assert_eq!(merkle_root(leaves), tree, "{size} entries");
        }
    }

    #[test]
    fn the_merkle_root_is_the_same_whatever_the_runs_it_is_given_in() {
        let hashes: Vec<Hash> = ledger(3_000).iter().map(|stored| stored.hash).collect();
        for run in [1, 3, 64, 1_000, 2_999] {
            let mut tree = MerkleRoot::default();
            hashes.chunks(run).for_each(|piece| tree.push(piece));
            assert_eq!((tree.root(), tree.count()), (merkle_root(&hashes), 3_000), "runs of {run}");
        }
    }

    fn verify(rows: &[StoredEntry], checkpoints: &[Checkpoint], key: &SigningKey) -> Verification {
        let mut check = ChainCheck::new(1, GENESIS);
        check.push_checked_page(rows, &RowCheck::of_rows(rows));
        check.finish(checkpoints, &key.verifying_key())
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn hashes(rows: &[StoredEntry]) -> Vec<Hash> {
        rows.iter().map(|r| r.hash).collect()
    }

    #[test]
    fn an_untouched_ledger_holds_with_its_checkpoints() {
        let rows = ledger(10);
        let checkpoints =
            [Checkpoint::sign(&key(), 1, &hashes(&rows[..4]), 1), Checkpoint::sign(&key(), 1, &hashes(&rows), 2)];
        let verified = verify(&rows, &checkpoints, &key());
        assert!(verified.holds(), "{verified:?}");
        assert_eq!((verified.entries, verified.checkpoints), (10, 2));
    }

    #[test]
    fn an_edited_search_column_is_named_though_the_chain_holds() {
        type Edit = fn(&mut SearchColumns);
        let edits: [(&str, Edit); 7] = [
            ("source_id", |c| c.source_id.push('x')),
            ("recorded_at", |c| c.recorded_at += 1),
            ("kind", |c| c.kind = "read".into()),
            ("data_subject", |c| c.data_subject = Some("someone-else".into())),
            ("case_number", |c| c.case_number = None),
            ("requester_department", |c| c.requester_department = "elsewhere".into()),
            ("provider", |c| c.provider.clear()),
        ];
        for (column, edit) in edits {
            let mut rows = ledger(5);
            edit(&mut rows[3].columns);
            let verified = verify(&rows, &[], &key());
            assert_eq!(verified.first_bad_entry, Some(4), "{column}: {verified:?}");
            assert!(verified.problems[0].contains(&format!("searchable column {column} ")), "{verified:?}");
        }
    }

    #[test]
    fn each_kind_of_tampering_names_the_first_bad_entry() {
        let rows = ledger(8);
        let mut edited = rows.clone();
        edited[4].body =
            String::from_utf8(edited[4].body.clone()).unwrap().replace("办理食品经营许可", "随便看看").into_bytes();
        let mut deleted = rows.clone();
        deleted.remove(2);
        let mut reordered = rows.clone();
        reordered.swap(5, 6);
        let mut inserted = rows.clone();
        let forged = seal(&Entry { seq: 4, recorded_at: 4, record: record(99) }, &rows[2].hash);
        inserted.insert(3, forged);
        for (name, tampered, first_bad) in
            [("edited", edited, 5), ("deleted", deleted, 3), ("reordered", reordered, 6), ("inserted", inserted, 5)]
        {
            let verified = verify(&tampered, &[], &key());
            assert_eq!(verified.first_bad_entry, Some(first_bad), "{name}: {verified:?}");
            assert!(!verified.holds(), "{name}");
        }
    }

    #[test]
    fn a_consistently_rewritten_chain_is_caught_by_the_signed_checkpoint() {
        let rows = ledger(6);
        let checkpoint = Checkpoint::sign(&key(), 1, &hashes(&rows), 1);
        // Entry 3 changed and every hash after it recomputed: the chain alone holds.
        let mut previous = rows[1].hash;
        let mut rewritten = rows[..2].to_vec();
        for seq in 3..=6 {
            let mut forged = record(seq);
            if seq == 3 {
                forged.purpose = "无关用途".into();
            }
            let stored = seal(&Entry { seq, recorded_at: seq, record: forged }, &previous);
            previous = stored.hash;
            rewritten.push(stored);
        }
        assert!(verify(&rewritten, &[], &key()).holds());
        let verified = verify(&rewritten, std::slice::from_ref(&checkpoint), &key());
        assert_eq!(verified.first_bad_entry, Some(6), "{verified:?}");
        // A checkpoint re-signed with another key is refused too.
        let forged = Checkpoint::sign(&SigningKey::from_bytes(&[8; 32]), 1, &hashes(&rewritten), 1);
        assert!(!verify(&rewritten, &[forged], &key()).holds());
        let mut altered = checkpoint;
        altered.size = 5;
        assert!(!altered.signed_by(&key().verifying_key()));
    }

    #[test]
    fn an_inclusion_proof_ties_one_entry_to_a_checkpoint() {
        let rows = ledger(13);
        let checkpoint = Checkpoint::sign(&key(), 1, &hashes(&rows), 1);
        for seq in [1, 7, 13] {
            let proof = inclusion_proof(1, &hashes(&rows), seq).unwrap();
            assert!(proof.holds_for(&checkpoint), "entry {seq}");
            let mut wrong = proof.clone();
            wrong.entry_hash = rows[0].hash;
            assert_eq!(wrong.holds_for(&checkpoint), seq == 1, "entry {seq} with another entry's hash");
        }
        assert!(inclusion_proof(1, &hashes(&rows), 14).is_none());
        // After entries 1 to 5 are archived, checkpoints and proofs cover entries 6 to 13.
        let kept = Checkpoint::sign(&key(), 6, &hashes(&rows[5..]), 2);
        assert_eq!((kept.first_seq, kept.size, kept.entries()), (6, 13, 8));
        let proof = inclusion_proof(6, &hashes(&rows[5..]), 9).unwrap();
        assert!(proof.holds_for(&kept) && !proof.holds_for(&checkpoint));
        assert!(inclusion_proof(6, &hashes(&rows[5..]), 5).is_none());
    }

    #[test]
    fn the_chain_continues_from_the_last_archived_entry() {
        let rows = ledger(10);
        let old = Checkpoint::sign(&key(), 1, &hashes(&rows[..4]), 1);
        let newest = Checkpoint::sign(&key(), 5, &hashes(&rows[4..]), 2);
        let check = |first_seq: i64, previous: Hash, rows: &[StoredEntry]| {
            let mut check = ChainCheck::new(first_seq, previous);
            check.push_checked_page(rows, &RowCheck::of_rows(rows));
            check.finish(&[old.clone(), newest.clone()], &key().verifying_key())
        };
        let verified = check(5, rows[3].hash, &rows[4..]);
        assert!(verified.holds(), "{verified:?}");
        assert_eq!(verified.entries, 6);
        // Kept entries that do not continue the archive, or that begin later, are caught.
        assert_eq!(check(5, rows[2].hash, &rows[4..]).first_bad_entry, Some(5));
        assert_eq!(check(5, rows[3].hash, &rows[5..]).first_bad_entry, Some(5));
    }
}
