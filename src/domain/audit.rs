//! Audit events: who did what to which record, and how it ended. Built only from ids and
//! outcomes, so no secret can reach the trail.

use serde::{Deserialize, Serialize};

use super::{ElicitationId, GrantId, ProviderId, ServiceId, Subject, Timestamp};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Actor {
    Service(ServiceId),
    User(Subject),
    Admin(Subject),
    System,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Denied,
    Failure,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEvent {
    #[serde(with = "time::serde::rfc3339")]
    pub at: Timestamp,
    pub actor: Actor,
    /// A fixed verb, e.g. `elicitation_created`, `grant_redeemed`, `identity_mismatch`.
    pub action: String,
    pub outcome: Outcome,
    pub elicitation: Option<ElicitationId>,
    pub grant: Option<GrantId>,
    pub service: Option<ServiceId>,
    pub subject: Option<Subject>,
    pub provider: Option<ProviderId>,
    /// A short fixed reason (a problem type), never free text from a request.
    pub reason: Option<String>,
}

impl AuditEvent {
    pub fn new(actor: Actor, action: &str, outcome: Outcome) -> Self {
        Self {
            at: super::now(),
            actor,
            action: action.to_owned(),
            outcome,
            elicitation: None,
            grant: None,
            service: None,
            subject: None,
            provider: None,
            reason: None,
        }
    }

    pub fn elicitation(mut self, e: &super::Elicitation) -> Self {
        self.elicitation = Some(e.id.clone());
        self.grant = e.grant_id.clone().or(self.grant);
        self.service = Some(e.service.clone());
        self.subject = Some(e.subject.clone());
        self.provider = Some(e.provider.clone());
        self
    }

    pub fn grant(mut self, g: &super::Grant) -> Self {
        self.grant = Some(g.id.clone());
        self.service = Some(g.service.clone());
        self.subject = Some(g.subject.clone());
        self.provider = Some(g.provider.clone());
        self
    }

    pub fn reason(mut self, reason: &str) -> Self {
        self.reason = Some(reason.to_owned());
        self
    }
}
