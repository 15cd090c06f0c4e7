//! The hub's application services: they load cases, ask the domain core what happens, and
//! store the outcome with its outgoing messages in one transaction.
use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use bus::{BatchHandler, Delivery, Rejected};
use contracts::{Applicant, ApplicationSubmitted, Event, MaterialProblem, MatterRef, PostalAddress, ServicePoint};

use crate::domain::case::is_external_fact;
use crate::domain::deadlines;
use crate::domain::routing::{self, Routing};
use crate::domain::{decide, evolve, react, Case, Command, Context, Reference, Rejection};
use crate::province::CurrentReference;
use crate::store::{now_ms, Store, StoreTx};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// A Kafka consumer group of the hub: applies each event it is handed to the case it names.
/// The three hub groups (acceptance, workflow, delivery) differ only in the topics they read.
pub struct CaseProcessor {
    pub consumer: String,
    pub store: Store,
    pub reference: CurrentReference,
}

/// What one event did to a case: its new history entries and the subset to publish.
struct Applied {
    history: Vec<Event>,
    publish: Vec<Event>,
}

/// Applies one consumed event: a connector's fact is recorded first, then the hub reacts to it
/// and to whatever its reactions produce.
fn apply_event(case: &mut Case, event: &Event, ctx: &Context<'_>) -> Result<Applied, Rejection> {
    let mut next = case.clone();
    let mut recorded = Vec::new();
    if is_external_fact(event) {
        for fact in decide(&next, &Command::Record(event.clone()), ctx)? {
            next = evolve(next, &fact);
            recorded.push(fact);
        }
    }
    let (next, publish) = react(next, vec![event.clone()], ctx)?;
    *case = next;
    let history = recorded.into_iter().chain(publish.iter().cloned()).collect();
    Ok(Applied { history, publish })
}

/// A case a batch touches: as loaded, and what the batch did to it.
struct Touched {
    case: Case,
    loaded_seq: u32,
    loaded_timer: Option<i32>,
    history: Vec<Event>,
    publish: Vec<Event>,
}

/// Loads the cases named by `case_numbers` (repeats allowed) for a batch to change.
async fn load_touched<'n>(tx: &mut StoreTx<'_>, case_numbers: impl Iterator<Item = &'n str>) -> anyhow::Result<HashMap<String, Touched>> {
    let numbers: Vec<&str> = case_numbers.collect::<HashSet<_>>().into_iter().collect();
    Ok(tx
        .load_cases(&numbers)
        .await?
        .into_iter()
        .map(|(number, case)| (number, Touched { loaded_seq: case.seq, loaded_timer: case.timer_day, case, history: Vec::new(), publish: Vec::new() }))
        .collect())
}

/// Writes what a batch did: new history, new snapshots with their re-armed deadline timers
/// (failing if another writer got there first), and the events to publish, a few statements
/// for the whole batch.
async fn save_touched(tx: &mut StoreTx<'_>, touched: &mut HashMap<String, Touched>, ctx: &Context<'_>) -> anyhow::Result<()> {
    for entry in touched.values_mut() {
        entry.case.timer_day = deadlines::next_check(&entry.case, ctx.today(), ctx.reference);
    }
    let changed: Vec<&Touched> = touched.values().filter(|t| !t.history.is_empty() || t.case.timer_day != t.loaded_timer).collect();
    let history: Vec<(u32, &Event)> = changed.iter().flat_map(|t| (t.loaded_seq + 1..).zip(&t.history)).collect();
    tx.append_history(&history).await?;
    let snapshots: Vec<(&Case, u32)> = changed.iter().map(|t| (&t.case, t.loaded_seq)).collect();
    tx.update_cases(&snapshots).await?;
    let publish: Vec<Event> = changed.iter().flat_map(|t| t.publish.iter().cloned()).collect();
    tx.enqueue(&publish).await
}

#[async_trait]
impl BatchHandler for CaseProcessor {
    /// One transaction per batch, and a handful of statements whatever its size: that, not the
    /// broker, is what bounds the hub's throughput on SQLite.
    async fn handle(&self, batch: &[Delivery]) -> anyhow::Result<Vec<Rejected>> {
        let mut tx = self.store.begin().await?;
        let ids: Vec<&str> = batch.iter().map(|d| d.event.event_id()).collect();
        let mut skip = tx.applied_among(&self.consumer, &ids).await?;
        let mut touched = load_touched(&mut tx, batch.iter().map(|d| d.event.case_number())).await?;
        let reference = self.reference.get();
        let ctx = Context { now: now_ms(), reference: &reference };
        let mut outcomes: Vec<(&str, String)> = Vec::new();
        let mut rejected = Vec::new();
        for (index, delivery) in batch.iter().enumerate() {
            let event = &delivery.event;
            if !skip.insert(event.event_id().to_string()) {
                continue;
            }
            let outcome = match touched.get_mut(event.case_number()) {
                None => Err(format!("{} names case {}, which does not exist", event.kind(), event.case_number())),
                Some(entry) => apply_event(&mut entry.case, event, &ctx)
                    .map(|applied| {
                        entry.history.extend(applied.history);
                        entry.publish.extend(applied.publish);
                    })
                    .map_err(|rejection| format!("{} rejected: {rejection}", event.kind())),
            };
            match outcome {
                Ok(()) => outcomes.push((event.event_id(), "applied".into())),
                Err(reason) => {
                    outcomes.push((event.event_id(), reason.clone()));
                    rejected.push(Rejected { index, reason });
                }
            }
        }
        let marks: Vec<(&str, &str)> = outcomes.iter().map(|(id, outcome)| (*id, outcome.as_str())).collect();
        tx.mark_applied(&self.consumer, &marks).await?;
        save_touched(&mut tx, &mut touched, &ctx).await?;
        tx.commit().await?;
        Ok(rejected)
    }
}

/// An application as a service point sends it to the API.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
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
    /// Materials handed in and found in order.
    pub materials: Vec<String>,
    /// Materials handed in but faulty, with what is wrong: they go on the one-time notice.
    #[serde(default)]
    pub faulty_materials: Vec<MaterialProblem>,
    /// Electronic certificates presented instead of paper (免提交): each is fetched from the
    /// repository and verified before acceptance examines the materials.
    #[serde(default)]
    pub certificates: Vec<PresentedCertificate>,
    /// The applicant commits to supply missing secondary materials (容缺受理).
    #[serde(default)]
    pub commits_to_supply: bool,
    /// Township of the applicant's registered domicile, for matters decided by the township.
    #[serde(default)]
    pub domicile_township: Option<String>,
    pub delivery: DeliveryChoice,
}

/// A certificate shown at the counter (e.g. its QR code scanned) for one material.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PresentedCertificate {
    pub material: String,
    pub certificate_id: String,
}

fn counter() -> String {
    "counter".into()
}

#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
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
        // A bank outlet takes applications through the bank's channel, and only it does.
        if (self.channel == "bank") != (point.tier == "bank") {
            fail("channel", format!("channel bank is for bank outlets; {} is a {} service point", point.name, point.tier))?;
        }
        field("applicant.name", not_blank(&self.applicant.name))?;
        match self.applicant.id_type.as_str() {
            "111" => field("applicant.id_number", resident_id(&self.applicant.id_number))?,
            "001" if self.applicant.id_number.len() == 18 => {}
            "001" => fail("applicant.id_number", "a unified social credit code has 18 characters")?,
            _ => fail("applicant.id_type", "must be 111 (resident ID card) or 001 (unified social credit code)")?,
        }
        field("applicant.phone", mobile(&self.applicant.phone))?;
        if let Some(email) = &self.applicant.email {
            field("applicant.email", email.parse::<lettre::Address>().map(drop).map_err(|e| format!("{email} is not an e-mail address: {e}")))?;
        }
        // What is missing is for acceptance to say (one-time notice); names must be the matter's.
        let known = |name: &String| matter.materials.iter().any(|m| &m.name == name);
        if let Some(i) = self.materials.iter().position(|name| !known(name)) {
            fail(&format!("materials[{i}]"), format!("{} is not a material of {}", self.materials[i], matter.name))?;
        }
        for (i, faulty) in self.faulty_materials.iter().enumerate() {
            if !known(&faulty.material) {
                fail(&format!("faulty_materials[{i}].material"), format!("{} is not a material of {}", faulty.material, matter.name))?;
            }
            field(&format!("faulty_materials[{i}].problem"), not_blank(&faulty.problem))?;
        }
        for (i, presented) in self.certificates.iter().enumerate() {
            match matter.materials.iter().find(|m| m.name == presented.material) {
                None => fail(&format!("certificates[{i}].material"), format!("{} is not a material of {}", presented.material, matter.name))?,
                Some(material) if !material.ecert => fail(&format!("certificates[{i}].material"), format!("{} cannot be replaced by an electronic certificate", material.name))?,
                Some(_) => field(&format!("certificates[{i}].certificate_id"), not_blank(&presented.certificate_id))?,
            }
        }
        if let Some(township) = &self.domicile_township {
            if township.len() != 12 || !township.bytes().all(|b| b.is_ascii_digit()) {
                fail("domicile_township", "a township division code has 12 digits")?;
            }
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

/// Where a hypothetical application would be decided, and why (the explain call).
pub fn explain_routing(reference: &Reference, matter_code: &str, service_point: &str, domicile_township: Option<&str>) -> Result<Routing, FieldError> {
    let Some(matter) = reference.matter(matter_code) else {
        return Err(FieldError { field: "matter_code".into(), message: format!("no matter with implementation code {matter_code}") });
    };
    let Some(point) = reference.service_point(service_point) else {
        return Err(FieldError { field: "service_point".into(), message: format!("no service point {service_point} in county {}", reference.county.code) });
    };
    routing::route(reference, matter, point, domicile_township).map_err(|message| FieldError { field: "service_point".into(), message })
}

/// Outcome of a submission: the case, and whether this request opened it.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub case: Case,
    pub created: bool,
}

/// Opens a case for a validated application, or returns the case this request already opened.
pub async fn submit_application(store: &Store, reference: &Reference, request: &SubmitApplication) -> anyhow::Result<Submitted> {
    let mut submitted = submit_applications(store, reference, std::slice::from_ref(request)).await?;
    Ok(submitted.remove(0))
}

/// Opens cases for validated applications in one transaction; a request id seen before (or
/// earlier in `requests`) gets the case it opened.
pub async fn submit_applications(store: &Store, reference: &Reference, requests: &[SubmitApplication]) -> anyhow::Result<Vec<Submitted>> {
    let mut tx = store.begin().await?;
    let ids: Vec<&str> = requests.iter().map(|r| r.request_id.as_str()).collect();
    let mut known = tx.cases_for_requests(&ids).await?;
    let new_requests = requests.iter().filter(|r| !known.contains_key(&r.request_id)).map(|r| r.request_id.as_str()).collect::<HashSet<_>>().len();
    let mut serial = if new_requests > 0 { tx.reserve_case_serials(new_requests).await? } else { 0 };
    let now = now_ms();
    let date = crate::domain::calendar::iso_date(crate::domain::calendar::day_of(now)).replace('-', "");
    let mut opened: Vec<(&str, Case, Event)> = Vec::new();
    let mut outcomes = Vec::with_capacity(requests.len());
    for request in requests {
        if let Some(case) = known.get(&request.request_id) {
            outcomes.push(Submitted { case: case.clone(), created: false });
            continue;
        }
        let case_number = format!("{}{date}{serial:06}", &reference.county.code[..6]);
        serial += 1;
        let event = Event::from(application_submitted(reference, request, case_number, now));
        let Event::ApplicationSubmitted(submitted) = &event else { unreachable!("built as ApplicationSubmitted") };
        let case = Case::open(submitted);
        known.insert(request.request_id.clone(), case.clone());
        outcomes.push(Submitted { case: case.clone(), created: true });
        opened.push((request.request_id.as_str(), case, event));
    }
    let rows: Vec<(&str, &Case)> = opened.iter().map(|(request_id, case, _)| (*request_id, case)).collect();
    tx.insert_cases(&rows).await?;
    let history: Vec<(u32, &Event)> = opened.iter().map(|(_, _, event)| (1, event)).collect();
    tx.append_history(&history).await?;
    let events: Vec<Event> = opened.into_iter().map(|(_, _, event)| event).collect();
    tx.enqueue(&events).await?;
    tx.commit().await?;
    Ok(outcomes)
}

fn application_submitted(reference: &Reference, request: &SubmitApplication, case_number: String, now: i64) -> ApplicationSubmitted {
    let matter = reference.matter(&request.matter_code).expect("validated");
    let point = reference.service_point(&request.service_point).expect("validated");
    ApplicationSubmitted {
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
        faulty_materials: request.faulty_materials.clone(),
        commits_to_supply: request.commits_to_supply,
        domicile_township: request.domicile_township.clone(),
    }
}

type IntakeReply = oneshot::Sender<Result<Submitted, String>>;

/// Gathers concurrent submissions and opens their cases together, one transaction per group
/// (group commit): with one SQLite writer, a transaction per request is what limits intake.
#[derive(Clone)]
pub struct Intake {
    requests: mpsc::Sender<(SubmitApplication, IntakeReply)>,
}

/// Submissions opened in one transaction, at most.
const INTAKE_GROUP: usize = 256;

impl Intake {
    /// The intake and the task that serves it (to be spawned); the task ends with `shutdown`.
    pub fn new(store: Store, reference: CurrentReference, shutdown: CancellationToken) -> (Intake, impl std::future::Future<Output = ()> + Send + 'static) {
        let (requests, mut pending) = mpsc::channel::<(SubmitApplication, IntakeReply)>(INTAKE_GROUP * 4);
        let task = async move {
            loop {
                let first = tokio::select! {
                    first = pending.recv() => first,
                    _ = shutdown.cancelled() => None,
                };
                let Some(first) = first else { return };
                let mut group = vec![first];
                while group.len() < INTAKE_GROUP {
                    match pending.try_recv() {
                        Ok(next) => group.push(next),
                        Err(_) => break,
                    }
                }
                let (applications, replies): (Vec<_>, Vec<_>) = group.into_iter().unzip();
                match submit_applications(&store, &reference.get(), &applications).await {
                    Ok(outcomes) => outcomes.into_iter().zip(replies).for_each(|(outcome, reply)| drop(reply.send(Ok(outcome)))),
                    Err(error) => {
                        tracing::error!(error = format!("{error:#}"), submissions = replies.len(), "opening cases failed");
                        replies.into_iter().for_each(|reply| drop(reply.send(Err(format!("{error:#}")))));
                    }
                }
            }
        };
        (Intake { requests }, task)
    }

    /// Opens a case for a validated application (or returns the one its request id opened).
    pub async fn submit(&self, application: SubmitApplication) -> anyhow::Result<Submitted> {
        let (reply, answer) = oneshot::channel();
        self.requests.send((application, reply)).await.map_err(|_| anyhow::anyhow!("the hub is stopping"))?;
        answer.await.map_err(|_| anyhow::anyhow!("the hub is stopping"))?.map_err(anyhow::Error::msg)
    }
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
    let mut outcomes = execute_all(store, reference, vec![(case_number.to_string(), command)]).await?;
    outcomes.remove(0)
}

/// Runs commands against cases in one transaction, in order; each succeeds or fails on its own
/// (a batch approval where one case was decided meanwhile still decides the others).
/// `Err` only when the database fails, and then nothing is applied.
pub async fn execute_all(
    store: &Store,
    reference: &Reference,
    commands: Vec<(String, Command)>,
) -> anyhow::Result<Vec<Result<Case, CommandError>>> {
    execute_all_at(store, reference, commands, now_ms()).await
}

/// `execute_all` as of the instant `now`.
pub async fn execute_all_at(
    store: &Store,
    reference: &Reference,
    commands: Vec<(String, Command)>,
    now: i64,
) -> anyhow::Result<Vec<Result<Case, CommandError>>> {
    let mut tx = store.begin().await?;
    let mut touched = load_touched(&mut tx, commands.iter().map(|(number, _)| number.as_str())).await?;
    let ctx = Context { now, reference };
    let outcomes = commands
        .into_iter()
        .map(|(case_number, command)| {
            let entry = touched.get_mut(&case_number).ok_or(CommandError::NotFound(case_number))?;
            let mut events = decide(&entry.case, &command, &ctx)?;
            let decided = events.iter().fold(entry.case.clone(), evolve);
            let (case, reactions) = react(decided, events.clone(), &ctx)?;
            events.extend(reactions);
            entry.case = case;
            entry.history.extend(events.iter().cloned());
            entry.publish.extend(events);
            Ok(entry.case.clone())
        })
        .collect();
    save_touched(&mut tx, &mut touched, &ctx).await?;
    tx.commit().await?;
    Ok(outcomes)
}

/// Cases whose deadline check falls due in one round, at most.
const DEADLINE_ROUND: i64 = 500;

/// Runs the deadline checks that are due at `now` (the durable timers in the database) and
/// returns how many cases were checked. Each check re-arms its case's timer for a later day.
pub async fn check_deadlines(store: &Store, reference: &Reference, now: i64) -> anyhow::Result<usize> {
    let today = crate::domain::calendar::day_of(now);
    let mut checked = 0;
    // Bounded: a timer that failed to move on must not spin this loop.
    for _ in 0..100 {
        let due = store.cases_with_timer_due(today, DEADLINE_ROUND).await?;
        let round = due.len() as i64;
        let commands = due.into_iter().map(|number| (number, Command::CheckDeadlines)).collect();
        checked += execute_all_at(store, reference, commands, now).await?.len();
        if round < DEADLINE_ROUND {
            break;
        }
    }
    Ok(checked)
}
