//! Reference data the core decides with: the county's divisions and service points, its
//! departments and its matter catalogue. Parsed from TOML text; the files live in `hub/data`.
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::calendar::Calendar;

pub const XUNYI_TOML: &str = include_str!("../../data/xunyi.toml");
pub const MATTERS_TOML: &str = include_str!("../../data/matters.toml");

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct County {
    pub code: String,
    pub name: String,
    pub province: String,
    pub city: String,
    pub post_code: String,
    pub enquiry_phone: String,
    pub approval_bureau: String,
    /// The unified approval seal (行政审批专用章) where the county centralises approval (seed
    /// 003, 统一印章): results of the departments marked `unified_seal` go out under it.
    #[serde(default)]
    pub unified_seal: Option<String>,
    #[serde(rename = "township")]
    pub townships: Vec<Township>,
    /// Bank outlets acting as service points (银行网点代办): they accept the matters whose
    /// catalogue entry lists the `bank` tier, and nothing else.
    #[serde(rename = "bank_outlet", default)]
    pub bank_outlets: Vec<BankOutlet>,
    /// The counters (窗口) of the halls and centres: the tokens of the clerks who work one are
    /// bound to it, and its cases are counted in its report and assessment.
    #[serde(rename = "window", default)]
    pub windows: Vec<Window>,
    pub policy: Policy,
    /// The county's 审查细则: per matter (by implementation code) the review steps before the
    /// decision, each with its own limit. The county's overlay, not the provincial catalogue's.
    #[serde(rename = "review_rule", default)]
    pub review_rules: Vec<ReviewRule>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewRule {
    pub implementation_code: String,
    pub steps: Vec<ReviewStep>,
}

/// One step of a matter's review (审查细则): its id, its name on paper, its limit in working
/// days from the day the step before it ended (or the case was routed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewStep {
    pub step: String,
    pub title: String,
    pub days: u32,
}

/// A counter (窗口) at a service point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub code: String,
    pub name: String,
    /// The service point it stands at.
    pub point: String,
}

/// A self-service pickup locker (智能取件柜) at a centre.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Locker {
    /// The centre it stands at: the county hall's or a township's code.
    pub centre: String,
    pub place: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BankOutlet {
    pub code: String,
    pub name: String,
    /// Township the outlet stands in.
    pub township: String,
}

/// The county's configurable time-limit, pickup and review rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Policy {
    /// Seed 001's cards: 预警 once the working days left fall to this share of the promised
    /// ones (or to one), 黄牌 when overdue, 红牌 when overdue by more than `red_card_after_days`.
    pub warning_share: f64,
    pub red_card_after_days: u32,
    /// Working days a unit has to answer a supervision order (督办单) before the next level hears.
    pub supervision_answer_days: u32,
    /// The next level above the supervisor (the county government's office), told of an
    /// unanswered supervision order.
    pub escalation_email: String,
    pub commitment_days: u32,
    pub rectification_days: u32,
    pub mail_domain: String,
    pub supervisor_email: String,
    pub data_bureau_email: String,
    /// The pickup lockers; the county hall's is the first.
    #[serde(rename = "locker")]
    pub lockers: Vec<Locker>,
    /// Limit of each special procedure in working days, by procedure name.
    pub procedure_days: std::collections::BTreeMap<String, u32>,
    /// The special procedures during which the county's promised clock (承诺时限) stands still;
    /// the statutory clock stops only for the law's list, whatever this says.
    pub promised_clock_pauses: Vec<String>,
    pub archive: ArchivePolicy,
    /// Fee waivers and reductions (收费减免) an applicant may claim with proof.
    #[serde(default)]
    pub fee_relief: Vec<FeeReliefRule>,
}

/// A county rule that waives or reduces fees: who qualifies, on what basis, what share is
/// still paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeReliefRule {
    pub rule: String,
    pub name: String,
    pub basis: String,
    /// Percent of every fee item still paid: 0 waives the fee, 50 halves it.
    pub payable_percent: u8,
}

/// How closed case files are numbered and kept (county archive policy, after DA/T 22).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchivePolicy {
    /// 全宗号 of the archive the files go to.
    pub fonds: String,
    /// 保管期限 code by kind of matter (Y permanent, D30, D10 years).
    pub retention: std::collections::BTreeMap<String, String>,
    /// 保管期限 of a case that was never accepted or was denied.
    pub retention_not_granted: String,
}

/// What every unit that issues documents declares: the legend of its own seal, its code in
/// archive numbers, and who hands its files to the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitRecords {
    pub seal: String,
    pub archive_code: String,
    pub archivist: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Township {
    pub code: String,
    pub name: String,
    pub kind: String,
    #[serde(flatten)]
    pub records: UnitRecords,
    pub villages: Vec<Village>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Village {
    pub code: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Department {
    pub code: String,
    pub name: String,
    pub address: String,
    pub phone: String,
    #[serde(flatten)]
    pub records: UnitRecords,
    /// Its results go out under the county's unified approval seal, not its own.
    #[serde(default)]
    pub unified_seal: bool,
}

/// Who decides a case and where results are sent from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Authority {
    pub code: String,
    pub name: String,
    pub address: String,
    pub phone: String,
    /// The seal its decisions and results go out under: the unified approval seal where the
    /// county centralises its approvals, otherwise its own.
    pub seal: String,
    pub records: UnitRecords,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Material {
    pub name: String,
    pub primary: bool,
    pub original: bool,
    pub count: u32,
    /// An electronic certificate can replace it (免提交).
    pub ecert: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matter {
    pub basic_code: String,
    pub implementation_code: String,
    pub name: String,
    pub kind: String,
    pub version: i32,
    pub department: String,
    pub legal_basis: String,
    pub statutory_days: u32,
    pub promised_days: u32,
    pub instant: bool,
    pub accept_tiers: Vec<String>,
    pub decide_tier: String,
    pub scope: String,
    pub mail_allowed: bool,
    /// 收费项目: each item's amount in fen and its 收费依据; none for a free matter.
    #[serde(default)]
    pub fees: Vec<contracts::FeeItem>,
    pub materials: Vec<Material>,
    /// Departments whose opinion the deciding department needs first (并联审批).
    #[serde(default)]
    pub co_departments: Vec<String>,
    /// Township matters handled jointly by the receiving and the deciding township when they
    /// differ (多地联办): the receiving one gives its opinion before the decision.
    #[serde(default)]
    pub joint_handling: bool,
    /// The electronic certificate an approval issues (电子证照), if any.
    #[serde(default)]
    pub certificate: Option<CertificateSpec>,
    /// What 容缺受理 allows for this matter; absent: any secondary material, for the county's
    /// default period (`policy.commitment_days`).
    #[serde(default)]
    pub tolerance: Option<Tolerance>,
}

/// A matter's own 容缺受理 list: the secondary materials that may be owed under a commitment,
/// and the working days the applicant has to supply them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerance {
    pub materials: Vec<String>,
    pub days: u32,
}

impl Matter {
    /// Handled jointly by several departments (联合办理, 并联审批) or places (多地联办).
    pub fn joint(&self) -> bool {
        !self.co_departments.is_empty() || self.joint_handling
    }

    /// Whether `material` may be owed under a commitment (容缺), and for how many working days.
    pub fn tolerated(&self, material: &str, default_days: u32) -> Option<u32> {
        let secondary = self.materials.iter().any(|m| m.name == material && !m.primary);
        match &self.tolerance {
            None => secondary.then_some(default_days),
            Some(tolerance) => {
                (secondary && tolerance.materials.iter().any(|m| m == material)).then_some(tolerance.days)
            }
        }
    }

    /// What is wrong with the matter's codes, if anything: the basic code is 12 digits; the
    /// implementation code is the department's credit code, the county level and the basic
    /// code (31 characters, as published implementation codes are built); a certificate type
    /// code is a credit code and three digits (GB/T 36904).
    pub fn code_problem(&self) -> Option<String> {
        if self.basic_code.len() != 12 || !self.basic_code.bytes().all(|b| b.is_ascii_digit()) {
            return Some(format!("basic code {} is not 12 digits", self.basic_code));
        }
        let expected = format!("{}{COUNTY_LEVEL}{}", self.department, self.basic_code);
        if self.implementation_code != expected {
            return Some(format!(
                "implementation code {} is not the department's credit code, level {COUNTY_LEVEL} and the basic code ({expected})",
                self.implementation_code
            ));
        }
        let certificate = self.certificate.as_ref()?;
        let code = &certificate.type_code;
        let well_formed = code.len() == 21
            && code[..18].bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
            && code[18..].bytes().all(|b| b.is_ascii_digit());
        (!well_formed).then(|| format!("certificate type code {code} is not a credit code and three digits"))
    }
}

/// 行使层级 of a county department in an implementation code.
pub const COUNTY_LEVEL: char = '4';

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateSpec {
    /// 证照类型代码, the type part of the certificate identifier.
    pub type_code: String,
    pub name: String,
    /// Years of validity from the issue date; 0: valid without limit.
    pub valid_years: u32,
}

#[derive(Debug, Clone, Deserialize)]
struct MatterFile {
    #[serde(rename = "department")]
    departments: Vec<Department>,
    #[serde(rename = "matter")]
    matters: Vec<Matter>,
}

/// A place where applications are handed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePointInfo {
    pub code: String,
    pub name: String,
    pub tier: String,
    pub division_code: String,
    /// Township the point belongs to (its own code for a township centre).
    pub township_code: String,
}

/// Everything the core looks up while deciding.
#[derive(Debug, Clone)]
pub struct Reference {
    pub county: County,
    departments: HashMap<String, Department>,
    /// Implementation code -> versions, oldest first.
    matters: HashMap<String, Vec<Matter>>,
    service_points: HashMap<String, ServicePointInfo>,
    /// Working days, for every time limit.
    pub calendar: Calendar,
    /// Key that derives locker pickup codes; set from the configuration at start.
    pub pickup_secret: Vec<u8>,
    /// Key of the data subjects' keyed hashes in the audit (HMAC-SHA256): the data bureau can
    /// search by ID number, the audit never holds one.
    pub subject_key: Vec<u8>,
    /// An electronic seal service is configured: every sealed document is sent to be signed.
    pub electronic_seals: bool,
    /// Key that signs the applicants' review links; set from the configuration at start.
    pub review_key: Vec<u8>,
    /// Where applicants reach the hub's public pages (the review page), without a trailing `/`.
    pub public_url: String,
    /// The text-message templates registered with the SMS gateway, newest version in use.
    pub sms: crate::sms::SmsTemplates,
}

impl Reference {
    /// The reference county shipped with the hub (Xunyi, 610429).
    pub fn builtin() -> Reference {
        Reference::parse(XUNYI_TOML, MATTERS_TOML, Calendar::builtin()).expect("hub/data is valid")
    }

    pub fn parse(county_toml: &str, matters_toml: &str, calendar: Calendar) -> Result<Reference, String> {
        let county: County = toml::from_str(county_toml).map_err(|e| format!("county data: {e}"))?;
        let file: MatterFile = toml::from_str(matters_toml).map_err(|e| format!("matter catalogue: {e}"))?;
        let departments: HashMap<String, Department> =
            file.departments.into_iter().map(|d| (d.code.clone(), d)).collect();
        let mut matters: HashMap<String, Vec<Matter>> = HashMap::new();
        for matter in file.matters {
            if let Some(stray) = matter
                .tolerance
                .iter()
                .flat_map(|t| &t.materials)
                .find(|name| !matter.materials.iter().any(|m| &m.name == *name && !m.primary))
            {
                return Err(format!(
                    "matter {} tolerates {stray}, which is not one of its secondary materials",
                    matter.name
                ));
            }
            if let Some(problem) = matter.code_problem() {
                return Err(format!("matter {} ({}): {problem}", matter.name, matter.implementation_code));
            }
            if let Some(unknown) = std::iter::once(&matter.department)
                .chain(&matter.co_departments)
                .find(|d| !departments.contains_key(*d))
            {
                return Err(format!("matter {} names unknown department {unknown}", matter.implementation_code));
            }
            matters.entry(matter.implementation_code.clone()).or_default().push(matter);
        }
        for versions in matters.values_mut() {
            versions.sort_by_key(|m| m.version);
            if let Some(pair) = versions.windows(2).find(|pair| pair[0].version == pair[1].version) {
                return Err(format!("matter {} has version {} twice", pair[0].implementation_code, pair[0].version));
            }
        }
        let mut service_points = HashMap::new();
        let county_hall = ServicePointInfo {
            code: county.code.clone(),
            name: format!("{}政务服务中心", county.name),
            tier: "county".into(),
            division_code: county.code.clone(),
            township_code: county.code.clone(),
        };
        service_points.insert(county_hall.code.clone(), county_hall);
        let online = ServicePointInfo {
            code: online_point_code(&county.code),
            name: "陕西政务服务网（网上申请）".into(),
            tier: "online".into(),
            division_code: county.code.clone(),
            township_code: county.code.clone(),
        };
        service_points.insert(online.code.clone(), online);
        for township in &county.townships {
            service_points.insert(
                township.code.clone(),
                ServicePointInfo {
                    code: township.code.clone(),
                    name: format!("{}便民服务中心", township.name),
                    tier: "township".into(),
                    division_code: township.code.clone(),
                    township_code: township.code.clone(),
                },
            );
            for village in &township.villages {
                let station =
                    if village.name.ends_with("社区") { "社区便民服务站" } else { "便民服务站" };
                let point = ServicePointInfo {
                    code: village.code.clone(),
                    name: format!("{}{station}", village.name),
                    tier: "village".into(),
                    division_code: village.code.clone(),
                    township_code: township.code.clone(),
                };
                if service_points.insert(village.code.clone(), point).is_some() {
                    return Err(format!("division code {} is used twice", village.code));
                }
            }
        }
        if let Some(matter) =
            matters.values().flatten().find(|m| !county.policy.archive.retention.contains_key(&m.kind))
        {
            return Err(format!(
                "policy.archive.retention gives no retention for {} ({}), a {}",
                matter.name, matter.implementation_code, matter.kind
            ));
        }
        if !(0.0..=1.0).contains(&county.policy.warning_share) {
            return Err(format!("policy.warning_share must be between 0 and 1, got {}", county.policy.warning_share));
        }
        if let Some(locker) = county.policy.lockers.iter().find(|l| !service_points.contains_key(&l.centre)) {
            return Err(format!("locker {} stands at unknown centre {}", locker.place, locker.centre));
        }
        if county.policy.lockers.first().map(|l| &l.centre) != Some(&county.code) {
            return Err("policy.locker: the first locker is the county hall's".into());
        }
        for rule in &county.review_rules {
            let Some(matter) = matters.get(&rule.implementation_code) else {
                return Err(format!("review_rule names unknown matter {}", rule.implementation_code));
            };
            let total: u32 = rule.steps.iter().map(|s| s.days).sum();
            let limit = matter.iter().map(|m| m.statutory_days).min().unwrap_or(0);
            if rule.steps.is_empty() || total > limit {
                return Err(format!(
                    "review_rule for {}: its steps take {total} working days, beyond the statutory {limit}",
                    rule.implementation_code
                ));
            }
        }
        for relief in &county.policy.fee_relief {
            if relief.payable_percent > 100 {
                return Err(format!("fee_relief {}: payable_percent is at most 100", relief.rule));
            }
            if county.policy.fee_relief.iter().filter(|r| r.rule == relief.rule).count() > 1 {
                return Err(format!("fee_relief {} is listed twice", relief.rule));
            }
        }
        for outlet in &county.bank_outlets {
            if !county.townships.iter().any(|t| t.code == outlet.township) {
                return Err(format!("bank outlet {} names unknown township {}", outlet.code, outlet.township));
            }
            let point = ServicePointInfo {
                code: outlet.code.clone(),
                name: outlet.name.clone(),
                tier: "bank".into(),
                division_code: outlet.township.clone(),
                township_code: outlet.township.clone(),
            };
            if service_points.insert(outlet.code.clone(), point).is_some() {
                return Err(format!("service point code {} is used twice", outlet.code));
            }
        }
        for window in &county.windows {
            if !service_points.contains_key(&window.point) {
                return Err(format!("window {} stands at unknown service point {}", window.code, window.point));
            }
            if service_points.contains_key(&window.code)
                || county.windows.iter().filter(|w| w.code == window.code).count() > 1
            {
                return Err(format!("window code {} is used twice", window.code));
            }
        }
        Ok(Reference {
            county,
            departments,
            matters,
            service_points,
            calendar,
            pickup_secret: b"development only".to_vec(),
            subject_key: b"development only".to_vec(),
            electronic_seals: false,
            review_key: b"development only".to_vec(),
            public_url: "http://127.0.0.1:8080".into(),
            sms: crate::sms::SmsTemplates::builtin(),
        })
    }

    pub fn department(&self, code: &str) -> Option<&Department> {
        self.departments.get(code)
    }

    /// A deciding authority: a county department, or a township centre by township code.
    pub fn authority(&self, code: &str) -> Option<Authority> {
        if let Some(department) = self.departments.get(code) {
            let unified = self.county.unified_seal.as_ref().filter(|_| department.unified_seal);
            return Some(Authority {
                code: department.code.clone(),
                name: department.name.clone(),
                address: department.address.clone(),
                phone: department.phone.clone(),
                seal: unified.unwrap_or(&department.records.seal).clone(),
                records: department.records.clone(),
            });
        }
        let township = self.county.townships.iter().find(|t| t.code == code)?;
        let name = format!("{}{}便民服务中心", self.county.name, township.name);
        Some(Authority {
            code: township.code.clone(),
            address: name.clone(),
            name,
            phone: self.county.enquiry_phone.clone(),
            seal: township.records.seal.clone(),
            records: township.records.clone(),
        })
    }

    /// The unit in whose name a service point takes applications in: the approval bureau at
    /// the county hall and online; a township centre for itself and for the village stations
    /// and bank outlets in it, which take in on its behalf (委托受理).
    pub fn accepting_unit(&self, point_code: &str) -> Option<Authority> {
        let point = self.service_point(point_code)?;
        match point.tier.as_str() {
            "county" | "online" => self.authority(&self.county.approval_bureau),
            _ => self.authority(&point.township_code),
        }
    }

    /// The review steps of a matter's 审查细则; none where the county set none (one decision).
    pub fn review_steps(&self, implementation_code: &str) -> &[ReviewStep] {
        self.county
            .review_rules
            .iter()
            .find(|rule| rule.implementation_code == implementation_code)
            .map_or(&[], |rule| &rule.steps)
    }

    /// The locker nearest to a service point: its own centre's if that centre has one,
    /// otherwise the county hall's.
    pub fn locker_for(&self, point_code: &str) -> &Locker {
        let lockers = &self.county.policy.lockers;
        let centre = self.service_point(point_code).map(|p| p.township_code.as_str());
        lockers.iter().find(|l| Some(l.centre.as_str()) == centre).unwrap_or(&lockers[0])
    }

    /// Mailbox of an authority's handlers.
    pub fn handler_email(&self, authority_code: &str) -> String {
        format!("{}@{}", authority_code.to_lowercase(), self.county.policy.mail_domain)
    }

    /// The newest version of a matter.
    pub fn matter(&self, implementation_code: &str) -> Option<&Matter> {
        self.matters.get(implementation_code).and_then(|v| v.last())
    }

    /// A matter at the version a case was accepted under.
    pub fn matter_version(&self, implementation_code: &str, version: i32) -> Option<&Matter> {
        self.matters.get(implementation_code)?.iter().find(|m| m.version == version)
    }

    pub fn matters(&self) -> impl Iterator<Item = &Matter> {
        self.matters.values().filter_map(|v| v.last())
    }

    /// Takes changed guides of known matters (already on the county's arrangements): each that
    /// differs from the newest version becomes the next version. Returns the new versions.
    pub fn revise(&mut self, changed: Vec<Matter>) -> Vec<Matter> {
        let mut revised = Vec::new();
        for mut matter in changed {
            let Some(versions) = self.matters.get_mut(&matter.implementation_code) else { continue };
            let newest = versions.last().expect("a matter has a version");
            matter.version = newest.version;
            if matter == *newest {
                continue;
            }
            matter.version += 1;
            versions.push(matter.clone());
            revised.push(matter);
        }
        revised
    }

    /// Puts back versions taken from the platform before (kept in the database).
    pub fn restore_versions(&mut self, stored: Vec<Matter>) -> Result<(), String> {
        for matter in stored {
            if !self.departments.contains_key(&matter.department) {
                return Err(format!(
                    "stored matter {} v{} names unknown department {}",
                    matter.implementation_code, matter.version, matter.department
                ));
            }
            let versions = self.matters.entry(matter.implementation_code.clone()).or_default();
            if !versions.iter().any(|m| m.version == matter.version) {
                versions.push(matter);
                versions.sort_by_key(|m| m.version);
            }
        }
        Ok(())
    }

    /// Where applications filed on the provincial platform are taken in.
    pub fn online_point(&self) -> &ServicePointInfo {
        &self.service_points[&online_point_code(&self.county.code)]
    }

    pub fn window(&self, code: &str) -> Option<&Window> {
        self.county.windows.iter().find(|w| w.code == code)
    }

    pub fn service_point(&self, code: &str) -> Option<&ServicePointInfo> {
        self.service_points.get(code)
    }

    /// The name of a service point, department or township by its code.
    pub fn unit_name(&self, code: &str) -> Option<String> {
        self.service_point(code)
            .map(|point| point.name.clone())
            .or_else(|| self.authority(code).map(|authority| authority.name))
    }

    pub fn service_points(&self) -> impl Iterator<Item = &ServicePointInfo> {
        self.service_points.values()
    }

    pub fn villages(&self) -> impl Iterator<Item = (&Township, &Village)> {
        self.county.townships.iter().flat_map(|t| t.villages.iter().map(move |v| (t, v)))
    }
}

fn online_point_code(county_code: &str) -> String {
    format!("{county_code}-online")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_county_has_ten_towns_and_179_well_formed_villages() {
        let reference = Reference::builtin();
        assert_eq!(reference.county.code, "610429000000");
        assert_eq!(reference.county.townships.len(), 10);
        let villages: Vec<_> = reference.villages().collect();
        assert_eq!(villages.len(), 179);
        for (township, village) in villages {
            assert_eq!(village.code.len(), 12, "{}", village.code);
            assert!(village.code.bytes().all(|b| b.is_ascii_digit()));
            assert!(village.code.starts_with(&township.code[..9]), "{} is not in {}", village.code, township.code);
            assert_eq!(reference.service_point(&village.code).unwrap().tier, "village");
        }
    }

    /// Implementation codes as published (e.g. 12441500196720244T3442199806003: a city-level
    /// body's credit code, its level 3 and a 12-character basic code) and certificate type codes
    /// as published identifiers carry them (11100000000013338W011): 31 and 21 characters.
    #[test]
    fn matter_codes_are_built_as_the_national_catalogue_builds_them() {
        let reference = Reference::builtin();
        let matter = reference.matter("11610429MB2912345A4000104010000").unwrap().clone();
        assert_eq!(matter.code_problem(), None);
        let mut level_one = matter.clone();
        level_one.implementation_code = "11610429MB2912345A1000104010000".into();
        assert!(level_one.code_problem().unwrap().contains("level 4"), "a county department's level is 4");
        let mut eight_digit_type = matter.clone();
        eight_digit_type.certificate.as_mut().unwrap().type_code = "11100611".into();
        assert!(eight_digit_type.code_problem().unwrap().contains("type code"));
        let mut short_basic = matter;
        short_basic.basic_code = "0001040100".into();
        assert!(short_basic.code_problem().unwrap().contains("12 digits"));
        assert!(reference.matters().all(|m| m.code_problem().is_none() && m.statutory_days >= m.promised_days));
    }

    #[test]
    fn every_matter_names_a_known_department_and_a_positive_limit() {
        let reference = Reference::builtin();
        assert!(reference.matters().count() >= 30);
        for matter in reference.matters() {
            assert!(reference.department(&matter.department).is_some());
            assert!(matter.promised_days <= matter.statutory_days, "{}", matter.name);
            assert!(
                !matter.instant || matter.promised_days <= 1,
                "{}: an instant matter is decided the same day",
                matter.name
            );
            assert_eq!(matter.basic_code.len(), 12);
            assert!(matter.implementation_code.len() <= 36 && matter.implementation_code.ends_with(&matter.basic_code));
            assert!(matter.materials.iter().any(|m| m.primary), "{}: no primary material", matter.name);
            assert!(!matter.accept_tiers.is_empty() && !matter.legal_basis.is_empty(), "{}", matter.name);
        }
        let departments: std::collections::HashSet<_> = reference.matters().map(|m| &m.department).collect();
        assert!(departments.len() >= 10, "matters across the county's departments");
    }

    #[test]
    fn a_matter_version_listed_twice_is_refused() {
        let start = MATTERS_TOML.find("[[matter]]").unwrap();
        let end = start + 1 + MATTERS_TOML[start + 1..].find("[[matter]]").unwrap();
        let doubled = format!("{MATTERS_TOML}\n{}", &MATTERS_TOML[start..end]);
        let error = Reference::parse(XUNYI_TOML, &doubled, Calendar::builtin()).unwrap_err();
        assert!(error.contains("version 1 twice"), "{error}");
    }

    #[test]
    fn a_changed_guide_becomes_the_next_version_and_an_unchanged_one_does_not() {
        let mut reference = Reference::builtin();
        let code = "11610429MB2912345A4000104010000";
        let original = reference.matter(code).unwrap().clone();
        let mut shorter = original.clone();
        shorter.promised_days -= 1;
        let revised = reference.revise(vec![original.clone(), shorter.clone()]);
        assert_eq!(revised.len(), 1, "the unchanged guide is no new version");
        assert_eq!(reference.matter(code).unwrap().version, original.version + 1);
        assert_eq!(reference.matter(code).unwrap().promised_days, shorter.promised_days);
        assert_eq!(reference.matter_version(code, original.version), Some(&original), "cases keep their version");
        assert!(reference.revise(vec![shorter]).is_empty(), "the same change twice is one version");

        let mut restarted = Reference::builtin();
        restarted.restore_versions(revised.clone()).unwrap();
        restarted.restore_versions(revised).unwrap();
        assert_eq!(restarted.matter(code), reference.matter(code));
        assert_eq!(restarted.online_point().tier, "online");
    }
}
