//! Who may do what through the HTTP API: the roles, each route's rule, which cases a seat
//! sees, and how ID numbers are masked for the roles that do not need them. Pure: the gate
//! (`hub::http::gate`) applies it to requests, each route's rule taken from the route table.
use serde::{Deserialize, Serialize};

use super::reference::ServicePointInfo;
use super::{Case, Command, Reference};

/// The county's roles. A person's or a system's token carries exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 村（社区）便民服务站代办员: takes in applications at one village station.
    VillageClerk,
    /// 镇（街道）便民服务中心窗口: takes in at a township centre (or the county hall's window)
    /// and decides the township's matters.
    TownshipClerk,
    /// 银行网点代办: a bank outlet acting as a service point.
    BankOutlet,
    /// 县级审批部门审批人员: queues, review steps and decisions of one department.
    CountyApprover,
    /// 效能督查: time-limit warnings, reviews and rectification, every case (IDs masked).
    Supervisor,
    /// 邮政寄递: the delivery orders, nothing else.
    Postal,
    /// 县数据局: reads and checks the audit, changes nothing.
    DataBureau,
    /// 系统集成: connectors, topics, catalogue, tokens; no case data.
    Integrator,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::VillageClerk,
        Role::TownshipClerk,
        Role::BankOutlet,
        Role::CountyApprover,
        Role::Supervisor,
        Role::Postal,
        Role::DataBureau,
        Role::Integrator,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Role::VillageClerk => "village_clerk",
            Role::TownshipClerk => "township_clerk",
            Role::BankOutlet => "bank_outlet",
            Role::CountyApprover => "county_approver",
            Role::Supervisor => "supervisor",
            Role::Postal => "postal",
            Role::DataBureau => "data_bureau",
            Role::Integrator => "integrator",
        }
    }

    pub fn parse(code: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.code() == code)
    }

    /// The role's name as the county's documents give it.
    pub fn title(self) -> &'static str {
        match self {
            Role::VillageClerk => "村级代办员",
            Role::TownshipClerk => "乡镇便民服务中心窗口人员",
            Role::BankOutlet => "银行网点代办员",
            Role::CountyApprover => "县级审批人员",
            Role::Supervisor => "效能督查人员",
            Role::Postal => "邮政寄递",
            Role::DataBureau => "县数据局",
            Role::Integrator => "系统集成人员",
        }
    }

    /// Whether the role takes in applications at a service point's counter.
    pub fn works_a_counter(self) -> bool {
        POINTS.contains(&self)
    }

    /// Whether responses show this role full ID numbers: those who check identity at a counter
    /// or decide on a person's application do; everyone else sees them masked.
    pub fn sees_id_numbers(self) -> bool {
        matches!(self, Role::VillageClerk | Role::TownshipClerk | Role::BankOutlet | Role::CountyApprover)
    }

    /// Checks the unit a token of this role is bound to: the service point of a clerk or an
    /// outlet, the department of an approver; the county-wide roles have none.
    pub fn check_unit(self, unit: Option<&str>, reference: &Reference) -> Result<(), String> {
        let point_tier = |tiers: &[&str]| match unit.and_then(|code| reference.service_point(code)) {
            Some(point) if tiers.contains(&point.tier.as_str()) => Ok(()),
            _ => Err(format!(
                "a {} token names its service point (unit), one of tier {}",
                self.code(),
                tiers.join(" or ")
            )),
        };
        match self {
            Role::VillageClerk => point_tier(&["village"]),
            Role::TownshipClerk => point_tier(&["township", "county"]),
            Role::BankOutlet => point_tier(&["bank"]),
            Role::CountyApprover => match unit.and_then(|code| reference.department(code)) {
                Some(_) => Ok(()),
                None => Err("a county_approver token names its department (unit) by its code".into()),
            },
            Role::Supervisor | Role::Postal | Role::DataBureau | Role::Integrator => match unit {
                None => Ok(()),
                Some(_) => Err(format!("a {} token is county-wide and names no unit", self.code())),
            },
        }
    }
}

/// A token bound to a window (窗口) is a clerk's at the window's own service point.
pub fn check_window(role: Role, unit: Option<&str>, window: &str, reference: &Reference) -> Result<(), String> {
    let Some(found) = reference.window(window) else {
        return Err(format!("no window {window} in the county's reference data"));
    };
    if !matches!(role, Role::TownshipClerk | Role::VillageClerk | Role::BankOutlet) {
        return Err(format!("a {} token works no window", role.code()));
    }
    if unit != Some(found.point.as_str()) {
        return Err(format!(
            "window {window} ({}) stands at service point {}, not the token's unit",
            found.name, found.point
        ));
    }
    Ok(())
}

/// Who works a service point's counter: its own clerk; the county hall's clerks also take the
/// online point's cases.
pub fn counter_of(point: &ServicePointInfo, county_code: &str) -> (Role, String) {
    match point.tier.as_str() {
        "village" => (Role::VillageClerk, point.code.clone()),
        "bank" => (Role::BankOutlet, point.code.clone()),
        "township" => (Role::TownshipClerk, point.code.clone()),
        _ => (Role::TownshipClerk, county_code.to_string()),
    }
}

/// Who decides for an authority: a county department's approver, or a township centre's clerk.
pub fn decider_of(authority: &str, reference: &Reference) -> Role {
    if reference.department(authority).is_some() {
        Role::CountyApprover
    } else {
        Role::TownshipClerk
    }
}

/// Who is asking: the holder of a valid token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Seat {
    pub token_id: String,
    /// The person's name, or the system's.
    pub holder: String,
    pub role: Role,
    /// Service point or department code, for the roles bound to one.
    pub unit: Option<String>,
    /// The counter (窗口) a clerk works, when the token is bound to one.
    pub window: Option<String>,
}

/// How a route is let in: each route of the hub's table names its rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Anyone: health, metrics, the API description, the schema registry (contracts only).
    Public,
    /// A counterpart system's push, checked by its own HMAC signature, not by a token.
    Signed,
    /// A token of one of these roles.
    Roles(&'static [Role]),
}

use Role::*;

/// Who takes in applications at a counter.
pub const POINTS: &[Role] = &[VillageClerk, TownshipClerk, BankOutlet];
/// Who reads cases (each within their scope).
pub const CASE_READERS: &[Role] = &[VillageClerk, TownshipClerk, BankOutlet, CountyApprover, Supervisor];
/// Who decides: a township centre for its matters, a county department for its own.
pub const DECIDERS: &[Role] = &[TownshipClerk, CountyApprover];
/// Who looks up e-certificates shown instead of paper.
pub const CERTIFICATE_USERS: &[Role] = &[VillageClerk, TownshipClerk, BankOutlet, CountyApprover];
/// Which cases a seat sees and acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseScope {
    All,
    /// Cases taken in at these points or decided (or consulted on) by these authorities.
    Of {
        service_points: Vec<String>,
        authorities: Vec<String>,
    },
    Nothing,
}

impl CaseScope {
    pub fn of(seat: &Seat, reference: &Reference) -> CaseScope {
        let unit = seat.unit.clone().unwrap_or_default();
        match seat.role {
            VillageClerk | BankOutlet => CaseScope::Of { service_points: vec![unit], authorities: Vec::new() },
            // A township centre sees what its villages and outlets took in, and decides its own.
            TownshipClerk => {
                let service_points = reference
                    .service_points()
                    .filter(|point| point.township_code == unit)
                    .map(|point| point.code.clone())
                    .collect();
                CaseScope::Of { service_points, authorities: vec![unit] }
            }
            CountyApprover => CaseScope::Of { service_points: Vec::new(), authorities: vec![unit] },
            Supervisor => CaseScope::All,
            Postal | DataBureau | Integrator => CaseScope::Nothing,
        }
    }

    pub fn sees(&self, case: &Case) -> bool {
        match self {
            CaseScope::All => true,
            CaseScope::Nothing => false,
            CaseScope::Of { service_points, authorities } => {
                service_points.contains(&case.application.service_point.code)
                    || case.department_code.as_ref().is_some_and(|code| authorities.contains(code))
                    || case.opinions_required.iter().any(|code| authorities.contains(code))
            }
        }
    }

    /// Whether a department-bound seat may speak for `authority` (decide, give an opinion).
    pub fn speaks_for(&self, authority: &str) -> bool {
        match self {
            CaseScope::All => true,
            CaseScope::Nothing => false,
            CaseScope::Of { authorities, .. } => authorities.iter().any(|code| code == authority),
        }
    }
}

/// Why `seat` may not give `command` on `case`, if it may not: the case is outside its scope,
/// or the result waits at a village station and only that station's clerk hands it over.
/// Decided on the case as the command finds it, in the command's own transaction.
pub fn command_refused(seat: &Seat, reference: &Reference, case: &Case, command: &Command) -> Option<String> {
    if !CaseScope::of(seat, reference).sees(case) {
        return Some(format!("case {} is not one of {}'s", case.case_number, seat.holder));
    }
    let point = &case.application.service_point;
    let at_station = case.pickup.as_ref().is_some_and(|p| p.method == "village_station");
    (matches!(command, Command::Collect { .. }) && at_station && seat.unit.as_ref() != Some(&point.code))
        .then(|| format!("the result of case {} waits at {}; its clerk hands it over", case.case_number, point.name))
}

/// An ID number as the roles that do not need it see it: the first six and last four
/// characters (region and check digits), the birth date and sequence starred.
pub fn mask_id_number(id_number: &str) -> String {
    let chars: Vec<char> = id_number.chars().collect();
    if chars.len() <= 10 {
        return "*".repeat(chars.len());
    }
    chars.iter().enumerate().map(|(i, c)| if i < 6 || i >= chars.len() - 4 { *c } else { '*' }).collect()
}

/// Field names whose values are ID numbers in the API's JSON.
pub const ID_NUMBER_FIELDS: &[&str] = &["id_number", "holder_code"];

/// Masks every ID number field in a JSON document, at any depth.
pub fn mask_id_numbers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(fields) => {
            for (name, field) in fields.iter_mut() {
                match field {
                    serde_json::Value::String(text) if ID_NUMBER_FIELDS.contains(&name.as_str()) => {
                        *text = mask_id_number(text)
                    }
                    _ => mask_id_numbers(field),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(mask_id_numbers),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(role: Role, unit: Option<&str>) -> Seat {
        Seat { token_id: "t".into(), holder: "张三".into(), role, unit: unit.map(String::from), window: None }
    }

    #[test]
    fn id_numbers_keep_region_and_check_digits() {
        assert_eq!(mask_id_number("11010519491231002X"), "110105********002X");
        assert_eq!(mask_id_number("12345"), "*****");
        let mut document = serde_json::json!({"case": {"applicant": {"id_number": "11010519491231002X", "name": "张三"}}, "list": [{"holder_code": "610429199001011234"}]});
        mask_id_numbers(&mut document);
        assert_eq!(document["case"]["applicant"]["id_number"], "110105********002X");
        assert_eq!(document["case"]["applicant"]["name"], "张三");
        assert_eq!(document["list"][0]["holder_code"], "610429********1234");
    }

    #[test]
    fn a_command_is_refused_on_a_case_outside_the_seat_or_a_result_at_another_station() {
        let reference = Reference::builtin();
        let mut case = crate::testing::accepted_case(&reference, 10);
        let point = case.application.service_point.code.clone();
        let township = reference.service_point(&point).unwrap().township_code.clone();
        let other = reference.service_points().find(|p| p.code != point && p.township_code != township).unwrap();
        let department = case.department_code.clone().unwrap();
        let collect = Command::Collect {
            handed_out_by: "张三".into(),
            collected_by: "李四".into(),
            id_number: None,
            pickup_code: None,
            signature: "李四".into(),
            notice_number: None,
            agent: None,
        };
        let refused = |role, unit: &str, command: &Command, case: &Case| {
            command_refused(&seat(role, Some(unit)), &reference, case, command)
        };
        assert_eq!(refused(VillageClerk, &point, &Command::Archive, &case), None);
        assert_eq!(refused(CountyApprover, &department, &Command::Archive, &case), None);
        assert_eq!(refused(TownshipClerk, &township, &collect, &case), None, "no station holds the result yet");
        let outside = refused(VillageClerk, &other.code, &Command::Archive, &case).unwrap();
        assert!(outside.contains("is not one of 张三's"), "{outside}");
        case.pickup = Some(crate::case::Pickup { method: "village_station".into(), place: point.clone(), code: None });
        assert_eq!(refused(VillageClerk, &point, &collect, &case), None);
        let elsewhere = refused(TownshipClerk, &township, &collect, &case).unwrap();
        assert!(elsewhere.contains("its clerk hands it over"), "{elsewhere}");
        assert_eq!(refused(TownshipClerk, &township, &Command::Archive, &case), None, "only the handing over waits");
    }

    #[test]
    fn units_fit_their_roles() {
        let reference = Reference::builtin();
        let (township, village) = reference.villages().next().map(|(t, v)| (t.code.clone(), v.code.clone())).unwrap();
        let outlet = reference.county.bank_outlets[0].code.clone();
        let department = reference.matters().next().unwrap().department.clone();
        assert!(VillageClerk.check_unit(Some(&village), &reference).is_ok());
        assert!(VillageClerk.check_unit(Some(&township), &reference).is_err());
        assert!(TownshipClerk.check_unit(Some(&township), &reference).is_ok());
        assert!(TownshipClerk.check_unit(Some(&reference.county.code), &reference).is_ok());
        assert!(BankOutlet.check_unit(Some(&outlet), &reference).is_ok());
        assert!(BankOutlet.check_unit(None, &reference).is_err());
        assert!(CountyApprover.check_unit(Some(&department), &reference).is_ok());
        assert!(CountyApprover.check_unit(Some(&village), &reference).is_err());
        assert!(DataBureau.check_unit(None, &reference).is_ok());
        assert!(DataBureau.check_unit(Some(&department), &reference).is_err());
    }

    #[test]
    fn a_township_centre_sees_its_villages_and_outlets_not_the_next_township() {
        let reference = Reference::builtin();
        let townships = &reference.county.townships;
        let (ours, theirs) = (&townships[0], &townships[1]);
        let scope = CaseScope::of(&seat(TownshipClerk, Some(&ours.code)), &reference);
        let CaseScope::Of { service_points, authorities } = &scope else { panic!("{scope:?}") };
        assert!(service_points.contains(&ours.code) && service_points.contains(&ours.villages[0].code));
        assert!(!service_points.contains(&theirs.villages[0].code));
        assert_eq!(authorities, &vec![ours.code.clone()]);
        assert!(scope.speaks_for(&ours.code) && !scope.speaks_for(&theirs.code));
        assert_eq!(CaseScope::of(&seat(Postal, None), &reference), CaseScope::Nothing);
    }
}
