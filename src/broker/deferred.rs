//! Audit events written off the request path: a refusal whose answer must not take longer
//! than another's because of its audit write (a handle bound to another service must cost
//! what an unknown handle costs, or timing would tell a caller the handle exists).
//!
//! Invariants: an event is never dropped by this queue. When the queue is full (or its
//! writer has stopped) the event is written inline instead; a write that fails is retried
//! with backoff; at shutdown the writer drains what is queued before it stops.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use super::Broker;
use crate::Error;
use crate::domain::AuditEvent;

/// Events waiting for the writer.
const QUEUE: usize = 10_000;
/// Attempts per event before it is given up (and logged as lost).
const ATTEMPTS: u32 = 6;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

pub(super) struct Deferred {
    sender: mpsc::Sender<AuditEvent>,
    receiver: Mutex<Option<mpsc::Receiver<AuditEvent>>>,
    stop: Notify,
}

impl Deferred {
    pub(super) fn new() -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        Self {
            sender,
            receiver: Mutex::new(Some(receiver)),
            stop: Notify::new(),
        }
    }
}

impl Broker {
    /// Audits `event` without waiting for the store, unless the queue cannot take it: then
    /// inline, like [`Broker::audit`].
    pub(crate) async fn audit_off_path(&self, event: AuditEvent) -> Result<(), Error> {
        match self.deferred.sender.try_send(event) {
            Ok(()) => Ok(()),
            Err(
                mpsc::error::TrySendError::Full(event) | mpsc::error::TrySendError::Closed(event),
            ) => self.audit(event).await,
        }
    }

    /// Writes queued events until [`Broker::stop_deferred_audits`], then drains the queue.
    /// Only the first caller gets the queue; later calls return at once.
    pub async fn write_deferred_audits(self: Arc<Self>) {
        let receiver = self
            .deferred
            .receiver
            .lock()
            .map(|mut r| r.take())
            .unwrap_or(None);
        let Some(mut receiver) = receiver else {
            return;
        };
        loop {
            tokio::select! {
                next = receiver.recv() => match next {
                    Some(event) => self.write_with_retries(event).await,
                    None => return,
                },
                () = self.deferred.stop.notified() => break,
            }
        }
        receiver.close();
        while let Some(event) = receiver.recv().await {
            self.write_with_retries(event).await;
        }
    }

    /// Tells the writer to drain what is queued and stop.
    pub fn stop_deferred_audits(&self) {
        self.deferred.stop.notify_one();
    }

    async fn write_with_retries(&self, event: AuditEvent) {
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            match self.audit(event.clone()).await {
                Ok(()) => return,
                Err(e) if attempt == ATTEMPTS => {
                    tracing::error!(action = %event.action, error = %e, "audit event lost after retries");
                }
                Err(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
            }
        }
    }
}
