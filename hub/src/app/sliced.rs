//! A consumer's batch applied in slices while people wait for the writer. A submission that
//! comes while a batch of a thousand events is being applied waits for that whole transaction;
//! in slices it waits for one slice, and the next slice's turn goes to the person first.
//! Offsets are still stored for the whole batch; a slice applied before a failure comes again
//! and is skipped by the handler's applied-event marks.
use std::sync::Arc;

use async_trait::async_trait;
use bus::{BatchHandler, Delivery, Rejected};

pub struct Sliced<P> {
    pub handler: Arc<dyn BatchHandler>,
    /// Most events in one call while people wait.
    pub slice: usize,
    /// Whether people wait for the writer now or did a moment ago.
    pub people_waiting: P,
}

#[async_trait]
impl<P: Fn() -> bool + Send + Sync> BatchHandler for Sliced<P> {
    async fn handle(&self, batch: &[Delivery]) -> anyhow::Result<Vec<Rejected>> {
        let mut rejected = Vec::new();
        let mut start = 0;
        while start < batch.len() {
            // Asked before each slice: once the people are gone, the rest goes at once.
            let take = if (self.people_waiting)() { self.slice.max(1) } else { batch.len() };
            let slice = &batch[start..batch.len().min(start + take)];
            let refused = self.handler.handle(slice).await?;
            rejected.extend(refused.into_iter().map(|r| Rejected { index: start + r.index, reason: r.reason }));
            start += slice.len();
        }
        Ok(rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// Refuses every event whose offset is odd and records the size of each call.
    #[derive(Default)]
    struct OddRefuser(Mutex<Vec<usize>>);

    #[async_trait]
    impl BatchHandler for OddRefuser {
        async fn handle(&self, batch: &[Delivery]) -> anyhow::Result<Vec<Rejected>> {
            self.0.lock().unwrap().push(batch.len());
            Ok(batch
                .iter()
                .enumerate()
                .filter(|(_, d)| d.offset % 2 == 1)
                .map(|(index, d)| Rejected { index, reason: format!("odd {}", d.offset) })
                .collect())
        }
    }

    fn batch(len: i64) -> Vec<Delivery> {
        let event = contracts::Event::from(contracts::CaseArchived {
            event_id: "1/9".into(),
            case_number: "1".into(),
            occurred_at: 0,
            final_outcome: "approved".into(),
            document_count: 1,
            archivist: String::new(),
            file_number: String::new(),
            retention: String::new(),
            unit_code: String::new(),
        });
        (0..len).map(|offset| Delivery { topic: "t".into(), partition: 0, offset, event: event.clone() }).collect()
    }

    #[tokio::test]
    async fn slices_while_people_wait_and_names_refusals_in_the_whole_batch() {
        let handler = Arc::new(OddRefuser::default());
        // People wait for the first two slices, then leave.
        let asked = AtomicUsize::new(0);
        let sliced = Sliced {
            handler: handler.clone(),
            slice: 4,
            people_waiting: move || asked.fetch_add(1, Ordering::SeqCst) < 2,
        };
        let rejected = sliced.handle(&batch(15)).await.unwrap();
        assert_eq!(*handler.0.lock().unwrap(), [4, 4, 7]);
        let indexes: Vec<usize> = rejected.iter().map(|r| r.index).collect();
        assert_eq!(indexes, [1, 3, 5, 7, 9, 11, 13]);
        assert!(rejected.iter().all(|r| r.reason == format!("odd {}", r.index)));
    }

    #[tokio::test]
    async fn takes_the_whole_batch_when_no_one_waits() {
        let handler = Arc::new(OddRefuser::default());
        let sliced = Sliced { handler: handler.clone(), slice: 4, people_waiting: || false };
        assert_eq!(sliced.handle(&batch(9)).await.unwrap().len(), 4);
        assert_eq!(*handler.0.lock().unwrap(), [9]);
    }
}
