//! Group commit: concurrent requests gathered and served together, one transaction per group.
//! With SQLite's one writer, the number of transactions and of statements in each, not their
//! size, is what limits the hub; a group of requests costs about what one did.
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use bus::{Effect, Outbox};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::store::Store;

type Reply<O> = oneshot::Sender<Result<O, Arc<anyhow::Error>>>;

/// Hands requests to the task serving them in groups (see `Grouped::new`).
pub struct Grouped<R, O> {
    requests: mpsc::Sender<(R, Reply<O>)>,
}

impl<R, O> Clone for Grouped<R, O> {
    fn clone(&self) -> Self {
        Grouped { requests: self.requests.clone() }
    }
}

impl<R: Send + 'static, O: Send + 'static> Grouped<R, O> {
    /// The handle and the task that serves it (to be spawned), which ends with `shutdown`.
    /// The task takes what is waiting, at most `most` requests, and answers them from one call
    /// of `serve`, which gives one outcome per request, in order. `what` names the work in the
    /// log when a group fails.
    pub fn new<S, F>(
        what: &'static str,
        most: usize,
        mut serve: S,
        shutdown: CancellationToken,
    ) -> (Grouped<R, O>, impl Future<Output = ()> + Send + 'static)
    where
        S: FnMut(Vec<R>) -> F + Send + 'static,
        F: Future<Output = anyhow::Result<Vec<O>>> + Send,
    {
        let (requests, mut pending) = mpsc::channel::<(R, Reply<O>)>(most * 4);
        let task = async move {
            loop {
                let first = tokio::select! {
                    first = pending.recv() => first,
                    _ = shutdown.cancelled() => None,
                };
                let Some(first) = first else { return };
                let mut group = vec![first];
                while group.len() < most {
                    match pending.try_recv() {
                        Ok(next) => group.push(next),
                        Err(_) => break,
                    }
                }
                let (requests, replies): (Vec<R>, Vec<Reply<O>>) = group.into_iter().unzip();
                // A short answer would leave callers told the hub is stopping: say what it was.
                let served = serve(requests).await.and_then(|outcomes| {
                    if outcomes.len() == replies.len() {
                        Ok(outcomes)
                    } else {
                        Err(anyhow::anyhow!("{} outcomes for {} requests", outcomes.len(), replies.len()))
                    }
                });
                match served {
                    Ok(outcomes) => {
                        outcomes.into_iter().zip(replies).for_each(|(outcome, reply)| drop(reply.send(Ok(outcome))));
                    }
                    Err(error) => {
                        tracing::error!(error = format!("{error:#}"), requests = replies.len(), "{what} failed");
                        let error = Arc::new(error);
                        replies.into_iter().for_each(|reply| drop(reply.send(Err(error.clone()))));
                    }
                }
            }
        };
        (Grouped { requests }, task)
    }

    /// Serves `request` with whatever else is waiting.
    pub async fn submit(&self, request: R) -> anyhow::Result<O> {
        let stopping = || anyhow::anyhow!("the hub is stopping");
        let (reply, answer) = oneshot::channel();
        self.requests.send((request, reply)).await.map_err(|_| stopping())?;
        answer.await.map_err(|_| stopping())?.map_err(|failed| anyhow::Error::new(GroupFailed(failed)))
    }
}

/// The store as the connectors' outbox, their effects gathered: each push from a counterpart and
/// each batch a connector consumes would otherwise take the writer for a transaction of its own.
pub struct GroupedOutbox {
    store: Store,
    group: Grouped<(String, Vec<Effect>), Vec<bool>>,
}

/// Connectors' calls gathered into one transaction, at most.
const EFFECTS_GATHERED: usize = 64;

impl GroupedOutbox {
    /// The outbox and the task that serves it (to be spawned); the task ends with `shutdown`.
    pub fn new(
        store: Store,
        shutdown: CancellationToken,
    ) -> (GroupedOutbox, impl Future<Output = ()> + Send + 'static) {
        let applier = store.clone();
        let apply = move |requests: Vec<(String, Vec<Effect>)>| {
            let store = applier.clone();
            async move {
                let each: Vec<(&str, &[Effect])> =
                    requests.iter().map(|(consumer, effects)| (consumer.as_str(), effects.as_slice())).collect();
                store.apply_each(&each).await
            }
        };
        let (group, task) = Grouped::new("applying connectors' effects", EFFECTS_GATHERED, apply, shutdown);
        (GroupedOutbox { store, group }, task)
    }
}

#[async_trait]
impl Outbox for GroupedOutbox {
    async fn applied_among(&self, consumer: &str, source_event_ids: &[&str]) -> anyhow::Result<HashSet<String>> {
        self.store.applied_among(consumer, source_event_ids).await
    }

    async fn apply_all(&self, consumer: &str, effects: &[Effect]) -> anyhow::Result<Vec<bool>> {
        self.group.submit((consumer.to_string(), effects.to_vec())).await
    }
}

/// A group's failure as each of its requests sees it: its causes stay readable, so a database
/// that went away is still told apart from a fault (503 and a retry, not 500).
#[derive(Debug)]
pub(super) struct GroupFailed(pub(super) Arc<anyhow::Error>);

impl std::fmt::Display for GroupFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("serving a group of requests together failed")
    }
}

impl std::error::Error for GroupFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref().as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_failure_keeps_its_causes_for_every_request() {
        let failure = Arc::new(anyhow::Error::from(sqlx::Error::PoolTimedOut).context("opening cases"));
        let seen = anyhow::Error::new(GroupFailed(failure.clone()));
        let causes: Vec<String> = seen.chain().map(ToString::to_string).collect();
        assert_eq!(causes.len(), 3, "{causes:?}");
        assert!(seen
            .chain()
            .any(|cause| matches!(cause.downcast_ref::<sqlx::Error>(), Some(sqlx::Error::PoolTimedOut))));
        assert_eq!(Arc::strong_count(&failure), 2);
    }

    #[tokio::test]
    async fn requests_waiting_together_are_served_in_one_group_each_with_its_own_answer() {
        let (groups_seen, seen) = (Arc::new(std::sync::Mutex::new(Vec::new())), CancellationToken::new());
        let record = groups_seen.clone();
        let (grouped, task) = Grouped::new(
            "doubling",
            3,
            move |numbers: Vec<u32>| {
                record.lock().unwrap().push(numbers.len());
                async move { Ok(numbers.into_iter().map(|n| n * 2).collect()) }
            },
            seen.clone(),
        );
        // Queued before the task runs, so the first group takes as many as it may.
        let asked: Vec<_> = (1..=5)
            .map(|n| {
                tokio::spawn({
                    let grouped = grouped.clone();
                    async move { grouped.submit(n).await.unwrap() }
                })
            })
            .collect();
        tokio::task::yield_now().await;
        let serving = tokio::spawn(task);
        let mut answers = Vec::new();
        for asked in asked {
            answers.push(asked.await.unwrap());
        }
        assert_eq!(answers, [2, 4, 6, 8, 10]);
        assert_eq!(*groups_seen.lock().unwrap(), [3, 2], "at most three at once, all that waited");
        seen.cancel();
        serving.await.unwrap();
        assert!(grouped.submit(1).await.is_err(), "no one serves after the stop");
    }
}
