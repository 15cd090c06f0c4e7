//! The string fields of the contracts that the core decides on, read once into enums: the Avro
//! contracts keep their strings, the rules match on these.
use contracts::DeliveryCompleted;

/// How the applicant takes the result, as chosen at acceptance (`delivery_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMethod {
    /// By post (邮政寄递).
    Mail,
    /// At the accepting point's window.
    Window,
    /// From a self-service locker, with a code: the accepting centre's, or the county hall's.
    Locker,
    /// Back at the village station that took the application in, from its clerk.
    Station,
}

impl DeliveryMethod {
    pub const ALL: [DeliveryMethod; 4] =
        [DeliveryMethod::Mail, DeliveryMethod::Window, DeliveryMethod::Locker, DeliveryMethod::Station];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryMethod::Mail => "mail",
            DeliveryMethod::Window => "window",
            DeliveryMethod::Locker => "locker",
            DeliveryMethod::Station => "village_station",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryMethod> {
        DeliveryMethod::ALL.into_iter().find(|method| method.as_str() == text)
    }

    /// The method a case's application names; intake admits only these, and anything else
    /// is handed over at the window.
    pub fn of(text: &str) -> DeliveryMethod {
        DeliveryMethod::parse(text).unwrap_or(DeliveryMethod::Window)
    }
}

/// How a mailing ended, as the carrier's final trace reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Signed for by the receiver (妥投).
    Signed,
    /// Not delivered: refused, unreachable, returned.
    Failed,
}

impl DeliveryOutcome {
    pub fn of(completed: &DeliveryCompleted) -> DeliveryOutcome {
        if completed.outcome == "signed" {
            DeliveryOutcome::Signed
        } else {
            DeliveryOutcome::Failed
        }
    }
}
