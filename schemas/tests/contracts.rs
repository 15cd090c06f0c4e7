//! The schemas are the contract: every one registered, every version compatible with every
//! earlier one (full transitive), every record on exactly one topic, and the wire format exact.
use std::path::{Path, PathBuf};
use std::process::Command;

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;
use contracts::*;

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn avsc_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            avsc_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "avsc") {
            found.push(path);
        }
    }
}

#[test]
fn every_schema_file_is_registered_once() {
    let mut files = Vec::new();
    avsc_files(&schemas_dir().join("avro"), &mut files);
    let registry = Registry::global();
    for file in &files {
        let relative = file.strip_prefix(schemas_dir()).unwrap().to_string_lossy().to_string();
        let count = registry.entries().iter().filter(|e| e.file == relative).count();
        assert_eq!(count, 1, "{relative} must be registered exactly once in schemas/registry.toml");
    }
    assert_eq!(files.len(), registry.entries().len());
}

/// Full transitive compatibility: each version reads and is read by every earlier one.
#[test]
fn every_version_is_fully_compatible_with_all_earlier_versions() {
    let registry = Registry::global();
    let mut records: Vec<&str> = registry.entries().iter().map(|e| e.record.as_str()).collect();
    records.dedup();
    for record in records {
        let versions = registry.versions(record);
        for (i, newer) in versions.iter().enumerate() {
            for older in &versions[..i] {
                SchemaCompatibility::mutual_read(&older.schema, &newer.schema).unwrap_or_else(|e| {
                    panic!("{} v{} is not fully compatible with v{}: {e}", record, newer.version, older.version)
                });
            }
        }
    }
}

/// A committed schema file may change only compatibly: checked against every version of it in
/// the git history.
#[test]
fn every_schema_file_is_compatible_with_its_committed_history() {
    let root = schemas_dir().parent().unwrap().to_path_buf();
    let in_repo = Command::new("git").args(["rev-parse", "--is-inside-work-tree"]).current_dir(&root).output();
    if !in_repo.is_ok_and(|o| o.status.success()) {
        eprintln!("notice: not a git checkout; history compatibility not checked");
        return;
    }
    let mut checked = 0;
    for entry in Registry::global().entries() {
        let path = format!("schemas/{}", entry.file);
        let log = Command::new("git").args(["log", "--format=%H", "--", &path]).current_dir(&root).output().unwrap();
        for commit in String::from_utf8_lossy(&log.stdout).lines() {
            let shown =
                Command::new("git").args(["show", &format!("{commit}:{path}")]).current_dir(&root).output().unwrap();
            if !shown.status.success() {
                continue;
            }
            let old = Schema::parse_str(&String::from_utf8_lossy(&shown.stdout))
                .unwrap_or_else(|e| panic!("{path} at {commit}: {e}"));
            SchemaCompatibility::mutual_read(&old, &entry.schema)
                .unwrap_or_else(|e| panic!("{path} is not fully compatible with its version at commit {commit}: {e}"));
            checked += 1;
        }
    }
    eprintln!("checked {checked} committed schema versions");
}

#[test]
fn compatibility_checker_catches_a_breaking_change() {
    // Guards the guard: a new required field without default must fail the check.
    let v1 = Schema::parse_str(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#).unwrap();
    let breaking = Schema::parse_str(
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"int"}]}"#,
    )
    .unwrap();
    let compatible = Schema::parse_str(
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"int","default":0}]}"#,
    )
    .unwrap();
    assert!(SchemaCompatibility::mutual_read(&v1, &breaking).is_err());
    assert!(SchemaCompatibility::mutual_read(&v1, &compatible).is_ok());
}

fn address() -> PostalAddress {
    PostalAddress {
        name: "张三".into(),
        phone: "13912345678".into(),
        province: "陕西省".into(),
        city: "咸阳市".into(),
        county: "旬邑县".into(),
        address: "土桥镇土桥1村".into(),
        post_code: "711300".into(),
    }
}

/// One event of every record type.
fn samples() -> Vec<Event> {
    let (id, case, at) = ("e1".to_string(), "61042920261120000001".to_string(), 1_763_604_000_000);
    vec![
        ApplicationSubmitted {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            case_version: 1,
            channel: "counter".into(),
            matter: MatterRef {
                basic_code: "000104010000".into(),
                implementation_code: "X".into(),
                name: "个体工商户设立登记".into(),
                version: 1,
            },
            applicant: Applicant {
                name: "张三".into(),
                id_type: "111".into(),
                id_number: "11010519491231002X".into(),
                phone: "13912345678".into(),
                email: None,
            },
            service_point: ServicePoint {
                code: "610429100201".into(),
                name: "站".into(),
                tier: "village".into(),
                division_code: "610429100201".into(),
            },
            materials: vec!["申请书".into()],
            delivery_method: "mail".into(),
            delivery_address: Some(address()),
            faulty_materials: vec![MaterialProblem {
                material: "身份证明".into(), problem: "复印件不清晰".into()
            }],
            commits_to_supply: true,
            domicile_township: Some("610429100".into()),
            received_by: "刘代办".into(),
            fee_relief: Some(FeeReliefClaim { rule: "dibao".into(), proof_number: "低保证 6104290001".into() }),
            window: Some("610429000000-W01".into()),
        }
        .into(),
        CaseAccepted {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            case_version: 1,
            accepted_by: "p".into(),
            matter_implementation_code: "X".into(),
            matter_version: 1,
            promised_date: 20_415,
            acceptance: "tolerant".into(),
            outstanding_materials: vec!["照片".into()],
            commitment_date: Some(20_420),
            notice_number: "受〔2026〕1号".into(),
            statutory_date: Some(20_430),
        }
        .into(),
        CaseRouted {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            department_code: "d".into(),
            department_name: "局".into(),
            rule: "r".into(),
            reason: "why".into(),
            consulted_departments: vec!["c".into()],
        }
        .into(),
        CaseDecided {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            outcome: "denied".into(),
            department_code: "d".into(),
            officer: "o".into(),
            result_document: None,
            reason: Some("不符合条件".into()),
        }
        .into(),
        DeliveryRequested {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            order_number: "o".into(),
            product: "p".into(),
            contents: "documents".into(),
            sender: address(),
            receiver: address(),
            return_receipt: true,
            data_subject: "ab12".into(),
        }
        .into(),
        DeliveryOrderCreated {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            order_number: "o".into(),
            waybill_number: "w".into(),
        }
        .into(),
        TrackingEvent {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            order_number: "o".into(),
            waybill_number: "w".into(),
            op_code: "10".into(),
            op_name: "收寄".into(),
            office: "局".into(),
            operator: "员".into(),
        }
        .into(),
        DeliveryCompleted {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            order_number: "o".into(),
            waybill_number: "w".into(),
            outcome: "signed".into(),
            signed_by: None,
        }
        .into(),
        CaseArchived {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            final_outcome: "signed".into(),
            document_count: 4,
            archivist: "马晓燕".into(),
            file_number: "J045-WS·2026-D30-SPJ-1120000001".into(),
            retention: "D30".into(),
            unit_code: "11610429MB2912345A".into(),
        }
        .into(),
        AcceptanceRefused {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            case_version: 1,
            officer: "o".into(),
            reason: "r".into(),
            legal_basis: "b".into(),
            notice_number: "n".into(),
        }
        .into(),
        SupplementRequested {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            case_version: 1,
            officer: "o".into(),
            notice_number: "n".into(),
            items: vec![MaterialProblem { material: "m".into(), problem: "缺".into() }],
        }
        .into(),
        MaterialsSupplemented {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            case_version: 2,
            materials: vec!["m".into()],
            received_by: "刘代办".into(),
        }
        .into(),
        ProcedureStarted {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            procedure: "hearing".into(),
            officer: "o".into(),
            departments: vec!["d".into()],
            parties: vec!["邻居".into()],
            notice_number: "n".into(),
            limit_date: 20_430,
            scheduled_date: Some(20_425),
        }
        .into(),
        ProcedureCompleted {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            procedure: "hearing".into(),
            officer: "o".into(),
            record_number: "r".into(),
            summary: "s".into(),
            paused_working_days: 3,
            promised_date: 20_433,
            statutory_date: None,
        }
        .into(),
        OpinionGiven {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            department_code: "d".into(),
            officer: "o".into(),
            opinion: "agree".into(),
            remarks: String::new(),
        }
        .into(),
        ResultReadyForPickup {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            method: "locker".into(),
            place: "p".into(),
            pickup_code: Some("123456".into()),
            reason: "chosen".into(),
        }
        .into(),
        ResultCollected {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            method: "window".into(),
            collected_by: "张三".into(),
            id_checked: true,
            signature: "s".into(),
            handed_out_by: "王出件".into(),
            agent: true,
            authorization_number: Some("委托书-001".into()),
            notice_number: "旬受〔2026〕000001号".into(),
        }
        .into(),
        StepCompleted {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            step: "seal".into(),
            title: "盖章".into(),
            officer: "王盖章".into(),
            remarks: String::new(),
            seal_name: Some("旬邑县行政审批服务局行政审批专用章".into()),
            due_date: Some(20_430),
        }
        .into(),
        ExtensionGranted {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            officer: "o".into(),
            approved_by: "局长".into(),
            reason: "需现场核查".into(),
            extra_days: 10,
            statutory_date: 20_440,
            promised_date: 20_438,
            notice_number: "n".into(),
        }
        .into(),
        HearingRightsNotified {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            officer: "o".into(),
            parties: vec!["邻居".into()],
            request_by: 20_420,
            notice_number: "n".into(),
        }
        .into(),
        SupervisionOrdered {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            order_number: "旬督〔2026〕000001-1号".into(),
            department_code: "d".into(),
            card: "red".into(),
            reason: "超期".into(),
            answer_by: 20_433,
        }
        .into(),
        SupervisionAnswered {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            order_number: "旬督〔2026〕000001-1号".into(),
            officer: "o".into(),
            answer: "已办结".into(),
        }
        .into(),
        CommitmentSigned {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            materials: vec!["健康证明".into()],
            commitment_date: 20_430,
            notice_number: "n".into(),
        }
        .into(),
        CommitmentClosed {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            officer: "o".into(),
            materials: vec!["健康证明".into()],
            outcome: "逾期未补齐，已记入信用记录".into(),
        }
        .into(),
        DeadlineWarning {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            level: "red".into(),
            scope: "step".into(),
            step: Some("hearing".into()),
            due_date: 20_430,
            department_code: "d".into(),
            escalate: true,
            message: "m".into(),
        }
        .into(),
        ReviewSubmitted {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            grade: 2,
            channel: "online".into(),
            comment: "慢".into(),
            service_point: "p".into(),
            department_code: None,
            visit_id: Some("v1".into()),
        }
        .into(),
        RectificationOpened {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            item_number: "i".into(),
            grade: 2,
            deadline: 20_440,
            department_code: "d".into(),
        }
        .into(),
        RectificationClosed {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            item_number: "i".into(),
            officer: "o".into(),
            feedback: "f".into(),
        }
        .into(),
        CertificateRequested {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            type_code: "11100000MB0308302E001".into(),
            certificate_name: "营业执照".into(),
            number: "旬审批许〔2026〕1号".into(),
            holder_name: "张三".into(),
            holder_code: "11010519491231002X".into(),
            holder_code_kind: "111".into(),
            data_subject: "ab12".into(),
            issuer: "旬邑县行政审批服务局".into(),
            issuer_code: "11610429MB2912345A".into(),
            issue_date: 20_777,
            valid_until: Some(22_603),
            area_code: "610429".into(),
        }
        .into(),
        CertificateRevocationRequested {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            certificate_id: "c".into(),
            reason: "r".into(),
            department_code: "d".into(),
            officer: "o".into(),
            data_subject: "ab12".into(),
        }
        .into(),
        CertificateIssued {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            certificate_id: "c".into(),
            type_code: "t".into(),
            number: "n".into(),
            status: "valid".into(),
        }
        .into(),
        CertificateRevoked {
            event_id: id.clone(),
            case_number: case.clone(),
            occurred_at: at,
            certificate_id: "c".into(),
            reason: "r".into(),
        }
        .into(),
        DataShared {
            event_id: id,
            case_number: String::new(),
            occurred_at: at,
            exchange: "certificate.fetch".into(),
            requester_system: "hub".into(),
            requester_department: "d".into(),
            requester_officer: None,
            provider: "省电子证照库".into(),
            data_subject: "ab12".into(),
            data_items: vec!["holder_name".into()],
            legal_basis: "b".into(),
            purpose: "核验营业执照".into(),
            channel: "ecert-connector".into(),
            document_sha256: Some("00".into()),
            outcome: "ok".into(),
        }
        .into(),
        FeeOrderRequested {
            event_id: "f/1".into(),
            case_number: case.clone(),
            occurred_at: at,
            order_number: "o-FEE".into(),
            payer_name: "张三".into(),
            data_subject: "ab12".into(),
            department_code: "d".into(),
            items: vec![FeeItem {
                name: "不动产登记费".into(),
                amount_fen: 8_000,
                basis: "发改价格规〔2016〕2559号 第一条".into(),
            }],
            total_fen: 4_000,
            relief: Some(FeeRelief {
                rule: "disability".into(),
                name: "重度残疾人".into(),
                basis: "b".into(),
                proof_number: "残1".into(),
                relieved_fen: 4_000,
            }),
        }
        .into(),
        FeeOrderCreated {
            event_id: "f/2".into(),
            case_number: case.clone(),
            occurred_at: at,
            order_number: "o-FEE".into(),
            payment_code: "p".into(),
        }
        .into(),
        PaymentConfirmed {
            event_id: "f/3".into(),
            case_number: case.clone(),
            occurred_at: at,
            order_number: "o-FEE".into(),
            payment_id: "t1".into(),
            amount_fen: 8_000,
            outlet_code: "b".into(),
            receipt_number: Some("6101260000012345".into()),
        }
        .into(),
        RefundRequested {
            event_id: "f/4".into(),
            case_number: case.clone(),
            occurred_at: at,
            refund_number: "o-REF".into(),
            order_number: "o-FEE".into(),
            amount_fen: 8_000,
            reason: "不予许可".into(),
            department_code: "d".into(),
        }
        .into(),
        RefundConfirmed {
            event_id: "f/5".into(),
            case_number: case.clone(),
            occurred_at: at,
            refund_number: "o-REF".into(),
            refund_id: "r1".into(),
            amount_fen: 8_000,
            receipt_number: None,
        }
        .into(),
        SmsRequested {
            event_id: "s/1".into(),
            case_number: case.clone(),
            occurred_at: at,
            phone: "13912345678".into(),
            template: "pickup".into(),
            version: 1,
            params: [("code".to_string(), "123456".to_string())].into(),
        }
        .into(),
        SmsSent {
            event_id: "s/2".into(),
            case_number: case.clone(),
            occurred_at: at,
            message_id: "s/1".into(),
            gateway_id: "g1".into(),
            template: "pickup".into(),
            version: 1,
        }
        .into(),
        SmsReplyReceived {
            event_id: "s/3".into(),
            case_number: case.clone(),
            occurred_at: at,
            message_id: "s/1".into(),
            reply_id: "r1".into(),
            text: "5".into(),
        }
        .into(),
        ApplicationWithdrawn {
            event_id: "w/1".into(),
            case_number: case.clone(),
            occurred_at: at,
            officer: "刘代办".into(),
            reason: "申请人已另行选址，书面申请撤回".into(),
            notice_number: "旬撤〔2026〕000001号".into(),
        }
        .into(),
        ReviewVerified {
            event_id: "s/4".into(),
            case_number: case.clone(),
            occurred_at: at,
            item_number: "i".into(),
            officer: "o".into(),
            finding: "属实".into(),
            substantiated: true,
            reply: "已整改".into(),
        }
        .into(),
        LedgerCheckpointSigned {
            event_id: "ledger-checkpoint/9".into(),
            case_number: String::new(),
            occurred_at: at,
            first_seq: 1,
            size: 9,
            last_hash: "ab".repeat(32),
            merkle_root: "cd".repeat(32),
            public_key: "ef".repeat(32),
            signature: "01".repeat(64),
        }
        .into(),
        AuditAnomalyDetected {
            event_id: "anomaly/read_without_case/12".into(),
            case_number: String::new(),
            occurred_at: at,
            rule: "read_without_case".into(),
            requester: "王某（县市场监管局）".into(),
            provider: "provincial-ecert-repository".into(),
            count: 1,
            entries: vec![12],
            message: "无办件依据调取个人数据".into(),
        }
        .into(),
        DocumentSealRequested {
            event_id: "61042920261120000001/9".into(),
            case_number: "61042920261120000001".into(),
            occurred_at: at,
            document_event_id: "61042920261120000001/8".into(),
            document_kind: "approval".into(),
            document_number: "旬审许〔2026〕000001号".into(),
            unit: "旬邑县市场监督管理局".into(),
            seal_name: "旬邑县行政审批服务局行政审批专用章".into(),
            document_sha256: "ab".repeat(32),
        }
        .into(),
        DocumentSealed {
            event_id: "61042920261120000001/9/sealed".into(),
            case_number: "61042920261120000001".into(),
            occurred_at: at,
            document_event_id: "61042920261120000001/8".into(),
            document_sha256: "ab".repeat(32),
            seal_name: "旬邑县行政审批服务局行政审批专用章".into(),
            key_id: "0123456789abcdef".into(),
            signature: "cd".repeat(64),
            signed_at: at,
        }
        .into(),
    ]
}

#[test]
fn every_event_round_trips_through_the_confluent_wire_format() {
    let registry = Registry::global();
    for event in samples() {
        let bytes = encode(&event).unwrap();
        let entry = registry.latest(&event.record_name()).unwrap();
        assert_eq!(bytes[0], 0, "magic byte");
        assert_eq!(u32::from_be_bytes(bytes[1..5].try_into().unwrap()), entry.id, "schema id of {}", event.kind());
        assert_eq!(decode(&bytes).unwrap(), event);
    }
    let kinds: std::collections::HashSet<_> = samples().iter().map(|e| e.record_name()).collect();
    let records: std::collections::HashSet<_> = registry.entries().iter().map(|e| e.record.clone()).collect();
    assert_eq!(kinds, records, "one sample per registered record");
}

/// A message from a producer still on an older version decodes, its new fields at their defaults.
#[test]
fn messages_written_with_an_older_version_decode_into_the_newest() {
    let registry = Registry::global();
    let Event::CaseAccepted(accepted) = samples()[1].clone() else { panic!("sample 1 is CaseAccepted") };
    let v1 = registry.versions("cn.gov.county.hub.CaseAccepted")[0];
    assert_eq!(v1.version, 1);
    let value = apache_avro::to_value(&accepted).unwrap().resolve(&v1.schema).unwrap();
    let mut bytes = vec![0];
    bytes.extend_from_slice(&v1.id.to_be_bytes());
    bytes.extend(apache_avro::to_avro_datum(&v1.schema, value).unwrap());
    let Event::CaseAccepted(decoded) = decode(&bytes).unwrap() else { panic!("decodes as CaseAccepted") };
    assert_eq!(decoded.promised_date, accepted.promised_date);
    assert_eq!(
        (decoded.acceptance.as_str(), decoded.commitment_date, decoded.outstanding_materials.len()),
        ("standard", None, 0)
    );
}

#[test]
fn malformed_messages_are_refused_with_a_reason() {
    let good = encode(&samples()[1]).unwrap();
    assert!(matches!(decode(&[0, 0]), Err(WireError::TooShort(2))));
    let mut bad_magic = good.clone();
    bad_magic[0] = 1;
    assert!(matches!(decode(&bad_magic), Err(WireError::BadMagic(1))));
    let mut unknown = good.clone();
    unknown[1..5].copy_from_slice(&9999u32.to_be_bytes());
    assert!(matches!(decode(&unknown), Err(WireError::UnknownSchema(9999))));
    let truncated = &good[..good.len() - 3];
    assert!(matches!(decode(truncated), Err(WireError::Avro { .. })));
    assert!(decode(b"{\"json\": true}").is_err());
}

#[test]
fn every_record_travels_on_exactly_one_topic_of_the_catalogue() {
    let catalogue = Catalogue::builtin();
    for entry in Registry::global().entries() {
        let topics: Vec<_> = catalogue.topics.iter().filter(|t| t.values.contains(&entry.record)).collect();
        assert_eq!(topics.len(), 1, "{} is carried by {} topics", entry.record, topics.len());
    }
    for topic in &catalogue.topics {
        for value in &topic.values {
            assert!(Registry::global().latest(value).is_some(), "{} names unregistered record {value}", topic.name);
        }
        assert!(topic.partitions > 0 && topic.retention_ms > 0, "{}", topic.name);
    }
    assert!(catalogue.topic(catalogue::DEAD_LETTER_TOPIC).is_some());
}

#[test]
fn days_are_counted_in_china_standard_time() {
    // Midnight of 2026-11-23 in Beijing is 16:00 UTC the day before.
    let midnight_cst = 20_780_i64 * 86_400_000 - 8 * 3_600_000;
    assert_eq!(contracts::day_of(midnight_cst), 20_780);
    assert_eq!(contracts::day_of(midnight_cst - 1), 20_779);
}
