//! The reports (办件通报) of a county day the demo drove: the kept figures equal a recount from
//! every case's history, the units add up to the county, a window counts what its clerks took
//! in, and the bulletin comes out as a printable page and a spreadsheet.
use crate::common;

use common::desk::Desk;
use hub_cli::demo::DemoRun;
use serde_json::Value;

/// Checks the reports of the period holding today, after the demo drove `cases` to the end.
pub async fn check_county_day(demo: &DemoRun, backend: &str, cases: usize) {
    let desk = Desk::new(demo);
    // The year, not the month: the demo's "later day" may fall into the next month.
    let year = &connectors::framework::date_text(contracts::day_of(connectors::framework::now_ms()))[..4];
    let (status, answer) = desk.get(format!("/api/v1/reports?period={year}&recount=true")).await;
    assert_eq!(status, 200, "{backend}: {answer}");
    assert_eq!(answer["recount_matches"], true, "{backend}: kept {} recounted {}", answer["report"], answer["recount"]);
    let county = &answer["report"];
    assert_eq!(county["received"].as_u64(), Some(cases as u64), "{backend}: {county}");
    let accepted_or_refused = county["accepted"].as_u64().unwrap() + county["refused"].as_u64().unwrap();
    assert_eq!(accepted_or_refused, cases as u64, "{backend}: every application accepted or refused: {county}");
    assert!(
        county["decided"].as_u64().unwrap() > 0 && county["on_time"]["of"] == county["decided"],
        "{backend}: {county}"
    );
    assert!(county["reviews"].as_u64().unwrap() > 0 && county["fees_collected_fen"].as_i64().unwrap() > 0, "{backend}");

    // Every case, for what the units should count.
    let mut every_case: Vec<Value> = Vec::new();
    for state in hub_core::CaseState::ALL {
        let scope = hub_core::access::CaseScope::All;
        let found =
            demo.hub.store.cases_in_state(state, None, &scope, hub::store::ListOrder::Oldest, 10_000).await.unwrap();
        every_case.extend(found.iter().map(|case| serde_json::to_value(case).unwrap()));
    }
    assert_eq!(every_case.len(), cases, "{backend}");

    // Each township counts the cases taken in at its centre, villages and outlets; with those
    // of the county hall and online, they make the county's.
    let reference = demo.hub.reference.get();
    let township_of = |case: &Value| {
        let point = case["application"]["service_point"]["code"].as_str().unwrap();
        reference.service_point(point).unwrap().township_code.clone()
    };
    let mut received = 0;
    for township in &reference.county.townships {
        let (status, answer) = desk.get(format!("/api/v1/reports?period={year}&unit={}", township.code)).await;
        assert_eq!(status, 200, "{backend}: {answer}");
        let taken_in = every_case.iter().filter(|c| township_of(c) == township.code).count() as u64;
        assert_eq!(answer["report"]["received"].as_u64(), Some(taken_in), "{backend} {}", township.name);
        received += taken_in;
    }
    let at_the_hall = every_case.iter().filter(|c| township_of(c) == reference.county.code).count() as u64;
    assert!(received > 0 && at_the_hall > 0, "{backend}: the demo takes cases in at villages and online");
    assert_eq!(received + at_the_hall, cases as u64, "{backend}");

    // A window counts the applications its clerks took in, recounted alike.
    for window in &reference.county.windows {
        let taken_in = every_case.iter().filter(|c| c["application"]["window"] == window.code.as_str()).count();
        let (_, answer) = desk.get(format!("/api/v1/reports?period={year}&unit={}&recount=true", window.code)).await;
        assert_eq!(answer["report"]["received"].as_u64(), Some(taken_in as u64), "{backend} {}", window.code);
        assert_eq!(answer["recount_matches"], true, "{backend} {}", window.code);
    }
    assert!(
        every_case.iter().any(|c| c["application"]["window"].is_string()),
        "{backend}: the demo's clerks work windows"
    );

    // The bulletin: a printable page with its charts, and a spreadsheet with its chart.
    let url = format!("{}/api/v1/reports/bulletin?period={year}", demo.api_url());
    let page = demo.staff.send(desk.client.get(&url)).await.unwrap();
    assert_eq!(page.status(), 200, "{backend}");
    let page = page.text().await.unwrap();
    assert!(page.contains(&format!("旬邑县政务服务办件通报（{year}年度）")), "{backend}");
    assert!(page.contains(&format!("<tr><th>收件量</th><td>{cases}</td>")), "{backend}: the county's figure");
    assert!(page.contains("土桥镇") && page.contains("各窗口") && page.contains("<svg"), "{backend}");
    let sheet =
        demo.staff.send(desk.client.get(format!("{}/api/v1/reports/bulletin/xlsx?period={year}", demo.api_url())));
    let sheet = sheet.await.unwrap();
    assert_eq!(sheet.status(), 200, "{backend}");
    let bytes = sheet.bytes().await.unwrap();
    assert!(bytes.starts_with(b"PK\x03\x04"), "{backend}: a zip (xlsx) file");
    let names = String::from_utf8_lossy(&bytes);
    assert!(names.contains("xl/worksheets/sheet4.xml") && names.contains("xl/charts/chart1.xml"), "{backend}");
    let (status, answer) = desk.get("/api/v1/reports/bulletin?period=2026-Q5".into()).await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("period")), "{backend}: {answer}");
}
