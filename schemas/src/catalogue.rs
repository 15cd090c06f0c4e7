//! The topic catalogue (`topics/catalogue.toml`) as data.
use serde::{Deserialize, Serialize};

const CATALOGUE_TOML: &str = include_str!("../../topics/catalogue.toml");

/// One topic as the catalogue declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicSpec {
    pub name: String,
    pub description: String,
    pub partitions: i32,
    pub cleanup_policy: String,
    pub retention_ms: i64,
    pub key: String,
    /// Full Avro record names of the values this topic carries.
    pub values: Vec<String>,
    pub producer: String,
    /// Consumer-group ids that must apply every event of this topic.
    pub consumers: Vec<String>,
    pub personal_data: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalogue {
    #[serde(rename = "topic")]
    pub topics: Vec<TopicSpec>,
}

/// Topic that receives messages no consumer could take.
pub const DEAD_LETTER_TOPIC: &str = "hub.deadletter";

impl Catalogue {
    /// The catalogue compiled into this binary.
    pub fn builtin() -> Catalogue {
        Self::parse(CATALOGUE_TOML).expect("topics/catalogue.toml is valid")
    }

    pub fn parse(text: &str) -> Result<Catalogue, toml::de::Error> {
        toml::from_str(text)
    }

    pub fn topic(&self, name: &str) -> Option<&TopicSpec> {
        self.topics.iter().find(|t| t.name == name)
    }

    /// The topics consumer group `group` must apply every event of.
    pub fn topics_read_by<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a TopicSpec> + 'a {
        self.topics.iter().filter(move |t| t.consumers.iter().any(|c| c == group))
    }

    /// Every consumer group the catalogue lists, once each, in order.
    pub fn groups(&self) -> std::collections::BTreeSet<&str> {
        self.topics.iter().flat_map(|t| t.consumers.iter().map(String::as_str)).collect()
    }

    /// The topic a record is published on.
    pub fn topic_of(&self, record: &str) -> Option<&TopicSpec> {
        self.topics.iter().find(|t| t.values.iter().any(|v| v == record))
    }
}
