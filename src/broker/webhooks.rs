//! Completion webhooks: when an elicitation settles (completed, declined, failed) or
//! starts waiting for an administrator (`awaiting_approval`), the broker tells its
//! service's `webhook_url`, so the service need not long-poll.
//!
//! Invariants:
//! - the trigger is the settling audit event, so a webhook follows exactly the state
//!   changes the trail shows, and only after the event is stored;
//! - the body is `{type, elicitation_id, status}` and nothing else: never a handle or a
//!   credential (the service reads the handle through the authenticated API);
//! - Standard Webhooks headers; the `webhook-id` stays the same across the retries of one
//!   event, and each attempt gets a fresh timestamp and signature;
//! - delivery runs in the background with a short timeout, no redirects, and a bounded
//!   number of attempts with exponential backoff; every attempt is audited with its outcome.
//!   Deliveries still queued when the process stops are lost; long-poll stays the fallback.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use consent_broker_api::{ElicitationStatus, WebhookEvent, WebhookEventType, webhook_headers};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use url::Url;

use super::Broker;
use crate::Error;
use crate::domain::{Actor, AuditAction, AuditEvent, AuditReason, Outcome, WebhookKey};

/// Attempts per event, the first one included.
const ATTEMPTS: u32 = 5;
/// Wait before the second attempt; each later wait is four times the previous one
/// (1 s, 4 s, 16 s, 64 s).
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Events waiting for a delivery slot; beyond this, new events are dropped (and logged).
const QUEUE: usize = 10_000;

/// Where a delivery goes.
enum Destination {
    /// A configured service's webhook.
    Known { url: Url, key: WebhookKey },
    /// A registered service's, read from the store when it is delivered (if it has one).
    Registered(crate::domain::ServiceId),
}

/// One event on its way to one service.
pub(super) struct Delivery {
    /// `webhook-id`: the same for every attempt.
    id: String,
    to: Destination,
    body: Vec<u8>,
    /// The settling event, whose ids the delivery's own audit events repeat.
    trigger: AuditEvent,
}

/// The queue between `Broker::audit` and the delivery task, and the client that delivers.
pub(super) struct Outbox {
    sender: mpsc::Sender<Delivery>,
    receiver: Mutex<Option<mpsc::Receiver<Delivery>>>,
    http: reqwest::Client,
}

impl Outbox {
    pub(super) fn new() -> Result<Self, Error> {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(5))
            .user_agent(concat!("consent-broker/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Internal(format!("webhook client: {e}")))?;
        Ok(Self {
            sender,
            receiver: Mutex::new(Some(receiver)),
            http,
        })
    }
}

/// The status a settling audit action reports, or `None` for any other action. Exhaustive,
/// so a new action must say whether it settles an elicitation.
fn settled_status(action: &AuditAction) -> Option<ElicitationStatus> {
    match action {
        AuditAction::ElicitationCompleted => Some(ElicitationStatus::Completed),
        AuditAction::ElicitationDeclined => Some(ElicitationStatus::Declined),
        AuditAction::ElicitationFailed => Some(ElicitationStatus::Failed),
        AuditAction::ApprovalRequested => Some(ElicitationStatus::AwaitingApproval),
        AuditAction::ElicitationCreated
        | AuditAction::IdentityMismatch
        | AuditAction::ApiKeyRejected
        | AuditAction::OauthAuthorizationStarted
        | AuditAction::OauthCallbackRejected
        | AuditAction::GrantCreated
        | AuditAction::GrantReused
        | AuditAction::GrantSuperseded
        | AuditAction::GrantRedeemed
        | AuditAction::ForeignHandlePresented
        | AuditAction::GrantRefreshed
        | AuditAction::GrantRefreshFailed
        | AuditAction::GrantNeedsReauth
        | AuditAction::GrantRevoked
        | AuditAction::UpstreamRevocation
        | AuditAction::UserGrantsRevoked
        | AuditAction::ProviderGrantsRevoked
        | AuditAction::GrantsRewrapped
        | AuditAction::SignedIn
        | AuditAction::AuditExported
        | AuditAction::WebhookDelivered
        | AuditAction::WebhookAttemptFailed
        | AuditAction::WebhookAbandoned
        | AuditAction::PolicyRefused
        | AuditAction::ApprovalGranted
        | AuditAction::ApprovalRefused
        | AuditAction::GrantExpired
        | AuditAction::UserDeprovisioned
        | AuditAction::SecurityEventRejected
        | AuditAction::SubjectProofRefused
        | AuditAction::ServiceRegistered
        | AuditAction::ServiceApproved
        | AuditAction::ServiceUpdated
        | AuditAction::ServiceSuspended
        | AuditAction::ServiceResumed
        | AuditAction::ServiceDeleted
        | AuditAction::ServiceTokenRotated
        | AuditAction::InitialTokenMinted
        | AuditAction::RegistrationRefused
        // Written by another build: this one cannot tell what it settles.
        | AuditAction::Unrecognised(_) => None,
    }
}

impl Broker {
    /// Queues a webhook when `event` settles an elicitation of a service that has one.
    pub(super) fn queue_webhook(&self, event: &AuditEvent) {
        let (Some(status), Some(elicitation), Some(service)) = (
            settled_status(&event.action),
            event.elicitation.as_ref(),
            event.service.as_ref(),
        ) else {
            return;
        };
        let to = match self.settings.service(service) {
            Some(configured) => match (&configured.webhook_url, &configured.webhook_key) {
                (Some(url), Some(key)) => Destination::Known {
                    url: url.clone(),
                    key: key.clone(),
                },
                _ => return,
            },
            None => Destination::Registered(service.clone()),
        };
        let body = WebhookEvent {
            type_: WebhookEventType::ElicitationSettled,
            elicitation_id: elicitation.to_string(),
            status,
        };
        let Ok(body) = serde_json::to_vec(&body) else {
            return;
        };
        let delivery = Delivery {
            id: format!("msg_{}", crate::random::token::<16>()),
            to,
            body,
            trigger: event.clone(),
        };
        if self.outbox.sender.try_send(delivery).is_err() {
            tracing::warn!(
                elicitation = elicitation.as_str(),
                "webhook queue full: event dropped (the service can still long-poll)"
            );
        }
    }

    /// Delivers queued webhooks until the task is aborted (by `App::run` at shutdown).
    /// Only the first caller gets the queue; later calls return at once.
    pub async fn deliver_webhooks(self: Arc<Self>) {
        let receiver = self
            .outbox
            .receiver
            .lock()
            .map(|mut r| r.take())
            .unwrap_or(None);
        let Some(mut receiver) = receiver else {
            return;
        };
        let mut running = JoinSet::new();
        loop {
            tokio::select! {
                next = receiver.recv() => match next {
                    Some(delivery) => {
                        running.spawn(self.clone().deliver(delivery));
                    }
                    None => break,
                },
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
        }
        while running.join_next().await.is_some() {}
    }

    async fn deliver(self: Arc<Self>, delivery: Delivery) {
        let (url, key) = match delivery.to {
            Destination::Known { ref url, ref key } => (url.clone(), key.clone()),
            // A registered service as it stands now: none, suspended or without a webhook
            // gets nothing.
            Destination::Registered(ref id) => match self.service(id).await {
                Ok(Some(service)) => match (&service.webhook_url, &service.webhook_key) {
                    (Some(url), Some(key)) => (url.clone(), key.clone()),
                    _ => return,
                },
                _ => return,
            },
        };
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let outcome = self.attempt(&delivery, &url, &key).await;
            let (action, result, reason) = match &outcome {
                Ok(()) => (AuditAction::WebhookDelivered, Outcome::Success, None),
                Err(reason) if attempt == ATTEMPTS => (
                    AuditAction::WebhookAbandoned,
                    Outcome::Failure,
                    Some(reason),
                ),
                Err(reason) => (
                    AuditAction::WebhookAttemptFailed,
                    Outcome::Failure,
                    Some(reason),
                ),
            };
            let mut event = delivery.trigger.clone();
            event.at = crate::domain::now();
            event.actor = Actor::System;
            event.action = action;
            event.outcome = result;
            event.reason = reason.map(AuditReason::from);
            if let Err(e) = self.audit(event).await {
                tracing::warn!(error = %e, "webhook attempt not audited");
            }
            if outcome.is_ok() {
                return;
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff *= 4;
            }
        }
    }

    /// One POST. The error is a short fixed reason for the audit trail.
    async fn attempt(&self, d: &Delivery, url: &Url, key: &WebhookKey) -> Result<(), String> {
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let signature = key.sign(&d.id, timestamp, &d.body);
        let response = self
            .outbox
            .http
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(webhook_headers::ID, &d.id)
            .header(webhook_headers::TIMESTAMP, timestamp.to_string())
            .header(webhook_headers::SIGNATURE, signature)
            .body(d.body.clone())
            .send()
            .await;
        match response {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("status_{}", r.status().as_u16())),
            Err(e) if e.is_timeout() => Err("timeout".into()),
            Err(e) if e.is_connect() => Err("connect".into()),
            Err(_) => Err("transport".into()),
        }
    }
}
