//! Cases: the hub's consumer groups apply each consumed event to its case, and people's
//! commands run against cases; the core decides, the outcome is stored with the events to
//! publish in one transaction.
use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use bus::{BatchHandler, Delivery, Rejected};
use contracts::Event;
use hub_core::access::{command_refused, Seat};
use hub_core::deadlines;
use hub_core::{handle, handle_event, Case, Command, Context, Reference, Rejection};
use tokio_util::sync::CancellationToken;

use super::grouped::Grouped;
use super::reference::CurrentReference;
use super::reports::{keep_lines, Appended};
use crate::store::{now_ms, Store, StoreTx, Waiting};

/// A Kafka consumer group of the hub: applies each event it is handed to the case it names.
/// The hub's groups (`HUB_CONSUMERS`) differ only in the topics they read.
pub struct CaseProcessor {
    pub consumer: String,
    pub store: Store,
    pub reference: CurrentReference,
}

/// A case a batch touches: as loaded, and what the batch did to it.
struct Touched {
    case: Case,
    loaded: Case,
    history: Vec<Event>,
    publish: Vec<Event>,
}

/// Loads the cases named by `case_numbers` (repeats allowed) for a batch to change.
async fn load_touched<'n>(
    tx: &mut StoreTx<'_>,
    case_numbers: impl Iterator<Item = &'n str>,
) -> anyhow::Result<HashMap<String, Touched>> {
    let numbers: Vec<&str> = case_numbers.collect::<HashSet<_>>().into_iter().collect();
    Ok(tx
        .load_cases(&numbers)
        .await?
        .into_iter()
        .map(|(number, case)| {
            (number, Touched { loaded: case.clone(), case, history: Vec::new(), publish: Vec::new() })
        })
        .collect())
}

/// Writes what a batch did: new history, new snapshots with their re-armed deadline timers
/// (failing if another writer got there first), and the events to publish, a few statements
/// for the whole batch.
async fn save_touched(
    tx: &mut StoreTx<'_>,
    touched: &mut HashMap<String, Touched>,
    ctx: &Context<'_>,
) -> anyhow::Result<()> {
    for entry in touched.values_mut() {
        entry.case.timer_day = deadlines::next_check(&entry.case, ctx.today(), ctx.reference);
    }
    let changed: Vec<&Touched> =
        touched.values().filter(|t| !t.history.is_empty() || t.case.timer_day != t.loaded.timer_day).collect();
    let history: Vec<(u32, &Event)> = changed.iter().flat_map(|t| (t.loaded.seq + 1..).zip(&t.history)).collect();
    tx.append_history(&history).await?;
    let appended: Vec<Appended> = changed
        .iter()
        .map(|t| Appended { loaded: &t.loaded, first_seq: t.loaded.seq + 1, history: &t.history, now: &t.case })
        .collect();
    keep_lines(tx, &appended, ctx.reference).await?;
    let snapshots: Vec<(&Case, u32)> = changed.iter().map(|t| (&t.case, t.loaded.seq)).collect();
    tx.update_cases(&snapshots).await?;
    let publish: Vec<Event> = changed.iter().flat_map(|t| t.publish.iter().cloned()).collect();
    tx.enqueue(&publish).await
}

#[async_trait]
impl BatchHandler for CaseProcessor {
    /// One transaction per batch, and a handful of statements whatever its size: that, not the
    /// broker, is what bounds the hub's throughput on SQLite.
    async fn handle(&self, batch: &[Delivery]) -> anyhow::Result<Vec<Rejected>> {
        let mut tx = self.store.begin().await?;
        let ids: Vec<&str> = batch.iter().map(|d| d.event.event_id()).collect();
        let mut skip = tx.applied_among(&self.consumer, &ids).await?;
        let mut touched = load_touched(&mut tx, batch.iter().map(|d| d.event.case_number())).await?;
        let mut reference = self.reference.get();
        let unknown_version = |reference: &Reference| {
            touched.values().any(|t| {
                let matter = &t.case.application.matter;
                reference.matter_version(&matter.implementation_code, matter.version).is_none()
            })
        };
        if unknown_version(&reference) && super::catalogue::adopt_stored(&self.store, &self.reference).await? {
            // Accepted under a version another instance put in force a moment ago.
            reference = self.reference.get();
        }
        let ctx = Context { now: now_ms(), reference: &reference };
        let mut outcomes: Vec<(&str, String)> = Vec::new();
        let mut rejected = Vec::new();
        for (index, delivery) in batch.iter().enumerate() {
            let event = &delivery.event;
            if !skip.insert(event.event_id().to_string()) {
                continue;
            }
            let outcome = match touched.get_mut(event.case_number()) {
                None => Err(format!("{} names case {}, which does not exist", event.kind(), event.case_number())),
                // A connector's fact recorded is history, not news: it came from the bus.
                Some(entry) => handle_event(entry.case.clone(), event, &ctx)
                    .map(|handled| {
                        entry.case = handled.case;
                        entry.history.extend(handled.decided.into_iter().chain(handled.reactions.iter().cloned()));
                        entry.publish.extend(handled.reactions);
                    })
                    .map_err(|rejection| format!("{} rejected: {rejection}", event.kind())),
            };
            match outcome {
                Ok(()) => outcomes.push((event.event_id(), "applied".into())),
                Err(reason) => {
                    outcomes.push((event.event_id(), reason.clone()));
                    rejected.push(Rejected { index, reason });
                }
            }
        }
        let marks: Vec<(&str, &str)> = outcomes.iter().map(|(id, outcome)| (*id, outcome.as_str())).collect();
        tx.mark_applied(&self.consumer, &marks).await?;
        save_touched(&mut tx, &mut touched, &ctx).await?;
        tx.commit().await?;
        Ok(rejected)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("no case {0}")]
    NotFound(String),
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The seat giving the command may not act on this case.
    #[error("{0}")]
    NotYours(String),
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

/// A command for a case, with the seat that gives it when a person gives it through the API:
/// whether the case is theirs is checked on the case the command finds, in its transaction.
#[derive(Debug, Clone)]
pub struct Order {
    pub case_number: String,
    pub command: Command,
    pub by: Option<Seat>,
}

impl Order {
    /// A command the hub gives itself (a deadline check, the demo's clock).
    pub fn hub(case_number: String, command: Command) -> Order {
        Order { case_number, command, by: None }
    }
}

/// People's commands (a clerk's, an approver's, an applicant's review), gathered while the
/// writer is busy and decided together: a transaction per command is what limited the hub.
#[derive(Clone)]
pub struct Commands {
    group: Grouped<Vec<Order>, CommandOutcomes>,
}

/// Each command's outcome: where its case stands, or why it was not taken.
type CommandOutcomes = Vec<Result<Case, CommandError>>;

/// Commands gathered into one group, at most; a group still commits in transactions of
/// `COMMANDS_PER_TRANSACTION`.
const COMMANDS_GATHERED: usize = 256;

impl Commands {
    /// The commands and the task that serves them (to be spawned); the task ends with `shutdown`.
    pub fn new(
        store: Store,
        reference: CurrentReference,
        shutdown: CancellationToken,
    ) -> (Commands, impl std::future::Future<Output = ()> + Send + 'static) {
        let decide = move |requests: Vec<Vec<Order>>| {
            let (store, reference) = (store.clone(), reference.get());
            async move {
                let sizes: Vec<usize> = requests.iter().map(Vec::len).collect();
                let commands = requests.into_iter().flatten().collect();
                let mut outcomes =
                    execute_all_at(&store, &reference, commands, now_ms(), Waiting::Person).await?.into_iter();
                Ok(sizes.into_iter().map(|size| outcomes.by_ref().take(size).collect()).collect())
            }
        };
        let (group, task) = Grouped::new("deciding commands", COMMANDS_GATHERED, decide, shutdown);
        (Commands { group }, task)
    }

    /// Runs a command from a person (an approver's decision, `by` their seat; an applicant's
    /// review, by no seat) against a case.
    pub async fn execute(&self, case_number: &str, command: Command, by: Option<Seat>) -> Result<Case, CommandError> {
        let order = Order { case_number: case_number.to_string(), command, by };
        let mut outcomes = self.execute_all(vec![order]).await?;
        outcomes.remove(0)
    }

    /// Runs commands against cases in order; each succeeds or fails on its own (a batch
    /// approval where one case was decided meanwhile still decides the others). `Err` only
    /// when the database fails, and then the transactions before it stand: run again, their
    /// commands are refused as already done and the rest are taken.
    pub async fn execute_all(&self, commands: Vec<Order>) -> anyhow::Result<Vec<Result<Case, CommandError>>> {
        self.group.submit(commands).await
    }
}

/// How often commands are decided again on a case another instance changed meanwhile.
const CONCURRENT_CHANGE_ATTEMPTS: usize = 5;

/// Commands run in one transaction, at most: a batch approval of hundreds of cases would hold
/// SQLite's one writer, and the counters' submissions waiting for it, for as long as it took.
const COMMANDS_PER_TRANSACTION: usize = 16;

/// Runs commands against cases in order as of the instant `now`, a few cases per transaction
/// (see `Commands::execute_all`). Where another instance changed one of the cases
/// between reading and writing (its consumers applying an event, say), the commands are decided
/// again on what is there now.
pub async fn execute_all_at(
    store: &Store,
    reference: &Reference,
    commands: Vec<Order>,
    now: i64,
    waiting: Waiting,
) -> anyhow::Result<Vec<Result<Case, CommandError>>> {
    let mut outcomes = Vec::with_capacity(commands.len());
    for chunk in commands.chunks(COMMANDS_PER_TRANSACTION) {
        let mut attempt = 1;
        loop {
            match execute_once(store, reference, chunk.to_vec(), now, waiting).await {
                Err(error) if attempt < CONCURRENT_CHANGE_ATTEMPTS && crate::store::is_concurrent_change(&error) => {
                    tracing::debug!(%error, attempt, "a case changed meanwhile; deciding again");
                    attempt += 1;
                }
                outcome => {
                    outcomes.extend(outcome?);
                    break;
                }
            }
        }
    }
    Ok(outcomes)
}

async fn execute_once(
    store: &Store,
    reference: &Reference,
    commands: Vec<Order>,
    now: i64,
    waiting: Waiting,
) -> anyhow::Result<Vec<Result<Case, CommandError>>> {
    let mut tx = store.begin_for(waiting).await?;
    let mut touched = load_touched(&mut tx, commands.iter().map(|order| order.case_number.as_str())).await?;
    let ctx = Context { now, reference };
    let outcomes = commands
        .into_iter()
        .map(|Order { case_number, command, by }| {
            let entry = touched.get_mut(&case_number).ok_or(CommandError::NotFound(case_number))?;
            if let Some(refused) = by.and_then(|seat| command_refused(&seat, reference, &entry.case, &command)) {
                return Err(CommandError::NotYours(refused));
            }
            let handled = handle(entry.case.clone(), &command, &ctx)?;
            let events: Vec<Event> = handled.decided.into_iter().chain(handled.reactions).collect();
            entry.case = handled.case;
            entry.history.extend(events.iter().cloned());
            entry.publish.extend(events);
            Ok(entry.case.clone())
        })
        .collect();
    save_touched(&mut tx, &mut touched, &ctx).await?;
    tx.commit().await?;
    Ok(outcomes)
}
