//! The transactional outbox: events are written to the database in the same transaction as the
//! state change that caused them; the relay publishes them to Kafka afterwards.
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use contracts::Event;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use crate::{Bus, ClusterIdentity, OffRuntimeDrop, RetryPolicy};

/// An event waiting in the outbox, already encoded in the wire format.
#[derive(Debug, Clone)]
pub struct OutboxMessage {
    pub id: i64,
    pub topic: String,
    pub key: String,
    pub payload: Vec<u8>,
}

/// What the relay needs from the database.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Ids above `after` of the oldest unpublished messages, in the order they were written.
    async fn unpublished_ids(&self, after: i64, limit: i64) -> anyhow::Result<Vec<i64>>;
    /// The messages with these ids, in id order.
    async fn messages(&self, ids: &[i64]) -> anyhow::Result<Vec<OutboxMessage>>;
    /// The oldest unpublished messages above `after`, in the order they were written.
    async fn unpublished_messages(&self, after: i64, limit: i64) -> anyhow::Result<Vec<OutboxMessage>>;
    async fn mark_published(&self, ids: &[i64]) -> anyhow::Result<()>;
    /// The cluster id of the broker the outbox was last published to.
    async fn broker_cluster(&self) -> anyhow::Result<Option<String>>;
    async fn keep_broker_cluster(&self, cluster: &str) -> anyhow::Result<()>;
    /// Whether ids are handed out in commit order (one writer), so that reading past the highest
    /// id sent misses nothing. PostgreSQL sequences are not: a lower id can commit later.
    fn ids_follow_commit_order(&self) -> bool;
}

/// Something a connector took in (a Kafka event, a counterpart's push) and the events it causes.
#[derive(Debug, Clone)]
pub struct Effect {
    pub source_event_id: String,
    pub events: Vec<Event>,
}

/// What a connector needs from the database: idempotent consumption and durable publication.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Which of `source_event_ids` `consumer` has already applied.
    async fn applied_among(&self, consumer: &str, source_event_ids: &[&str]) -> anyhow::Result<HashSet<String>>;
    /// In one transaction: records that `consumer` applied each effect's source and enqueues
    /// the events it causes. A source applied before (or earlier in `effects`) changes nothing.
    /// Returns, per effect, whether it was newly applied.
    async fn apply_all(&self, consumer: &str, effects: &[Effect]) -> anyhow::Result<Vec<bool>>;
}

/// Messages read from the outbox at a time.
const RELAY_BATCH: usize = 500;
/// Messages sent but not yet acknowledged, at most.
const MAX_IN_FLIGHT: usize = 5_000;
/// How often the relay looks again at the whole outbox rather than only past what it sent, for
/// messages whose sending failed. Where ids do not follow commit order it always reads it all:
/// a message committed late must not wait, or a case's next event could overtake it.
const RESCAN_EVERY: Duration = Duration::from_secs(1);

/// Why the relay returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEnd {
    Stopped,
    /// The broker answers with another cluster id than the one last published to: a new
    /// cluster, or a broker restarted on a memory engine, without the log the outbox counted on.
    /// Whatever consumers have not applied must be sent again, and the new id kept.
    BrokerLostLog {
        was: String,
        now: String,
    },
}

/// How often the relay checks that it still publishes to the same cluster.
const CLUSTER_CHECK_EVERY: Duration = Duration::from_secs(2);

/// Publishes outbox messages in order until `shutdown` or until the broker turns out to be
/// another cluster than the outbox last published to; wakes on `wake` or every 100 ms.
///
/// Sending and acknowledging overlap: one half hands messages to the producer as soon as they
/// are committed, the other marks them published as the broker acknowledges them. A message
/// that fails is left unpublished and sent again; consumers are idempotent.
pub async fn run_relay(
    store: Arc<dyn OutboxStore>,
    bus: &Bus,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) -> anyhow::Result<RelayEnd> {
    let identity = ClusterIdentity::new(bus)?;
    let cluster = identity.cluster_id().await?;
    match store.broker_cluster().await? {
        Some(was) if was != cluster => return Ok(RelayEnd::BrokerLostLog { was, now: cluster }),
        Some(_) => {}
        None => store.keep_broker_cluster(&cluster).await?,
    }
    let producer = OffRuntimeDrop::new(bus.producer()?);
    let in_flight = Mutex::new(InFlight::default());
    let (sent, acknowledgements) = mpsc::channel(MAX_IN_FLIGHT);
    let stop = shutdown.child_token();
    let sending = send_loop(store.as_ref(), &producer, &in_flight, sent, &wake, &stop);
    let acknowledging = acknowledge_loop(store.as_ref(), &in_flight, acknowledgements);
    let watching = async {
        let changed = watch_cluster(&identity, &cluster, &stop).await;
        stop.cancel();
        changed
    };
    let (_, _, changed) = tokio::join!(sending, acknowledging, watching);
    producer.close().await;
    identity.close().await;
    Ok(match changed {
        Some(now) => RelayEnd::BrokerLostLog { was: cluster, now },
        None => RelayEnd::Stopped,
    })
}

/// Every `CLUSTER_CHECK_EVERY`, asks the broker its cluster id; answers a new one, or None at `stop`.
async fn watch_cluster(identity: &ClusterIdentity, cluster: &str, stop: &CancellationToken) -> Option<String> {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(CLUSTER_CHECK_EVERY) => {}
            _ = stop.cancelled() => return None,
        }
        match identity.cluster_id().await {
            Ok(now) if now != cluster => return Some(now),
            Ok(_) => {}
            Err(error) => tracing::debug!(%error, "cluster id not read; asking again later"),
        }
    }
}

type Sent = (i64, DeliveryFuture);

/// Messages handed to the producer and not yet settled, and those marked published lately: a
/// read of the outbox that began before a message was marked still lists it as unpublished, so
/// the relay remembers it until no read that began before its marking is left to filter.
#[derive(Default)]
struct InFlight {
    sending: HashSet<i64>,
    /// (reads begun when it was marked published, id)
    published: Vec<(u64, i64)>,
    reads_begun: u64,
}

impl InFlight {
    fn begin_read(&mut self) -> u64 {
        self.reads_begun += 1;
        self.reads_begun
    }

    /// Of the ids a read (numbered `read`) found unpublished, those to send now.
    fn unsent(&mut self, read: u64, ids: Vec<i64>) -> Vec<i64> {
        let published: HashSet<i64> = self.published.iter().map(|&(_, id)| id).collect();
        let fresh = ids.into_iter().filter(|id| !self.sending.contains(id) && !published.contains(id)).collect();
        self.forget_marked_before(read);
        fresh
    }

    /// Marked before read `read` began: this and every later read saw them published.
    fn forget_marked_before(&mut self, read: u64) {
        self.published.retain(|&(marked, _)| marked >= read);
    }

    fn settle(&mut self, published: &[i64], failed: &[i64]) {
        for id in published {
            self.sending.remove(id);
            self.published.push((self.reads_begun, *id));
        }
        for id in failed {
            self.sending.remove(id);
        }
    }
}

async fn send_loop(
    store: &dyn OutboxStore,
    producer: &FutureProducer,
    in_flight: &Mutex<InFlight>,
    sent: mpsc::Sender<Sent>,
    wake: &Notify,
    shutdown: &CancellationToken,
) {
    let retry = RetryPolicy::default();
    let mut failures = 0;
    let mut cursor = Cursor { sent_up_to: 0, rescanned: tokio::time::Instant::now() };
    while !shutdown.is_cancelled() {
        match send_once(store, producer, in_flight, &sent, &mut cursor).await {
            Ok(count) => {
                failures = 0;
                if count >= RELAY_BATCH {
                    continue;
                }
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
            Err(error) => {
                failures += 1;
                tracing::warn!(%error, failures, "outbox relay failed; retrying");
                retry.wait(failures, shutdown).await;
            }
        }
    }
}

/// Where the relay is in the outbox.
struct Cursor {
    /// Highest id handed to the producer.
    sent_up_to: i64,
    rescanned: tokio::time::Instant,
}

/// Hands the oldest unpublished messages that are not in flight to the producer; returns how many.
async fn send_once(
    store: &dyn OutboxStore,
    producer: &FutureProducer,
    in_flight: &Mutex<InFlight>,
    sent: &mpsc::Sender<Sent>,
    cursor: &mut Cursor,
) -> anyhow::Result<usize> {
    let (busy, read) = {
        let mut in_flight = in_flight.lock().expect("in-flight lock");
        (in_flight.sending.len(), in_flight.begin_read())
    };
    if busy >= MAX_IN_FLIGHT {
        tokio::time::sleep(Duration::from_millis(5)).await;
        return Ok(0);
    }
    let messages = if !store.ids_follow_commit_order() || cursor.rescanned.elapsed() >= RESCAN_EVERY {
        cursor.rescanned = tokio::time::Instant::now();
        let ids = store.unpublished_ids(0, (busy + RELAY_BATCH) as i64).await?;
        let mut fresh = in_flight.lock().expect("in-flight lock").unsent(read, ids);
        fresh.truncate(RELAY_BATCH);
        if fresh.is_empty() {
            return Ok(0);
        }
        store.messages(&fresh).await?
    } else {
        // Above the highest id sent nothing is in flight or marked yet, so the messages
        // themselves are read at once (one statement, not ids and then payloads) and need no
        // filtering.
        let messages = store.unpublished_messages(cursor.sent_up_to, RELAY_BATCH as i64).await?;
        in_flight.lock().expect("in-flight lock").forget_marked_before(read);
        messages
    };
    for message in &messages {
        // The idempotent producer keeps the order of what is enqueued here, per partition.
        let record = FutureRecord::to(&message.topic).key(&message.key).payload(&message.payload);
        let delivery = producer
            .send_result(record)
            .map_err(|(error, _)| anyhow::anyhow!("queueing outbox message {}: {error}", message.id))?;
        in_flight.lock().expect("in-flight lock").sending.insert(message.id);
        cursor.sent_up_to = cursor.sent_up_to.max(message.id);
        if sent.send((message.id, delivery)).await.is_err() {
            break; // stopping
        }
    }
    Ok(messages.len())
}

/// The least time between two marks of messages published. Every mark is a turn at SQLite's
/// one writer, which the counters' answers queue behind; under load the acknowledgements that
/// come in meanwhile are gathered into the next mark instead. A crash loses at most this much
/// marking: those messages go again and consumers skip them.
const MARK_EVERY: Duration = Duration::from_millis(50);

/// Why a message handed to the producer was not taken by the broker.
enum NotTaken {
    Refused(String),
    /// The producer closed first (the relay is stopping).
    ProducerGone,
}

/// A message's delivery as the relay waits on it: whether the broker took the message.
trait Delivery: std::future::Future {
    fn taken(outcome: Self::Output) -> Result<(), NotTaken>;
}

impl Delivery for DeliveryFuture {
    fn taken(outcome: Self::Output) -> Result<(), NotTaken> {
        match outcome {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((error, _))) => Err(NotTaken::Refused(error.to_string())),
            Err(_) => Err(NotTaken::ProducerGone),
        }
    }
}

/// Marks messages published as the broker acknowledges them, a batch at a time.
async fn acknowledge_loop<D: Delivery>(
    store: &dyn OutboxStore,
    in_flight: &Mutex<InFlight>,
    mut acknowledgements: mpsc::Receiver<(i64, D)>,
) {
    let retry = RetryPolicy::default();
    let mut next_mark = tokio::time::Instant::now();
    while let Some(first) = acknowledgements.recv().await {
        let mut batch = vec![first];
        while batch.len() < RELAY_BATCH {
            tokio::select! {
                biased;
                next = acknowledgements.recv() => match next {
                    Some(next) => batch.push(next),
                    None => break,
                },
                _ = tokio::time::sleep_until(next_mark) => break,
            }
        }
        let mut failed = Vec::new();
        let mut delivered = Vec::with_capacity(batch.len());
        for (id, delivery) in batch {
            match D::taken(delivery.await) {
                Ok(()) => delivered.push(id),
                Err(NotTaken::Refused(error)) => {
                    tracing::warn!(%error, id, "outbox message not acknowledged; it will be sent again");
                    failed.push(id);
                }
                Err(NotTaken::ProducerGone) => {
                    tracing::debug!(id, "producer gone before acknowledging");
                    failed.push(id);
                }
            }
        }
        let mut failures = 0;
        while let Err(error) = store.mark_published(&delivered).await {
            failures += 1;
            tracing::warn!(%error, failures, "marking outbox messages published failed; retrying");
            tokio::time::sleep(retry.delay(failures)).await;
        }
        in_flight.lock().expect("in-flight lock").settle(&delivered, &failed);
        next_mark = tokio::time::Instant::now() + MARK_EVERY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the marks; the relay's other reads are not used by the acknowledging half.
    #[derive(Default)]
    struct Marks(Mutex<Vec<Vec<i64>>>);

    #[async_trait]
    impl OutboxStore for Marks {
        async fn unpublished_ids(&self, _: i64, _: i64) -> anyhow::Result<Vec<i64>> {
            unreachable!("the acknowledging half reads nothing")
        }
        async fn messages(&self, _: &[i64]) -> anyhow::Result<Vec<OutboxMessage>> {
            unreachable!("the acknowledging half reads nothing")
        }
        async fn unpublished_messages(&self, _: i64, _: i64) -> anyhow::Result<Vec<OutboxMessage>> {
            unreachable!("the acknowledging half reads nothing")
        }
        async fn mark_published(&self, ids: &[i64]) -> anyhow::Result<()> {
            self.0.lock().unwrap().push(ids.to_vec());
            Ok(())
        }
        async fn broker_cluster(&self) -> anyhow::Result<Option<String>> {
            unreachable!("the acknowledging half reads nothing")
        }
        async fn keep_broker_cluster(&self, _: &str) -> anyhow::Result<()> {
            unreachable!("the acknowledging half writes only marks")
        }
        fn ids_follow_commit_order(&self) -> bool {
            true
        }
    }

    impl Delivery for std::future::Ready<Result<(), String>> {
        fn taken(outcome: Self::Output) -> Result<(), NotTaken> {
            outcome.map_err(NotTaken::Refused)
        }
    }

    #[tokio::test]
    async fn acknowledgements_arriving_steadily_are_marked_together_at_most_every_mark_interval() {
        let store = Marks::default();
        let in_flight = Mutex::new(InFlight::default());
        let (sent, acknowledgements) = mpsc::channel(MAX_IN_FLIGHT);
        let started = tokio::time::Instant::now();
        let acknowledging = acknowledge_loop(&store, &in_flight, acknowledgements);
        let acknowledging_steadily = async move {
            for id in 1..=60 {
                let taken = if id == 7 { Err("broker refused".to_string()) } else { Ok(()) };
                sent.send((id, std::future::ready(taken))).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::join!(acknowledging, acknowledging_steadily);
        let marks = store.0.into_inner().unwrap();
        let marked: Vec<i64> = marks.concat();
        assert_eq!(marked, (1..=60).filter(|&id| id != 7).collect::<Vec<_>>(), "each taken message once, in order");
        // Paced marks are MARK_EVERY apart; the first (after a quiet spell) and the last (the
        // channel closed) are not waited for.
        let most = started.elapsed().as_millis() / MARK_EVERY.as_millis() + 2;
        assert!(marks.len() as u128 <= most, "{} marks in {:?}: {marks:?}", marks.len(), started.elapsed());
        assert_eq!(marks[0], vec![1], "the first acknowledgement after a quiet spell is marked at once");
    }

    #[test]
    fn a_read_begun_before_a_message_was_marked_published_does_not_send_it_again() {
        let mut in_flight = InFlight::default();
        let first = in_flight.begin_read();
        assert_eq!(in_flight.unsent(first, vec![1, 2]), vec![1, 2]);
        in_flight.sending.extend([1, 2]);
        // A read begins, the broker acknowledges 1 and 2 (marked published), then the read
        // answers with what it saw before the marking.
        let stale = in_flight.begin_read();
        in_flight.settle(&[1], &[2]);
        assert_eq!(in_flight.unsent(stale, vec![1, 2, 3]), vec![2, 3], "1 was published; 2 failed and goes again");
        let later = in_flight.begin_read();
        assert_eq!(in_flight.unsent(later, vec![2, 3]), vec![2, 3]);
        assert!(in_flight.published.is_empty(), "forgotten once no earlier read is left");
    }
}
