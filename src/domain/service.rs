//! Services registered at run time (RFC 7591), beside those declared in config: the record
//! as stored, its lifecycle, the credentials it holds (by SHA-256 only), and the initial
//! access tokens administrators mint so that a service may register itself.
//!
//! Lifecycle: `pending` (registered, can do nothing) → `active` (an administrator approved
//! it, scopes possibly narrowed) ⇄ `suspended` (its calls are refused; its grants stay
//! unless the administrator revoked them too). Deletion is final.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ProviderId, Scope, ServiceId, Subject, Timestamp};

/// Whether `POST /v1/elicitations` (and `/v1/redeem`) must carry the user's access token
/// (`subject_token`), verified against the trusted issuers, naming the request's subject.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectProof {
    /// A `subject_token` is required and must name the request's `subject`.
    Required,
    /// A `subject_token`, when sent, is verified and must name the `subject`.
    Optional,
    /// `subject_token` is not read (the service's word is taken, as before).
    #[default]
    Off,
}

impl SubjectProof {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Optional => "optional",
            Self::Off => "off",
        }
    }

    pub fn parse(word: &str) -> Option<Self> {
        [Self::Required, Self::Optional, Self::Off]
            .into_iter()
            .find(|p| p.as_str() == word)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceStatus {
    Pending,
    Active,
    Suspended,
}

impl ServiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }
}

/// The SHA-256 of a bearer credential (a service token, a registration access token, an
/// initial access token). Only digests are stored; `Debug` and the wire show hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl From<[u8; 32]> for TokenDigest {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl TryFrom<String> for TokenDigest {
    type Error = hex::FromHexError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(value, &mut out)?;
        Ok(Self(out))
    }
}

impl From<TokenDigest> for String {
    fn from(d: TokenDigest) -> String {
        d.to_hex()
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenDigest({})", &self.to_hex()[..12])
    }
}

/// A token being rotated out, accepted until `valid_until` and never after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiringToken {
    pub sha256: TokenDigest,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_until: Timestamp,
}

/// Provider → scopes: what a service asks for (its manifest) or may ask for.
pub type ScopeGrants = BTreeMap<ProviderId, BTreeSet<Scope>>;

/// Who brought a service in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "by")]
pub enum RegisteredBy {
    /// Self-registration with an initial access token (named by its label).
    InitialToken { label: String },
    /// An administrator, in the console.
    Admin { admin: Subject },
}

/// A registered service's completion webhook: where, and its Standard Webhooks signing
/// secret sealed by the vault (bound to the service).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceWebhook {
    pub url: url::Url,
    pub secret: crate::vault::Sealed,
}

/// A registered service, as stored. Every change goes through a compare-and-swap on the
/// whole record, so two administrators (or instances) never overwrite each other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredService {
    pub id: ServiceId,
    pub name: String,
    /// How to reach the people who run it (RFC 7591 `contacts`).
    pub contacts: Vec<String>,
    pub status: ServiceStatus,
    /// What it asked for when it registered.
    pub requested: ScopeGrants,
    /// What it may ask for: empty until approved; never more than `requested` on approval.
    pub allow: ScopeGrants,
    /// The MCP service's own resource URL: the audience of a `subject_token`.
    pub resource: Option<String>,
    pub subject_proof: SubjectProof,
    pub token_sha256: TokenDigest,
    pub previous_token: Option<RetiringToken>,
    /// RFC 7592's registration access token, when the service registered itself.
    pub registration_token_sha256: Option<TokenDigest>,
    pub registered_by: RegisteredBy,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
    /// The administrator who approved it, if one has.
    pub approved_by: Option<Subject>,
    #[serde(default)]
    pub webhook: Option<ServiceWebhook>,
}

impl RegisteredService {
    /// What its webhook secret is sealed for: this service, and nothing of a grant.
    pub fn webhook_seal_context(&self) -> crate::vault::SealContext<'_> {
        crate::vault::SealContext {
            grant_id: "webhook-secret",
            service: self.id.as_str(),
            subject: "",
            provider: "",
        }
    }

    /// Every credential digest under which the store finds this service.
    pub fn credential_digests(&self) -> Vec<TokenDigest> {
        let mut out = vec![self.token_sha256];
        out.extend(self.previous_token.as_ref().map(|p| p.sha256));
        out.extend(self.registration_token_sha256);
        out
    }
}

/// An initial access token an administrator minted: it lets services register (each use
/// registers one), until its uses run out or it expires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitialAccessToken {
    pub sha256: TokenDigest,
    /// The administrator's words for who it was given to.
    pub label: String,
    /// Uses left (at minting: how many registrations it allows).
    pub uses_left: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: Timestamp,
    pub minted_by: Subject,
    #[serde(with = "time::serde::rfc3339")]
    pub minted_at: Timestamp,
}

/// Shapes of the bearer credentials, told apart by prefix.
pub mod prefixes {
    /// A service's static token.
    pub const SERVICE_TOKEN: &str = "cbs_";
    /// RFC 7592 registration access token.
    pub const REGISTRATION_TOKEN: &str = "cbr_";
    /// An initial access token (RFC 7591 §3).
    pub const INITIAL_TOKEN: &str = "cbi_";
}

/// A fresh bearer credential with `prefix` (32 random bytes) and its digest.
pub fn mint(prefix: &str) -> (String, TokenDigest) {
    let token = format!("{prefix}{}", crate::random::token::<32>());
    let digest = TokenDigest::of(&token);
    (token, digest)
}
