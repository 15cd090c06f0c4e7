//! Which instance does what. Several hubs may share one PostgreSQL database; each background
//! duty that must happen once (the relay, the ledger's checkpoints, …) runs on the instance
//! holding its session advisory lock. A lock goes with its holder's connection, so when an
//! instance dies a survivor takes its duties over within a tick. SQLite serves one instance,
//! which holds every duty.
use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _};
use sqlx::{Connection as _, PgConnection};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A background job that runs on one instance at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Duty {
    /// Publishes the outbox (one relay keeps each case's events in order).
    Relay,
    /// Signs the ledger's checkpoints and archives its old entries.
    LedgerKeeping,
    /// Checks the cases' time limits.
    Deadlines,
    /// Synchronises the matter catalogue with the provincial platform.
    CatalogueSync,
    /// Prunes settled outbox rows and old applied-event records.
    Pruning,
    /// Deletes from the log what every consumer group has handled (the embedded broker).
    LogTrimming,
}

impl Duty {
    pub const ALL: [Duty; 6] =
        [Duty::Relay, Duty::LedgerKeeping, Duty::Deadlines, Duty::CatalogueSync, Duty::Pruning, Duty::LogTrimming];

    fn lock_name(self) -> &'static str {
        match self {
            Duty::Relay => "hub.duty.relay",
            Duty::LedgerKeeping => "hub.duty.ledger",
            Duty::Deadlines => "hub.duty.deadlines",
            Duty::CatalogueSync => "hub.duty.catalogue",
            Duty::Pruning => "hub.duty.pruning",
            Duty::LogTrimming => "hub.duty.log-trimming",
        }
    }
}

/// Whether this instance may share its database with others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// With an embedded broker: any other instance would drain the shared outbox into a broker
    /// of its own, so this one holds its database for its whole life.
    Alone,
    /// With a shared Kafka cluster: any number of instances, duties elected.
    Clustered,
}

/// How often duties not held are tried for, and held locks checked.
const TICK: Duration = Duration::from_secs(1);
/// Names every instance's membership: shared by clustered instances, exclusive for a lone one.
const INSTANCES_LOCK: &str = "hub.instances";

/// This instance's duties, as elected.
pub struct Elections {
    held: HashMap<Duty, watch::Receiver<bool>>,
    /// Where nothing is elected (one instance), the switches that stay on for its life.
    _holding: Vec<watch::Sender<bool>>,
    release: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
    /// The SQLite lock file, held open (and locked) for the process's life.
    _sqlite_lock: Option<std::fs::File>,
}

impl Elections {
    /// SQLite: this instance is the only one (locked through a file beside the database).
    pub fn sqlite(database: &Path) -> anyhow::Result<Elections> {
        let lock_path = database.with_extension("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("opening {}", lock_path.display()))?;
        if file.try_lock().is_err() {
            bail!(
                "another hub instance runs on {}: SQLite serves one instance; \
                 to run several, give each the same PostgreSQL database.url and bus.bootstrap_servers",
                database.display()
            );
        }
        let mut elections = Elections::holding_all();
        elections._sqlite_lock = Some(file);
        Ok(elections)
    }

    /// An in-memory database: nobody else can reach it.
    pub fn private() -> Elections {
        Elections::holding_all()
    }

    fn holding_all() -> Elections {
        let (senders, held) = Duty::ALL
            .iter()
            .map(|&duty| {
                let (sender, receiver) = watch::channel(true);
                (sender, (duty, receiver))
            })
            .unzip();
        Elections { held, _holding: senders, release: CancellationToken::new(), task: None, _sqlite_lock: None }
    }

    /// PostgreSQL: joins the instances on `url` as `sharing` says (refusing where that breaks
    /// the one-broker rule) and starts standing for the duties.
    pub async fn postgres(url: &str, sharing: Sharing) -> anyhow::Result<Elections> {
        let mut connection =
            PgConnection::connect(url).await.with_context(|| format!("connecting to {url} for elections"))?;
        join(&mut connection, sharing).await?;
        let release = CancellationToken::new();
        let mut senders = HashMap::new();
        let mut held = HashMap::new();
        for duty in Duty::ALL {
            let (sender, receiver) = watch::channel(sharing == Sharing::Alone);
            senders.insert(duty, sender);
            held.insert(duty, receiver);
        }
        let task = tokio::spawn(stand(url.to_string(), connection, sharing, senders, release.clone()));
        Ok(Elections { held, _holding: Vec::new(), release, task: Some(task), _sqlite_lock: None })
    }

    /// Runs `job` whenever this instance holds `duty`, until `shutdown`; a job whose duty moves
    /// elsewhere is told to stop (its token cancelled) and awaited before standing again.
    pub fn run_elected<F, Fut>(&self, duty: Duty, shutdown: CancellationToken, job: F) -> impl Future<Output = ()>
    where
        F: Fn(CancellationToken) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut held = self.held[&duty].clone();
        async move {
            loop {
                // Only whether it happened is kept: the borrowed value may not cross an await.
                let elected = async { held.wait_for(|holds| *holds).await.is_ok() };
                tokio::select! {
                    elected = elected => if !elected { return },
                    _ = shutdown.cancelled() => return,
                }
                tracing::info!(?duty, "this instance took on a duty");
                let term = shutdown.child_token();
                let run = job(term.clone());
                tokio::pin!(run);
                tokio::select! {
                    _ = &mut run => return,
                    lost = async { held.wait_for(|holds| !*holds).await.is_ok() } => {
                        if !lost {
                            run.await; // the elections stopped: the job stops with the hub
                            return;
                        }
                        tracing::warn!(?duty, "this instance lost a duty; stopping it");
                        term.cancel();
                        run.await;
                    }
                }
            }
        }
    }

    /// Whether this instance holds `duty` now.
    pub fn holds(&self, duty: Duty) -> bool {
        *self.held[&duty].borrow()
    }

    /// Gives every duty up (after the jobs stopped), so a survivor takes them at once.
    pub async fn release(mut self) {
        self.release.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// The advisory-lock key of `name`: two 32-bit halves, the first naming the schema, so
/// instances (and tests) on different schemas of one database never meet.
const LOCK_KEY: &str = "hashtext(current_schema()), hashtext($1)";

async fn try_lock(connection: &mut PgConnection, name: &str, shared: bool) -> anyhow::Result<bool> {
    let function = if shared { "pg_try_advisory_lock_shared" } else { "pg_try_advisory_lock" };
    Ok(sqlx::query_scalar(&format!("SELECT {function}({LOCK_KEY})")).bind(name).fetch_one(connection).await?)
}

/// Takes this instance's membership lock, or says why it may not run beside the others.
async fn join(connection: &mut PgConnection, sharing: Sharing) -> anyhow::Result<()> {
    let joined = try_lock(connection, INSTANCES_LOCK, sharing == Sharing::Clustered).await?;
    match (joined, sharing) {
        (true, _) => Ok(()),
        (false, Sharing::Alone) => bail!(
            "another hub instance runs on this database: an instance with no bus.bootstrap_servers \
             (its own embedded broker) must run alone; to run several, set bus.bootstrap_servers \
             to one shared Kafka cluster on every instance"
        ),
        (false, Sharing::Clustered) => bail!(
            "a hub instance with no bus.bootstrap_servers (its own embedded broker) runs on this \
             database and must run alone; stop it, or set bus.bootstrap_servers on it too"
        ),
    }
}

/// Stands for every duty not held, each tick, and checks the connection holding the locks: a
/// lost connection loses every duty at once (the database has released them).
async fn stand(
    url: String,
    mut connection: PgConnection,
    sharing: Sharing,
    duties: HashMap<Duty, watch::Sender<bool>>,
    release: CancellationToken,
) {
    let mut joined = true;
    let mut ticks = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = release.cancelled() => break,
        }
        let round = async {
            if !joined {
                join(&mut connection, sharing).await?;
                joined = true;
            }
            sqlx::query("SELECT 1").execute(&mut connection).await?;
            for (duty, held) in &duties {
                if !*held.borrow() && try_lock(&mut connection, duty.lock_name(), false).await? {
                    held.send_replace(true);
                }
            }
            anyhow::Ok(())
        };
        if let Err(error) = round.await {
            for held in duties.values() {
                held.send_replace(false);
            }
            joined = false;
            tracing::warn!(error = format!("{error:#}"), "lost the elections' connection; duties given up");
            if let Ok(fresh) = PgConnection::connect(&url).await {
                connection = fresh;
            }
        }
    }
    for held in duties.values() {
        held.send_replace(false);
    }
    let _ = connection.close().await;
}
