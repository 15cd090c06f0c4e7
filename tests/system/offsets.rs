//! An operator moves a running consumer group's offsets: back to the earliest message (all read
//! again), to the end (the backlog skipped, even the batch the group is stuck on), and to an
//! instant (what was written from then on read again).
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bus::{run_consumer, BatchHandler, BatchLimit, Bus, BusConfig, Delivery, Rejected, ResetError, ResetTo};
use contracts::{CaseArchived, Catalogue, Event};
use rdkafka::producer::FutureRecord;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const TOPIC: &str = "hub.cases.lifecycle";
const GROUP: &str = "offsets-test";

/// Counts how often each message was handled; while held, it waits before handling anything.
struct Recorder {
    handled: Mutex<BTreeMap<String, u32>>,
    open: watch::Sender<bool>,
    /// Set when a batch waits at the closed gate.
    waiting: watch::Sender<bool>,
}

#[async_trait]
impl BatchHandler for Recorder {
    async fn handle(&self, batch: &[Delivery]) -> anyhow::Result<Vec<Rejected>> {
        let mut open = self.open.subscribe();
        if !*open.borrow() {
            self.waiting.send_replace(true);
            while !*open.borrow_and_update() {
                open.changed().await?;
            }
        }
        let mut handled = self.handled.lock().unwrap();
        for delivery in batch {
            *handled.entry(delivery.event.case_number().to_string()).or_default() += 1;
        }
        Ok(Vec::new())
    }
}

impl Recorder {
    fn count(&self, case: &str) -> u32 {
        self.handled.lock().unwrap().get(case).copied().unwrap_or(0)
    }

    async fn until(&self, what: &str, done: impl Fn(&Recorder) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !done(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "never: {what}; handled {:?}",
                self.handled.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn case(n: usize) -> String {
    format!("6104290000000{n:05}")
}

async fn publish(bus: &Bus, cases: std::ops::Range<usize>) {
    let producer = bus.producer().unwrap();
    for n in cases {
        let event = Event::from(CaseArchived {
            event_id: format!("{}/1", case(n)),
            case_number: case(n),
            occurred_at: 1,
            final_outcome: "signed".into(),
            document_count: 1,
            archivist: "马晓燕".into(),
            file_number: String::new(),
            retention: "D30".into(),
            unit_code: String::new(),
        });
        let payload = contracts::encode(&event).unwrap();
        producer.send(FutureRecord::to(TOPIC).key(&case(n)).payload(&payload), Duration::from_secs(10)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_group_is_moved_back_forward_and_to_an_instant() {
    let bus = Arc::new(Bus::connect(&BusConfig::default(), Arc::new(Catalogue::builtin())).await.unwrap());
    let recorder = Arc::new(Recorder {
        handled: Default::default(),
        open: watch::Sender::new(true),
        waiting: watch::Sender::new(false),
    });
    let shutdown = CancellationToken::new();
    let consumer = tokio::spawn(run_consumer(
        bus.clone(),
        GROUP.into(),
        vec![TOPIC.into()],
        recorder.clone(),
        BatchLimit { usual: 64, behind: 64 },
        shutdown.clone(),
    ));

    publish(&bus, 0..12).await;
    recorder.until("the first twelve handled", |r| (0..12).all(|n| r.count(&case(n)) == 1)).await;

    // Earliest: everything is read again, once more.
    let moved = bus.resets().reset(GROUP, ResetTo::Earliest, None).await.unwrap();
    assert_eq!(moved.len(), 6, "every partition of the topic: {moved:?}");
    assert!(moved.iter().all(|p| p.offset == 0), "{moved:?}");
    recorder.until("the twelve handled again", |r| (0..12).all(|n| r.count(&case(n)) == 2)).await;

    // Latest while the group is stuck on a batch: the batch is abandoned and the backlog skipped.
    recorder.open.send_replace(false);
    publish(&bus, 12..18).await;
    let mut waiting = recorder.waiting.subscribe();
    tokio::time::timeout(Duration::from_secs(30), waiting.wait_for(|w| *w))
        .await
        .expect("a batch reached the gate")
        .unwrap();
    let moved = bus.resets().reset(GROUP, ResetTo::Latest, None).await.unwrap();
    assert_eq!(moved.iter().map(|p| p.offset).sum::<i64>(), 18, "the end of every partition: {moved:?}");
    let ends = bus.group_positions(GROUP, &[TOPIC.to_string()]).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut committed = ends.clone();
    while committed.iter().any(|p| p.committed != Some(p.end)) {
        assert!(tokio::time::Instant::now() < deadline, "the reset was not committed: {committed:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        committed = bus.group_positions(GROUP, &[TOPIC.to_string()]).await.unwrap();
    }
    recorder.open.send_replace(true);
    publish(&bus, 18..19).await;
    recorder.until("the message after the reset handled", |r| r.count(&case(18)) == 1).await;
    assert!(
        (12..18).all(|n| recorder.count(&case(n)) == 0),
        "the skipped backlog was handled: {:?}",
        recorder.handled.lock().unwrap()
    );

    // An instant: what was written from then on is read again, nothing before it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let instant = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    tokio::time::sleep(Duration::from_millis(50)).await;
    publish(&bus, 19..22).await;
    recorder.until("the last three handled", |r| (19..22).all(|n| r.count(&case(n)) == 1)).await;
    bus.resets().reset(GROUP, ResetTo::Time(instant), None).await.unwrap();
    recorder.until("the last three handled again", |r| (19..22).all(|n| r.count(&case(n)) == 2)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(recorder.count(&case(18)), 1, "a message from before the instant was read again");
    assert_eq!(recorder.count(&case(0)), 2);

    assert!(matches!(bus.resets().reset("nonesuch", ResetTo::Latest, None).await, Err(ResetError::NotRunHere(_))));
    shutdown.cancel();
    consumer.await.unwrap().unwrap();
}
