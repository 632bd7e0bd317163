//! Grants: what a user consented to, bound to one service. Metadata is plain; the
//! credential and the handle are sealed together by the vault and only opened at
//! redemption (or to re-issue the handle to its bound service).
//!
//! State machine: `active` → `revoked` (terminal) or `needs_reauth` → `revoked`; a grant
//! an administrator must approve starts `awaiting_approval` → `active | revoked`. A grant
//! past its `expires_at` (policy's `max_lifetime_days`) is not redeemed: it asks for
//! re-authorization like a dead refresh token.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{GrantId, HandleDigest, ProviderId, Scopes, ServiceId, Subject, Timestamp};
use crate::vault::Sealed;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    ApiKey,
    Terms,
    Oauth2,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::Terms => "terms",
            Self::Oauth2 => "oauth2",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantStatus {
    Active,
    Revoked,
    NeedsReauth,
    /// Consented by the user, not yet approved by an administrator: never redeemed.
    AwaitingApproval,
}

impl GrantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Revoked => "revoked",
            Self::NeedsReauth => "needs_reauth",
            Self::AwaitingApproval => "awaiting_approval",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub id: GrantId,
    pub handle_digest: HandleDigest,
    pub service: ServiceId,
    pub subject: Subject,
    pub provider: ProviderId,
    pub kind: ProviderKind,
    pub scopes: Scopes,
    pub status: GrantStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<Timestamp>,
    pub use_count: u64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<Timestamp>,
    /// For `terms` grants: the version accepted. A newer version no longer satisfies.
    pub terms_version: Option<String>,
    pub sealed: Sealed,
    /// The grant that replaced this one (a scope upgrade, a re-authorization, new terms).
    #[serde(default)]
    pub superseded_by: Option<GrantId>,
    /// The open elicitation that asks the user to authorise again (`needs_reauth`).
    #[serde(default)]
    pub reauth_elicitation: Option<super::ElicitationId>,
    /// How revoking the upstream tokens went.
    #[serde(default)]
    pub upstream_revocation: Option<UpstreamRevocation>,
    /// Non-secret members of the provider's token answer (Salesforce `instance_url`, Slack
    /// `team.id`), by the path they were read at: returned at redemption.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, serde_json::Value>,
    /// When the consent lapses (policy's `max_lifetime_days`); none: it does not.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_at: Option<Timestamp>,
    /// The elicitation that created it (none on grants stored before this was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elicitation: Option<super::ElicitationId>,
}

/// What revoking a grant's tokens upstream achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamRevocation {
    /// The provider confirmed the revocation.
    Revoked,
    /// The provider said the tokens were already dead (revoked there, or expired).
    AlreadyRevoked,
    /// The provider refused or never answered: the tokens may still work upstream.
    Failed,
    /// The provider offers no revocation: the tokens live until they expire upstream.
    NotSupported,
}

impl UpstreamRevocation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::AlreadyRevoked => "already_revoked",
            Self::Failed => "failed",
            Self::NotSupported => "not_supported",
        }
    }
}

/// A change to a stored grant, applied by the store as a compare-and-set on the record.
#[derive(Clone, Debug)]
pub enum GrantChange {
    /// New sealed credentials (a token refresh), if the record still holds `expected`.
    Reseal { expected: Sealed, sealed: Sealed },
    /// The same secret with its data key sealed under another key (key rotation), if the
    /// record still holds `expected`. Any status: revoked grants rotate too, so that an old
    /// key can be retired.
    Rewrap { expected: Sealed, sealed: Sealed },
    /// The upstream no longer honours the grant; `elicitation` asks the user again.
    NeedsReauth { elicitation: super::ElicitationId },
    /// Disabled now (by its service, its user or an admin).
    Revoke { at: Timestamp },
    /// Replaced by a newer grant: disabled now.
    Superseded { by: GrantId, at: Timestamp },
    /// Records the outcome of revoking the upstream tokens.
    UpstreamRevocation(UpstreamRevocation),
    /// An administrator approved it: `awaiting_approval` → `active`.
    Approve,
}

impl GrantChange {
    /// Applies the change to `grant`; false (and `grant` untouched) when its precondition
    /// does not hold.
    pub fn apply(&self, grant: &mut Grant) -> bool {
        match self {
            Self::Reseal { expected, sealed } => {
                if grant.status != GrantStatus::Active || grant.sealed != *expected {
                    return false;
                }
                grant.sealed = sealed.clone();
            }
            Self::Rewrap { expected, sealed } => {
                if grant.sealed != *expected {
                    return false;
                }
                grant.sealed = sealed.clone();
            }
            Self::NeedsReauth { elicitation } => {
                if grant.status == GrantStatus::Revoked {
                    return false;
                }
                grant.status = GrantStatus::NeedsReauth;
                grant.reauth_elicitation = Some(elicitation.clone());
            }
            Self::Revoke { at } => {
                if grant.status == GrantStatus::Revoked {
                    return false;
                }
                grant.status = GrantStatus::Revoked;
                grant.revoked_at = Some(*at);
            }
            Self::Superseded { by, at } => {
                if grant.status == GrantStatus::Revoked {
                    return false;
                }
                grant.status = GrantStatus::Revoked;
                grant.revoked_at = Some(*at);
                grant.superseded_by = Some(by.clone());
            }
            Self::UpstreamRevocation(outcome) => grant.upstream_revocation = Some(*outcome),
            Self::Approve => {
                if grant.status != GrantStatus::AwaitingApproval {
                    return false;
                }
                grant.status = GrantStatus::Active;
            }
        }
        true
    }
}

impl Grant {
    /// Whether the consent behind it has lapsed at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }

    /// The context the vault binds this grant's ciphertext to.
    pub fn seal_context(&self) -> crate::vault::SealContext<'_> {
        crate::vault::SealContext {
            grant_id: self.id.as_str(),
            service: self.service.as_str(),
            subject: self.subject.as_str(),
            provider: self.provider.as_str(),
        }
    }
}

/// What the vault seals for a grant: the handle (so it can be re-issued to the bound
/// service without ever storing it in clear) and the credential itself.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
pub struct GrantSecret {
    pub handle: String,
    pub credential: Credential,
}

/// The credential a redemption hands back.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Credential {
    ApiKey {
        api_key: String,
        header: String,
    },
    Terms {
        version: String,
        text_sha256: String,
    },
    /// An upstream token set. The refresh token never leaves the broker.
    Oauth2 {
        access_token: String,
        token_type: String,
        refresh_token: Option<String>,
        /// Unix seconds.
        expires_at: Option<i64>,
        /// When these tokens were obtained (unix seconds): with `expires_at`, their lifetime.
        #[serde(default)]
        obtained_at: i64,
        scopes: Vec<String>,
    },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ApiKey { header, .. } => f
                .debug_struct("ApiKey")
                .field("api_key", &"..")
                .field("header", header)
                .finish(),
            Self::Terms {
                version,
                text_sha256,
            } => f
                .debug_struct("Terms")
                .field("version", version)
                .field("text_sha256", text_sha256)
                .finish(),
            Self::Oauth2 {
                token_type,
                expires_at,
                scopes,
                ..
            } => f
                .debug_struct("Oauth2")
                .field("access_token", &"..")
                .field("token_type", token_type)
                .field("expires_at", expires_at)
                .field("scopes", scopes)
                .finish_non_exhaustive(),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The grant state machine: each change from each state, and the ones refused.

    use super::*;
    use crate::domain::ElicitationId;
    use crate::vault::KeyId;

    fn sealed(n: u8) -> Sealed {
        Sealed {
            key_id: KeyId::try_from("k1".to_owned()).unwrap(),
            wrapped_key: vec![n; 8],
            ciphertext: vec![n; 16],
        }
    }

    fn grant(status: GrantStatus) -> Grant {
        Grant {
            id: GrantId::generate(),
            handle_digest: crate::domain::Handle::generate().digest(),
            service: ServiceId::parse("svc-a").unwrap(),
            subject: Subject::parse("alice").unwrap(),
            provider: ProviderId::parse("acme").unwrap(),
            kind: ProviderKind::Oauth2,
            scopes: Scopes::default(),
            status,
            created_at: crate::domain::now(),
            last_used_at: None,
            use_count: 0,
            revoked_at: None,
            terms_version: None,
            sealed: sealed(1),
            superseded_by: None,
            reauth_elicitation: None,
            upstream_revocation: None,
            metadata: BTreeMap::new(),
            expires_at: None,
            elicitation: None,
        }
    }

    const ALL: [GrantStatus; 3] = [
        GrantStatus::Active,
        GrantStatus::NeedsReauth,
        GrantStatus::Revoked,
    ];

    /// Applies `change` to a grant in `status`: whether it applied, and the grant after.
    fn apply(change: &GrantChange, status: GrantStatus) -> (bool, Grant) {
        let mut g = grant(status);
        let before = g.clone();
        let applied = change.apply(&mut g);
        if !applied {
            assert_eq!(g, before, "a refused change leaves the grant untouched");
        }
        (applied, g)
    }

    #[test]
    fn a_reseal_applies_only_to_an_active_grant_that_still_holds_the_expected_record() {
        let change = GrantChange::Reseal {
            expected: sealed(1),
            sealed: sealed(2),
        };
        let (applied, g) = apply(&change, GrantStatus::Active);
        assert!(applied);
        assert_eq!(g.sealed, sealed(2));
        assert_eq!(g.status, GrantStatus::Active);
        for status in [GrantStatus::NeedsReauth, GrantStatus::Revoked] {
            assert!(!apply(&change, status).0, "{status:?}");
        }
        let stale = GrantChange::Reseal {
            expected: sealed(9),
            sealed: sealed(2),
        };
        assert!(
            !apply(&stale, GrantStatus::Active).0,
            "someone resealed first"
        );
    }

    #[test]
    fn a_rewrap_applies_in_any_status_if_the_record_is_unchanged() {
        let change = GrantChange::Rewrap {
            expected: sealed(1),
            sealed: sealed(3),
        };
        for status in ALL {
            let (applied, g) = apply(&change, status);
            assert!(applied, "{status:?}");
            assert_eq!(g.sealed, sealed(3));
            assert_eq!(g.status, status, "rotation changes no status");
        }
        let stale = GrantChange::Rewrap {
            expected: sealed(9),
            sealed: sealed(3),
        };
        for status in ALL {
            assert!(!apply(&stale, status).0, "{status:?}");
        }
    }

    #[test]
    fn needs_reauth_applies_unless_revoked_and_names_the_elicitation() {
        let elicitation = ElicitationId::generate();
        let change = GrantChange::NeedsReauth {
            elicitation: elicitation.clone(),
        };
        for status in [GrantStatus::Active, GrantStatus::NeedsReauth] {
            let (applied, g) = apply(&change, status);
            assert!(applied, "{status:?}");
            assert_eq!(g.status, GrantStatus::NeedsReauth);
            assert_eq!(g.reauth_elicitation, Some(elicitation.clone()));
        }
        assert!(
            !apply(&change, GrantStatus::Revoked).0,
            "revoked is terminal"
        );
    }

    #[test]
    fn a_revocation_applies_once_from_active_or_needs_reauth() {
        let at = crate::domain::now();
        let change = GrantChange::Revoke { at };
        for status in [GrantStatus::Active, GrantStatus::NeedsReauth] {
            let (applied, g) = apply(&change, status);
            assert!(applied, "{status:?}");
            assert_eq!(g.status, GrantStatus::Revoked);
            assert_eq!(g.revoked_at, Some(at));
            assert_eq!(g.superseded_by, None);
        }
        assert!(
            !apply(&change, GrantStatus::Revoked).0,
            "revoked is terminal"
        );
    }

    #[test]
    fn superseding_revokes_and_names_the_newer_grant() {
        let (by, at) = (GrantId::generate(), crate::domain::now());
        let change = GrantChange::Superseded { by: by.clone(), at };
        for status in [GrantStatus::Active, GrantStatus::NeedsReauth] {
            let (applied, g) = apply(&change, status);
            assert!(applied, "{status:?}");
            assert_eq!(g.status, GrantStatus::Revoked);
            assert_eq!(g.revoked_at, Some(at));
            assert_eq!(g.superseded_by, Some(by.clone()));
        }
        assert!(
            !apply(&change, GrantStatus::Revoked).0,
            "revoked is terminal"
        );
    }

    #[test]
    fn the_upstream_revocation_outcome_is_recorded_in_any_status() {
        let change = GrantChange::UpstreamRevocation(UpstreamRevocation::Revoked);
        for status in ALL {
            let (applied, g) = apply(&change, status);
            assert!(applied, "{status:?}");
            assert_eq!(g.upstream_revocation, Some(UpstreamRevocation::Revoked));
            assert_eq!(g.status, status);
        }
    }
}
