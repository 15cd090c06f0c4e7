//! The web console in a real browser: headless Chromium (Debian's chromium and chromedriver,
//! which `.ci/run` installs) on a 1366×768 window walks each role's main task end to end
//! against a running hub, and the hub's own records are checked after each step. A screenshot
//! of every step is kept under `target/tmp/artifacts/console/`.
use crate::common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::desk::{demo_options, Desk, APPLICANT_ID};
use fantoccini::{Client, ClientBuilder, Locator};
use hub::config::Config;
use hub_cli::demo::DemoRun;
use hub_core::access::Role;
use serde_json::{json, Value};

const SELF_EMPLOYED: &str = "11610429MB2912345A4000104010000";
const APPROVAL_BUREAU: &str = "11610429MB2912345A";
const VILLAGE: &str = "610429100201";
const TOWNSHIP: &str = "610429100000";
const COUNTY_HALL: &str = "610429000000";
const BANK_OUTLET: &str = "BANK-PSBC-610429100";
const FOOD: &str = "11610429MB2912345A4000104119000";
const CONSTRUCTION: &str = "11610429MB2912345A4000106012000";
/// A department the construction matter consults (并联审批).
const CONSULTED: &str = "11610429MB291234AF";
const WIDTH: i64 = 1366;

/// One browser session, with chromedriver running beside it.
struct Console {
    client: Client,
    _driver: tokio::process::Child,
    base: String,
    shots: PathBuf,
}

impl Console {
    async fn open(base: &str) -> Console {
        let chromedriver = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        assert!(
            std::path::Path::new(&chromedriver).exists(),
            "{chromedriver} is missing: apt-get install chromium chromium-driver (bash .ci/run does)"
        );
        let port = common::free_port();
        let driver = tokio::process::Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let webdriver = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while reqwest::get(format!("{webdriver}/status")).await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let capabilities = json!({"goog:chromeOptions": {"binary": chromium, "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", format!("--window-size={WIDTH},768"), "--lang=zh-CN",
        ]}});
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities.as_object().unwrap().clone())
            .connect(&webdriver)
            .await
            .unwrap();
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("artifacts").join("console");
        std::fs::create_dir_all(&shots).unwrap();
        Console { client, _driver: driver, base: base.to_string(), shots }
    }

    async fn wait(&self, css: &str) -> fantoccini::elements::Element {
        match self.client.wait().at_most(Duration::from_secs(30)).for_element(Locator::Css(css)).await {
            Ok(element) => element,
            Err(error) => {
                self.shot("failure").await;
                panic!("{css} did not appear: {error}; page text: {}", self.text("body").await)
            }
        }
    }

    async fn text(&self, css: &str) -> String {
        self.client.find(Locator::Css(css)).await.unwrap().text().await.unwrap()
    }

    /// The element once the page shows it and it takes input: a view may still be switching
    /// when the element is already in the page.
    async fn interactable(&self, css: &str) -> fantoccini::elements::Element {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let element = self.wait(css).await;
            if element.is_displayed().await.unwrap_or(false) && element.is_enabled().await.unwrap_or(false) {
                return element;
            }
            if Instant::now() > deadline {
                self.shot("failure").await;
                panic!("{css} never became interactable; page text: {}", self.text("body").await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn fill(&self, css: &str, text: &str) {
        let field = self.interactable(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Sets an input's value as a picker would (date and time inputs take no typed keys alike
    /// in every locale).
    async fn set(&self, css: &str, value: &str) {
        self.interactable(css).await;
        let script = "document.querySelector(arguments[0]).value = arguments[1]";
        self.client.execute(script, vec![json!(css), json!(value)]).await.unwrap();
    }

    /// The content of the file a download link would save.
    async fn saved(&self, css: &str) -> String {
        self.interactable(css).await;
        let script = "const done = arguments[1]; fetch(document.querySelector(arguments[0]).href).then((r) => r.text()).then(done)";
        self.client.execute_async(script, vec![json!(css)]).await.unwrap().as_str().unwrap().to_string()
    }

    async fn click(&self, css: &str) {
        self.interactable(css).await.click().await.unwrap();
    }

    async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.unwrap().len()
    }

    /// Signs in afresh with `token` and waits for the role's first view.
    /// The console's sign-in page, with no token kept from an earlier role.
    async fn signed_out(&self) {
        // Cleared from a page of the same origin that runs no script: on the console itself, a
        // sign-in still in flight with the stored token would store it again after the clear.
        self.client.goto(&format!("{}/health", self.base)).await.unwrap();
        self.client.execute("sessionStorage.clear()", vec![]).await.unwrap();
        self.client.goto(&format!("{}/console/", self.base)).await.unwrap();
    }

    async fn sign_in(&self, token: &str, first_view: &str) {
        self.signed_out().await;
        self.fill("#token", token).await;
        self.click("#sign-in-button").await;
        self.wait(&format!("[data-view={first_view}]")).await;
    }

    /// Saves a screenshot of the window, and checks the page fits its width.
    async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    async fn fits_the_screen(&self, step: &str) {
        let width = self.client.execute("return document.documentElement.scrollWidth", vec![]).await.unwrap();
        assert!(
            width.as_i64().unwrap() <= WIDTH,
            "{step}: the page is {width} px wide, wider than a {WIDTH} px screen"
        );
    }
}

/// Polls until `check` gives a value, for at most 30 s.
async fn poll<T, F: std::future::Future<Output = Option<T>>>(what: &str, mut check: impl FnMut() -> F) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{what} did not happen");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls until `check` holds, for at most 30 s.
async fn eventually<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    poll(what, || {
        let holds = check();
        async move { holds.await.then_some(()) }
    })
    .await
}

/// A hub on SQLite that has driven the first `cases` of a county day to the end.
async fn county_day(dir: &tempfile::TempDir, cases: usize) -> DemoRun {
    let mut config = Config::default();
    config.database.url = format!("sqlite://{}", dir.path().join("hub.db").display());
    config.api.listen = "127.0.0.1:0".into();
    config.audit.archive_dir = dir.path().join("archives").display().to_string();
    let mut options = demo_options(dir.path());
    options.cases = cases;
    let demo = DemoRun::start(config, &options).await.unwrap();
    assert_eq!(demo.drive(&options).await.unwrap().completed, cases);
    demo
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_does_its_main_task_in_the_console() {
    let dir = tempfile::tempdir().unwrap();
    // A county day's first cases, mailed and archived: the postal board and the audit have data.
    let demo = county_day(&dir, 6).await;
    let desk = Desk::new(&demo);
    let hub = &demo.hub;
    let state_of = |case: &str| {
        let case = case.to_string();
        async move { hub.store.case(&case).await.unwrap().unwrap().case.state.as_str().to_string() }
    };
    let console = &Console::open(demo.api_url()).await;

    // The village clerk takes in an application: picks the matter, reads its guide and
    // checklist, records what was handed in, and prints the acceptance notice.
    let clerk = common::token(hub, "王芳", Role::VillageClerk, Some(VILLAGE)).await;
    console.sign_in(&clerk, "accept").await;
    assert_eq!(console.text("#who-role").await, "村级代办员");
    console.fill("#matter-filter", "个体工商户设立").await;
    console.click(&format!("li[data-code='{SELF_EMPLOYED}']")).await;
    let guide = console.text(".guide").await;
    assert!(guide.contains("旬邑县行政审批服务局") && guide.contains("法定 3 个工作日，承诺 1 个工作日"), "{guide}");
    let checklist = console.count("select[data-material]").await;
    let matter = hub.reference.get().matter(SELF_EMPLOYED).unwrap().clone();
    assert_eq!(checklist, matter.materials.len());
    console.shot("1-village-clerk-guide").await;
    console.fits_the_screen("the guide").await;
    let fill_applicant = || async move {
        console.fill("[name=applicant-name]", "张三").await;
        console.fill("[name=id-number]", APPLICANT_ID).await;
        console.fill("[name=phone]", "13912345678").await;
    };
    fill_applicant().await;
    console.click("#submit-application").await;
    let accepted = console.wait("#case-number").await.text().await.unwrap();
    console.wait("a[data-kind=acceptance_notice]").await;
    let notice = console.wait("iframe.notice").await.attr("srcdoc").await.unwrap().unwrap_or_default();
    assert!(
        notice.contains("受理通知书") && notice.contains(&accepted),
        "the printed notice is the acceptance notice of {accepted}"
    );
    let missing = hub_core::documents::missing_parts("acceptance_notice", &notice);
    assert!(missing.is_empty(), "the clerk prints a complete notice, lacking nothing of {missing:?}: {notice}");
    assert!(notice.contains("<th>受理人</th><td>王芳</td>"), "the notice names the clerk holding the token: {notice}");
    assert!(console.wait("#print-notice").await.attr("disabled").await.unwrap().is_none(), "the notice can be printed");
    let record = hub.store.case(&accepted).await.unwrap().expect("the console's application is a case");
    assert_eq!(record.case.application.service_point.code, VILLAGE);
    assert_eq!(record.case.application.applicant.id_number, APPLICANT_ID);
    console.shot("2-village-clerk-acceptance-notice").await;
    console.fits_the_screen("the acceptance notice").await;

    // The same matter with a material missing: the one-time notice lists it.
    console.click(&format!("li[data-code='{SELF_EMPLOYED}']")).await;
    let first_material = &matter.materials.iter().find(|m| m.primary).unwrap().name;
    console.wait(&format!("select[data-material='{first_material}']")).await.select_by_value("missing").await.unwrap();
    fill_applicant().await;
    console.click("#submit-application").await;
    let incomplete = console.wait("#case-number").await.text().await.unwrap();
    console.wait("a[data-kind=one_time_notice]").await;
    let notice = console.wait("iframe.notice").await.attr("srcdoc").await.unwrap().unwrap_or_default();
    assert!(
        notice.contains("一次性告知") && notice.contains(first_material.as_str()),
        "the one-time notice names {first_material}"
    );
    assert_eq!(hub_core::documents::missing_parts("one_time_notice", &notice), Vec::<String>::new(), "{notice}");
    assert_eq!(state_of(&incomplete).await, "awaiting_supplement");
    console.shot("3-village-clerk-one-time-notice").await;

    // The approver of the deciding department sees it in the queue with its deadline colour
    // and approves it there.
    desk.wait_for(&accepted, "routed").await;
    let approver = common::token(hub, "李明", Role::CountyApprover, Some(APPROVAL_BUREAU)).await;
    console.sign_in(&approver, "approve").await;
    let row = &format!("tr[data-case='{accepted}']");
    let shown = console.wait(&format!("{row} [data-level]")).await.attr("data-level").await.unwrap().unwrap();
    let routed = hub.store.case(&accepted).await.unwrap().unwrap().case;
    let today = hub_core::calendar::day_of(hub::store::now_ms());
    let standing = hub_core::deadlines::standing(&routed, today, &hub.reference.get()).unwrap();
    assert_eq!(
        shown,
        standing.level.map_or("none", |level| level.as_str()),
        "the queue colours the deadline as the core judges it"
    );
    console.shot("4-approver-queue").await;
    console.fits_the_screen("the approvers' queue").await;
    console.click(&format!("button[data-approve='{accepted}']")).await;
    eventually("the approved case leaving the queue", || async move { console.count(row).await == 0 }).await;
    // 制证, 盖章, 出件 by the department (their pages come with the console issue).
    desk.issue_result(&accepted).await;
    let accepted = accepted.as_str();
    eventually("the window pickup", || async move { state_of(accepted).await == "awaiting_pickup" }).await;
    let decided = hub.store.case(accepted).await.unwrap().unwrap();
    assert_eq!(decided.case.decision.as_deref(), Some("approved"));

    // Back at the village counter: the applicant collects the result with their ID card.
    console.sign_in(&clerk, "accept").await;
    console.click("button[data-tab=track]").await;
    console.fill("[name=case-number]", accepted).await;
    console.click("#track").await;
    console.fill("[name=pickup-id]", APPLICANT_ID).await;
    let notice = decided.case.acceptance_notice.clone().unwrap();
    console.fill("[name=pickup-notice]", &notice).await;
    console.click("#confirm-pickup").await;
    eventually("the pickup", || async move { state_of(accepted).await != "awaiting_pickup" }).await;
    console
        .wait(&format!(
            "[data-case='{accepted}'] [data-state=collected], [data-case='{accepted}'] [data-state=archived]"
        ))
        .await;
    console.shot("5-village-clerk-pickup").await;

    // The business licence the approval issued is shown at the counter instead of paper for a
    // material it can replace (免提交): the hub verifies it and accepts without that paper.
    let licence = poll("the approval's e-certificate", || async move {
        let case = hub.store.case(accepted).await.unwrap().unwrap().case;
        case.certificate.filter(|c| c.status == "valid").and_then(|c| c.certificate_id)
    })
    .await;
    let replaceable = &matter.materials.iter().find(|m| m.ecert).unwrap().name;
    console.click("button[data-tab=accept]").await;
    console.click(&format!("li[data-code='{SELF_EMPLOYED}']")).await;
    let select = console.wait(&format!("select[data-material='{replaceable}']")).await;
    select.select_by_value("ecert").await.unwrap();
    let position = matter.materials.iter().position(|m| &m.name == replaceable).unwrap();
    console.fill(&format!("[name=problem-{position}]"), &licence).await;
    fill_applicant().await;
    console.click("#submit-application").await;
    let paperless = console.wait("#case-number").await.text().await.unwrap();
    console.wait("a[data-kind=acceptance_notice]").await;
    let taken = hub.store.case(&paperless).await.unwrap().unwrap().case;
    assert!(
        taken.materials.contains(replaceable) && taken.faulty.is_empty(),
        "the verified certificate stands in for {replaceable}: {:?}",
        taken.materials
    );

    // The supervisor follows the case's flow record, with the applicant's ID number masked.
    let supervisor = common::token(hub, "赵督查", Role::Supervisor, None).await;
    console.sign_in(&supervisor, "board").await;
    console.click("button[data-tab=track]").await;
    console.fill("[name=case-number]", accepted).await;
    console.click("#track").await;
    console.wait("#flow tbody tr:nth-child(3)").await;
    let file = console.text("#tracked").await;
    assert!(
        file.contains("110105********002X") && !file.contains(APPLICANT_ID),
        "a supervisor sees the ID number masked: {file}"
    );
    let flow = console.text("#flow").await;
    assert!(
        flow.contains("给件人")
            && flow.contains("接件人")
            && flow.contains("王芳")
            && !flow.contains("nearby-handling"),
        "the flow record names who gave and who received, not rule ids: {flow}"
    );
    console.shot("6-supervisor-flow-record").await;
    console.fits_the_screen("the flow record").await;

    // The post office's board: a mailed result waiting to be picked up by the carrier (the
    // connector held, so that it waits), with the receiver and nobody's ID number.
    let (status, _) = desk.call("/api/v1/connectors/postal-connector/pause", json!({"reason": "邮政看板演示"})).await;
    assert_eq!(status, 200);
    let mailed = desk.submit("console-mailed", SELF_EMPLOYED, VILLAGE, json!({})).await;
    desk.wait_for(&mailed, "routed").await;
    let (status, answer) = desk.decide(&mailed, "approved", None).await;
    assert_eq!(status, 200, "{answer}");
    desk.wait_for(&mailed, "delivery_requested").await;
    let postal = common::token(hub, "旬邑县邮政分公司", Role::Postal, None).await;
    console.sign_in(&postal, "postal").await;
    let waiting = console.text("[data-column=delivery_requested]").await;
    assert!(
        waiting.contains("张三") && waiting.contains("土桥镇土桥1村") && waiting.contains("711300"),
        "the order shows its receiver: {waiting}"
    );
    let board = console.text("main").await;
    assert!(!board.contains(APPLICANT_ID) && !board.contains("********"), "the postal board shows no ID numbers");
    console.shot("7-postal-board").await;
    console.fits_the_screen("the postal board").await;
    let (status, _) = desk.call("/api/v1/connectors/postal-connector/resume", json!({})).await;
    assert_eq!(status, 200);

    // The data bureau: exchange volume per pair of parties, the ledger verified, and who saw
    // the applicant's data and why.
    // The certificate fetched before its application was a case is a personal-data read with no
    // case behind it: the anomaly rule flags it, and the bureau's view shows the alert.
    eventually("the no-case alert", || async move { !hub.store.alerts(0, i64::MAX, 10).await.unwrap().is_empty() })
        .await;
    let bureau = common::token(hub, "县数据局", Role::DataBureau, None).await;
    console.sign_in(&bureau, "audit").await;
    assert!(console.count("#volume-chart rect").await >= 1, "the volume chart has bars");
    let legend = console.text("#volume-chart + .legend").await;
    assert!(
        legend.contains("旬邑县行政审批服务局") && !legend.contains(APPROVAL_BUREAU),
        "parties are named, not coded: {legend}"
    );
    let alerts = console.text("#alerts").await;
    assert!(
        alerts.contains("无办件调取个人数据") && alerts.contains("旬邑县行政审批服务局"),
        "the alert is shown by rule and party name: {alerts}"
    );
    console.click("#verify-ledger").await;
    console.wait("[data-holds=true]").await;
    console.fill("[name=subject-id]", APPLICANT_ID).await;
    console.click("#search-subject").await;
    console.wait("#subject-entries tbody tr").await;
    let seen = console.text("#subject-entries").await;
    assert!(seen.contains(accepted), "the clerk's and approver's reads of {accepted} are listed: {seen}");
    console.shot("8-data-bureau-audit").await;
    console.fits_the_screen("the audit view").await;

    // The bureau takes one of those reads away with its proof, and the period as a signed
    // bundle; each saved file checks offline with the public key alone. A period the wrong way
    // round is refused with its field marked.
    hub.ledger.checkpoint().await.unwrap();
    let trusted = hub.ledger.public_key();
    console.click("#subject-entries [data-proof]").await;
    console.wait("#proof [data-seq]").await;
    let proof = console.saved("#proof-file").await;
    let checked = hub::app::audit::check_offline(&proof, &trusted);
    assert!(checked.as_ref().is_ok_and(|said| said.contains("is included")), "{checked:?}");
    let beijing =
        |hours: i64| format!("return new Date(Date.now() + ({hours} + 8) * 3600e3).toISOString().slice(0, 16)");
    let hour_ago = console.client.execute(&beijing(-1), vec![]).await.unwrap();
    let hour_on = console.client.execute(&beijing(1), vec![]).await.unwrap();
    console.set("[name=export-from]", hour_on.as_str().unwrap()).await;
    console.set("[name=export-until]", hour_ago.as_str().unwrap()).await;
    console.click("#export-ledger").await;
    console.wait("[name=export-until][aria-invalid=true]").await;
    console.set("[name=export-from]", hour_ago.as_str().unwrap()).await;
    console.set("[name=export-until]", hour_on.as_str().unwrap()).await;
    console.click("#export-ledger").await;
    let shown = console.wait("#export-result [data-entries]").await.attr("data-entries").await.unwrap().unwrap();
    let bundle = console.saved("#export-file").await;
    let checked = hub::app::audit::check_offline(&bundle, &trusted);
    assert!(checked.is_ok(), "{checked:?}");
    let exported: Value = serde_json::from_str(&bundle).unwrap();
    assert_eq!(shown, exported["entries"].as_array().unwrap().len().to_string());
    console.shot("8b-data-bureau-proof-and-export").await;

    // The integrator pauses the postal connector and resumes it.
    let integrator = common::token(hub, "集成运维", Role::Integrator, None).await;
    console.sign_in(&integrator, "connectors").await;
    let postal_row = "[data-connector=postal-connector]";
    console.fill(&format!("{postal_row} [name=pause-reason]"), "邮政接口升级").await;
    console.click("button[data-pause=postal-connector]").await;
    console.wait("button[data-resume=postal-connector]").await;
    let (_, status) = desk.get("/api/v1/connectors/postal-connector".into()).await;
    assert_eq!(
        (status["state"].as_str(), status["paused_reason"].as_str()),
        (Some("paused"), Some("邮政接口升级")),
        "{status}"
    );
    console.shot("9-integrator-connectors").await;
    console.click("button[data-resume=postal-connector]").await;
    console.wait("button[data-pause=postal-connector]").await;
    let (_, status) = desk.get("/api/v1/connectors/postal-connector".into()).await;
    assert_eq!(status["state"], Value::from("running"));

    // Every screen's refusals would be in the ledger: a bad token gets the sign-in error.
    console.signed_out().await;
    console.fill("#token", "hubt_0000_forged").await;
    console.click("#sign-in-button").await;
    eventually("the refusal", || async move { console.text("#sign-in-error").await.contains("令牌无效") }).await;

    console.client.clone().close().await.unwrap();
    demo.stop().await;
}

/// The rest of a county hall's day in the console, each step checked against the hub's records:
/// a township clerk refuses an application with its legal basis, an approver runs a site
/// inspection and records it, a consulted department gives its opinion, an applicant reviews a
/// counter visit on their own screen and the supervisor verifies and closes the rectification,
/// the integrator reconciles the bank's day, and the supervisor follows the live board and the
/// month's report — at 1366 px, and the bank outlet's counter at 1024 px.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_counter_day_in_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let demo = county_day(&dir, 2).await;
    let desk = Desk::new(&demo);
    let hub = &demo.hub;
    let case_of = |case: &str| {
        let case = case.to_string();
        async move { hub.store.case(&case).await.unwrap().unwrap() }
    };
    let console = &Console::open(demo.api_url()).await;
    let open_case = |case: String| async move {
        console.click("button[data-tab=track]").await;
        console.fill("[name=case-number]", &case).await;
        console.click("#track").await;
        console.wait(&format!("[data-case='{case}'] .case-actions, [data-case='{case}'] #flow")).await;
    };
    let act = |action: &'static str, fields: Vec<(&'static str, String)>| async move {
        console.click(&format!("details[data-action='{action}'] summary")).await;
        for (name, value) in fields {
            let css = format!("details[data-action='{action}'] [name={name}]");
            let field = console.interactable(&css).await;
            if field.tag_name().await.unwrap() == "select" {
                field.select_by_value(&value).await.unwrap();
            } else {
                console.fill(&css, &value).await;
            }
        }
        console.click(&format!("button[data-submit='{action}']")).await;
    };
    let matter = |code: &str| hub.reference.get().matter(code).unwrap().clone();

    // A township clerk refuses an application that cannot be accepted, naming the law.
    let self_employed = matter(SELF_EMPLOYED);
    let only_first = json!({"materials": [self_employed.materials[0].name.clone()]});
    let refused = desk.submit("console-refused", SELF_EMPLOYED, TOWNSHIP, only_first).await;
    desk.wait_for(&refused, "awaiting_supplement").await;
    let township_clerk = common::token(hub, "孙敏", Role::TownshipClerk, Some(TOWNSHIP)).await;
    console.sign_in(&township_clerk, "accept").await;
    open_case(refused.clone()).await;
    console.click("details[data-action='refusal'] summary").await;
    console.click("button[data-submit='refusal']").await;
    eventually("the browser's own check of the required reason", || async move {
        console
            .client
            .execute(
                "return document.querySelector(\"details[data-action='refusal'] [name=reason]\").validity.valueMissing",
                vec![],
            )
            .await
            .unwrap()
            == json!(true)
    })
    .await;
    console.fill("details[data-action='refusal'] [name=reason]", "申请事项依法不属于本机关职权范围").await;
    console
        .fill(
            "details[data-action='refusal'] [name=legal_basis]",
            "《中华人民共和国行政许可法》第三十二条第一款第（二）项",
        )
        .await;
    console.click("button[data-submit='refusal']").await;
    console
        .wait(&format!(
            "[data-case='{refused}'] [data-state=not_accepted], [data-case='{refused}'] [data-state=archived]"
        ))
        .await;
    let record = case_of(&refused).await;
    let refusal = record.history.iter().find(|h| h.kind == "AcceptanceRefused").expect("refused");
    assert!(serde_json::to_string(&refusal.event).unwrap().contains("第三十二条第一款"), "the basis is recorded");
    assert!(console.text("#tracked").await.contains("不予受理"), "the refusal notice is in the case file");
    console.shot("10-township-clerk-refusal").await;
    console.fits_the_screen("the refusal").await;

    // The approver starts a joint site inspection, then records it: the clock stands still meanwhile.
    let inspected = &desk.submit("console-inspected", FOOD, VILLAGE, json!({})).await;
    desk.wait_for(inspected, "routed").await;
    let approver = common::token(hub, "李明", Role::CountyApprover, Some(APPROVAL_BUREAU)).await;
    console.sign_in(&approver, "approve").await;
    open_case(inspected.clone()).await;
    act(
        "procedures",
        vec![
            ("procedure", "site_inspection".into()),
            ("departments", format!("{APPROVAL_BUREAU}，11610429MB2912346B")),
        ],
    )
    .await;
    console.wait(&format!("[data-case='{inspected}'] details[data-action='procedures/complete']")).await;
    assert_eq!(case_of(inspected).await.case.state.as_str(), "suspended");
    act("procedures/complete", vec![("summary", "经营场所与申请材料一致，设备布局符合要求".into())]).await;
    console.wait(&format!("[data-case='{inspected}'] details[data-action='decision']")).await;
    let titles = desk.titles(inspected).await;
    assert!(titles.contains(&"现场踏勘记录".to_string()), "{titles:?}");
    console.shot("11-approver-site-inspection").await;

    // A consulted department gives its opinion on a parallel approval (并联审批).
    let parallel = &desk.submit("console-parallel", CONSTRUCTION, COUNTY_HALL, json!({})).await;
    desk.wait_for(parallel, "routed").await;
    let consulted = common::token(hub, "周规划", Role::CountyApprover, Some(CONSULTED)).await;
    console.sign_in(&consulted, "approve").await;
    open_case(parallel.clone()).await;
    act("opinions", vec![("opinion", "agree".into()), ("remarks", "符合规划条件".into())]).await;
    eventually("the opinion recorded", || async move {
        case_of(parallel).await.case.opinions.iter().any(|o| o.department_code == CONSULTED)
    })
    .await;
    console.shot("12-consulted-department-opinion").await;

    // At the village counter the applicant grades the visit on their own screen: badly.
    let clerk = common::token(hub, "王芳", Role::VillageClerk, Some(VILLAGE)).await;
    console.sign_in(&clerk, "accept").await;
    open_case(inspected.clone()).await;
    act("review-visits", vec![]).await;
    let screen = console.wait("iframe.review-screen").await;
    screen.enter_frame().await.unwrap();
    console.click("input[name=grade][value='1']").await;
    console.fill("textarea[name=comment]", "窗口让我跑了两趟").await;
    console.click("button[type=submit]").await;
    console.client.enter_parent_frame().await.unwrap();
    let item = poll("the bad review's rectification", || async move {
        case_of(inspected).await.case.rectifications.first().map(|r| r.item_number.clone())
    })
    .await;
    console.shot("13-applicant-review-at-the-counter").await;

    // The supervisor's live board shows it, and a case told twice to supplement appears on it
    // without reloading; each item opens its case.
    let supervisor = common::token(hub, "赵督查", Role::Supervisor, None).await;
    console.sign_in(&supervisor, "board").await;
    console.wait(&format!("#board-items tr[data-kind=bad_review_unanswered][data-case='{inspected}']")).await;
    let (_, board) = desk.get("/api/v1/supervision/board".into()).await;
    assert_eq!(console.count("#board-items tbody tr").await, board["items"].as_array().unwrap().len(), "{board}");
    let first = json!({"materials": [self_employed.materials[0].name.clone()]});
    let twice = desk.submit("console-twice", SELF_EMPLOYED, VILLAGE, first).await;
    desk.wait_for(&twice, "awaiting_supplement").await;
    let (status, _) =
        desk.command(&twice, "supplements", json!({"materials": [self_employed.materials[1].name.clone()]})).await;
    assert_eq!(status, 200);
    console.wait(&format!("#board-items tr[data-kind=repeated_supplements][data-case='{twice}']")).await;
    console.shot("14-supervisor-live-board").await;
    console.fits_the_screen("the supervision board").await;

    // The supervisor verifies the bad review (the reply goes to the applicant) and closes it.
    console.click(&format!("#board-items tr[data-case='{inspected}'] a")).await;
    act(
        "rectifications/verify",
        vec![
            ("item_number", item.clone()),
            ("finding", "经调阅记录，申请人首次来访未获一次性告知".into()),
            ("substantiated", "true".into()),
            ("reply", "已核实，窗口已整改，感谢监督".into()),
        ],
    )
    .await;
    console.wait(&format!("[data-case='{inspected}'] details[data-action='rectifications/close']")).await;
    act("rectifications/close", vec![("item_number", item.clone()), ("feedback", "已培训窗口人员并回访申请人".into())])
        .await;
    eventually("the rectification closed", || async move {
        case_of(inspected).await.case.rectifications.iter().all(|r| r.closed)
    })
    .await;
    console.shot("15-supervisor-rectification").await;

    // The month's report, as the hub counts it.
    console.click("button[data-tab=reports]").await;
    let received = console.wait("#report [data-figure=收件] td:nth-child(2)").await.text().await.unwrap();
    let month = &connectors::framework::date_text(contracts::day_of(connectors::framework::now_ms()))[..7];
    let (_, report) = desk.get(format!("/api/v1/reports?period={month}")).await;
    assert_eq!(received, report["report"]["received"].to_string(), "{report}");
    assert!(console.count("#out-chart rect").await == 4 && console.count("#bulletin-xlsx").await == 1);
    console.shot("16-supervisor-monthly-report").await;
    console.fits_the_screen("the monthly report").await;

    // The reviews per service point: the counter visit's bad one counts against the village.
    console.click("button[data-tab=reviews]").await;
    let row = format!("#reviews-by-point tr[data-unit='{VILLAGE}']");
    console.wait(&row).await;
    let (_, stats) = desk.get("/api/v1/reviews/stats".into()).await;
    let village = &stats["by_service_point"][VILLAGE];
    assert!(village["bad"].as_u64() >= Some(1), "{stats}");
    let cell = |n: usize| {
        let css = format!("{row} td:nth-child({n})");
        async move { console.text(&css).await }
    };
    assert_eq!(
        (cell(1).await, cell(2).await, cell(8).await),
        (village["name"].as_str().unwrap().to_string(), village["reviews"].to_string(), village["bad"].to_string()),
        "{stats}"
    );
    console.shot("16b-supervisor-reviews").await;
    console.fits_the_screen("the review statistics").await;

    // The integrator reconciles the bank's day; the console shows what the hub recorded.
    let integrator = common::token(hub, "集成运维", Role::Integrator, None).await;
    console.sign_in(&integrator, "connectors").await;
    console.click("button[data-tab=reconcile]").await;
    console.click("#run-reconciliation").await;
    let matched = console.wait("#reconciliation [data-matched]").await.attr("data-matched").await.unwrap().unwrap();
    let today = connectors::framework::date_text(contracts::day_of(connectors::framework::now_ms()));
    let (_, stored) = desk.get(format!("/api/v1/bank/reconciliations/{today}")).await;
    assert_eq!(matched, stored["matched"].to_string(), "{stored}");
    console.shot("17-integrator-reconciliation").await;

    // The integrator issues a clerk's token bound to a window; a window of another point is refused.
    console.click("button[data-tab=tokens]").await;
    console.fill("[name=token-holder]", "钱窗口").await;
    console.wait("[name=token-role]").await.select_by_value("township_clerk").await.unwrap();
    console.fill("[name=token-unit]", TOWNSHIP).await;
    console.fill("[name=token-window]", "610429000000-W01").await;
    console.click("#issue-token").await;
    eventually("the refusal naming the window", || async move {
        console.text("[data-view=tokens] .error").await.contains("window")
    })
    .await;
    console.fill("[name=token-window]", "610429100000-W01").await;
    console.click("#issue-token").await;
    let issued = console.wait("#new-token").await.text().await.unwrap();
    let seat = hub.tokens.authenticate(&issued).await.unwrap();
    assert_eq!((seat.holder.as_str(), seat.window.as_deref()), ("钱窗口", Some("610429100000-W01")));

    // A bank outlet's small screen: the acceptance form still fits.
    console.client.set_window_size(1024, 768).await.unwrap();
    let outlet = common::token(hub, "农商行柜员", Role::BankOutlet, Some(BANK_OUTLET)).await;
    console.sign_in(&outlet, "accept").await;
    console.click("#matter-list li").await;
    console.wait("#submit-application").await;
    let width = console.client.execute("return document.documentElement.scrollWidth", vec![]).await.unwrap();
    assert!(width.as_i64().unwrap() <= 1024, "the outlet's form is {width} px wide");
    console.shot("18-bank-outlet-1024").await;

    console.client.clone().close().await.unwrap();
    demo.stop().await;
}
