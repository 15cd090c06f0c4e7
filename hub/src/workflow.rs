//! The hub's application services: they load cases, ask the domain core what happens, and
//! store the outcome with its outgoing messages in one transaction.
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use bus::{BatchHandler, Delivery, Rejected};
use contracts::{Applicant, ApplicationSubmitted, Event, MatterRef, PostalAddress, ServicePoint};

use crate::domain::case::is_external_fact;
use crate::domain::{decide, evolve, reactions, Case, Command, Context, Reference, Rejection};
use crate::store::{now_ms, Store};

/// A Kafka consumer group of the hub: applies each event it is handed to the case it names.
/// The three hub groups (acceptance, workflow, delivery) differ only in the topics they read.
pub struct CaseProcessor {
    pub consumer: String,
    pub store: Store,
    pub reference: Arc<Reference>,
}

/// What one event did to a case: its new history entries and the subset to publish.
struct Applied {
    history: Vec<Event>,
    publish: Vec<Event>,
}

/// Applies one consumed event: a connector's fact is recorded first, then the hub reacts.
fn apply_event(case: &mut Case, event: &Event, ctx: &Context<'_>) -> Result<Applied, Rejection> {
    let mut applied = Applied { history: Vec::new(), publish: Vec::new() };
    let mut next = case.clone();
    if is_external_fact(event) {
        for fact in decide(&next, &Command::Record(event.clone()), ctx)? {
            next = evolve(next, &fact);
            applied.history.push(fact);
        }
    }
    for command in reactions(&next, event) {
        for produced in decide(&next, &command, ctx)? {
            next = evolve(next, &produced);
            applied.history.push(produced.clone());
            applied.publish.push(produced);
        }
    }
    *case = next;
    Ok(applied)
}

#[async_trait]
impl BatchHandler for CaseProcessor {
    async fn handle(&self, batch: &[Delivery]) -> anyhow::Result<Vec<Rejected>> {
        let mut tx = self.store.begin().await?;
        let ids: Vec<&str> = batch.iter().map(|d| d.event.event_id()).collect();
        let already = tx.applied_among(&self.consumer, &ids).await?;
        let ctx = Context { now: now_ms(), reference: &self.reference };
        // Cases touched by this batch: (case, seq when loaded, new history, to publish).
        let mut touched: HashMap<String, (Case, u32, Vec<Event>, Vec<Event>)> = HashMap::new();
        let mut seen = HashSet::new();
        let mut rejected = Vec::new();
        for (index, delivery) in batch.iter().enumerate() {
            let event = &delivery.event;
            if already.contains(event.event_id()) || !seen.insert(event.event_id()) {
                continue;
            }
            let case_number = event.case_number();
            if !touched.contains_key(case_number) {
                match tx.load_case(case_number).await? {
                    Some(case) => {
                        let seq = case.seq;
                        touched.insert(case_number.to_string(), (case, seq, Vec::new(), Vec::new()));
                    }
                    None => {
                        let reason = format!("{} names case {case_number}, which does not exist", event.kind());
                        tx.mark_applied(&self.consumer, event.event_id(), &reason).await?;
                        rejected.push(Rejected { index, reason });
                        continue;
                    }
                }
            }
            let (case, _, history, publish) = touched.get_mut(case_number).expect("loaded above");
            match apply_event(case, event, &ctx) {
                Ok(applied) => {
                    history.extend(applied.history);
                    publish.extend(applied.publish);
                    tx.mark_applied(&self.consumer, event.event_id(), "applied").await?;
                }
                Err(rejection) => {
                    let reason = format!("{} rejected: {rejection}", event.kind());
                    tx.mark_applied(&self.consumer, event.event_id(), &reason).await?;
                    rejected.push(Rejected { index, reason });
                }
            }
        }
        for (case, loaded_seq, history, publish) in touched.values() {
            if history.is_empty() {
                continue;
            }
            tx.append_history(loaded_seq + 1, history).await?;
            tx.update_case(case, *loaded_seq).await?;
            tx.enqueue(publish).await?;
        }
        tx.commit().await?;
        Ok(rejected)
    }
}

/// An application as a service point sends it to the API.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitApplication {
    /// The client's idempotency key: submitting the same request again returns the same case.
    pub request_id: String,
    /// Implementation code of the matter.
    pub matter_code: String,
    /// Code of the service point (its division code for villages and townships).
    pub service_point: String,
    #[serde(default = "counter")]
    pub channel: String,
    pub applicant: Applicant,
    pub materials: Vec<String>,
    pub delivery: DeliveryChoice,
}

fn counter() -> String {
    "counter".into()
}

#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryChoice {
    /// mail | window | locker
    pub method: String,
    pub address: Option<PostalAddress>,
}

/// A bad field in a request, named by its JSON path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn field(field: &str, check: Result<(), String>) -> Result<(), FieldError> {
    check.map_err(|message| FieldError { field: field.into(), message })
}

fn fail(field_name: &str, message: impl Into<String>) -> Result<(), FieldError> {
    field(field_name, Err(message.into()))
}

impl SubmitApplication {
    /// Checks every field against the reference data; returns the first bad one.
    pub fn validate(&self, reference: &Reference) -> Result<(), FieldError> {
        use crate::domain::validation::{mobile, not_blank, post_code, resident_id};
        field("request_id", not_blank(&self.request_id))?;
        if self.request_id.len() > 64 {
            fail("request_id", "must be at most 64 characters")?;
        }
        let Some(matter) = reference.matter(&self.matter_code) else {
            return fail("matter_code", format!("no matter with implementation code {}", self.matter_code));
        };
        let Some(point) = reference.service_point(&self.service_point) else {
            return fail("service_point", format!("no service point {} in county {}", self.service_point, reference.county.code));
        };
        if !matter.accept_tiers.contains(&point.tier) {
            fail("service_point", format!("a {} service point may not accept {}; tiers allowed: {}", point.tier, matter.name, matter.accept_tiers.join(", ")))?;
        }
        if !["counter", "online", "bank"].contains(&self.channel.as_str()) {
            fail("channel", "must be counter, online or bank")?;
        }
        field("applicant.name", not_blank(&self.applicant.name))?;
        match self.applicant.id_type.as_str() {
            "111" => field("applicant.id_number", resident_id(&self.applicant.id_number))?,
            "001" if self.applicant.id_number.len() == 18 => {}
            "001" => fail("applicant.id_number", "a unified social credit code has 18 characters")?,
            _ => fail("applicant.id_type", "must be 111 (resident ID card) or 001 (unified social credit code)")?,
        }
        field("applicant.phone", mobile(&self.applicant.phone))?;
        let missing: Vec<&str> = matter
            .materials
            .iter()
            .filter(|m| m.primary && !self.materials.contains(&m.name))
            .map(|m| m.name.as_str())
            .collect();
        if !missing.is_empty() {
            fail("materials", format!("primary materials missing: {}", missing.join("、")))?;
        }
        match (self.delivery.method.as_str(), &self.delivery.address) {
            ("mail", None) => fail("delivery.address", "mail delivery needs an address")?,
            ("mail", Some(_)) if !matter.mail_allowed => fail("delivery.method", format!("{} results may not be mailed", matter.name))?,
            ("mail", Some(address)) => {
                field("delivery.address.name", not_blank(&address.name))?;
                field("delivery.address.phone", mobile(&address.phone))?;
                field("delivery.address.province", not_blank(&address.province))?;
                field("delivery.address.city", not_blank(&address.city))?;
                field("delivery.address.county", not_blank(&address.county))?;
                field("delivery.address.address", not_blank(&address.address))?;
                field("delivery.address.post_code", post_code(&address.post_code))?;
            }
            ("window" | "locker", _) => {}
            _ => fail("delivery.method", "must be mail, window or locker")?,
        }
        Ok(())
    }
}

/// Outcome of a submission: the case, and whether this request opened it.
pub struct Submitted {
    pub case: Case,
    pub created: bool,
}

/// Opens a case for a validated application, or returns the case this request already opened.
pub async fn submit_application(store: &Store, reference: &Reference, request: &SubmitApplication) -> anyhow::Result<Submitted> {
    let mut tx = store.begin().await?;
    if let Some(case) = tx.case_for_request(&request.request_id).await? {
        return Ok(Submitted { case, created: false });
    }
    let now = now_ms();
    let serial = tx.next_case_serial().await?;
    let date = crate::domain::calendar::iso_date(crate::domain::calendar::day_of(now)).replace('-', "");
    let case_number = format!("{}{date}{serial:06}", &reference.county.code[..6]);
    let matter = reference.matter(&request.matter_code).expect("validated");
    let point = reference.service_point(&request.service_point).expect("validated");
    let submitted = ApplicationSubmitted {
        event_id: Case::event_id(&case_number, 1),
        case_number,
        occurred_at: now,
        case_version: 1,
        channel: request.channel.clone(),
        matter: MatterRef {
            basic_code: matter.basic_code.clone(),
            implementation_code: matter.implementation_code.clone(),
            name: matter.name.clone(),
            version: matter.version,
        },
        applicant: request.applicant.clone(),
        service_point: ServicePoint {
            code: point.code.clone(),
            name: point.name.clone(),
            tier: point.tier.clone(),
            division_code: point.division_code.clone(),
        },
        materials: request.materials.clone(),
        delivery_method: request.delivery.method.clone(),
        delivery_address: request.delivery.address.clone(),
    };
    let case = Case::open(&submitted);
    let event = Event::from(submitted);
    tx.insert_case(&request.request_id, &case).await?;
    tx.append_history(1, std::slice::from_ref(&event)).await?;
    tx.enqueue(std::slice::from_ref(&event)).await?;
    tx.commit().await?;
    Ok(Submitted { case, created: true })
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("no case {0}")]
    NotFound(String),
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

/// Runs a command from a person (an approver's decision) against a case.
pub async fn execute(store: &Store, reference: &Reference, case_number: &str, command: Command) -> Result<Case, CommandError> {
    let mut tx = store.begin().await?;
    let case = tx.load_case(case_number).await?.ok_or_else(|| CommandError::NotFound(case_number.into()))?;
    let loaded_seq = case.seq;
    let events = decide(&case, &command, &Context { now: now_ms(), reference })?;
    let case = events.iter().fold(case, evolve);
    tx.append_history(loaded_seq + 1, &events).await?;
    tx.update_case(&case, loaded_seq).await?;
    tx.enqueue(&events).await?;
    tx.commit().await?;
    Ok(case)
}
