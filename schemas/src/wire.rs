//! The Confluent wire format: `0x00`, 4-byte big-endian schema id, Avro binary body.
use apache_avro::{from_avro_datum, to_avro_datum};

use crate::{Event, Registry};

const MAGIC: u8 = 0;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("message is {0} bytes, shorter than the 5-byte Confluent header")]
    TooShort(usize),
    #[error("magic byte is {0:#04x}, expected 0x00 (Confluent wire format)")]
    BadMagic(u8),
    #[error("unknown schema id {0}")]
    UnknownSchema(u32),
    #[error("no schema registered for record {0}")]
    UnregisteredRecord(String),
    #[error("record {0} has no Rust type in this build")]
    UnknownRecord(String),
    #[error("Avro body does not match schema {id} ({record}): {source}")]
    Avro { id: u32, record: String, source: Box<apache_avro::Error> },
}

/// Encodes an event with the newest registered schema of its record.
pub fn encode(event: &Event) -> Result<Vec<u8>, WireError> {
    let record = event.record_name();
    let entry = Registry::global().latest(&record).ok_or(WireError::UnregisteredRecord(record))?;
    let avro_err = |source| WireError::Avro { id: entry.id, record: entry.record.clone(), source: Box::new(source) };
    let value = event.to_avro_value().and_then(|v| v.resolve(&entry.schema)).map_err(avro_err)?;
    let body = to_avro_datum(&entry.schema, value).map_err(avro_err)?;
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(MAGIC);
    out.extend_from_slice(&entry.id.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Reads the schema id of a Confluent-framed message.
pub fn schema_id(bytes: &[u8]) -> Result<u32, WireError> {
    if bytes.len() < 5 {
        return Err(WireError::TooShort(bytes.len()));
    }
    if bytes[0] != MAGIC {
        return Err(WireError::BadMagic(bytes[0]));
    }
    Ok(u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]))
}

/// Decodes a message written with any registered version, resolved into the newest one.
pub fn decode(bytes: &[u8]) -> Result<Event, WireError> {
    let id = schema_id(bytes)?;
    let registry = Registry::global();
    let writer = registry.by_id(id).ok_or(WireError::UnknownSchema(id))?;
    let reader = registry.latest(&writer.record).expect("a registered record has a latest version");
    let avro_err = |source| WireError::Avro { id, record: writer.record.clone(), source: Box::new(source) };
    let value = from_avro_datum(&writer.schema, &mut &bytes[5..], Some(&reader.schema)).map_err(avro_err)?;
    let kind = writer.record.rsplit('.').next().unwrap_or_default();
    Event::from_avro_value(kind, &value)
        .ok_or_else(|| WireError::UnknownRecord(writer.record.clone()))?
        .map_err(avro_err)
}
