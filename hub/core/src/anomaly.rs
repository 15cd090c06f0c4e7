//! The data bureau's anomaly rules over the audit ledger, as entries are appended:
//! - bulk reads off hours: one officer touching many people's data outside office hours;
//! - personal data touched with no case behind it;
//! - a pair of parties exchanging far more in a day than their norm.
//!
//! Pure: the detector sees entries in ledger order and answers the alerts they raise. Alert ids
//! are derived from the entries, so replaying the same entries (after a restart) raises the same
//! ids, which the adapter keeps once.
use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::calendar::{day_of, iso_date, minute_of_day, Calendar};
use super::ledger::{Entry, EntryKind};

const MINUTE_MS: i64 = 60_000;

/// The thresholds, from `[audit.anomaly]` of the hub's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnomalyRules {
    /// Office hours on working days, China Standard Time, `HH:MM-HH:MM`.
    pub office_hours: String,
    /// Reads of personal data by one requester off hours, within `bulk_window_minutes`, that
    /// make a bulk read.
    pub bulk_reads_off_hours: usize,
    pub bulk_window_minutes: i64,
    /// A pair's day is anomalous above `volume_factor` times its norm (the mean of its days
    /// with exchanges among the `norm_days` before) and above `volume_floor` exchanges.
    pub volume_factor: f64,
    pub volume_floor: i64,
    pub norm_days: i32,
    /// Days of history a norm needs before the volume rule judges a pair.
    pub norm_min_days: usize,
}

impl Default for AnomalyRules {
    fn default() -> Self {
        AnomalyRules {
            office_hours: "08:00-18:00".into(),
            bulk_reads_off_hours: 20,
            bulk_window_minutes: 60,
            volume_factor: 3.0,
            volume_floor: 50,
            norm_days: 14,
            norm_min_days: 3,
        }
    }
}

impl AnomalyRules {
    /// Office hours as minutes of the day, checked.
    pub fn office_minutes(&self) -> Result<(i64, i64), String> {
        let minutes = |text: &str| -> Option<i64> {
            let (hours, minutes) = text.trim().split_once(':')?;
            let (hours, minutes): (i64, i64) = (hours.parse().ok()?, minutes.parse().ok()?);
            (hours < 24 && minutes < 60).then_some(hours * 60 + minutes)
        };
        let bad = || format!("audit.anomaly.office_hours must be HH:MM-HH:MM, got {:?}", self.office_hours);
        let (start, end) = self.office_hours.split_once('-').ok_or_else(bad)?;
        match (minutes(start), minutes(end)) {
            (Some(start), Some(end)) if start < end => Ok((start, end)),
            _ => Err(bad()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyRule {
    BulkReadsOffHours,
    ReadWithoutCase,
    VolumeAboveNorm,
}

impl AnomalyRule {
    pub fn code(self) -> &'static str {
        match self {
            AnomalyRule::BulkReadsOffHours => "bulk_reads_off_hours",
            AnomalyRule::ReadWithoutCase => "read_without_case",
            AnomalyRule::VolumeAboveNorm => "volume_above_norm",
        }
    }
}

/// What an anomaly rule found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Derived from the entries: the same finding always has the same id.
    pub id: String,
    pub rule: AnomalyRule,
    /// When the entry that raised it occurred.
    pub occurred_at: i64,
    /// The officer, department or system the alert is about.
    pub requester: String,
    pub provider: String,
    /// How many entries the finding counts, and the norm it was measured against (volume).
    pub count: i64,
    pub norm: Option<f64>,
    /// The ledger entries it rests on (at most the last `bulk_reads_off_hours` for bulk reads).
    pub entries: Vec<i64>,
    /// For the data bureau, in Chinese.
    pub message: String,
}

/// Who did it: the officer where the entry names one, else the department or system.
fn requester(entry: &Entry) -> String {
    let record = &entry.record;
    match &record.requester_officer {
        Some(officer) if !officer.is_empty() => format!("{officer}（{}）", record.requester_department),
        _ if !record.requester_department.is_empty() => record.requester_department.clone(),
        _ => record.requester_system.clone(),
    }
}

/// Whether an entry touched a person's data: a read through the API, or an exchange about a
/// data subject.
fn touches_personal_data(entry: &Entry) -> bool {
    match entry.record.kind {
        EntryKind::Read => true,
        EntryKind::Exchange => entry.record.data_subject.is_some(),
        EntryKind::Admin | EntryKind::Denied => false,
    }
}

/// The rules' memory: recent off-hours reads per requester, daily volume per pair, what was
/// raised already.
#[derive(Debug, Clone)]
pub struct Detector {
    rules: AnomalyRules,
    office: (i64, i64),
    calendar: Calendar,
    off_hours_reads: HashMap<String, VecDeque<(i64, i64)>>,
    /// Until when a requester's bulk reading is already reported.
    bulk_reported_until: HashMap<String, i64>,
    no_case_reported: HashMap<String, i32>,
    volume: HashMap<(String, String), BTreeMap<i32, i64>>,
    volume_reported: HashMap<(String, String), i32>,
}

impl Detector {
    pub fn new(rules: AnomalyRules, calendar: Calendar) -> Result<Detector, String> {
        let office = rules.office_minutes()?;
        Ok(Detector {
            rules,
            office,
            calendar,
            off_hours_reads: HashMap::new(),
            bulk_reported_until: HashMap::new(),
            no_case_reported: HashMap::new(),
            volume: HashMap::new(),
            volume_reported: HashMap::new(),
        })
    }

    /// How far back the rules look: a pair's norm days, the day itself, and a day's margin
    /// for the bulk-read window.
    pub fn memory_ms(&self) -> i64 {
        (i64::from(self.rules.norm_days) + 2) * 86_400_000
    }

    fn is_off_hours(&self, at_ms: i64) -> bool {
        let minute = minute_of_day(at_ms);
        !self.calendar.is_working_day(day_of(at_ms)) || minute < self.office.0 || minute >= self.office.1
    }

    /// Takes the next entry of the ledger; answers the alerts it raises.
    pub fn observe(&mut self, entry: &Entry) -> Vec<Alert> {
        let mut alerts = Vec::new();
        if touches_personal_data(entry) {
            alerts.extend(self.bulk_reads(entry));
            alerts.extend(self.without_case(entry));
        }
        if entry.record.kind == EntryKind::Exchange {
            alerts.extend(self.volume(entry));
        }
        alerts
    }

    fn bulk_reads(&mut self, entry: &Entry) -> Option<Alert> {
        let at = entry.record.occurred_at;
        // Systems exchange at all hours (applications filed online at night, carriers' pushes,
        // certificates issued by batch); the rule is about people reading.
        let by_a_person = entry.record.requester_officer.as_deref().is_some_and(|officer| !officer.is_empty());
        if !by_a_person || !self.is_off_hours(at) {
            return None;
        }
        let who = requester(entry);
        let window = self.rules.bulk_window_minutes * MINUTE_MS;
        let reads = self.off_hours_reads.entry(who.clone()).or_default();
        reads.push_back((at, entry.seq));
        while reads.front().is_some_and(|(first, _)| *first <= at - window)
            || reads.len() > self.rules.bulk_reads_off_hours
        {
            reads.pop_front();
        }
        if reads.len() < self.rules.bulk_reads_off_hours
            || self.bulk_reported_until.get(&who).is_some_and(|until| at < *until)
        {
            return None;
        }
        // One alert per window of bulk reading; the next window's reads raise another.
        self.bulk_reported_until.insert(who.clone(), at + window);
        let entries: Vec<i64> = reads.iter().map(|(_, seq)| *seq).collect();
        Some(Alert {
            id: crate::ids::anomaly_alert(AnomalyRule::BulkReadsOffHours.code(), entry.seq),
            rule: AnomalyRule::BulkReadsOffHours,
            occurred_at: at,
            requester: who.clone(),
            provider: entry.record.provider.clone(),
            count: entries.len() as i64,
            norm: None,
            message: format!(
                "{who} 在非工作时间 {} 分钟内调取个人数据 {} 次（阈值 {}），最近一次 {}",
                self.rules.bulk_window_minutes,
                entries.len(),
                self.rules.bulk_reads_off_hours,
                entry.record.action
            ),
            entries,
        })
    }

    fn without_case(&mut self, entry: &Entry) -> Option<Alert> {
        if entry.record.case_number.as_deref().is_some_and(|n| !n.is_empty()) {
            return None;
        }
        // The first such read per requester and day is reported; the bureau's search
        // (`without_case`) lists the rest.
        let (who, day) = (requester(entry), day_of(entry.record.occurred_at));
        if self.no_case_reported.insert(who.clone(), day) == Some(day) {
            return None;
        }
        Some(Alert {
            id: crate::ids::anomaly_alert(AnomalyRule::ReadWithoutCase.code(), entry.seq),
            rule: AnomalyRule::ReadWithoutCase,
            occurred_at: entry.record.occurred_at,
            requester: who.clone(),
            provider: entry.record.provider.clone(),
            count: 1,
            norm: None,
            entries: vec![entry.seq],
            message: format!(
                "{who} 于 {} 无办件依据调取个人数据（{}，目的：{}）",
                iso_date(day),
                entry.record.action,
                entry.record.purpose
            ),
        })
    }

    fn volume(&mut self, entry: &Entry) -> Option<Alert> {
        let pair = (entry.record.requester_department.clone(), entry.record.provider.clone());
        let day = day_of(entry.record.occurred_at);
        let days = self.volume.entry(pair.clone()).or_default();
        *days.entry(day).or_default() += 1;
        // Days older than the norm's reach are of no more use.
        while days.first_key_value().is_some_and(|(first, _)| *first < day - self.rules.norm_days) {
            days.pop_first();
        }
        let today = days[&day];
        let history: Vec<i64> = days.range(day - self.rules.norm_days..day).map(|(_, count)| *count).collect();
        if history.len() < self.rules.norm_min_days
            || today <= self.rules.volume_floor
            || self.volume_reported.get(&pair) == Some(&day)
        {
            return None;
        }
        let norm = history.iter().sum::<i64>() as f64 / history.len() as f64;
        if (today as f64) <= norm * self.rules.volume_factor {
            return None;
        }
        self.volume_reported.insert(pair.clone(), day);
        let (department, provider) = pair;
        Some(Alert {
            id: crate::ids::anomaly_alert(AnomalyRule::VolumeAboveNorm.code(), entry.seq),
            rule: AnomalyRule::VolumeAboveNorm,
            occurred_at: entry.record.occurred_at,
            requester: department.clone(),
            provider: provider.clone(),
            count: today,
            norm: Some(norm),
            entries: vec![entry.seq],
            message: format!("{department} 与 {provider} 于 {} 交换数据已达 {today} 次，超过近 {} 日常态（日均 {norm:.1} 次）的 {} 倍", iso_date(day), self.rules.norm_days, self.rules.volume_factor),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::parse_iso_date;
    use crate::ledger::Record;

    const CST_OFFSET_MS: i64 = 8 * 60 * MINUTE_MS;

    /// 2026-11-23 (a Monday, a working day) at `hh:mm` China Standard Time, plus `days`.
    fn at(days: i64, hh: i64, mm: i64) -> i64 {
        let monday = parse_iso_date("2026-11-23").unwrap() as i64;
        (monday + days) * 86_400_000 - CST_OFFSET_MS + (hh * 60 + mm) * MINUTE_MS
    }

    fn entry(seq: i64, occurred_at: i64, kind: EntryKind, officer: &str, case: Option<&str>) -> Entry {
        Entry {
            seq,
            recorded_at: occurred_at,
            record: Record {
                kind,
                source_id: format!("s/{seq}"),
                occurred_at,
                action: "GET /api/v1/cases/1".into(),
                requester_system: "county-hub".into(),
                requester_department: "县市场监管局".into(),
                requester_officer: Some(officer.into()),
                provider: "provincial-ecert-repository".into(),
                data_subject: Some("ab".repeat(32)),
                data_items: vec![],
                legal_basis: String::new(),
                purpose: "核查".into(),
                case_number: case.map(str::to_string),
                channel: None,
                document_sha256: None,
                outcome: "ok".into(),
            },
        }
    }

    fn detector() -> Detector {
        Detector::new(
            AnomalyRules { bulk_reads_off_hours: 5, volume_floor: 10, ..AnomalyRules::default() },
            Calendar::builtin(),
        )
        .unwrap()
    }

    fn observe_all(detector: &mut Detector, entries: &[Entry]) -> Vec<Alert> {
        entries.iter().flat_map(|e| detector.observe(e)).collect()
    }

    #[test]
    fn bulk_reads_off_hours_raise_one_alert_per_window() {
        let mut detector = detector();
        // Five reads in office hours, five from 22:00 within 40 minutes, five more after that
        // window closes, four by someone else.
        let mut entries: Vec<Entry> =
            (0..5).map(|i| entry(i + 1, at(0, 10, i * 5), EntryKind::Read, "王", Some("C1"))).collect();
        entries.extend((0..5).map(|i| entry(i + 6, at(0, 22, i * 10), EntryKind::Read, "王", Some("C1"))));
        entries.extend((0..5).map(|i| entry(i + 11, at(0, 23, 45 + i), EntryKind::Read, "王", Some("C1"))));
        entries.extend((0..4).map(|i| entry(i + 16, at(0, 23, 50 + i), EntryKind::Read, "李", Some("C1"))));
        let alerts = observe_all(&mut detector, &entries);
        let bulk: Vec<&Alert> = alerts.iter().filter(|a| a.rule == AnomalyRule::BulkReadsOffHours).collect();
        assert_eq!(bulk.len(), 2, "{alerts:#?}");
        assert_eq!(bulk[0].entries, vec![6, 7, 8, 9, 10]);
        assert_eq!(bulk[0].id, "anomaly/bulk_reads_off_hours/10");
        assert!(bulk[0].requester.starts_with('王') && bulk[0].message.contains("5 次"), "{}", bulk[0].message);
        assert_eq!(bulk[1].entries, vec![11, 12, 13, 14, 15]);
        // A Saturday afternoon is off hours too.
        let mut detector = super::tests::detector();
        let saturday: Vec<Entry> =
            (0..5).map(|i| entry(i + 1, at(5, 15, i), EntryKind::Exchange, "赵", Some("C2"))).collect();
        assert_eq!(observe_all(&mut detector, &saturday).len(), 1);
        // A system's exchanges at night, naming no officer, are no one's bulk reading.
        let mut detector = super::tests::detector();
        let mut nightly: Vec<Entry> =
            (0..10).map(|i| entry(i + 1, at(0, 23, i), EntryKind::Exchange, "王", Some("C3"))).collect();
        nightly.iter_mut().for_each(|e| e.record.requester_officer = None);
        assert!(observe_all(&mut detector, &nightly).is_empty());
    }

    #[test]
    fn personal_data_without_a_case_is_reported_once_per_requester_and_day() {
        let mut detector = detector();
        let entries = [
            entry(1, at(0, 9, 0), EntryKind::Exchange, "王", None),
            entry(2, at(0, 9, 5), EntryKind::Exchange, "王", Some("")),
            entry(3, at(0, 9, 6), EntryKind::Read, "李", None),
            entry(4, at(0, 9, 7), EntryKind::Admin, "张", None),
            entry(5, at(1, 9, 0), EntryKind::Exchange, "王", None),
            entry(6, at(1, 9, 1), EntryKind::Exchange, "王", Some("C3")),
        ];
        let alerts = observe_all(&mut detector, &entries);
        let seqs: Vec<i64> = alerts.iter().map(|a| a.entries[0]).collect();
        assert_eq!(seqs, vec![1, 3, 5], "{alerts:#?}");
        assert!(alerts.iter().all(|a| a.rule == AnomalyRule::ReadWithoutCase));
    }

    #[test]
    fn volume_far_above_a_pairs_norm_is_reported_once_a_day() {
        let mut detector = detector();
        let mut seq = 0;
        let mut day = |detector: &mut Detector, offset: i64, count: i64| -> Vec<Alert> {
            (0..count)
                .flat_map(|i| {
                    seq += 1;
                    detector.observe(&entry(seq, at(offset, 9, 0) + i * 1_000, EntryKind::Exchange, "王", Some("C")))
                })
                .collect()
        };
        // Too little history at first: no judgement, however many.
        assert!(day(&mut detector, 0, 8).is_empty());
        assert!(day(&mut detector, 1, 40).is_empty());
        // Norm (8 + 40 + 6) / 3 = 18: 54 would be three times; 55 passes.
        assert!(day(&mut detector, 2, 6).is_empty());
        let alerts = day(&mut detector, 3, 80);
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        assert_eq!((alerts[0].count, alerts[0].norm), (55, Some(18.0)));
        assert_eq!(alerts[0].rule, AnomalyRule::VolumeAboveNorm);
    }

    #[test]
    fn replaying_the_same_entries_raises_the_same_ids() {
        let entries: Vec<Entry> = (0..12)
            .map(|i| entry(i + 1, at(0, 20, i), EntryKind::Read, "王", if i == 3 { None } else { Some("C") }))
            .collect();
        let ids = |alerts: Vec<Alert>| alerts.into_iter().map(|a| a.id).collect::<Vec<_>>();
        let first = ids(observe_all(&mut detector(), &entries));
        assert_eq!(first, ["anomaly/read_without_case/4", "anomaly/bulk_reads_off_hours/5"]);
        assert_eq!(first, ids(observe_all(&mut detector(), &entries)));
        assert!(AnomalyRules { office_hours: "18:00-08:00".into(), ..AnomalyRules::default() }
            .office_minutes()
            .is_err());
        assert!(AnomalyRules { office_hours: "8:30-17:30".into(), ..AnomalyRules::default() }.office_minutes().is_ok());
    }
}
