//! Where a case is decided, and why: the "nearby handling" (就近办) and "city-wide handling"
//! (通办) rules of DOMAIN.md, evaluated on the matter catalogue. Every decision names the rule
//! that fired and the reason, which the case records and the explain call shows.
use serde::Serialize;

use super::reference::{Authority, Matter, Reference, ServicePointInfo};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Routing {
    /// The deciding authority: a county department or a township centre.
    pub authority_code: String,
    pub authority_name: String,
    /// `county` or `township`.
    pub tier: String,
    pub rule: String,
    pub reason: String,
    /// Authorities whose opinion the deciding one awaits (joint handling).
    pub consulted: Vec<String>,
}

pub const RULE_COUNTY_DECIDES: &str = "nearby-handling/county-decides";
pub const RULE_TOWNSHIP_DECIDES: &str = "nearby-handling/township-decides";
pub const RULE_RECEIVE_HERE_HANDLE_THERE: &str = "city-wide/receive-here-handle-there";
pub const RULE_JOINT_HANDLING: &str = "city-wide/joint-handling";
pub const RULE_ANY_POINT: &str = "city-wide/any-point";

/// Whether a matter's cross-area scope (通办范围) covers an applicant whose domicile is in the
/// division `domicile` (12 digits), for a point of the county `county`.
fn scope_covers(scope: &str, county: &str, domicile: &str) -> bool {
    let same = |digits: usize| domicile.get(..digits).is_some_and(|d| county.get(..digits) == Some(d));
    match scope {
        "county" => same(6),
        "city" => same(4),
        "province" => same(2),
        _ => true,
    }
}

/// Routes an application for `matter` accepted at `point`. `domicile_township` is the
/// applicant's township where known: township-decided matters are decided there.
pub fn route(
    reference: &Reference,
    matter: &Matter,
    point: &ServicePointInfo,
    domicile_township: Option<&str>,
) -> Result<Routing, String> {
    if !matter.accept_tiers.contains(&point.tier) {
        let tiers: Vec<&str> = matter.accept_tiers.iter().map(|tier| tier_title(tier)).collect();
        return Err(format!("{}不受理{}：事项目录规定由{}受理", point.name, matter.name, tiers.join("、")));
    }
    if let Some(domicile) = domicile_township.filter(|d| !scope_covers(&matter.scope, &reference.county.code, d)) {
        return Err(format!(
            "{}的通办范围为{}，申请人户籍地（{domicile}）不在范围内，请到户籍所在地申请",
            matter.name,
            scope_title(&matter.scope)
        ));
    }
    let from_elsewhere = domicile_township.is_some_and(|d| d.get(..6) != reference.county.code.get(..6));
    match matter.decide_tier.as_str() {
        "county" if from_elsewhere => {
            let department = reference
                .authority(&matter.department)
                .ok_or_else(|| format!("事项目录中无部门 {}", matter.department))?;
            let reason = format!(
                "{}在{}范围内通办，不限申请人户籍地（全城通办）；由{}审批",
                matter.name,
                scope_title(&matter.scope),
                department.name
            );
            Ok(decided_by(department, "county", RULE_ANY_POINT, reason))
        }
        "county" => {
            let department = reference
                .authority(&matter.department)
                .ok_or_else(|| format!("事项目录中无部门 {}", matter.department))?;
            let reason = if point.tier == "county" {
                format!("{}由{}审批，县政务服务中心统一受理", matter.name, department.name)
            } else if point.tier == "online" {
                format!("{}为网上申请（全程网办）；事项目录规定由{}审批", matter.name, department.name)
            } else {
                format!(
                    "{}代县级部门收件（代收代办）{}；事项目录规定由{}审批",
                    point.name, matter.name, department.name
                )
            };
            Ok(decided_by(department, "county", RULE_COUNTY_DECIDES, reason))
        }
        "township" => {
            // The county hall and the online platform are in no township: the domicile decides.
            let here = (!matches!(point.tier.as_str(), "county" | "online")).then_some(point.township_code.as_str());
            let Some(township) = domicile_township.or(here) else {
                return Err(format!(
                    "{}由申请人户籍所在镇（街道）审批，县级受理须注明申请人所在镇（街道）",
                    matter.name
                ));
            };
            let centre = reference.authority(township).ok_or_else(|| format!("本县无镇（街道）{township}"))?;
            if let Some(here) = here.filter(|here| *here != township && matter.joint_handling) {
                let reason = format!(
                    "{}多地联办：{}收件并现场核验，申请人户籍地{}征求其意见后审批",
                    matter.name, point.name, centre.name
                );
                let mut routing = decided_by(centre, "township", RULE_JOINT_HANDLING, reason);
                routing.consulted.push(here.to_string());
                Ok(routing)
            } else if here.is_some_and(|here| here != township) {
                let reason = format!(
                    "{}为外镇（街道）申请人收件{}（异地受理、属地办理）：核验形式和身份后转送材料，由{}审查、决定并送达结果",
                    point.name, matter.name, centre.name
                );
                Ok(decided_by(centre, "township", RULE_RECEIVE_HERE_HANDLE_THERE, reason))
            } else {
                let reason = format!("{}已下放镇（街道）办理，由{}审批", matter.name, centre.name);
                Ok(decided_by(centre, "township", RULE_TOWNSHIP_DECIDES, reason))
            }
        }
        other => Err(format!("{}的审批层级{other}无法识别", matter.name)),
    }
}

/// How a rule is named to people (the flow record, the explain call).
pub fn rule_title(rule: &str) -> &'static str {
    match rule {
        RULE_COUNTY_DECIDES => "就近办：县级部门审批",
        RULE_TOWNSHIP_DECIDES => "就近办：镇（街道）审批",
        RULE_RECEIVE_HERE_HANDLE_THERE => "全城通办：异地受理、属地办理",
        RULE_JOINT_HANDLING => "全城通办：多地联办",
        RULE_ANY_POINT => "全城通办：任一窗口受理",
        _ => "其他规则",
    }
}

fn tier_title(tier: &str) -> &'static str {
    match tier {
        "county" => "县政务服务中心",
        "township" => "镇（街道）便民服务中心",
        "village" => "村（社区）便民服务站",
        "bank" => "银行网点",
        "online" => "网上申请",
        _ => "其他受理点",
    }
}

fn scope_title(scope: &str) -> &'static str {
    match scope {
        "county" => "全县",
        "city" => "全市",
        "province" => "全省",
        _ => "跨省",
    }
}

fn decided_by(authority: Authority, tier: &str, rule: &str, reason: String) -> Routing {
    Routing {
        authority_code: authority.code,
        authority_name: authority.name,
        tier: tier.into(),
        rule: rule.into(),
        reason,
        consulted: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOMESTEAD: &str = "11610429MB2912349E4000117050000";
    const SELF_EMPLOYED: &str = "11610429MB2912345A4000104010000";
    const MARRIAGE: &str = "11610429MB2912348D4000111001000";

    fn explain(matter: &str, point: &str, domicile: Option<&str>) -> Result<Routing, String> {
        let reference = Reference::builtin();
        route(&reference, reference.matter(matter).unwrap(), reference.service_point(point).unwrap(), domicile)
    }

    #[test]
    fn online_applications_go_to_the_department_or_the_domicile_township() {
        let online = Reference::builtin().online_point().code.clone();
        let routing = explain(SELF_EMPLOYED, &online, None).unwrap();
        assert_eq!(
            (routing.authority_code.as_str(), routing.rule.as_str()),
            ("11610429MB2912345A", RULE_COUNTY_DECIDES)
        );
        assert!(routing.reason.contains("全程网办"), "{}", routing.reason);
        const EMERGENCY_RELIEF: &str = "11610429MB2912348D4000111031000";
        assert!(
            explain(EMERGENCY_RELIEF, &online, None).is_err(),
            "a township matter online needs the applicant's township"
        );
        let routing = explain(EMERGENCY_RELIEF, &online, Some("610429104000")).unwrap();
        assert_eq!((routing.authority_code.as_str(), routing.rule.as_str()), ("610429104000", RULE_TOWNSHIP_DECIDES));
        assert!(explain(HOMESTEAD, &online, None).is_err(), "a matter the catalogue does not offer online");
    }

    #[test]
    fn county_matters_go_to_their_department_from_any_tier() {
        let routing = explain(SELF_EMPLOYED, "610429100201", None).unwrap();
        assert_eq!(
            (routing.authority_code.as_str(), routing.tier.as_str(), routing.rule.as_str()),
            ("11610429MB2912345A", "county", RULE_COUNTY_DECIDES)
        );
        assert!(routing.reason.contains("代收代办"), "{}", routing.reason);
        assert_eq!(explain(SELF_EMPLOYED, "610429000000", None).unwrap().authority_code, "11610429MB2912345A");
    }

    #[test]
    fn township_matters_are_decided_where_the_applicant_lives() {
        let reference = Reference::builtin();
        let village = reference.service_point("610429100201").unwrap();
        let nearby = explain(HOMESTEAD, &village.code, None).unwrap();
        assert_eq!(
            (nearby.authority_code.as_str(), nearby.rule.as_str()),
            (village.township_code.as_str(), RULE_TOWNSHIP_DECIDES)
        );
        let elsewhere = explain(HOMESTEAD, &village.code, Some("610429001000")).unwrap();
        assert_eq!(
            (elsewhere.authority_code.as_str(), elsewhere.rule.as_str()),
            ("610429001000", RULE_RECEIVE_HERE_HANDLE_THERE)
        );
        // Were the county hall allowed to take it, it would need to know the applicant's township.
        let mut at_the_hall = reference.matter(HOMESTEAD).unwrap().clone();
        at_the_hall.accept_tiers.push("county".into());
        let hall = reference.service_point("610429000000").unwrap();
        assert!(route(&reference, &at_the_hall, hall, None).unwrap_err().contains("申请人所在镇"));
        assert_eq!(route(&reference, &at_the_hall, hall, Some("610429100000")).unwrap().rule, RULE_TOWNSHIP_DECIDES);
        assert!(explain(HOMESTEAD, "610429000000", None).unwrap_err().contains("不受理"));
    }

    #[test]
    fn city_wide_handling_accepts_any_domicile_within_the_matters_scope() {
        const FOOD: &str = "11610429MB2912345A4000104119000"; // scope city
        let village = "610429100201";
        // Changwu county (610428) is in the same city (6104): a city-scope matter is accepted here.
        let routing = explain(FOOD, village, Some("610428100000")).unwrap();
        assert_eq!((routing.authority_code.as_str(), routing.rule.as_str()), ("11610429MB2912345A", RULE_ANY_POINT));
        // Another city's resident must apply at home for a city-scope matter…
        assert!(explain(FOOD, village, Some("610102001000")).unwrap_err().contains("不在范围内"));
        // …and a county-scope matter is for this county's residents only.
        assert!(explain(HOMESTEAD, village, Some("610428100000")).unwrap_err().contains("不在范围内"));
        assert_eq!(explain(FOOD, village, Some("610429101000")).unwrap().rule, RULE_COUNTY_DECIDES);
    }

    #[test]
    fn joint_handling_consults_the_receiving_township() {
        const RELIEF: &str = "11610429MB2912348D4000111031000";
        let routing = explain(RELIEF, "610429100201", Some("610429101000")).unwrap();
        assert_eq!((routing.authority_code.as_str(), routing.rule.as_str()), ("610429101000", RULE_JOINT_HANDLING));
        assert_eq!(routing.consulted, ["610429100000"]);
        let at_home = explain(RELIEF, "610429100201", None).unwrap();
        assert_eq!((at_home.rule.as_str(), at_home.consulted.len()), (RULE_TOWNSHIP_DECIDES, 0));
    }

    #[test]
    fn bank_outlets_accept_only_the_matters_listed_for_banks() {
        let outlet = "BANK-PSBC-610429100";
        let routing = explain(SELF_EMPLOYED, outlet, None).unwrap();
        assert_eq!(
            (routing.authority_code.as_str(), routing.rule.as_str()),
            ("11610429MB2912345A", RULE_COUNTY_DECIDES)
        );
        assert!(
            explain(HOMESTEAD, outlet, None).unwrap_err().contains("不受理"),
            "homestead approval is not a bank matter"
        );
    }

    #[test]
    fn a_point_may_accept_only_what_the_catalogue_lets_its_tier_accept() {
        let error = explain(MARRIAGE, "610429100201", None).unwrap_err();
        assert_eq!(error, "土桥1村便民服务站不受理内地居民婚姻登记：事项目录规定由县政务服务中心受理");
    }
}
