//! The bare broker rate: what rdkafka and the broker do with no hub around them. The benchmark
//! measures it in the same run, with the same number and size of messages as the hub sent.
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer as _;
use rdkafka::message::Message as _;
use rdkafka::producer::FutureRecord;

use crate::{subscribed, Bus, OffRuntimeDrop, PREFETCH_KBYTES};

/// Produces `messages` messages of `size` bytes to a fresh 6-partition topic while one consumer
/// reads them; returns messages per second from the first send to the last receipt.
///
/// The reader prefetches as much as librdkafka's own default allows, not the hub's cap per
/// group (`prefetch_kbytes`): the embedded broker answers a fetch only once its wait is out,
/// so under that cap a lone reader got about 200 KiB a wait (some 8 000 messages/s, below what
/// the hub's many groups move together), and the figure measured the cap, not the broker.
pub async fn round_trip_rate(bus: &Bus, messages: usize, size: usize) -> anyhow::Result<f64> {
    let topic = format!("bench.raw.{}", uuid::Uuid::now_v7().simple());
    let admin: OffRuntimeDrop<AdminClient<DefaultClientContext>> = OffRuntimeDrop::new(bus.client_config().create()?);
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&[NewTopic::new(&topic, 6, TopicReplication::Fixed(1))], &options).await? {
        result.map_err(|(topic, code)| anyhow::anyhow!("creating {topic}: {code}"))?;
    }
    let group = format!("{topic}.reader");
    let mut config = bus.consumer_config(&group);
    config.remove(PREFETCH_KBYTES);
    let consumer = OffRuntimeDrop::new(subscribed(&config, &group, &[&topic])?);
    let deadline = Instant::now() + Duration::from_secs(30);
    while consumer.assignment()?.count() == 0 {
        if Instant::now() > deadline {
            bail!("the raw consumer got no partitions of {topic}");
        }
        let _ = tokio::time::timeout(Duration::from_millis(100), consumer.recv()).await;
    }
    let producer = OffRuntimeDrop::new(bus.producer()?);
    let payload = vec![0x5a_u8; size];
    let started = Instant::now();
    let reader = async {
        let mut received = 0;
        while received < messages {
            consumer.recv().await.context("raw consumer")?.payload();
            received += 1;
        }
        anyhow::Ok(())
    };
    let writer = async {
        let sends = (0..messages).map(|i| {
            let key = (i % 1024).to_string();
            let (producer, payload, topic) = (&*producer, &payload, &topic);
            async move {
                producer
                    .send(FutureRecord::to(topic).key(&key).payload(payload), Duration::from_secs(30))
                    .await
                    .map_err(|(e, _)| anyhow::anyhow!("raw produce: {e}"))
            }
        });
        for result in futures::future::join_all(sends).await {
            result?;
        }
        anyhow::Ok(())
    };
    let (read, written) = tokio::join!(tokio::time::timeout(Duration::from_secs(300), reader), writer);
    let elapsed = started.elapsed();
    consumer.close().await;
    producer.close().await;
    admin.close().await;
    written?;
    read.context("the raw consumer did not receive every message within 300 s")??;
    Ok(messages as f64 / elapsed.as_secs_f64())
}
