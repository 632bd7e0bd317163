//! Key names, in one place. Records of one elicitation (the elicitation and its grant)
//! share the hash tag `{<elicitation id>}`, so a script may touch both in a cluster. The
//! service registry shares the tag `{registry}`. All other keys are reached one at a time
//! and need no tag. The prefix has no braces
//! (checked in config), so it never changes a key's slot. Ids used in keys are random
//! base64url (no braces); subjects are hashed, so a key never carries a user's name.

use sha2::{Digest, Sha256};

use crate::domain::{ElicitationId, GrantId, HandleDigest, Subject};

#[derive(Clone, Debug)]
pub(super) struct Keys {
    prefix: String,
}

impl Keys {
    pub(super) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    pub(super) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Elicitation JSON, with a TTL.
    pub(super) fn elicitation(&self, id: &str) -> String {
        format!("{}{{{id}}}:elicitation", self.prefix)
    }

    /// The grant created by elicitation `id`: same hash tag.
    pub(super) fn grant(&self, elicitation: &str) -> String {
        format!("{}{{{elicitation}}}:grant", self.prefix)
    }

    /// Grant id → elicitation id.
    pub(super) fn grant_pointer(&self, id: &GrantId) -> String {
        format!("{}grant-id:{}", self.prefix, id.as_str())
    }

    /// Handle digest → elicitation id.
    pub(super) fn handle_pointer(&self, digest: &HandleDigest) -> String {
        format!("{}handle:{}", self.prefix, digest.to_hex())
    }

    /// A subject's grants: a sorted set by creation time.
    pub(super) fn subject_index(&self, subject: &Subject) -> String {
        let digest = Sha256::digest(subject.as_str().as_bytes());
        format!("{}subject:{}", self.prefix, hex::encode(digest))
    }

    pub(super) fn expiry_index(&self) -> String {
        format!("{}elicitations-by-expiry", self.prefix)
    }

    pub(super) fn audit(&self) -> String {
        format!("{}audit", self.prefix)
    }

    pub(super) fn session(&self, id: &str) -> String {
        format!("{}session:{id}", self.prefix)
    }

    /// An upstream authorization flow, under the SHA-256 of its state.
    pub(super) fn flow(&self, key: &str) -> String {
        format!("{}flow:{key}", self.prefix)
    }

    /// A one-time id seen (already a SHA-256 hex), until its expiry (`PXAT`).
    pub(super) fn seen(&self, key: &crate::store::SeenKey) -> String {
        format!("{}seen:{}", self.prefix, key.as_str())
    }

    /// Registered services (hash: id → record) and the parts below share the tag
    /// `{registry}`, so one script may change a service and its credential index.
    pub(super) fn registry(&self, part: RegistryPart) -> String {
        let part = match part {
            RegistryPart::Services => "services",
            RegistryPart::Credentials => "credentials",
            RegistryPart::InitialTokens => "initial-tokens",
            RegistryPart::InitialUses => "initial-uses",
            RegistryPart::InitialExpiry => "initial-expiry",
        };
        format!("{}{{registry}}:{part}", self.prefix)
    }

    pub(super) fn lock(&self, name: &str) -> String {
        format!("{}lock:{name}", self.prefix)
    }
}

/// The hashes of the service registry.
#[derive(Clone, Copy)]
pub(super) enum RegistryPart {
    Services,
    /// Credential digest (hex) → service id.
    Credentials,
    /// Initial access token digest → its record as minted.
    InitialTokens,
    /// Digest → uses left.
    InitialUses,
    /// Digest → expiry (ms since the epoch).
    InitialExpiry,
}

/// A subject-index member: `<elicitation id>.<grant id>` ('.' is not base64url).
pub(super) fn subject_member(elicitation: &ElicitationId, grant: &GrantId) -> String {
    format!("{}.{}", elicitation.as_str(), grant.as_str())
}

pub(super) fn parse_subject_member(member: &str) -> Option<(&str, &str)> {
    member.split_once('.')
}
