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
        return Err(format!(
            "{} ({}) may not accept {}: the catalogue lets {} accept it",
            point.name,
            point.tier,
            matter.name,
            matter.accept_tiers.join(", ")
        ));
    }
    if let Some(domicile) = domicile_township.filter(|d| !scope_covers(&matter.scope, &reference.county.code, d)) {
        return Err(format!(
            "{} may be handled anywhere only within its scope ({}); the applicant's domicile {domicile} is outside it: apply at the domicile",
            matter.name, matter.scope
        ));
    }
    let from_elsewhere = domicile_township.is_some_and(|d| d.get(..6) != reference.county.code.get(..6));
    match matter.decide_tier.as_str() {
        "county" if from_elsewhere => {
            let department = reference
                .authority(&matter.department)
                .ok_or_else(|| format!("no department {}", matter.department))?;
            let reason = format!(
                "{} is handled anywhere within its scope ({}), whatever the applicant's domicile (全城通办); {} decides",
                matter.name, matter.scope, department.name
            );
            Ok(decided_by(department, "county", RULE_ANY_POINT, reason))
        }
        "county" => {
            let department = reference
                .authority(&matter.department)
                .ok_or_else(|| format!("no department {}", matter.department))?;
            let reason = if point.tier == "county" {
                format!("{} is decided by {}, which the county hall accepts for", matter.name, department.name)
            } else if point.tier == "online" {
                format!(
                    "{} was applied for online (全程网办); the catalogue names {} as the deciding authority",
                    matter.name, department.name
                )
            } else {
                format!(
                    "{} accepts {} on behalf of the county (代收代办); the catalogue names {} as the deciding authority",
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
                    "{} is decided by the applicant's township; the county hall needs the applicant's township",
                    matter.name
                ));
            };
            let centre =
                reference.authority(township).ok_or_else(|| format!("no township {township} in the county"))?;
            if let Some(here) = here.filter(|here| *here != township && matter.joint_handling) {
                let reason = format!(
                    "{} is handled jointly (多地联办): {} receives and verifies on the spot, {} of the applicant's domicile decides after its opinion",
                    matter.name, point.name, centre.name
                );
                let mut routing = decided_by(centre, "township", RULE_JOINT_HANDLING, reason);
                routing.consulted.push(here.to_string());
                Ok(routing)
            } else if here.is_some_and(|here| here != township) {
                let reason = format!(
                    "{} accepts {} for an applicant of another township (异地受理、属地办理): it checks the form and identity and forwards the materials; {} examines, decides and returns the result",
                    point.name, matter.name, centre.name
                );
                Ok(decided_by(centre, "township", RULE_RECEIVE_HERE_HANDLE_THERE, reason))
            } else {
                let reason = format!("{} is delegated to the townships; {} decides it", matter.name, centre.name);
                Ok(decided_by(centre, "township", RULE_TOWNSHIP_DECIDES, reason))
            }
        }
        other => Err(format!("{} names an unknown deciding tier {other}", matter.name)),
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
        assert!(route(&reference, &at_the_hall, hall, None).unwrap_err().contains("applicant's township"));
        assert_eq!(route(&reference, &at_the_hall, hall, Some("610429100000")).unwrap().rule, RULE_TOWNSHIP_DECIDES);
        assert!(explain(HOMESTEAD, "610429000000", None).unwrap_err().contains("may not accept"));
    }

    #[test]
    fn city_wide_handling_accepts_any_domicile_within_the_matters_scope() {
        const FOOD: &str = "11610429MB2912345A4000104119000"; // scope city
        let village = "610429100201";
        // Changwu county (610428) is in the same city (6104): a city-scope matter is accepted here.
        let routing = explain(FOOD, village, Some("610428100000")).unwrap();
        assert_eq!((routing.authority_code.as_str(), routing.rule.as_str()), ("11610429MB2912345A", RULE_ANY_POINT));
        // Another city's resident must apply at home for a city-scope matter…
        assert!(explain(FOOD, village, Some("610102001000")).unwrap_err().contains("outside"));
        // …and a county-scope matter is for this county's residents only.
        assert!(explain(HOMESTEAD, village, Some("610428100000")).unwrap_err().contains("outside"));
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
            explain(HOMESTEAD, outlet, None).unwrap_err().contains("may not accept"),
            "homestead approval is not a bank matter"
        );
    }

    #[test]
    fn a_point_may_accept_only_what_the_catalogue_lets_its_tier_accept() {
        let error = explain(MARRIAGE, "610429100201", None).unwrap_err();
        assert!(error.contains("may not accept"), "{error}");
    }
}
