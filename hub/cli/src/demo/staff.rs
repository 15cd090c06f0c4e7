//! The county's staff as the demo and the system tests play them: each call made by the one
//! who would make it — the clerk of the case's service point, the approver of its department,
//! the supervisor, the data bureau, the integrator — with a token of their own.
use std::collections::HashMap;

use anyhow::Context as _;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use serde_json::Value;

use hub::app::reference::CurrentReference;
use hub::app::tokens::{TokenKind, TokenRequest, Tokens};
use hub::store::Store;
use hub::Hub;
use hub_core::access::{counter_of, decider_of, Role};

/// A role and the unit it is bound to.
pub type Acting = (Role, Option<String>);

pub struct Staff {
    tokens: Tokens,
    store: Store,
    reference: CurrentReference,
    issued: tokio::sync::Mutex<HashMap<Acting, String>>,
    known: std::sync::Mutex<HashMap<String, Whose>>,
}

/// Whose a case is, as far as picking who acts on it goes: the point that took it in and, once
/// routed, the deciding department. Neither changes afterwards, so staff remember them rather
/// than read the case before every call, which no real clerk's client does.
#[derive(Clone)]
struct Whose {
    point: String,
    department: Option<String>,
}

/// Cases whose owners staff remember, at most.
const KNOWN_CASES: usize = 10_000;

/// Case actions taken by whoever decides the case.
const DECIDERS_ACTIONS: [&str; 9] = [
    "decision",
    "refusal",
    "procedures",
    "procedures/complete",
    "certificate/revocation",
    "steps",
    "extension",
    "hearing-rights",
    "supervision/answer",
];

impl Staff {
    pub fn of(hub: &Hub) -> Staff {
        Staff {
            tokens: hub.tokens.clone(),
            store: hub.store.clone(),
            reference: hub.reference.clone(),
            issued: Default::default(),
            known: Default::default(),
        }
    }

    /// The token of a role (bound to `unit`), issued on first use.
    pub async fn token(&self, role: Role, unit: Option<&str>) -> anyhow::Result<String> {
        let key = (role, unit.map(String::from));
        let mut issued = self.issued.lock().await;
        if let Some(token) = issued.get(&key) {
            return Ok(token.clone());
        }
        let holder = person_name(role.code(), unit.unwrap_or("county"));
        // A clerk at a point with windows works its first one, so the reports count per window.
        let window = match role {
            Role::TownshipClerk | Role::VillageClerk | Role::BankOutlet => self
                .reference
                .get()
                .county
                .windows
                .iter()
                .find(|w| Some(w.point.as_str()) == unit)
                .map(|w| w.code.clone()),
            _ => None,
        };
        let request =
            TokenRequest { holder, kind: TokenKind::Person, role, unit: key.1.clone(), window, valid_days: Some(30) };
        let token = match self.tokens.issue(request, "demo").await {
            Ok(issued) => issued.token,
            Err(error) => anyhow::bail!("issuing a {} token for {unit:?}: {error:?}", role.code()),
        };
        issued.insert(key, token.clone());
        Ok(token)
    }

    /// The name of the clerk at a service point, as their token names them.
    pub fn holder_at(&self, point_code: &str) -> anyhow::Result<String> {
        let reference = self.reference.get();
        let point = reference.service_point(point_code).with_context(|| format!("no service point {point_code}"))?;
        let (role, unit) = counter_of(point, &reference.county.code);
        Ok(person_name(role.code(), &unit))
    }

    /// Who would make this call to the hub's API.
    pub async fn actor(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Acting> {
        let reference = self.reference.get();
        let (route, query) = path.split_once('?').unwrap_or((path, ""));
        let counter = |point_code: &str| -> anyhow::Result<Acting> {
            let point =
                reference.service_point(point_code).with_context(|| format!("no service point {point_code}"))?;
            let (role, unit) = counter_of(point, &reference.county.code);
            Ok((role, Some(unit)))
        };
        let decider = |authority: &str| -> Acting { (decider_of(authority, &reference), Some(authority.to_string())) };
        let field = |name: &str| body.and_then(|body| body[name].as_str()).map(String::from);
        let segments: Vec<&str> = route.trim_start_matches("/api/v1/").splitn(3, '/').collect();
        Ok(match segments.as_slice() {
            ["applications"] => counter(&field("service_point").context("an application names its service point")?)?,
            ["cases", case_number, rest @ ..] => {
                let action = rest.first().copied().unwrap_or_default();
                if action.starts_with("rectifications/") {
                    return Ok((Role::Supervisor, None));
                }
                if action == "opinions" {
                    return Ok(decider(&field("department_code").unwrap_or_default()));
                }
                let deciding = DECIDERS_ACTIONS.contains(&action);
                match self.whose(case_number, deciding).await? {
                    Some(case) if deciding => decider(case.department.as_deref().unwrap_or_default()),
                    Some(case) => counter(&case.point)?,
                    None => (Role::Supervisor, None),
                }
            }
            ["cases"]
            | ["warnings"]
            | ["reports", ..]
            | ["supervision", ..]
            | ["reviews", ..]
            | ["routing", ..]
            | ["delivery-orders"]
            | ["archive", ..] => (Role::Supervisor, None),
            ["decisions"] => {
                let first = body.and_then(|body| body["decisions"][0]["case_number"].as_str()).unwrap_or_default();
                let department = self.whose(first, true).await?.and_then(|case| case.department).unwrap_or_default();
                decider(&department)
            }
            ["approvals"] => {
                let department = query
                    .split('&')
                    .find_map(|pair| pair.strip_prefix("department="))
                    .context("the demo's approvers ask for their department's queue")?;
                decider(department)
            }
            ["certificates", ..] => (Role::TownshipClerk, Some(reference.county.code.clone())),
            ["audit", "checkpoints" | "archives"] if method == "POST" => (Role::Integrator, None),
            ["audit", ..] => (Role::DataBureau, None),
            _ => (Role::Integrator, None),
        })
    }

    /// Whose the case is: read from the hub once, and again while a department is wanted and
    /// the case is not yet routed.
    async fn whose(&self, case_number: &str, with_department: bool) -> anyhow::Result<Option<Whose>> {
        if let Some(whose) = self.known.lock().expect("no one panics holding it").get(case_number) {
            if !with_department || whose.department.is_some() {
                return Ok(Some(whose.clone()));
            }
        }
        let Some(case) = self.store.snapshot(case_number).await? else { return Ok(None) };
        let whose = Whose { point: case.application.service_point.code, department: case.department_code };
        let mut known = self.known.lock().expect("no one panics holding it");
        // Bounded for long demos: forgotten cases are read again when next acted on.
        if known.len() >= KNOWN_CASES {
            known.clear();
        }
        known.insert(case_number.to_string(), whose.clone());
        Ok(Some(whose))
    }

    /// Sends a request to the hub's API as the one who would make it.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let (client, request) = request.build_split();
        let mut request = request?;
        let body: Option<Value> =
            request.body().and_then(|body| body.as_bytes()).and_then(|bytes| serde_json::from_slice(bytes).ok());
        let path = match request.url().query() {
            Some(query) => format!("{}?{query}", request.url().path()),
            None => request.url().path().to_string(),
        };
        let (role, unit) = self.actor(request.method().as_str(), &path, body.as_ref()).await?;
        let token = self.token(role, unit.as_deref()).await?;
        request.headers_mut().insert(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}"))?);
        Ok(client.execute(request).await?)
    }
}

/// A made-up but plausible name for the demo's holder of a role at a unit: documents and flow
/// records name people, and the same seat always gets the same name.
fn person_name(role: &str, unit: &str) -> String {
    const SURNAMES: &[char] = &[
        '王', '李', '张', '刘', '陈', '杨', '赵', '黄', '周', '吴', '徐', '孙', '马', '朱', '胡', '郭', '何', '高',
        '林', '罗',
    ];
    const GIVEN: &[&str] = &[
        "建国", "秀英", "志强", "桂兰", "海燕", "文博", "晓东", "丽娟", "永红", "春梅", "德明", "玉兰", "国华", "雪梅",
        "俊杰", "红霞",
    ];
    let hash =
        role.bytes().chain(unit.bytes()).fold(2_166_136_261_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(16_777_619));
    let surname = SURNAMES[hash as usize % SURNAMES.len()];
    format!("{surname}{}", GIVEN[(hash as usize / SURNAMES.len()) % GIVEN.len()])
}
