//! Schema ids and versions, as given by `schemas/registry.toml`.
use std::collections::HashMap;
use std::sync::OnceLock;

use apache_avro::Schema;
use serde::Deserialize;

include!(concat!(env!("OUT_DIR"), "/schema_files.rs"));

const REGISTRY_TOML: &str = include_str!("../registry.toml");

#[derive(Debug, Clone, Deserialize)]
struct RegistryFile {
    schema: Vec<RegistryRow>,
}

#[derive(Debug, Clone, Deserialize)]
struct RegistryRow {
    id: u32,
    record: String,
    version: u32,
    file: String,
}

/// One registered schema version.
#[derive(Debug, Clone)]
pub struct SchemaEntry {
    pub id: u32,
    pub record: String,
    pub version: u32,
    pub file: String,
    pub text: &'static str,
    pub schema: Schema,
}

/// Every registered schema, by id and by record name.
#[derive(Debug)]
pub struct Registry {
    entries: Vec<SchemaEntry>,
    by_id: HashMap<u32, usize>,
    latest: HashMap<String, usize>,
}

impl Registry {
    /// The registry compiled into this binary. Panics at first use if the committed
    /// registry is inconsistent; the contract tests catch that before it ships.
    pub fn global() -> &'static Registry {
        static REGISTRY: OnceLock<Registry> = OnceLock::new();
        REGISTRY.get_or_init(|| Registry::load().unwrap_or_else(|e| panic!("schema registry: {e}")))
    }

    fn load() -> Result<Registry, String> {
        let file: RegistryFile = toml::from_str(REGISTRY_TOML).map_err(|e| e.to_string())?;
        let mut entries: Vec<SchemaEntry> = Vec::new();
        let mut by_id = HashMap::new();
        let mut latest: HashMap<String, usize> = HashMap::new();
        for row in file.schema {
            let text = SCHEMA_FILES
                .iter()
                .find(|(path, _)| *path == row.file)
                .map(|(_, text)| *text)
                .ok_or_else(|| format!("{} is not embedded", row.file))?;
            let schema = Schema::parse_str(text).map_err(|e| format!("{}: {e}", row.file))?;
            let name = match &schema {
                Schema::Record(r) => r.name.fullname(None),
                _ => return Err(format!("{}: top-level schema must be a record", row.file)),
            };
            if name != row.record {
                return Err(format!("{}: declares {name}, registry says {}", row.file, row.record));
            }
            let index = entries.len();
            if by_id.insert(row.id, index).is_some() {
                return Err(format!("schema id {} is used twice", row.id));
            }
            let newer = latest.get(&row.record).is_none_or(|&i: &usize| entries[i].version < row.version);
            if newer {
                latest.insert(row.record.clone(), index);
            }
            entries.push(SchemaEntry {
                id: row.id,
                record: row.record,
                version: row.version,
                file: row.file,
                text,
                schema,
            });
        }
        Ok(Registry { entries, by_id, latest })
    }

    pub fn entries(&self) -> &[SchemaEntry] {
        &self.entries
    }

    pub fn by_id(&self, id: u32) -> Option<&SchemaEntry> {
        self.by_id.get(&id).map(|&i| &self.entries[i])
    }

    /// The newest version of a record: what this code writes and reads into.
    pub fn latest(&self, record: &str) -> Option<&SchemaEntry> {
        self.latest.get(record).map(|&i| &self.entries[i])
    }

    /// All versions of a record, oldest first.
    pub fn versions(&self, record: &str) -> Vec<&SchemaEntry> {
        let mut versions: Vec<&SchemaEntry> = self.entries.iter().filter(|e| e.record == record).collect();
        versions.sort_by_key(|e| e.version);
        versions
    }
}
