//! Grants: what a user consented to, bound to one service. Metadata is plain; the
//! credential and the handle are sealed together by the vault and only opened at
//! redemption (or to re-issue the handle to its bound service).
//!
//! State machine: `active` → `revoked` (terminal) or `needs_reauth` → `revoked`.

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
}

impl GrantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Revoked => "revoked",
            Self::NeedsReauth => "needs_reauth",
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
}

impl Grant {
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
