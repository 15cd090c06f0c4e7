//! Builders shared by the core's unit tests.
use contracts::{Applicant, ApplicationSubmitted, Event, MatterRef, PostalAddress, ServicePoint};

use super::calendar;
use super::{handle, Case, Command, Context, Reference};

/// 2026-11-20 10:00 Beijing time, a Friday.
pub const NOW: i64 = 1_795_140_000_000;
pub const SELF_EMPLOYED: &str = "11610429MB2912345A4000104010000";

pub fn context(reference: &Reference) -> Context<'_> {
    Context { now: NOW, reference }
}

/// 10:00 on `day`.
pub fn context_at(reference: &Reference, day: i32) -> Context<'_> {
    Context { now: i64::from(day) * 86_400_000 + 2 * 3_600_000, reference }
}

/// An application for `matter` at a village station with every material handed in.
pub fn application_for(reference: &Reference, matter: &str) -> ApplicationSubmitted {
    let matter = reference.matter(matter).unwrap();
    ApplicationSubmitted {
        event_id: "61042920261120000001/1".into(),
        case_number: "61042920261120000001".into(),
        occurred_at: NOW,
        case_version: 1,
        channel: "counter".into(),
        matter: MatterRef {
            basic_code: matter.basic_code.clone(),
            implementation_code: matter.implementation_code.clone(),
            name: matter.name.clone(),
            version: matter.version,
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
            name: "土桥1村便民服务站".into(),
            tier: "village".into(),
            division_code: "610429100201".into(),
        },
        materials: matter.materials.iter().map(|m| m.name.clone()).collect(),
        delivery_method: "mail".into(),
        delivery_address: Some(PostalAddress {
            name: "张三".into(),
            phone: "13912345678".into(),
            province: "陕西省".into(),
            city: "咸阳市".into(),
            county: "旬邑县".into(),
            address: "土桥镇土桥1村3组12号".into(),
            post_code: "711300".into(),
        }),
        faulty_materials: Vec::new(),
        commits_to_supply: false,
        domicile_township: None,
        received_by: "刘代办".into(),
        fee_relief: None,
        window: None,
    }
}

pub fn application(reference: &Reference) -> ApplicationSubmitted {
    application_for(reference, SELF_EMPLOYED)
}

/// Applies a command and everything the hub does in reaction, as the hub's services do.
pub fn run_with(case: Case, command: Command, ctx: &Context<'_>) -> (Case, Vec<Event>) {
    let handled = handle(case, &command, ctx).unwrap_or_else(|r| panic!("{command:?} rejected: {r}"));
    (handled.case, handled.decided.into_iter().chain(handled.reactions).collect())
}

pub fn run(case: Case, command: Command, reference: &Reference) -> (Case, Vec<Event>) {
    run_with(case, command, &context(reference))
}

/// The kinds of `events`, but for the text messages to the applicant, which `texts` lists.
pub fn kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().filter(|e| !matches!(e, Event::SmsRequested(_))).map(Event::kind).collect()
}

/// `events` without the text messages to the applicant.
pub fn without_texts(events: Vec<Event>) -> Vec<Event> {
    events.into_iter().filter(|e| !matches!(e, Event::SmsRequested(_))).collect()
}

/// The templates of the text messages among `events`.
pub fn texts(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::SmsRequested(text) => Some(text.template.as_str()),
            _ => None,
        })
        .collect()
}

/// A case accepted and routed at `NOW`, promised in `promised_days` working days, with a
/// statutory limit five working days later.
pub fn accepted_case(reference: &Reference, promised_days: u32) -> Case {
    let (mut case, _) = run(Case::open(&application(reference)), Command::Examine, reference);
    case.promised_date = Some(reference.calendar.add_working_days(calendar::day_of(NOW), promised_days));
    case.statutory_date = Some(reference.calendar.add_working_days(calendar::day_of(NOW), promised_days + 5));
    case
}
