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
    /// From the county hall's self-service locker, with a code.
    Locker,
}

impl DeliveryMethod {
    pub const ALL: [DeliveryMethod; 3] = [DeliveryMethod::Mail, DeliveryMethod::Window, DeliveryMethod::Locker];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryMethod::Mail => "mail",
            DeliveryMethod::Window => "window",
            DeliveryMethod::Locker => "locker",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryMethod> {
        DeliveryMethod::ALL.into_iter().find(|method| method.as_str() == text)
    }

    /// The method a case's application names; intake admits only the three, and anything else
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
