//! The verdict of a health check: a code ordered as Argo CD orders them, and a message.

/// Ordered from best to worst as Argo CD orders them (gitops-engine `healthOrder`):
/// Healthy < Suspended < Progressing < Missing < Degraded < Unknown.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum HealthCode {
    /// Working as intended.
    Healthy,
    /// Paused or suspended on purpose (a suspended `CronJob`, a paused rollout).
    Suspended,
    /// Not healthy yet, but may become so.
    Progressing,
    /// Not on the cluster.
    Missing,
    /// Failed, or not healthy in time.
    Degraded,
    /// The health could not be assessed.
    Unknown,
}

impl HealthCode {
    pub(super) const ALL: [HealthCode; 6] = [
        HealthCode::Healthy,
        HealthCode::Suspended,
        HealthCode::Progressing,
        HealthCode::Missing,
        HealthCode::Degraded,
        HealthCode::Unknown,
    ];

    /// The code as Argo CD writes it in `status.health.status`.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            HealthCode::Healthy => "Healthy",
            HealthCode::Suspended => "Suspended",
            HealthCode::Progressing => "Progressing",
            HealthCode::Missing => "Missing",
            HealthCode::Degraded => "Degraded",
            HealthCode::Unknown => "Unknown",
        }
    }

    pub(super) fn parse(s: &str) -> Option<HealthCode> {
        Self::ALL.into_iter().find(|code| code.as_str() == s)
    }
}

/// The health of one object: its code and a human-readable message (may be empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// The health code.
    pub code: HealthCode,
    /// Why, when the code needs explaining (may be empty).
    pub message: String,
}

impl Health {
    pub(super) fn new(code: HealthCode, message: impl Into<String>) -> Health {
        Health {
            code,
            message: message.into(),
        }
    }
}

/// Worst of the given codes; Healthy for an empty iterator (Argo: an app whose resources
/// have no health notion is Healthy).
pub fn worst(codes: impl IntoIterator<Item = HealthCode>) -> HealthCode {
    codes.into_iter().max().unwrap_or(HealthCode::Healthy)
}
