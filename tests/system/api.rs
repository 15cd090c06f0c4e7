//! The service-point API: good requests open cases, bad ones get a 4xx naming the field.
use crate::common;

use std::time::Duration;

use hub::config::Config;
use hub_cli::demo::{demo_applications, DemoOptions, DemoRun};
use hub_core::access::{decider_of, Role};
use hub_core::calendar::iso_date;
use hub_core::Reference;
use serde_json::{json, Value};

async fn post(client: &reqwest::Client, url: String, body: &Value) -> (u16, Value) {
    let response = client.post(url).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_opens_cases_and_names_bad_fields() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.api.listen = "127.0.0.1:0".into();
    let options = DemoOptions {
        cases: 0,
        resume: false,
        data_dir: dir.path().to_path_buf(),
        postal_url: None,
        ecert_url: None,
        province_url: None,
        bank_url: None,
        step_delay: Duration::from_millis(1),
        progress: false,
        concurrency: 1,
        faults: Default::default(),
        counterpart_faults: Default::default(),
        mix: false,
        electronic_seals: false,
    };
    let demo = DemoRun::start(config, &options).await.unwrap();
    let base = demo.api_url().to_string();
    let good = serde_json::to_value(demo_applications(&Reference::builtin(), 1, false).next().unwrap().0).unwrap();
    // The village station's clerk takes the application in.
    let point = good["service_point"].as_str().unwrap();
    let client = common::client_with(&demo.staff.token(Role::VillageClerk, Some(point)).await.unwrap());

    let with = |path: &[&str], value: Value| {
        let mut body = good.clone();
        let mut target = &mut body;
        for key in &path[..path.len() - 1] {
            target = &mut target[*key];
        }
        target[path[path.len() - 1]] = value;
        body
    };
    let cases: Vec<(Value, u16, &str)> = vec![
        (with(&["applicant", "id_number"], json!("11010519491231002")), 422, "applicant.id_number"),
        (with(&["applicant", "id_number"], json!("110105194912310021")), 422, "applicant.id_number"),
        (with(&["applicant", "phone"], json!("12345")), 422, "applicant.phone"),
        (with(&["matter_code"], json!("NO-SUCH-MATTER")), 422, "matter_code"),
        (with(&["service_point"], json!("999999999999")), 422, "service_point"),
        (with(&["delivery", "address", "post_code"], json!("7113")), 422, "delivery.address.post_code"),
        (with(&["delivery", "method"], json!("drone")), 422, "delivery.method"),
        (with(&["materials"], json!(["户口本"])), 422, "materials[0]"),
        (
            with(&["faulty_materials"], json!([{"material": "户口本", "problem": "模糊"}])),
            422,
            "faulty_materials[0].material",
        ),
        (with(&["domicile_township"], json!("6104")), 422, "domicile_township"),
        (with(&["applicant", "name"], json!(42)), 400, "applicant.name"),
        (with(&["surprise"], json!(1)), 400, ""),
    ];
    for (body, status, field) in cases {
        let (got, answer) = post(&client, format!("{base}/api/v1/applications"), &body).await;
        assert_eq!(got, status, "{field}: {answer}");
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "{field}: an error message is given");
        if !field.is_empty() {
            assert_eq!(answer["field"], json!(field), "{answer}");
        }
    }
    let missing = {
        let mut body = good.clone();
        body["applicant"].as_object_mut().unwrap().remove("phone");
        body
    };
    let (status, answer) = post(&client, format!("{base}/api/v1/applications"), &missing).await;
    assert_eq!(status, 400);
    assert!(answer["error"].as_str().unwrap().contains("phone"), "{answer}");
    let response = client
        .post(format!("{base}/api/v1/applications"))
        .body("not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);

    // The good one opens a case, once.
    let (status, created) = post(&client, format!("{base}/api/v1/applications"), &good).await;
    assert_eq!(status, 201, "{created}");
    let (status, again) = post(&client, format!("{base}/api/v1/applications"), &good).await;
    assert_eq!((status, again["created"].clone()), (200, json!(false)));
    assert_eq!(again["case_number"], created["case_number"]);
    let case_number = created["case_number"].as_str().unwrap();
    let record: Value =
        client.get(format!("{base}/api/v1/cases/{case_number}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(record["history"][0]["kind"], "ApplicationSubmitted");
    // Examined as it was opened: the answer carries the outcome and the notice to print.
    assert_eq!((created["acceptance"].clone(), created["state"].clone()), (json!("accepted"), json!("routed")));
    assert_eq!(
        created["promised_date"],
        json!(record["case"]["promised_date"].as_i64().map(|day| iso_date(day as i32)))
    );
    assert_eq!(again["notice"], created["notice"], "{again}");
    let notice = &created["notice"];
    assert_eq!(notice["kind"], "acceptance_notice", "{created}");
    assert_eq!(notice["number"], record["case"]["acceptance_notice"], "{created}");
    let printed = client.get(format!("{base}{}", notice["href"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(printed.status(), 200);
    assert!(printed.text().await.unwrap().contains(notice["number"].as_str().unwrap()), "the notice is the one named");
    // Materials missing: the one-time notice comes back instead.
    let mut incomplete = with(&["request_id"], json!("api-incomplete"));
    incomplete["materials"] = json!([]);
    let (status, told) = post(&client, format!("{base}/api/v1/applications"), &incomplete).await;
    assert_eq!(status, 201, "{told}");
    assert_eq!(told["acceptance"], "supplement_requested", "{told}");
    assert_eq!(
        (told["notice"]["kind"].clone(), told["state"].clone()),
        (json!("one_time_notice"), json!("awaiting_supplement"))
    );
    assert_eq!(record["case"]["application"]["service_point"]["tier"], "village");

    // The explain call: where a hypothetical application would go, and why.
    let explain = |query: &str| {
        let url = format!("{base}/api/v1/routing/explain?{query}");
        let client = client.clone();
        async move {
            let response = client.get(url).send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, routing) = explain(
        "matter_code=11610429MB2912349E4000117050000&service_point=610429100201&domicile_township=610429001000",
    )
    .await;
    assert_eq!((status, routing["rule"].clone()), (200, json!("city-wide/receive-here-handle-there")), "{routing}");
    assert_eq!(routing["authority_code"], "610429001000");
    let (status, answer) = explain("matter_code=NOPE&service_point=610429100201").await;
    assert_eq!((status, answer["field"].clone()), (422, json!("matter_code")), "{answer}");
    let (status, answer) = explain("matter_code=11610429MB2912348D4000111001000&service_point=610429100201").await;
    assert_eq!(
        (status, answer["field"].clone()),
        (422, json!("service_point")),
        "a village may not register marriages: {answer}"
    );
    let (status, _) = explain("service_point=610429100201").await;
    assert_eq!(status, 400, "matter_code is required");

    let missing_case = client.get(format!("{base}/api/v1/cases/000")).send().await.unwrap();
    assert_eq!(missing_case.status().as_u16(), 404);

    // Decisions: only once routed, only by the competent department, denials with reasons.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let authority = loop {
        let record: Value =
            client.get(format!("{base}/api/v1/cases/{case_number}")).send().await.unwrap().json().await.unwrap();
        if let Some(authority) = record["case"]["department_code"].as_str() {
            break authority.to_string();
        }
        assert!(tokio::time::Instant::now() < deadline, "the case was never routed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let clerk = client;
    let client = common::client_with(
        &demo.staff.token(decider_of(&authority, &Reference::builtin()), Some(&authority)).await.unwrap(),
    );
    let department = loop {
        let queue: Value = client.get(format!("{base}/api/v1/approvals")).send().await.unwrap().json().await.unwrap();
        if let Some(item) = queue.as_array().unwrap().iter().find(|i| i["case_number"] == case_number) {
            break item["department_code"].clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "the case never reached the approval queue");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let decide = format!("{base}/api/v1/cases/{case_number}/decision");
    let (status, answer) =
        post(&client, decide.clone(), &json!({"outcome": "approved", "department_code": "11610429MB2912348D"})).await;
    assert_eq!((status, answer["field"].clone()), (403, json!("department_code")), "{answer}");
    let (status, answer) =
        post(&client, decide.clone(), &json!({"outcome": "denied", "department_code": department})).await;
    assert_eq!((status, answer["field"].clone()), (422, json!("reason")), "{answer}");
    let (status, answer) =
        post(&client, decide.clone(), &json!({"outcome": "maybe", "department_code": department})).await;
    assert_eq!((status, answer["field"].clone()), (400, json!("outcome")), "{answer}");
    let (status, _) = post(
        &client,
        decide.clone(),
        &json!({"outcome": "denied", "department_code": department, "reason": "不符合法定条件"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post(&client, decide, &json!({"outcome": "approved", "department_code": department})).await;
    assert_eq!(status, 409, "a case is decided once");

    // Batch approval: each decision answered on its own, in one transaction.
    let mut second = good.clone();
    second["request_id"] = json!("batch-2");
    let (_, opened) = post(&clerk, format!("{base}/api/v1/applications"), &second).await;
    let second_number = opened["case_number"].as_str().unwrap().to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !client
        .get(format!("{base}/api/v1/approvals"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()
        .to_string()
        .contains(&second_number)
    {
        assert!(tokio::time::Instant::now() < deadline, "the second case never reached the approval queue");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let decisions = format!("{base}/api/v1/decisions");
    let approve = |number: &str, department: &Value| json!({"case_number": number, "outcome": "approved", "department_code": department});
    let (status, answer) = post(&client, decisions.clone(), &json!({"decisions": [approve(&second_number, &json!("11610429MB2912348D")), {"case_number": second_number, "outcome": "approved", "officer": " ", "department_code": department}]})).await;
    assert_eq!((status, answer["field"].clone()), (400, json!("decisions[1].officer")), "{answer}");
    let (status, answer) = post(&client, decisions.clone(), &json!({"decisions": []})).await;
    assert_eq!((status, answer["field"].clone()), (400, json!("decisions")), "{answer}");
    let batch = json!({"decisions": [
        approve(&second_number, &json!("11610429MB2912348D")),
        approve(&second_number, &department),
        approve(&second_number, &department),
        approve(case_number, &department),
        approve("000", &department),
    ]});
    let (status, answer) = post(&client, decisions, &batch).await;
    assert_eq!(status, 200, "{answer}");
    let statuses: Vec<u64> =
        answer["results"].as_array().unwrap().iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [403, 200, 409, 409, 404], "{answer}");
    assert_eq!(answer["results"][0]["field"], "department_code");
    let record: Value =
        client.get(format!("{base}/api/v1/cases/{second_number}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        record["history"].as_array().unwrap().iter().filter(|h| h["kind"] == "CaseDecided").count(),
        1,
        "decided once"
    );
    demo.stop().await;
}
