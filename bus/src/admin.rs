//! Makes the live topics agree with the catalogue.
use std::time::Duration;

use anyhow::{bail, Context as _};
use contracts::TopicSpec;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::types::RDKafkaErrorCode;

use crate::{Bus, OffRuntimeDrop};

/// Creates missing topics (idempotent) and refuses, naming the difference, when a live topic
/// contradicts the catalogue.
pub async fn ensure_topics(bus: &Bus, replication_factor: i32) -> anyhow::Result<()> {
    let admin: OffRuntimeDrop<AdminClient<DefaultClientContext>> =
        OffRuntimeDrop::new(bus.client_config().create().context("creating the Kafka admin client")?);
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let retention: Vec<String> = bus.catalogue().topics.iter().map(|t| t.retention_ms.to_string()).collect();
    let new_topics: Vec<NewTopic<'_>> = bus
        .catalogue()
        .topics
        .iter()
        .zip(&retention)
        .map(|(spec, retention)| {
            NewTopic::new(&spec.name, spec.partitions, TopicReplication::Fixed(replication_factor))
                .set("cleanup.policy", &spec.cleanup_policy)
                .set("retention.ms", retention)
        })
        .collect();
    for result in admin.create_topics(&new_topics, &options).await.context("creating topics")? {
        match result {
            Ok(topic) => tracing::info!(topic, "created topic from the catalogue"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => bail!("cannot create topic {topic}: {code}"),
        }
    }
    let client_config = bus.client_config();
    // librdkafka's metadata call blocks; keep it off the async workers (the embedded broker runs there).
    let metadata = tokio::task::spawn_blocking(move || {
        let client: BaseConsumer = client_config.create()?;
        client.fetch_metadata(None, Duration::from_secs(10))
    })
    .await?
    .context("reading topic metadata")?;
    for spec in &bus.catalogue().topics {
        let live = metadata
            .topics()
            .iter()
            .find(|t| t.name() == spec.name)
            .with_context(|| format!("topic {} is missing after creation", spec.name))?;
        check_partitions(spec, live.partitions().len())?;
    }
    let resources: Vec<ResourceSpecifier<'_>> =
        bus.catalogue().topics.iter().map(|t| ResourceSpecifier::Topic(&t.name)).collect();
    for (spec, described) in bus.catalogue().topics.iter().zip(admin.describe_configs(&resources, &options).await?) {
        // A broker that does not describe configs cannot contradict them.
        let Ok(resource) = described else { continue };
        for (key, expected) in
            [("cleanup.policy", spec.cleanup_policy.clone()), ("retention.ms", spec.retention_ms.to_string())]
        {
            if let Some(live) = resource.get(key).and_then(|entry| entry.value.as_deref()) {
                if live != expected && !resource.get(key).is_some_and(|e| e.is_default) {
                    bail!(contradiction(spec, key, live, &expected));
                }
            }
        }
    }
    Ok(())
}

fn check_partitions(spec: &TopicSpec, live: usize) -> anyhow::Result<()> {
    if live != spec.partitions as usize {
        bail!(contradiction(spec, "partitions", &live.to_string(), &spec.partitions.to_string()));
    }
    Ok(())
}

fn contradiction(spec: &TopicSpec, setting: &str, live: &str, expected: &str) -> String {
    format!(
        "refusing to start: live topic {} has {setting} = {live}, but topics/catalogue.toml says {expected}. \
         Change the topic on the cluster or the catalogue so that they agree.",
        spec.name
    )
}
