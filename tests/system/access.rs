//! Tokens and roles: every role against every route, service points against each other's
//! cases, masked ID numbers, revocation and expiry, secrets hashed at rest, and every denial
//! an entry of the audit ledger — on SQLite and PostgreSQL.
use crate::common;

use std::collections::BTreeMap;

use common::desk::{demo_options, Desk, APPLICANT_ID};
use hub::app::tokens::{TokenKind, TokenRequest, Tokens, Unauthenticated, TOKEN_RECHECK};
use hub::config::Config;
use hub_cli::demo::DemoRun;
use hub_core::access::{decider_of, Role};
use hub_core::ledger::{Entry, EntryKind};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

const SELF_EMPLOYED: &str = "11610429MB2912345A4000104010000";
const VILLAGE: &str = "610429100201";
const BANK_OUTLET: &str = "BANK-PSBC-610429100";

/// What a call got: status and JSON body (Null when not JSON).
async fn call(client: &reqwest::Client, method: Method, url: String, body: Option<Value>) -> (StatusCode, Value) {
    let request = client.request(method, url);
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Whether the gate turned the role away from the route (not a handler's answer).
fn turned_away_by_role(status: StatusCode, answer: &Value) -> bool {
    status == StatusCode::FORBIDDEN && answer["error"].as_str().is_some_and(|e| e.contains(" is for "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_reaches_its_own_work_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in common::databases(&dir).await {
        let mut config = Config::default();
        config.database.url = url.clone();
        config.api.listen = "127.0.0.1:0".into();
        let demo = DemoRun::start(config, &demo_options(dir.path())).await.unwrap();
        let api = demo.api_url().to_string();
        let desk = Desk::new(&demo);
        let hub = &demo.hub;
        let reference = hub.reference.get();
        // The delivery orders stay on the board: the carrier is down.
        common::set_faults(demo.postal_url(), json!({"outage": true})).await;

        // Ours: a village case of the first township; theirs: one from another township.
        let ours_township = reference.service_point(VILLAGE).unwrap().township_code.clone();
        let (_, their_village) = reference.villages().find(|(township, _)| township.code != ours_township).unwrap();
        let ours = desk.submit(&format!("{backend}-ours"), SELF_EMPLOYED, VILLAGE, json!({})).await;
        let theirs = desk.submit(&format!("{backend}-theirs"), SELF_EMPLOYED, &their_village.code, json!({})).await;
        let routed = desk.wait_for(&ours, "routed").await;
        desk.wait_for(&theirs, "routed").await;
        let department = routed["case"]["department_code"].as_str().unwrap().to_string();
        assert_eq!(decider_of(&department, &reference), Role::CountyApprover, "{backend}: a county department decides");

        let seats: Vec<(Role, Option<&str>, &str)> = vec![
            (Role::VillageClerk, Some(VILLAGE), "张代办"),
            (Role::TownshipClerk, Some(&ours_township), "李窗口"),
            (Role::BankOutlet, Some(BANK_OUTLET), "邮储网点 王柜员"),
            (Role::CountyApprover, Some(&department), "赵审批"),
            (Role::Supervisor, None, "钱督查"),
            (Role::Postal, None, "邮政揽投系统"),
            (Role::DataBureau, None, "孙数据"),
            (Role::Integrator, None, "周集成"),
        ];
        let mut clients = BTreeMap::new();
        for (role, unit, holder) in &seats {
            clients.insert(*role, common::client_with(&common::token(hub, holder, *role, *unit).await));
        }
        let anonymous = reqwest::Client::new();
        let mut refusals = 0;

        // The matrix: every role against every route that takes a token.
        let filled = |template: &str| {
            template
                .replace("{case_number}", &ours)
                .replace("{position}", "1")
                .replace("{certificate_id}", "none")
                .replace("{name}", "postal-connector")
                .replace("{day}", "2026-11-23")
                .replace("{token_id}", "nonesuch")
                .replace("{seq}", "1")
        };
        // Every route that takes a token, with the roles its rule lets in, as the route table
        // describes it in the served OpenAPI document.
        let document: serde_json::Value =
            reqwest::get(format!("{api}/openapi.json")).await.unwrap().json().await.unwrap();
        let mut ruled = Vec::new();
        for (template, operations) in document["paths"].as_object().unwrap() {
            for (method, operation) in operations.as_object().unwrap() {
                let Some(roles) = operation["x-roles"].as_array() else { continue };
                let allowed: Vec<Role> =
                    roles.iter().map(|code| Role::parse(code.as_str().unwrap()).unwrap()).collect();
                ruled.push((method.to_uppercase(), template.clone(), allowed));
            }
        }
        assert!(ruled.len() > 40, "{backend}: the document lists {} routes with roles", ruled.len());
        for (method, template, allowed) in &ruled {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let url = format!("{api}{}", filled(template));
            let body = (method == Method::POST).then(|| json!({}));
            let (status, answer) = call(&anonymous, method.clone(), url.clone(), body.clone()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{backend}: {method} {template} without a token: {answer}");
            refusals += 1;
            for role in Role::ALL {
                let (status, answer) = call(&clients[&role], method.clone(), url.clone(), body.clone()).await;
                assert_ne!(status, StatusCode::UNAUTHORIZED, "{backend}: {method} {template} as {role:?}: {answer}");
                assert!(status.as_u16() < 500, "{backend}: {method} {template} as {role:?}: {status} {answer}");
                // The router serves it: axum's own 404 and 405 carry no JSON body.
                assert!(
                    !matches!(status, StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED) || !answer.is_null(),
                    "{backend}: {method} {template} is not served"
                );
                assert_eq!(
                    turned_away_by_role(status, &answer),
                    !allowed.contains(&role),
                    "{backend}: {method} {template} as {role:?}: {status} {answer}"
                );
                if matches!(status, StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED) {
                    refusals += 1;
                }
            }
        }
        let (status, _) = call(&anonymous, Method::GET, format!("{api}/health"), None).await;
        assert_eq!(status, StatusCode::OK, "{backend}: health needs no token");

        // Service points see their own cases only; the township centre its villages'.
        let case_url = |case: &str| format!("{api}/api/v1/cases/{case}");
        let reads = [
            (Role::VillageClerk, &ours, StatusCode::OK),
            (Role::VillageClerk, &theirs, StatusCode::FORBIDDEN),
            (Role::TownshipClerk, &ours, StatusCode::OK),
            (Role::TownshipClerk, &theirs, StatusCode::FORBIDDEN),
            (Role::BankOutlet, &ours, StatusCode::FORBIDDEN),
            (Role::CountyApprover, &ours, StatusCode::OK),
            (Role::Supervisor, &theirs, StatusCode::OK),
            (Role::Postal, &ours, StatusCode::FORBIDDEN),
        ];
        for (role, case, expected) in reads {
            let (status, answer) = call(&clients[&role], Method::GET, case_url(case), None).await;
            assert_eq!(status, expected, "{backend}: {role:?} reads {case}: {answer}");
            refusals += usize::from(status == StatusCode::FORBIDDEN);
        }
        let listed = |answer: &Value| {
            answer
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["case_number"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        let (_, village_list) =
            call(&clients[&Role::VillageClerk], Method::GET, format!("{api}/api/v1/cases?state=routed"), None).await;
        assert_eq!(listed(&village_list), std::slice::from_ref(&ours), "{backend}: the village clerk's list");
        let (_, outlet_list) =
            call(&clients[&Role::BankOutlet], Method::GET, format!("{api}/api/v1/cases?state=routed"), None).await;
        assert!(listed(&outlet_list).is_empty(), "{backend}: the bank outlet has no cases of its own: {outlet_list}");
        let (_, supervisor_list) =
            call(&clients[&Role::Supervisor], Method::GET, format!("{api}/api/v1/cases?state=routed"), None).await;
        assert_eq!(listed(&supervisor_list).len(), 2, "{backend}: the supervisor sees the county");
        // Nobody takes in applications at someone else's counter.
        let elsewhere = json!({
            "request_id": format!("{backend}-elsewhere"),
            "matter_code": SELF_EMPLOYED,
            "service_point": VILLAGE,
            "applicant": {"name": "张三", "id_type": "111", "id_number": APPLICANT_ID, "phone": "13912345678"},
            "materials": reference.matter(SELF_EMPLOYED).unwrap().materials.iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
            "delivery": {"method": "mail", "address": common::postal_address("张三", "711300")},
        });
        let (status, answer) =
            call(&clients[&Role::BankOutlet], Method::POST, format!("{api}/api/v1/applications"), Some(elsewhere))
                .await;
        assert_eq!(
            (status, answer["field"].as_str()),
            (StatusCode::FORBIDDEN, Some("service_point")),
            "{backend}: {answer}"
        );
        refusals += 1;
        // An approver decides for their own department only.
        let (status, answer) = call(
            &clients[&Role::CountyApprover],
            Method::GET,
            format!("{api}/api/v1/approvals?department=11610429MB2912348D"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{backend}: {answer}");
        refusals += 1;
        // A command on a case not the seat's is refused on the case it finds, alone or within a
        // batch, and written down like any refusal.
        let supplied = Some(json!({"materials": ["营业执照"]}));
        let (status, answer) =
            call(&clients[&Role::VillageClerk], Method::POST, format!("{}/supplements", case_url(&theirs)), supplied)
                .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{backend}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains("is not one of 张代办's"), "{backend}: {answer}");
        refusals += 1;
        let batch =
            json!({"decisions": [{"case_number": theirs, "outcome": "approved", "department_code": ours_township}]});
        let (status, answer) =
            call(&clients[&Role::TownshipClerk], Method::POST, format!("{api}/api/v1/decisions"), Some(batch)).await;
        assert_eq!(status, StatusCode::OK, "{backend}: {answer}");
        let result = &answer["results"][0];
        assert_eq!(result["status"], 403, "{backend}: {answer}");
        assert!(result["error"].as_str().unwrap().contains("is not one of 李窗口's"), "{backend}: {answer}");
        refusals += 1;
        let (_, queue) =
            call(&clients[&Role::CountyApprover], Method::GET, format!("{api}/api/v1/approvals"), None).await;
        assert!(listed(&queue).contains(&ours), "{backend}: the approver's own queue: {queue}");

        // ID numbers: whole for those at the counter and deciding, masked for the rest.
        let (_, clerk_view) = call(&clients[&Role::VillageClerk], Method::GET, case_url(&ours), None).await;
        assert_eq!(clerk_view["case"]["application"]["applicant"]["id_number"], APPLICANT_ID, "{backend}");
        let (_, supervisor_view) = call(&clients[&Role::Supervisor], Method::GET, case_url(&ours), None).await;
        assert_eq!(supervisor_view["case"]["application"]["applicant"]["id_number"], "110105********002X", "{backend}");
        assert!(!supervisor_view.to_string().contains(APPLICANT_ID), "{backend}: nowhere in the supervisor's view");
        let notice = clients[&Role::Supervisor]
            .get(format!("{}/documents/1", case_url(&ours)))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            notice.contains("受理") && !notice.contains(APPLICANT_ID),
            "{backend}: printed documents carry no ID number: {notice}"
        );

        // The postal board: delivery orders, no ID numbers.
        desk.decide(&ours, "approved", None).await;
        desk.wait_for(&ours, "delivery_requested").await;
        let (status, board) =
            call(&clients[&Role::Postal], Method::GET, format!("{api}/api/v1/delivery-orders"), None).await;
        assert_eq!(status, StatusCode::OK, "{backend}: {board}");
        let order = board["orders"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["case_number"] == ours.as_str())
            .cloned()
            .unwrap_or_else(|| panic!("{backend}: {board}"));
        assert_eq!(order["receiver"]["name"], "张三", "{backend}: {order}");
        assert!(
            !board.to_string().contains(APPLICANT_ID) && !board.to_string().contains("id_number"),
            "{backend}: {board}"
        );
        let (status, _) =
            call(&clients[&Role::Postal], Method::GET, format!("{api}/api/v1/delivery-orders?state=archived"), None)
                .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{backend}: only delivery states");

        // Tokens: issued by an integrator (an admin entry), hashed at rest, revoked, expired.
        let (status, issued) = call(
            &clients[&Role::Integrator],
            Method::POST,
            format!("{api}/api/v1/tokens"),
            Some(json!({"holder": "吴代办", "kind": "person", "role": "village_clerk", "unit": VILLAGE, "valid_days": 30})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{backend}: {issued}");
        let token = issued["token"].as_str().unwrap().to_string();
        let (status, answer) = call(
            &clients[&Role::Integrator],
            Method::POST,
            format!("{api}/api/v1/tokens"),
            Some(json!({"holder": "吴", "kind": "person", "role": "village_clerk", "unit": BANK_OUTLET})),
        )
        .await;
        assert_eq!(
            (status, answer["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some("unit")),
            "{backend}: a village clerk's unit is a village: {answer}"
        );
        let fresh = common::client_with(&token);
        assert_eq!(call(&fresh, Method::GET, case_url(&ours), None).await.0, StatusCode::OK, "{backend}");
        let (_, all) = call(&clients[&Role::Integrator], Method::GET, format!("{api}/api/v1/tokens"), None).await;
        let secret = token.rsplit('_').next().unwrap();
        assert!(!all.to_string().contains(secret), "{backend}: the list never shows a secret");
        let kept = hub.store.token(issued["token_id"].as_str().unwrap()).await.unwrap().unwrap();
        assert_eq!(
            kept.secret_sha256,
            hex::encode(Sha256::digest(secret.as_bytes())),
            "{backend}: only the digest is kept"
        );
        // Another instance on the same database, which has read the token before it is revoked.
        let elsewhere = Tokens::new(hub.store.clone(), hub.tokens.reference.clone());
        assert!(elsewhere.authenticate(&token).await.is_ok(), "{backend}");
        let revoked = format!("{api}/api/v1/tokens/{}/revocation", issued["token_id"].as_str().unwrap());
        assert_eq!(call(&clients[&Role::Integrator], Method::POST, revoked, None).await.0, StatusCode::OK, "{backend}");
        let (status, answer) = call(&fresh, Method::GET, case_url(&ours), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{backend}: a revoked token, on the instance revoking: {answer}");
        assert!(answer["error"].as_str().unwrap().contains("revoked"), "{answer}");
        refusals += 1;
        tokio::time::sleep(TOKEN_RECHECK).await;
        assert!(
            matches!(elsewhere.authenticate(&token).await, Err(Unauthenticated::Refused { .. })),
            "{backend}: a revocation holds on every instance once its record is read again"
        );
        let expired = hub
            .tokens
            .issue(
                TokenRequest {
                    holder: "郑过期".into(),
                    kind: TokenKind::Person,
                    role: Role::Supervisor,
                    unit: None,
                    window: None,
                    valid_days: Some(1),
                },
                "test",
            )
            .await
            .unwrap();
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        sqlx::query("UPDATE api_tokens SET expires_at = 1 WHERE token_id = $1")
            .bind(&expired.record.token_id)
            .execute(&pool)
            .await
            .unwrap();
        let (status, answer) = call(&common::client_with(&expired.token), Method::GET, case_url(&ours), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{backend}: an expired token: {answer}");
        refusals += 1;
        let forged = format!("{}0", &token[..token.len() - 1]);
        assert_eq!(
            call(&common::client_with(&forged), Method::GET, case_url(&ours), None).await.0,
            StatusCode::UNAUTHORIZED,
            "{backend}"
        );
        refusals += 1;

        // Every refusal is an entry; the token changes are administrative entries.
        let mut entries: Vec<Entry> = Vec::new();
        hub.store.walk_ledger(|row| entries.push(serde_json::from_slice(&row.body).unwrap())).await.unwrap();
        let denied: Vec<_> = entries.iter().filter(|e| e.record.kind == EntryKind::Denied).collect();
        assert_eq!(denied.len(), refusals, "{backend}: one entry per refusal");
        assert!(
            denied.iter().any(|e| e.record.requester_officer.as_deref() == Some("邮储网点 王柜员")
                && e.record.outcome == "403"
                && e.record.action.starts_with("POST /api/v1/applications")),
            "{backend}"
        );
        assert!(
            denied.iter().any(
                |e| e.record.requester_officer.as_deref() == Some("吴代办") && e.record.purpose.contains("revoked")
            ),
            "{backend}"
        );
        assert!(
            denied.iter().any(|e| e.record.requester_officer.is_none() && e.record.outcome == "401"),
            "{backend}: anonymous calls too"
        );
        let token_changes: Vec<_> = entries
            .iter()
            .filter(|e| e.record.kind == EntryKind::Admin && e.record.action.starts_with("POST /api/v1/tokens"))
            .collect();
        assert!(
            token_changes.len() >= 3
                && token_changes.iter().all(|e| e.record.requester_officer.as_deref() == Some("周集成")),
            "{backend}: {token_changes:?}"
        );
        assert!(hub.ledger.verify().await.unwrap().holds(), "{backend}");
        demo.stop().await;
    }
}
