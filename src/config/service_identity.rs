//! How a service proves itself and its users, validated: `[[trusted_issuers]]` and the
//! identity keys of `[[services]]` (the rotated-out static token and its deadline, RFC 7523
//! assertion keys, the workload identity, `subject_proof` and the `resource` a user's
//! token must be for). The verifying itself is `identity::caller_jwt`'s.

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::JwkSet;
use url::Url;

use super::problems::{Problems, check_http_url, is_loopback};
use super::{IssuerKind, ServiceConfig, SubjectProof, TrustedIssuerConfig};
use crate::domain::Timestamp;

/// Where a verifier's keys come from.
#[derive(Debug, Clone)]
pub enum JwksSource {
    Url(Url),
    Inline(JwkSet),
}

/// A trusted issuer, validated.
#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    pub id: String,
    pub issuer: String,
    pub jwks_url: Url,
    pub kind: IssuerKind,
    /// Asymmetric only.
    pub algorithms: Vec<Algorithm>,
    pub subject_claim: String,
}

/// The static token being rotated out.
#[derive(Debug, Clone)]
pub struct PreviousToken {
    pub sha256: [u8; 32],
    /// Accepted before this instant, refused from it on.
    pub valid_until: Timestamp,
}

/// A workload's identity: the issuer (its `iss`) and the subject that are this service.
#[derive(Debug, Clone)]
pub struct WorkloadIdentity {
    pub issuer: String,
    pub subject: String,
}

/// A service's identity settings beyond its current static token.
#[derive(Debug, Clone, Default)]
pub struct ServiceIdentity {
    pub previous_token: Option<PreviousToken>,
    pub subject_proof: SubjectProof,
    /// The audience a `subject_token` must carry; set whenever `subject_proof` is not off.
    pub resource: Option<String>,
    pub assertion_keys: Option<JwksSource>,
    pub workload: Option<WorkloadIdentity>,
}

impl ServiceIdentity {
    /// True when the service has a way to authenticate besides a static token.
    pub fn signs_in_by_jwt(&self) -> bool {
        self.assertion_keys.is_some() || self.workload.is_some()
    }
}

/// The algorithms a signer may use: asymmetric only (no shared secret).
pub const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

fn algorithm(name: &str) -> Option<Algorithm> {
    ASYMMETRIC.into_iter().find(|a| format!("{a:?}") == name)
}

pub(super) fn trusted_issuers(
    configs: &[TrustedIssuerConfig],
    dev: bool,
    errors: &mut Problems,
) -> Vec<TrustedIssuer> {
    let mut out: Vec<TrustedIssuer> = Vec::new();
    for (i, c) in configs.iter().enumerate() {
        let at = |field: &str| format!("trusted_issuers[{i}].{field}");
        if c.id.trim().is_empty() {
            errors.push(format!("{}: must not be empty", at("id")));
        }
        if out.iter().any(|o| o.id == c.id) {
            errors.push(format!("{}: duplicate id `{}`", at("id"), c.id));
        }
        if c.issuer.trim().is_empty() {
            errors.push(format!("{}: must not be empty", at("issuer")));
        }
        check_http_url(&c.jwks_url, &at("jwks_url"), errors);
        if c.jwks_url.scheme() == "http" && !is_loopback(&c.jwks_url) && !dev {
            errors.push(format!(
                "{}: plain http is only allowed for loopback addresses",
                at("jwks_url")
            ));
        }
        let mut algorithms = Vec::new();
        for name in &c.algorithms {
            match algorithm(name) {
                Some(a) => algorithms.push(a),
                None => errors.push(format!(
                    "{}: `{name}` is not an accepted algorithm (asymmetric only: RS256, RS384, \
                     RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)",
                    at("algorithms")
                )),
            }
        }
        if c.algorithms.is_empty() {
            errors.push(format!("{}: name at least one", at("algorithms")));
        }
        if c.subject_claim.trim().is_empty() {
            errors.push(format!("{}: must not be empty", at("subject_claim")));
        }
        out.push(TrustedIssuer {
            id: c.id.clone(),
            issuer: c.issuer.clone(),
            jwks_url: c.jwks_url.clone(),
            kind: c.kind,
            algorithms,
            subject_claim: c.subject_claim.clone(),
        });
    }
    out
}

/// The identity settings of service `s` (at `services[i]`), against the trusted issuers.
pub(super) fn service_identity(
    s: &ServiceConfig,
    at: &dyn Fn(&str) -> String,
    issuers: &[TrustedIssuer],
    errors: &mut Problems,
) -> ServiceIdentity {
    let previous_token = match (&s.previous_token_sha256, &s.previous_token_valid_until) {
        (None, None) => None,
        (Some(digest), Some(until)) => {
            let mut sha256 = [0u8; 32];
            let digest_ok = hex::decode_to_slice(digest, &mut sha256).is_ok();
            if !digest_ok {
                errors.push(format!(
                    "{}: must be 64 hex digits",
                    at("previous_token_sha256")
                ));
            }
            let until =
                time::OffsetDateTime::parse(until, &time::format_description::well_known::Rfc3339);
            if until.is_err() {
                errors.push(format!(
                    "{}: must be an RFC 3339 date and time, e.g. 2026-12-31T12:00:00Z",
                    at("previous_token_valid_until")
                ));
            }
            match until {
                Ok(valid_until) if digest_ok => Some(PreviousToken {
                    sha256,
                    valid_until,
                }),
                _ => None,
            }
        }
        _ => {
            errors.push(format!(
                "{}: previous_token_sha256 and previous_token_valid_until go together",
                at("previous_token_sha256")
            ));
            None
        }
    };
    let assertion_keys = match (&s.assertion_jwks_url, &s.assertion_jwks) {
        (None, None) => None,
        (Some(url), None) => {
            check_http_url(url, &at("assertion_jwks_url"), errors);
            Some(JwksSource::Url(url.clone()))
        }
        (None, Some(inline)) => match serde_json::from_str::<JwkSet>(inline) {
            Ok(set) => Some(JwksSource::Inline(set)),
            Err(_) => {
                errors.push(format!("{}: not a JWK Set (JSON)", at("assertion_jwks")));
                None
            }
        },
        (Some(_), Some(_)) => {
            errors.push(format!(
                "{}: give assertion_jwks_url or assertion_jwks, not both",
                at("assertion_jwks")
            ));
            None
        }
    };
    let workload = match (&s.workload_issuer, &s.workload_subject) {
        (None, None) => None,
        (Some(id), Some(subject)) => {
            match issuers
                .iter()
                .find(|i| &i.id == id && i.kind == IssuerKind::Workloads)
            {
                Some(issuer) if !subject.is_empty() => Some(WorkloadIdentity {
                    issuer: issuer.issuer.clone(),
                    subject: subject.clone(),
                }),
                Some(_) => {
                    errors.push(format!("{}: must not be empty", at("workload_subject")));
                    None
                }
                None => {
                    errors.push(format!(
                        "{}: no trusted issuer of kind `workloads` has id `{id}`",
                        at("workload_issuer")
                    ));
                    None
                }
            }
        }
        _ => {
            errors.push(format!(
                "{}: workload_issuer and workload_subject go together",
                at("workload_issuer")
            ));
            None
        }
    };
    let resource = s.resource.clone().filter(|r| !r.trim().is_empty());
    if s.subject_proof != SubjectProof::Off {
        if resource.is_none() {
            errors.push(format!(
                "{}: required when subject_proof is not `off` (the audience of the user's token)",
                at("resource")
            ));
        }
        if !issuers.iter().any(|i| i.kind == IssuerKind::Users) {
            errors.push(format!(
                "{}: needs a trusted issuer of kind `users`",
                at("subject_proof")
            ));
        }
    }
    ServiceIdentity {
        previous_token,
        subject_proof: s.subject_proof,
        resource,
        assertion_keys,
        workload,
    }
}

#[cfg(test)]
mod tests {
    //! The identity keys of `[[services]]` and `[[trusted_issuers]]`, as validation reads them.

    use super::super::{Config, Settings};

    const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const OTHER: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
    const ISSUERS: &str = r#"
[[trusted_issuers]]
id = "idp"
issuer = "https://idp.example"
jwks_url = "https://idp.example/jwks"
kind = "users"
[[trusted_issuers]]
id = "cluster"
issuer = "https://k8s.example"
jwks_url = "https://k8s.example/jwks"
kind = "workloads"
"#;

    fn problems(toml: &str) -> Vec<String> {
        let config: Config = toml::from_str(toml).expect("the test's TOML parses");
        match Settings::from_config(&config, false) {
            Ok(_) => Vec::new(),
            Err(e) => e.0,
        }
    }

    fn service(extra: &str) -> String {
        format!("{ISSUERS}[[services]]\nid = \"svc\"\nname = \"S\"\n{extra}\n")
    }

    #[test]
    fn subject_proof_defaults_to_off_and_otherwise_needs_a_resource() {
        assert!(problems(&service(&format!("token_sha256 = \"{DIGEST}\""))).is_empty());
        assert_eq!(
            problems(&service(&format!(
                "token_sha256 = \"{DIGEST}\"\nsubject_proof = \"required\""
            ))),
            [
                "services[0].resource: required when subject_proof is not `off` (the audience of \
              the user's token)"
            ]
        );
    }

    #[test]
    fn a_service_needs_a_token_or_a_jwt_identity_and_its_workload_issuer_must_exist() {
        assert_eq!(problems(&service("")).len(), 1);
        assert!(
            problems(&service(
                "workload_issuer = \"cluster\"\nworkload_subject = \"system:serviceaccount:a:b\""
            ))
            .is_empty()
        );
        assert_eq!(
            problems(&service(&format!(
                "token_sha256 = \"{DIGEST}\"\nworkload_issuer = \"idp\"\n\
                 workload_subject = \"system:serviceaccount:a:b\""
            ))),
            ["services[0].workload_issuer: no trusted issuer of kind `workloads` has id `idp`"]
        );
    }

    #[test]
    fn a_rotation_needs_both_keys_a_date_and_another_digest() {
        let ok = format!(
            "token_sha256 = \"{DIGEST}\"\nprevious_token_sha256 = \"{OTHER}\"\n\
             previous_token_valid_until = \"2026-12-31T12:00:00Z\""
        );
        assert!(problems(&service(&ok)).is_empty());
        assert_eq!(
            problems(&service(&format!(
                "token_sha256 = \"{DIGEST}\"\nprevious_token_sha256 = \"{OTHER}\""
            )))
            .len(),
            1
        );
        assert_eq!(
            problems(&service(&format!(
                "token_sha256 = \"{DIGEST}\"\nprevious_token_sha256 = \"{OTHER}\"\n\
                 previous_token_valid_until = \"next week\""
            ))),
            [
                "services[0].previous_token_valid_until: must be an RFC 3339 date and time, e.g. \
              2026-12-31T12:00:00Z"
            ]
        );
        assert_eq!(
            problems(&service(&format!(
                "token_sha256 = \"{DIGEST}\"\nprevious_token_sha256 = \"{DIGEST}\"\n\
                 previous_token_valid_until = \"2026-12-31T12:00:00Z\""
            ))),
            [
                "services[0].previous_token_sha256: the previous token must differ from the \
              current one"
            ]
        );
    }

    #[test]
    fn trusted_issuers_accept_asymmetric_algorithms_only() {
        let toml = format!("{ISSUERS}algorithms = [\"HS256\"]\n");
        let found = problems(&toml);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0]
                .starts_with("trusted_issuers[1].algorithms: `HS256` is not an accepted algorithm")
        );
    }
}
