//! Services registered at run time, beside those declared in config: how a caller's token
//! finds one (when no configured service holds it), the lifecycle an administrator drives
//! (approve with scopes possibly narrowed, edit, suspend with or without revoking its
//! grants, resume, delete with every grant revoked), RFC 7591 self-registration with an
//! initial access token, and RFC 7592 read, token rotation and deregistration with the
//! registration access token. Every step is audited; tokens are handed out once and only
//! their digests are stored.

use std::sync::Arc;

use super::Broker;
use crate::Error;
use crate::config::Service;
use crate::config::service_identity::{PreviousToken, ServiceIdentity};
use crate::domain::service::{RetiringToken, mint, prefixes};
use crate::domain::{
    Actor, AuditAction, AuditEvent, InitialAccessToken, Outcome, ProviderId, RegisteredBy,
    RegisteredService, Scope, ScopeGrants, ServiceId, ServiceStatus, ServiceWebhook, Subject,
    SubjectProof, Timestamp, TokenDigest, WebhookKey,
};
use crate::store::admin::GrantFilter;

/// How long a rotated-out token keeps working beside the new one.
pub const ROTATION_OVERLAP: time::Duration = time::Duration::hours(24);
/// Limits on what a registration or an edit may say.
const MAX_NAME: usize = 100;
const MAX_CONTACTS: usize = 5;
const MAX_CONTACT: usize = 254;
const MAX_RESOURCE: usize = 2048;
/// Initial access tokens: at most this many uses and this long a life.
pub const MAX_INITIAL_USES: u32 = 100;
pub const MAX_INITIAL_HOURS: u32 = 24 * 30;

/// A service's description, as a registration or an administrator's edit gives it
/// (unchecked; [`Broker::check_description`] validates it).
#[derive(Debug, Default, Clone)]
pub struct ServiceDescription {
    pub name: String,
    pub contacts: Vec<String>,
    /// Provider id → scopes (what it asks for, or may ask for).
    pub scopes: std::collections::BTreeMap<String, Vec<String>>,
    pub resource: Option<String>,
}

/// A service just registered, with the credentials handed out this once.
pub struct Issued {
    pub service: RegisteredService,
    /// Its bearer token (`cbs_…`).
    pub token: String,
    /// RFC 7592's registration access token (`cbr_…`), for self-registration.
    pub registration_token: Option<String>,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("service", &self.service.id)
            .finish_non_exhaustive()
    }
}

/// A description that passed [`Broker::check_description`].
struct Checked {
    name: String,
    contacts: Vec<String>,
    scopes: ScopeGrants,
    resource: Option<String>,
}

/// What an administrator's edit sets.
#[derive(Debug, Clone)]
pub struct ServiceEdit {
    pub description: ServiceDescription,
    pub subject_proof: SubjectProof,
    /// Where completion webhooks go (empty: none). A new or changed URL gets a new
    /// signing secret, shown once.
    pub webhook_url: String,
}

/// What an edit did, and the new webhook secret to show once, if one was made.
pub struct Edited {
    pub service: RegisteredService,
    pub webhook_secret: Option<String>,
}

/// A registered service may act only while active.
fn usable(r: &RegisteredService) -> Result<(), Error> {
    match r.status {
        ServiceStatus::Active => Ok(()),
        ServiceStatus::Pending => Err(Error::ServicePending),
        ServiceStatus::Suspended => Err(Error::ServiceSuspended),
    }
}

/// A webhook URL: https, or http on a loopback address; no fragment.
fn check_webhook_url(raw: &str) -> Result<url::Url, Error> {
    url::Url::parse(raw)
        .ok()
        .filter(|u| {
            raw.len() <= MAX_RESOURCE
                && u.fragment().is_none()
                && (u.scheme() == "https"
                    || (u.scheme() == "http" && crate::config::is_loopback(u)))
        })
        .ok_or_else(|| {
            Error::InvalidRequest(
                "Webhook URL: an https URL (http only on loopback), without a fragment".into(),
            )
        })
}

/// An id that reads like the name: its slug and six random hex digits.
fn new_id(name: &str) -> Option<ServiceId> {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    let slug = if slug.is_empty() { "service" } else { slug };
    let suffix = hex::encode(crate::random::bytes::<3>());
    ServiceId::parse(format!("{slug}-{suffix}")).ok()
}

impl Broker {
    /// The service a registered record makes, as the rest of the broker uses services
    /// (its webhook secret opened by the vault; one that does not open leaves it without
    /// a webhook, logged).
    fn runtime(&self, r: &RegisteredService) -> Service {
        let webhook = r.webhook.as_ref().and_then(|w| {
            let opened = self
                .vault
                .open(r.webhook_seal_context(), &w.secret)
                .ok()
                .and_then(|secret| std::str::from_utf8(&secret).ok().map(WebhookKey::parse))
                .and_then(Result::ok);
            if opened.is_none() {
                tracing::warn!(service = r.id.as_str(), "webhook secret does not open");
            }
            opened.map(|key| (w.url.clone(), key))
        });
        let (webhook_url, webhook_key) = webhook.unzip();
        Service {
            id: r.id.clone(),
            name: r.name.clone(),
            token_sha256: Some(*r.token_sha256.bytes()),
            identity: ServiceIdentity {
                previous_token: r.previous_token.as_ref().map(|p| PreviousToken {
                    sha256: *p.sha256.bytes(),
                    valid_until: p.valid_until,
                }),
                subject_proof: r.subject_proof,
                resource: r.resource.clone(),
                assertion_keys: None,
                workload: None,
            },
            allow: r.allow.clone(),
            webhook_url,
            webhook_key,
        }
    }

    /// The service with this id, declared in config or registered, if it may act now (a
    /// pending or suspended one is an error that says so).
    pub async fn service(&self, id: &ServiceId) -> Result<Option<Arc<Service>>, Error> {
        if let Some(s) = self.settings.services.iter().find(|s| &s.id == id) {
            return Ok(Some(s.clone()));
        }
        match self.stores.services.registered_service(id).await? {
            Some(r) => {
                usable(&r)?;
                Ok(Some(Arc::new(self.runtime(&r))))
            }
            None => Ok(None),
        }
    }

    /// The registered service whose token (current, or rotated out within its overlap)
    /// this is; a pending or suspended one is refused with its own problem.
    pub(super) async fn registered_caller(
        &self,
        presented: &str,
        now: Timestamp,
    ) -> Result<Arc<Service>, Error> {
        if !presented.starts_with(prefixes::SERVICE_TOKEN) {
            return Err(Error::Unauthenticated);
        }
        let digest = TokenDigest::of(presented);
        let Some(r) = self.stores.services.service_by_credential(&digest).await? else {
            return Err(Error::Unauthenticated);
        };
        let current = r.token_sha256 == digest;
        let retiring = r
            .previous_token
            .as_ref()
            .is_some_and(|p| p.sha256 == digest && now < p.valid_until);
        // A service declared in config later under the same id wins: the registered one
        // must never act under another's id.
        let shadowed = self.settings.services.iter().any(|s| s.id == r.id);
        if !(current || retiring) || shadowed {
            return Err(Error::Unauthenticated);
        }
        usable(&r)?;
        Ok(Arc::new(self.runtime(&r)))
    }

    /// Every registered service (the console's list).
    pub async fn registered_services(&self) -> Result<Vec<RegisteredService>, Error> {
        let mut all = self.stores.services.registered_services().await?;
        all.sort_by(|a, b| {
            (a.status != ServiceStatus::Pending, &a.name)
                .cmp(&(b.status != ServiceStatus::Pending, &b.name))
        });
        Ok(all)
    }

    pub async fn registered_service(&self, id: &ServiceId) -> Result<RegisteredService, Error> {
        self.stores
            .services
            .registered_service(id)
            .await?
            .ok_or(Error::NoSuchRoute)
    }

    /// Validates a description: a name, a few contacts, configured providers with
    /// well-formed scopes, an http(s) resource.
    fn check_description(&self, d: &ServiceDescription) -> Result<Checked, Error> {
        let bad = |why: String| Err(Error::InvalidRequest(why));
        let name = d.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control)
        {
            return bad(format!(
                "client_name: 1 to {MAX_NAME} characters, no control characters"
            ));
        }
        if d.contacts.len() > MAX_CONTACTS {
            return bad(format!("contacts: at most {MAX_CONTACTS}"));
        }
        let mut contacts = Vec::new();
        for c in &d.contacts {
            let c = c.trim();
            if c.is_empty()
                || c.len() > MAX_CONTACT
                || c.chars().any(|ch| ch.is_control() || ch.is_whitespace())
            {
                return bad(format!(
                    "contacts: each 1 to {MAX_CONTACT} characters without spaces"
                ));
            }
            contacts.push(c.to_owned());
        }
        let mut scopes = ScopeGrants::new();
        for (provider, wanted) in &d.scopes {
            let id = ProviderId::parse(provider)
                .ok()
                .filter(|p| self.settings.providers.contains_key(p))
                .ok_or_else(|| {
                    Error::InvalidRequest(format!(
                        "no provider `{}` is configured here",
                        provider.chars().take(64).collect::<String>()
                    ))
                })?;
            let mut set = std::collections::BTreeSet::new();
            for s in wanted {
                set.insert(
                    Scope::parse(s)
                        .map_err(|e| Error::InvalidRequest(format!("scope for {id}: {e}")))?,
                );
            }
            scopes.insert(id, set);
        }
        if scopes.is_empty() {
            return bad("name at least one provider".into());
        }
        let resource = match d
            .resource
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
        {
            None => None,
            Some(r) => {
                let url = url::Url::parse(r).ok().filter(|u| {
                    r.len() <= MAX_RESOURCE
                        && (u.scheme() == "https"
                            || (u.scheme() == "http" && crate::config::is_loopback(u)))
                        && u.fragment().is_none()
                });
                if url.is_none() {
                    return bad(
                        "resource: an https URL (http only on loopback), without a fragment".into(),
                    );
                }
                Some(r.to_owned())
            }
        };
        Ok(Checked {
            name: name.to_owned(),
            contacts,
            scopes,
            resource,
        })
    }

    /// An administrator mints an initial access token: `uses` registrations, for `hours`.
    pub async fn mint_initial_token(
        &self,
        admin: &Subject,
        label: &str,
        uses: u32,
        hours: u32,
    ) -> Result<(String, InitialAccessToken), Error> {
        let label = label.trim();
        if label.is_empty()
            || label.chars().count() > MAX_NAME
            || label.chars().any(char::is_control)
        {
            return Err(Error::InvalidRequest(format!(
                "Label: 1 to {MAX_NAME} characters"
            )));
        }
        if !(1..=MAX_INITIAL_USES).contains(&uses) || !(1..=MAX_INITIAL_HOURS).contains(&hours) {
            return Err(Error::InvalidRequest(format!(
                "Uses: 1 to {MAX_INITIAL_USES}; valid for: 1 to {MAX_INITIAL_HOURS} hours"
            )));
        }
        let now = self.clock.now();
        let (token, sha256) = mint(prefixes::INITIAL_TOKEN);
        let record = InitialAccessToken {
            sha256,
            label: label.to_owned(),
            uses_left: uses,
            expires_at: now + time::Duration::hours(hours.into()),
            minted_by: admin.clone(),
            minted_at: now,
        };
        self.stores.services.insert_initial_token(&record).await?;
        self.audit(AuditEvent::new(
            Actor::Admin(admin.clone()),
            AuditAction::InitialTokenMinted,
            Outcome::Success,
        ))
        .await?;
        Ok((token, record))
    }

    pub async fn initial_tokens(&self) -> Result<Vec<InitialAccessToken>, Error> {
        let mut all = self.stores.services.initial_tokens().await?;
        all.sort_by_key(|t| std::cmp::Reverse(t.minted_at));
        Ok(all)
    }

    /// RFC 7591: a service registers itself with an initial access token. It starts
    /// `pending` and can do nothing until an administrator approves it.
    pub async fn register_with_initial_token(
        &self,
        initial: &str,
        description: &ServiceDescription,
    ) -> Result<Issued, Error> {
        // The token first, as every API call authenticates before its body is judged;
        // a use is taken only once the description is valid.
        let digest = TokenDigest::of(initial.trim());
        let now = self.clock.now();
        let live = self
            .stores
            .services
            .initial_tokens()
            .await?
            .iter()
            .any(|t| t.sha256 == digest && t.uses_left > 0 && now < t.expires_at);
        if !live {
            return Err(Error::RegistrationTokenRejected);
        }
        let checked = self.check_description(description)?;
        let Some(token) = self
            .stores
            .services
            .use_initial_token(&digest, self.clock.now())
            .await?
        else {
            return Err(Error::RegistrationTokenRejected);
        };
        let by = RegisteredBy::InitialToken { label: token.label };
        self.insert(checked, by).await
    }

    /// An administrator registers a service in the console: active at once, allowed what
    /// the description names.
    pub async fn register_by_admin(
        &self,
        admin: &Subject,
        description: &ServiceDescription,
    ) -> Result<Issued, Error> {
        let checked = self.check_description(description)?;
        let by = RegisteredBy::Admin {
            admin: admin.clone(),
        };
        self.insert(checked, by).await
    }

    /// Stores a new service under a fresh id: self-registered ones `pending` with nothing
    /// allowed yet, an administrator's `active` with what it names.
    async fn insert(&self, d: Checked, by: RegisteredBy) -> Result<Issued, Error> {
        let (token, token_sha256) = mint(prefixes::SERVICE_TOKEN);
        let (status, allow, approved_by, registration) = match &by {
            RegisteredBy::Admin { admin } => (
                ServiceStatus::Active,
                d.scopes.clone(),
                Some(admin.clone()),
                None,
            ),
            RegisteredBy::InitialToken { .. } => (
                ServiceStatus::Pending,
                ScopeGrants::new(),
                None,
                Some(mint(prefixes::REGISTRATION_TOKEN)),
            ),
        };
        for _ in 0..5 {
            let Some(id) =
                new_id(&d.name).filter(|id| !self.settings.services.iter().any(|s| &s.id == id))
            else {
                continue;
            };
            let service = RegisteredService {
                id,
                name: d.name.clone(),
                contacts: d.contacts.clone(),
                status,
                requested: d.scopes.clone(),
                allow: allow.clone(),
                resource: d.resource.clone(),
                subject_proof: SubjectProof::Off,
                token_sha256,
                previous_token: None,
                registration_token_sha256: registration.as_ref().map(|(_, digest)| *digest),
                registered_by: by.clone(),
                created_at: self.clock.now(),
                approved_by: approved_by.clone(),
                webhook: None,
            };
            if self.stores.services.insert_service(&service).await? {
                // Self-registration is the service's own act; the console's, the admin's.
                let actor = match &by {
                    RegisteredBy::Admin { admin } => Actor::Admin(admin.clone()),
                    RegisteredBy::InitialToken { .. } => Actor::Service(service.id.clone()),
                };
                let mut event =
                    AuditEvent::new(actor, AuditAction::ServiceRegistered, Outcome::Success);
                event.service = Some(service.id.clone());
                self.audit(event).await?;
                return Ok(Issued {
                    service,
                    token,
                    registration_token: registration.map(|(t, _)| t),
                });
            }
        }
        Err(Error::Internal(
            "no free service id after five tries".into(),
        ))
    }

    /// Audits a refused registration token (never the token itself). Callers audit only
    /// refusals within the address's failed-credential allowance, so a flood of forged
    /// tokens cannot flood the trail.
    pub async fn audit_registration_refused(
        &self,
        service: Option<&ServiceId>,
    ) -> Result<(), Error> {
        let mut event = AuditEvent::new(
            Actor::System,
            AuditAction::RegistrationRefused,
            Outcome::Denied,
        )
        .reason(crate::domain::ErrorKind::RegistrationTokenRejected);
        event.service = service.cloned();
        self.audit(event).await
    }

    /// RFC 7592: the service whose registration access token this is.
    pub async fn registration_of(
        &self,
        id: &ServiceId,
        presented: &str,
    ) -> Result<RegisteredService, Error> {
        let digest = TokenDigest::of(presented.trim());
        let found = if presented.starts_with(prefixes::REGISTRATION_TOKEN) {
            self.stores.services.service_by_credential(&digest).await?
        } else {
            None
        };
        match found {
            Some(r) if &r.id == id && r.registration_token_sha256 == Some(digest) => Ok(r),
            _ => Err(Error::RegistrationTokenRejected),
        }
    }

    /// A new token, by the service itself (RFC 7592-style, with its registration token) or
    /// an administrator; the old one keeps working for [`ROTATION_OVERLAP`] and not after.
    pub async fn rotate_service_token(
        &self,
        actor: Actor,
        r: &RegisteredService,
    ) -> Result<(RegisteredService, String), Error> {
        let (token, digest) = mint(prefixes::SERVICE_TOKEN);
        let until = self.clock.now() + ROTATION_OVERLAP;
        let rotated = self
            .change(&r.id, |cur| {
                Ok(RegisteredService {
                    token_sha256: digest,
                    previous_token: Some(RetiringToken {
                        sha256: cur.token_sha256,
                        valid_until: until,
                    }),
                    ..cur.clone()
                })
            })
            .await?;
        let mut event = AuditEvent::new(actor, AuditAction::ServiceTokenRotated, Outcome::Success);
        event.service = Some(r.id.clone());
        self.audit(event).await?;
        Ok((rotated, token))
    }

    /// An administrator approves a pending service, allowing `allow` (at most what it asked).
    pub async fn approve_service(
        &self,
        admin: &Subject,
        id: &ServiceId,
        allow: ScopeGrants,
    ) -> Result<RegisteredService, Error> {
        if allow.is_empty() {
            return Err(Error::InvalidRequest(
                "Tick at least one scope to approve.".into(),
            ));
        }
        let approved = self
            .change(id, |cur| {
                if cur.status != ServiceStatus::Pending {
                    return Err(Error::InvalidRequest(
                        "This service is not waiting for approval.".into(),
                    ));
                }
                let within = allow.iter().all(|(p, scopes)| {
                    cur.requested
                        .get(p)
                        .is_some_and(|asked| scopes.is_subset(asked))
                });
                if !within {
                    return Err(Error::InvalidRequest(
                        "Approval can only narrow what the service asked for.".into(),
                    ));
                }
                Ok(RegisteredService {
                    status: ServiceStatus::Active,
                    allow: allow.clone(),
                    approved_by: Some(admin.clone()),
                    ..cur.clone()
                })
            })
            .await?;
        self.audit_admin(admin, id, AuditAction::ServiceApproved, None)
            .await?;
        Ok(approved)
    }

    /// An administrator edits a registered service.
    pub async fn edit_service(
        &self,
        admin: &Subject,
        id: &ServiceId,
        edit: &ServiceEdit,
    ) -> Result<Edited, Error> {
        let Checked {
            name,
            contacts,
            scopes: allow,
            resource,
        } = self.check_description(&edit.description)?;
        if edit.subject_proof != SubjectProof::Off {
            if resource.is_none() {
                return Err(Error::InvalidRequest("Proof of the user needs the service's resource URL (the audience of its users' tokens).".into()));
            }
            if !self
                .settings
                .trusted_issuers
                .iter()
                .any(|i| i.kind == crate::config::IssuerKind::Users)
            {
                return Err(Error::InvalidRequest("Proof of the user needs a trusted issuer of kind users in the broker's config.".into()));
            }
        }
        let url = match edit.webhook_url.trim() {
            "" => None,
            raw => Some(check_webhook_url(raw)?),
        };
        let mut webhook_secret = None;
        let edited = self
            .change(id, |cur| {
                let webhook = match (&url, &cur.webhook) {
                    (None, _) => None,
                    (Some(url), Some(w)) if &w.url == url => Some(w.clone()),
                    (Some(url), _) => {
                        let secret = zeroize::Zeroizing::new(WebhookKey::generate());
                        let sealed = self
                            .vault
                            .seal(cur.webhook_seal_context(), secret.as_bytes())
                            .map_err(|e| {
                                Error::Internal(format!("sealing a webhook secret: {e}"))
                            })?;
                        webhook_secret = Some(secret);
                        Some(ServiceWebhook {
                            url: url.clone(),
                            secret: sealed,
                        })
                    }
                };
                Ok(RegisteredService {
                    name: name.clone(),
                    webhook,
                    contacts: contacts.clone(),
                    allow: if cur.status == ServiceStatus::Pending {
                        cur.allow.clone()
                    } else {
                        allow.clone()
                    },
                    requested: if cur.status == ServiceStatus::Pending {
                        allow.clone()
                    } else {
                        cur.requested.clone()
                    },
                    resource: resource.clone(),
                    subject_proof: edit.subject_proof,
                    ..cur.clone()
                })
            })
            .await?;
        self.audit_admin(admin, id, AuditAction::ServiceUpdated, None)
            .await?;
        Ok(Edited {
            service: edited,
            webhook_secret: webhook_secret.map(|s| s.to_string()),
        })
    }

    /// An administrator suspends an active service; with `revoke_grants`, every grant of
    /// it is revoked too (OAuth tokens at their provider). Returns how many were revoked.
    pub async fn suspend_service(
        &self,
        admin: &Subject,
        id: &ServiceId,
        revoke_grants: bool,
    ) -> Result<usize, Error> {
        self.change(id, |cur| {
            if cur.status != ServiceStatus::Active {
                return Err(Error::InvalidRequest(
                    "Only an active service can be suspended.".into(),
                ));
            }
            Ok(RegisteredService {
                status: ServiceStatus::Suspended,
                ..cur.clone()
            })
        })
        .await?;
        let revoked = if revoke_grants {
            self.revoke_grants_of(admin, id).await?
        } else {
            0
        };
        let reason = if revoke_grants {
            "grants_revoked"
        } else {
            "grants_kept"
        };
        self.audit_admin(admin, id, AuditAction::ServiceSuspended, Some(reason))
            .await?;
        Ok(revoked)
    }

    pub async fn resume_service(&self, admin: &Subject, id: &ServiceId) -> Result<(), Error> {
        self.change(id, |cur| {
            if cur.status != ServiceStatus::Suspended {
                return Err(Error::InvalidRequest(
                    "This service is not suspended.".into(),
                ));
            }
            Ok(RegisteredService {
                status: ServiceStatus::Active,
                ..cur.clone()
            })
        })
        .await?;
        self.audit_admin(admin, id, AuditAction::ServiceResumed, None)
            .await
    }

    /// Deletes a registered service and revokes every grant of it: nothing could redeem
    /// them again. `actor` is the administrator, or the service itself (RFC 7592 DELETE).
    pub async fn delete_service(&self, actor: Actor, id: &ServiceId) -> Result<usize, Error> {
        for _ in 0..3 {
            let current = self.registered_service(id).await?;
            if self.stores.services.delete_service(&current).await? {
                let filter = GrantFilter {
                    service: Some(id.clone()),
                    ..Default::default()
                };
                let revoked = self.revoke_matching(&actor, &filter).await?;
                let mut event =
                    AuditEvent::new(actor, AuditAction::ServiceDeleted, Outcome::Success);
                event.service = Some(id.clone());
                self.audit(event).await?;
                return Ok(revoked);
            }
        }
        Err(Error::Internal(
            "the service kept changing; try again".into(),
        ))
    }

    async fn revoke_grants_of(&self, admin: &Subject, id: &ServiceId) -> Result<usize, Error> {
        let filter = GrantFilter {
            service: Some(id.clone()),
            ..Default::default()
        };
        self.revoke_matching(&Actor::Admin(admin.clone()), &filter)
            .await
    }

    async fn audit_admin(
        &self,
        admin: &Subject,
        id: &ServiceId,
        action: AuditAction,
        reason: Option<&'static str>,
    ) -> Result<(), Error> {
        let mut event = AuditEvent::new(Actor::Admin(admin.clone()), action, Outcome::Success);
        event.service = Some(id.clone());
        if let Some(word) = reason {
            event = event.reason(word);
        }
        self.audit(event).await
    }

    /// Applies `f` to the stored record by compare-and-swap, retried a few times when
    /// another change lands between the read and the write.
    async fn change(
        &self,
        id: &ServiceId,
        mut f: impl FnMut(&RegisteredService) -> Result<RegisteredService, Error>,
    ) -> Result<RegisteredService, Error> {
        for _ in 0..3 {
            let current = self.registered_service(id).await?;
            let next = f(&current)?;
            if self
                .stores
                .services
                .replace_service(&current, &next)
                .await?
            {
                return Ok(next);
            }
        }
        Err(Error::Internal(
            "the service kept changing; try again".into(),
        ))
    }
}
