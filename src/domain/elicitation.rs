//! Elicitations: one request, by one service, for one user's consent to one provider.
//!
//! State machine: `pending` → `completed | declined | failed`, each terminal, or
//! `pending` → `awaiting_approval` (the user consented to a scope an administrator must
//! approve; `expires_at` then becomes the end of the approval window) → `completed |
//! declined`. An open elicitation past its expiry reads as `expired`; nothing can settle
//! it after that.

use serde::{Deserialize, Serialize};

use super::{ElicitationId, GrantId, ProviderId, Scopes, ServiceId, Subject, Timestamp};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElicitationStatus {
    Pending,
    AwaitingApproval,
    Completed,
    Declined,
    Expired,
    Failed,
}

impl ElicitationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::AwaitingApproval => "awaiting_approval",
            Self::Completed => "completed",
            Self::Declined => "declined",
            Self::Expired => "expired",
            Self::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Elicitation {
    pub id: ElicitationId,
    pub service: ServiceId,
    pub subject: Subject,
    pub provider: ProviderId,
    pub scopes: Scopes,
    pub message: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: Timestamp,
    /// As stored; read [`Elicitation::status_at`] for what it is now.
    pub status: ElicitationStatus,
    pub grant_id: Option<GrantId>,
    /// Why it failed or was declined, in words safe to show the service.
    pub reason: Option<String>,
}

impl Elicitation {
    /// The status as of `now`: a pending elicitation past its expiry is expired.
    pub fn status_at(&self, now: Timestamp) -> ElicitationStatus {
        match self.status {
            ElicitationStatus::Pending | ElicitationStatus::AwaitingApproval
                if now >= self.expires_at =>
            {
                ElicitationStatus::Expired
            }
            s => s,
        }
    }

    /// Still waiting for someone: the user (`pending`) or an administrator.
    pub fn is_open(&self, now: Timestamp) -> bool {
        matches!(
            self.status_at(now),
            ElicitationStatus::Pending | ElicitationStatus::AwaitingApproval
        )
    }
}
