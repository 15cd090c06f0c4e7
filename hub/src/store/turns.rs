//! Turns at SQLite's one writer. Every transaction waits for the writer; a person's (a counter's
//! submission, an approver's decision) goes before all background work still waiting, which
//! otherwise queues in arrival order and keeps the person waiting behind it.
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, Notify, OwnedMutexGuard};

/// Who waits for a transaction's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// Someone at a screen or a counter: goes ahead of background work.
    Person,
    /// Background work (consumers, duties).
    NoOne,
}

/// How long background work lets people go first before it joins their line: under a steady
/// stream of people's transactions it still moves.
const BACKGROUND_PATIENCE: Duration = Duration::from_millis(50);

pub(super) struct WriterTurns {
    writer: Arc<Mutex<()>>,
    /// Background work waits here one at a time, so only one of them watches the writer.
    background: Mutex<()>,
    people_waiting: AtomicUsize,
    released: Notify,
    /// Microseconds the writer has been held, for telling how busy it is.
    held_micros: AtomicU64,
    /// When a person last got the writer, in microseconds since `since`.
    person_served_micros: AtomicU64,
    since: Instant,
}

impl Default for WriterTurns {
    fn default() -> Self {
        WriterTurns {
            writer: Arc::default(),
            background: Mutex::default(),
            people_waiting: AtomicUsize::default(),
            released: Notify::default(),
            held_micros: AtomicU64::default(),
            person_served_micros: AtomicU64::new(0),
            since: Instant::now(),
        }
    }
}

/// The writer, for one transaction; the next waiting transaction gets it when this is dropped.
pub(super) struct Turn {
    _writer: OwnedMutexGuard<()>,
    turns: Arc<WriterTurns>,
    taken: Instant,
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.turns.held_micros.fetch_add(micros(self.taken.elapsed()), Ordering::Relaxed);
        self.turns.released.notify_one();
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

impl WriterTurns {
    /// The writer, as soon as the transactions of people ahead are done.
    pub(super) async fn for_person(self: &Arc<Self>) -> Turn {
        // Counted down on drop too: a request given up while waiting must not keep background
        // work waiting out its patience on every turn after.
        struct Counted<'c>(&'c AtomicUsize);
        impl Drop for Counted<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.people_waiting.fetch_add(1, Ordering::SeqCst);
        let waiting = Counted(&self.people_waiting);
        let writer = self.writer.clone().lock_owned().await;
        drop(waiting);
        self.person_served_micros.store(micros(self.since.elapsed()) + 1, Ordering::Relaxed);
        self.turn(writer)
    }

    /// Whether a person waits for the writer now or got it within `lately`.
    pub(super) fn people_lately(&self, lately: Duration) -> bool {
        if self.people_waiting.load(Ordering::SeqCst) > 0 {
            return true;
        }
        // 0 until the first person; stored one more than the time served, so never 0 after.
        let served = self.person_served_micros.load(Ordering::Relaxed);
        served != 0 && micros(self.since.elapsed()).saturating_sub(served) < micros(lately)
    }

    fn turn(self: &Arc<Self>, writer: OwnedMutexGuard<()>) -> Turn {
        Turn { _writer: writer, turns: self.clone(), taken: Instant::now() }
    }

    /// How long the writer has been held in all.
    pub(super) fn held(&self) -> Duration {
        Duration::from_micros(self.held_micros.load(Ordering::Relaxed))
    }

    /// The writer, once it is free and no person waits for it, or after `BACKGROUND_PATIENCE`
    /// behind the people then waiting.
    pub(super) async fn for_background(self: &Arc<Self>) -> Turn {
        let _first_in_line = self.background.lock().await;
        let patience = tokio::time::sleep(BACKGROUND_PATIENCE);
        tokio::pin!(patience);
        loop {
            // Made before looking, so a release in between is not missed.
            let released = self.released.notified();
            if self.people_waiting.load(Ordering::SeqCst) == 0 {
                if let Ok(writer) = self.writer.clone().try_lock_owned() {
                    return self.turn(writer);
                }
            }
            tokio::select! {
                _ = released => {}
                _ = &mut patience => {
                    return self.turn(self.writer.clone().lock_owned().await);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as Record;

    /// Who got the writer, in order.
    fn taker(
        turns: &Arc<WriterTurns>,
        who: &'static str,
        order: &Arc<Record<Vec<&'static str>>>,
        waiting: Waiting,
    ) -> tokio::task::JoinHandle<()> {
        let (turns, order) = (turns.clone(), order.clone());
        tokio::spawn(async move {
            let _turn = match waiting {
                Waiting::Person => turns.for_person().await,
                Waiting::NoOne => turns.for_background().await,
            };
            order.lock().unwrap().push(who);
        })
    }

    #[tokio::test]
    async fn a_person_goes_before_background_work_that_waited_longer() {
        let turns = Arc::new(WriterTurns::default());
        let order = Arc::new(Record::new(Vec::new()));
        let held = turns.for_person().await;
        let background = taker(&turns, "background", &order, Waiting::NoOne);
        tokio::time::sleep(Duration::from_millis(5)).await;
        let person = taker(&turns, "person", &order, Waiting::Person);
        tokio::time::sleep(Duration::from_millis(5)).await;
        drop(held);
        person.await.unwrap();
        background.await.unwrap();
        assert_eq!(*order.lock().unwrap(), ["person", "background"]);
    }

    #[tokio::test]
    async fn tells_whether_people_came_to_the_writer_lately() {
        let turns = Arc::new(WriterTurns::default());
        let lately = Duration::from_millis(100);
        assert!(!turns.people_lately(lately), "no one has come yet");
        drop(turns.for_background().await);
        assert!(!turns.people_lately(lately), "background work is not a person");
        let held = turns.for_background().await;
        let person = {
            let turns = turns.clone();
            tokio::spawn(async move { drop(turns.for_person().await) })
        };
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(turns.people_lately(lately), "a person waiting counts however long ago they came");
        drop(held);
        person.await.unwrap();
        assert!(turns.people_lately(lately));
        tokio::time::sleep(lately).await;
        assert!(!turns.people_lately(lately), "served more than 100 ms ago");
    }

    #[tokio::test]
    async fn background_work_still_moves_while_people_keep_coming() {
        let turns = Arc::new(WriterTurns::default());
        let order = Arc::new(Record::new(Vec::new()));
        let mut held = turns.for_person().await;
        let background = taker(&turns, "background", &order, Waiting::NoOne);
        // A person always waits when the writer is handed on, for ten patiences.
        let until = tokio::time::Instant::now() + BACKGROUND_PATIENCE * 10;
        while tokio::time::Instant::now() < until && !background.is_finished() {
            let next = {
                let turns = turns.clone();
                tokio::spawn(async move { turns.for_person().await })
            };
            tokio::time::sleep(Duration::from_millis(5)).await;
            drop(held);
            held = next.await.unwrap();
            order.lock().unwrap().push("person");
        }
        // Checked while a person holds the writer (one thread: nothing runs in between).
        let moved_meanwhile = background.is_finished();
        drop(held);
        background.await.unwrap();
        let order = order.lock().unwrap();
        assert!(moved_meanwhile, "background work waited for every person: {order:?}");
        assert_ne!(order.first(), Some(&"background"), "background work went before a waiting person");
    }
}
