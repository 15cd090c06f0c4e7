//! Intake: applications from the counter and online, validated against the reference data,
//! their e-certificates verified, opened as cases in groups (one transaction per group) and
//! examined in it, so that the counter's answer carries the acceptance outcome.
use std::collections::HashSet;

use connectors::ecert::inbound::{CertificateLookup, LookupError, LookupPurpose};
use contracts::{
    Applicant, ApplicationSubmitted, Event, FeeReliefClaim, MaterialProblem, MatterRef, PostalAddress, ServicePoint,
};
use hub_core::routing::{self, Routing};
use hub_core::{deadlines, handle_event, Case, Context, Reference};
use hub_web::BadRequest;
use tokio_util::sync::CancellationToken;

use super::grouped::Grouped;
use super::reference::CurrentReference;
use super::reports::{keep_lines, Appended};
use crate::store::{now_ms, Store};

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
    /// A fee waiver or reduction the applicant claims under a county rule, with the proof the
    /// clerk checked (e.g. the 低保证 number).
    #[serde(default)]
    pub fee_relief: Option<FeeReliefClaim>,
    pub delivery: DeliveryChoice,
    /// The clerk taking it in: the token's holder, never the body's say.
    #[serde(skip)]
    pub received_by: String,
    /// The window (窗口) the clerk's token is bound to, if any.
    #[serde(skip)]
    pub window: Option<String>,
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
        use hub_core::validation::{mobile, not_blank, post_code, resident_id};
        field("request_id", not_blank(&self.request_id))?;
        if self.request_id.len() > 64 {
            fail("request_id", "must be at most 64 characters")?;
        }
        let Some(matter) = reference.matter(&self.matter_code) else {
            return fail("matter_code", format!("no matter with implementation code {}", self.matter_code));
        };
        let Some(point) = reference.service_point(&self.service_point) else {
            return fail(
                "service_point",
                format!("no service point {} in county {}", self.service_point, reference.county.code),
            );
        };
        if !matter.accept_tiers.contains(&point.tier) {
            fail(
                "service_point",
                format!(
                    "a {} service point may not accept {}; tiers allowed: {}",
                    point.tier,
                    matter.name,
                    matter.accept_tiers.join(", ")
                ),
            )?;
        }
        if !["counter", "online", "bank"].contains(&self.channel.as_str()) {
            fail("channel", "must be counter, online or bank")?;
        }
        // A bank outlet takes applications through the bank's channel, and only it does.
        if (self.channel == "bank") != (point.tier == "bank") {
            fail(
                "channel",
                format!("channel bank is for bank outlets; {} is a {} service point", point.name, point.tier),
            )?;
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
            field(
                "applicant.email",
                email
                    .parse::<lettre::Address>()
                    .map(drop)
                    .map_err(|e| format!("{email} is not an e-mail address: {e}")),
            )?;
        }
        // What is missing is for acceptance to say (one-time notice); names must be the matter's.
        let known = |name: &String| matter.materials.iter().any(|m| &m.name == name);
        if let Some(i) = self.materials.iter().position(|name| !known(name)) {
            fail(&format!("materials[{i}]"), format!("{} is not a material of {}", self.materials[i], matter.name))?;
        }
        for (i, faulty) in self.faulty_materials.iter().enumerate() {
            if !known(&faulty.material) {
                fail(
                    &format!("faulty_materials[{i}].material"),
                    format!("{} is not a material of {}", faulty.material, matter.name),
                )?;
            }
            field(&format!("faulty_materials[{i}].problem"), not_blank(&faulty.problem))?;
        }
        for (i, presented) in self.certificates.iter().enumerate() {
            match matter.materials.iter().find(|m| m.name == presented.material) {
                None => fail(
                    &format!("certificates[{i}].material"),
                    format!("{} is not a material of {}", presented.material, matter.name),
                )?,
                Some(material) if !material.ecert => fail(
                    &format!("certificates[{i}].material"),
                    format!("{} cannot be replaced by an electronic certificate", material.name),
                )?,
                Some(_) => field(&format!("certificates[{i}].certificate_id"), not_blank(&presented.certificate_id))?,
            }
        }
        if let Some(township) = &self.domicile_township {
            if township.len() != 12 || !township.bytes().all(|b| b.is_ascii_digit()) {
                fail("domicile_township", "a township division code has 12 digits")?;
            }
        }
        if let Some(claim) = &self.fee_relief {
            let rules = &reference.county.policy.fee_relief;
            if matter.fees.is_empty() {
                fail("fee_relief", format!("{} charges no fee", matter.name))?;
            }
            if !rules.iter().any(|r| r.rule == claim.rule) {
                let known: Vec<&str> = rules.iter().map(|r| r.rule.as_str()).collect();
                fail(
                    "fee_relief.rule",
                    format!("no fee relief {}; the county lists {}", claim.rule, known.join(", ")),
                )?;
            }
            field("fee_relief.proof_number", not_blank(&claim.proof_number))?;
        }
        match (self.delivery.method.as_str(), &self.delivery.address) {
            ("mail", None) => fail("delivery.address", "mail delivery needs an address")?,
            ("mail", Some(_)) if !matter.mail_allowed => {
                fail("delivery.method", format!("{} results may not be mailed", matter.name))?
            }
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
            ("village_station", _) if point.tier == "village" => {}
            ("village_station", _) => fail(
                "delivery.method",
                format!("village_station pickup is back at the village station that takes the application in; {} is a {} service point", point.name, point.tier),
            )?,
            _ => fail("delivery.method", "must be mail, window, locker or village_station")?,
        }
        Ok(())
    }
}

/// Where a hypothetical application would be decided, and why (the explain call).
pub fn explain_routing(
    reference: &Reference,
    matter_code: &str,
    service_point: &str,
    domicile_township: Option<&str>,
) -> Result<Routing, FieldError> {
    let Some(matter) = reference.matter(matter_code) else {
        return Err(FieldError {
            field: "matter_code".into(),
            message: format!("no matter with implementation code {matter_code}"),
        });
    };
    let Some(point) = reference.service_point(service_point) else {
        return Err(FieldError {
            field: "service_point".into(),
            message: format!("no service point {service_point} in county {}", reference.county.code),
        });
    };
    routing::route(reference, matter, point, domicile_township)
        .map_err(|message| FieldError { field: "service_point".into(), message })
}

/// Outcome of a submission: the case, and whether this request opened it.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub case: Case,
    pub created: bool,
}

/// Opens a case for a validated application, or returns the case this request already opened.
pub async fn submit_application(
    store: &Store,
    reference: &Reference,
    request: &SubmitApplication,
) -> anyhow::Result<Submitted> {
    let mut submitted = submit_applications(store, reference, std::slice::from_ref(request)).await?;
    Ok(submitted.remove(0))
}

/// Opens cases for validated applications in one transaction; a request id seen before (or
/// earlier in `requests`) gets the case it opened.
pub async fn submit_applications(
    store: &Store,
    reference: &Reference,
    requests: &[SubmitApplication],
) -> anyhow::Result<Vec<Submitted>> {
    match open_cases(store, reference, requests).await {
        // Another instance opened a case for one of these request ids meanwhile: read again,
        // and that request gets its case.
        Err(error) if crate::store::is_unique_violation(&error) => open_cases(store, reference, requests).await,
        done => done,
    }
}

async fn open_cases(
    store: &Store,
    reference: &Reference,
    requests: &[SubmitApplication],
) -> anyhow::Result<Vec<Submitted>> {
    let mut tx = store.begin_now().await?;
    let ids: Vec<&str> = requests.iter().map(|r| r.request_id.as_str()).collect();
    let mut known = tx.cases_for_requests(&ids).await?;
    let new_requests = requests
        .iter()
        .filter(|r| !known.contains_key(&r.request_id))
        .map(|r| r.request_id.as_str())
        .collect::<HashSet<_>>()
        .len();
    let mut serial = if new_requests > 0 { tx.reserve_case_serials(new_requests).await? } else { 0 };
    let now = now_ms();
    let ctx = Context { now, reference };
    let date = hub_core::calendar::iso_date(hub_core::calendar::day_of(now)).replace('-', "");
    let mut opened: Vec<Opened> = Vec::new();
    let mut outcomes = Vec::with_capacity(requests.len());
    for request in requests {
        if let Some(case) = known.get(&request.request_id) {
            outcomes.push(Submitted { case: case.clone(), created: false });
            continue;
        }
        let case_number = format!("{}{date}{serial:06}", &reference.county.code[..6]);
        serial += 1;
        let submitted = application_submitted(reference, request, case_number, now);
        let case = Case::open(&submitted);
        // Acceptance (and routing) needs no outside party: examined here, so the counter's
        // answer carries the outcome and its notice.
        let submitted = Event::from(submitted);
        let handled = handle_event(case.clone(), &submitted, &ctx)
            .map_err(|rejection| anyhow::anyhow!("examining application {}: {rejection}", request.request_id))?;
        let mut examined = handled.case;
        examined.timer_day = deadlines::next_check(&examined, ctx.today(), reference);
        known.insert(request.request_id.clone(), examined.clone());
        outcomes.push(Submitted { case: examined.clone(), created: true });
        let history = std::iter::once(submitted).chain(handled.reactions).collect();
        opened.push(Opened { request_id: &request.request_id, case, examined, history });
    }
    let rows: Vec<(&str, &Case)> = opened.iter().map(|o| (o.request_id, &o.examined)).collect();
    tx.insert_cases(&rows).await?;
    let history: Vec<(u32, &Event)> = opened.iter().flat_map(|o| (1..).zip(&o.history)).collect();
    tx.append_history(&history).await?;
    let appended: Vec<Appended> = opened
        .iter()
        .map(|o| Appended { loaded: &o.case, first_seq: 1, history: &o.history, now: &o.examined })
        .collect();
    keep_lines(&mut tx, &appended, reference).await?;
    let events: Vec<Event> = opened.into_iter().flat_map(|o| o.history).collect();
    tx.enqueue(&events).await?;
    tx.commit().await?;
    Ok(outcomes)
}

/// A case a group opens: as opened, as examined, and its history so far.
struct Opened<'r> {
    request_id: &'r str,
    case: Case,
    examined: Case,
    history: Vec<Event>,
}

fn application_submitted(
    reference: &Reference,
    request: &SubmitApplication,
    case_number: String,
    now: i64,
) -> ApplicationSubmitted {
    let matter = reference.matter(&request.matter_code).expect("validated");
    let point = reference.service_point(&request.service_point).expect("validated");
    ApplicationSubmitted {
        event_id: hub_core::ids::case_event(&case_number, 1),
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
        received_by: request.received_by.clone(),
        fee_relief: request.fee_relief.clone(),
        window: request.window.clone(),
    }
}

/// Gathers concurrent submissions and opens their cases together, one transaction per group
/// (group commit): with one SQLite writer, a transaction per request is what limits intake.
#[derive(Clone)]
pub struct Intake {
    group: Grouped<SubmitApplication, Submitted>,
}

/// Submissions opened in one transaction, at most.
const INTAKE_GROUP: usize = 256;

impl Intake {
    /// The intake and the task that serves it (to be spawned); the task ends with `shutdown`.
    pub fn new(
        store: Store,
        reference: CurrentReference,
        shutdown: CancellationToken,
    ) -> (Intake, impl std::future::Future<Output = ()> + Send + 'static) {
        let open = move |applications: Vec<SubmitApplication>| {
            let (store, reference) = (store.clone(), reference.get());
            async move { submit_applications(&store, &reference, &applications).await }
        };
        let (group, task) = Grouped::new("opening cases", INTAKE_GROUP, open, shutdown);
        (Intake { group }, task)
    }

    /// Opens a case for a validated application (or returns the one its request id opened).
    pub async fn submit(&self, application: SubmitApplication) -> anyhow::Result<Submitted> {
        self.group.submit(application).await
    }
}

/// Fetches and verifies each presented certificate: a good one stands in for its material, a
/// bad one makes the material faulty, for the one-time notice to name. A malformed identifier
/// is refused (422, naming it); an unreachable repository leaves the application untaken.
pub async fn verify_presented(
    reference: &Reference,
    certificates: &CertificateLookup,
    request: &mut SubmitApplication,
) -> Result<(), LookupError> {
    let matter = reference.matter(&request.matter_code).map(|m| m.name.clone()).unwrap_or_default();
    for (i, presented) in std::mem::take(&mut request.certificates).into_iter().enumerate() {
        let why = LookupPurpose {
            purpose: format!("办理{matter}：核验{}（免提交，申请{}）", presented.material, request.request_id),
            officer: None,
            case_number: None,
        };
        let problem = match certificates.fetch(&presented.certificate_id, &why).await {
            Ok(found) if found.certificate.holder_code != request.applicant.id_number => {
                Some("电子证照持证主体与申请人不符".to_string())
            }
            Ok(found) if !found.valid => Some(format!("电子证照核验未通过：{}", found.problems.join("；"))),
            Ok(_) => None,
            Err(LookupError::NotFound(_)) => Some("电子证照库中无此证照".to_string()),
            Err(LookupError::Bad(bad)) => {
                let field = format!("certificates[{i}].certificate_id");
                return Err(LookupError::Bad(BadRequest::invalid(field.clone(), format!("{field}: {}", bad.message))));
            }
            Err(unavailable @ LookupError::Unavailable(_)) => return Err(unavailable),
        };
        match problem {
            None if !request.materials.contains(&presented.material) => request.materials.push(presented.material),
            None => {}
            Some(problem) => request.faulty_materials.push(MaterialProblem { material: presented.material, problem }),
        }
    }
    Ok(())
}
