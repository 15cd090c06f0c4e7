//! What every connector shares: calls to counterparts (`calls`: classified failures, retries,
//! signed requests) and the outbound half's batch handling with its data-sharing events
//! (`outbound`). The HTTP side (errors naming the field, extractors, routes) is `hub_web`'s.
pub mod calls;
pub mod control;
pub mod outbound;
pub mod push;

pub use calls::{
    check_signature, now_ms, signature, with_retry, CallError, CounterpartClient, APP_ID_HEADER, SIGNATURE_HEADER,
    SIGNATURE_WINDOW_MS, TIMESTAMP_HEADER,
};
pub use outbound::{apply_outbound, apply_outbound_together, date_text, Exchange, Outcome};
pub use push::{record_push, PushAck};
