//! Security Event Tokens (RFC 8417) from the configured Shared Signals transmitter:
//! verified against its JWK Set, then read into the events the broker acts on.
//!
//! A SET is accepted only when, in this order: it is a compact JWS with the explicit type
//! `secevent+jwt` (so no other JWT of the same issuer passes for one, RFC 8417 §4.2); its
//! `iss` is the configured issuer; its algorithm is asymmetric and its key is in the
//! transmitter's JWK Set (fetched again, at most once a minute, when a `kid` is unknown);
//! the signature holds; `aud` names the configured audience; it has a `jti`, an `iat` not in
//! the future and not older than `max_age`, and an `events` object. Each failure is one
//! [`SetError`], whose RFC 8935 code the receiver answers with, in a [`Refused`] that says
//! whether the SET's signature held (a signed refusal is the transmitter's; an unsigned
//! one may be anyone's). Replays are caught by the
//! caller, with the store ([`crate::store::SeenIds`]), so every instance sees them.

use std::collections::BTreeMap;
#[cfg(test)]
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind as JwtError};
use serde::Deserialize;

use super::jwks::{Jwks, KeyError, KeySource};

use crate::config::SubjectFormat;
use crate::config::settings::SharedSignalsSettings;
use crate::domain::{Subject, Timestamp};

/// How far in the future an `iat` may be (clock skew).
const IAT_SKEW: time::Duration = time::Duration::minutes(5);
/// The algorithms a transmitter may sign with: asymmetric only (no shared secret).
const ALGORITHMS: [Algorithm; 9] = super::jwks::ASYMMETRIC;

/// Why a SET was refused, as RFC 8935 §2.4 names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetError {
    /// Not a SET, a claim missing or out of range, or a replayed `jti`.
    InvalidRequest(&'static str),
    /// No key verifies it (unknown `kid`, bad signature, refused algorithm).
    InvalidKey(&'static str),
    InvalidIssuer,
    InvalidAudience,
    /// The transport's bearer token is missing or wrong.
    AuthenticationFailed,
}

impl SetError {
    /// The `err` member of the answer.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidKey(_) => "invalid_key",
            Self::InvalidIssuer => "invalid_issuer",
            Self::InvalidAudience => "invalid_audience",
            Self::AuthenticationFailed => "authentication_failed",
        }
    }

    /// The `description` member: fixed words, never text from the request.
    pub fn description(&self) -> &'static str {
        match self {
            Self::InvalidRequest(why) | Self::InvalidKey(why) => why,
            Self::InvalidIssuer => "the SET's issuer is not the configured transmitter",
            Self::InvalidAudience => "the SET is not addressed to this receiver",
            Self::AuthenticationFailed => "the transmitter's credentials are missing or wrong",
        }
    }
}

/// A refused SET: why, and whether it carried the transmitter's valid signature (only
/// then is it the transmitter's doing, and audited as such; anyone can post the others).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub error: SetError,
    pub signed: bool,
}

/// The event types that offboard a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffboardingEvent {
    /// CAEP `session-revoked`.
    SessionRevoked,
    /// CAEP `credential-change`.
    CredentialChange,
    /// RISC `account-disabled`.
    AccountDisabled,
    /// RISC `account-purged`.
    AccountPurged,
}

impl OffboardingEvent {
    const ALL: [Self; 4] = [
        Self::SessionRevoked,
        Self::CredentialChange,
        Self::AccountDisabled,
        Self::AccountPurged,
    ];

    /// The event type URI.
    pub fn uri(self) -> &'static str {
        match self {
            Self::SessionRevoked => {
                "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
            }
            Self::CredentialChange => {
                "https://schemas.openid.net/secevent/caep/event-type/credential-change"
            }
            Self::AccountDisabled => {
                "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
            }
            Self::AccountPurged => {
                "https://schemas.openid.net/secevent/risc/event-type/account-purged"
            }
        }
    }

    /// The audit reason of the offboarding it causes.
    pub fn reason(self) -> &'static str {
        match self {
            Self::SessionRevoked => "caep_session_revoked",
            Self::CredentialChange => "caep_credential_change",
            Self::AccountDisabled => "risc_account_disabled",
            Self::AccountPurged => "risc_account_purged",
        }
    }

    fn from_uri(uri: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.uri() == uri)
    }
}

/// A verified SET: its id, when it was issued, and the offboarding events in it, each with
/// the broker subject it names (`None` when the subject is in another format or of
/// another issuer: nothing is done for it).
#[derive(Debug)]
pub struct VerifiedSet {
    pub jti: String,
    pub issued_at: Timestamp,
    pub events: Vec<(OffboardingEvent, Option<Subject>)>,
}

/// A subject identifier (RFC 9493), in the formats this receiver reads.
#[derive(Debug, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case")]
enum SubjectId {
    IssSub {
        iss: String,
        sub: String,
    },
    Email {
        email: String,
    },
    Opaque {
        id: String,
    },
    /// The SSF "complex" subject; its `user` member names the user.
    Complex {
        user: Option<Box<SubjectId>>,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct Claims {
    jti: Option<String>,
    iat: Option<i64>,
    events: Option<BTreeMap<String, serde_json::Value>>,
    /// SSF 1.0: the subject of every event in the SET.
    sub_id: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct IssuerOnly {
    iss: Option<String>,
}

/// The receiver's verifier: the settings and the transmitter's keys, cached.
pub struct SetVerifier {
    settings: SharedSignalsSettings,
    keys: Jwks,
}

impl SetVerifier {
    /// `http` must not follow redirects and must be bounded in time (the broker's client).
    pub fn new(settings: SharedSignalsSettings, http: reqwest::Client) -> Self {
        let keys = Jwks::new(KeySource::Url(settings.jwks_url.clone()), http);
        Self { settings, keys }
    }

    pub fn settings(&self) -> &SharedSignalsSettings {
        &self.settings
    }

    /// Verifies `token` as described in the module header, at `now`.
    pub async fn verify(&self, token: &str, now: Timestamp) -> Result<VerifiedSet, Refused> {
        let claims = self.signed_claims(token.trim()).await?;
        self.read(claims, now).map_err(|error| Refused {
            error,
            signed: true,
        })
    }

    /// The claims of `token` once its signature, issuer and audience hold.
    async fn signed_claims(&self, token: &str) -> Result<Claims, Refused> {
        let unsigned = |error| Refused {
            error,
            signed: false,
        };
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| unsigned(SetError::InvalidRequest("the body is not a signed JWT")))?;
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            let t = t.to_ascii_lowercase();
            t == "secevent+jwt" || t == "application/secevent+jwt"
        });
        if !typ_ok {
            return Err(unsigned(SetError::InvalidRequest(
                "the JWT's typ is not secevent+jwt",
            )));
        }
        // Read before the signature only to answer with the right code; trusted only once
        // the signature and the validation below hold.
        let claimed: IssuerOnly =
            jsonwebtoken::dangerous::insecure_decode_claims(token).map_err(|_| {
                unsigned(SetError::InvalidRequest(
                    "the SET's claims are not a JSON object",
                ))
            })?;
        if claimed.iss.as_deref() != Some(self.settings.issuer.as_str()) {
            return Err(unsigned(SetError::InvalidIssuer));
        }
        if !ALGORITHMS.contains(&header.alg) {
            return Err(unsigned(SetError::InvalidKey(
                "the signing algorithm is not accepted",
            )));
        }
        let key = self
            .key_for(header.kid.as_deref(), header.alg)
            .await
            .map_err(unsigned)?;
        let mut validation = Validation::new(header.alg);
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["iss", "aud"]);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        // jsonwebtoken checks the signature before any claim: a claim's refusal is signed.
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| {
            let signed = |error| Refused {
                error,
                signed: true,
            };
            match e.kind() {
                JwtError::InvalidAudience => signed(SetError::InvalidAudience),
                JwtError::MissingRequiredClaim(c) if c == "aud" => {
                    signed(SetError::InvalidAudience)
                }
                JwtError::InvalidIssuer => signed(SetError::InvalidIssuer),
                JwtError::MissingRequiredClaim(_) => {
                    signed(SetError::InvalidRequest("the SET lacks a required claim"))
                }
                // The claims are parsed only after the signature held.
                JwtError::Json(_) | JwtError::InvalidClaimFormat(_) => {
                    signed(SetError::InvalidRequest("the SET's claims are malformed"))
                }
                _ => unsigned(SetError::InvalidKey("the signature does not verify")),
            }
        })?;
        Ok(claims.claims)
    }

    /// Checks the SET's own claims and reads its events.
    fn read(&self, claims: Claims, now: Timestamp) -> Result<VerifiedSet, SetError> {
        let jti = claims
            .jti
            .filter(|j| !j.is_empty() && j.len() <= 256)
            .ok_or(SetError::InvalidRequest("the SET has no usable jti"))?;
        let issued_at = claims
            .iat
            .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
            .ok_or(SetError::InvalidRequest("the SET has no usable iat"))?;
        if issued_at > now + IAT_SKEW {
            return Err(SetError::InvalidRequest("the SET is issued in the future"));
        }
        let max_age =
            time::Duration::try_from(self.settings.max_age).unwrap_or(time::Duration::days(1));
        if issued_at < now - max_age {
            return Err(SetError::InvalidRequest(
                "the SET is older than this receiver accepts",
            ));
        }
        let events = claims
            .events
            .filter(|e| !e.is_empty())
            .ok_or(SetError::InvalidRequest("the SET has no events"))?;
        let shared_subject = claims.sub_id.as_ref().and_then(|v| self.subject(v));
        let events = events
            .iter()
            .filter_map(|(uri, payload)| {
                let event = OffboardingEvent::from_uri(uri)?;
                // Before SSF 1.0, CAEP and RISC events carried their own `subject`.
                let own = payload.get("subject").and_then(|v| self.subject(v));
                Some((event, own.or_else(|| shared_subject.clone())))
            })
            .collect();
        Ok(VerifiedSet {
            jti,
            issued_at,
            events,
        })
    }

    /// The broker subject a subject identifier names, in the configured format only.
    fn subject(&self, value: &serde_json::Value) -> Option<Subject> {
        let id: SubjectId = serde_json::from_value(value.clone()).ok()?;
        self.subject_of(&id)
    }

    fn subject_of(&self, id: &SubjectId) -> Option<Subject> {
        let raw = match (id, self.settings.subject_format) {
            (SubjectId::IssSub { iss, sub }, SubjectFormat::IssSub)
                if *iss == self.settings.subject_issuer =>
            {
                sub
            }
            (SubjectId::Email { email }, SubjectFormat::Email) => email,
            (SubjectId::Opaque { id }, SubjectFormat::Opaque) => id,
            (SubjectId::Complex { user: Some(user) }, _) => return self.subject_of(user),
            _ => return None,
        };
        Subject::parse(raw.as_str()).ok()
    }

    async fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, SetError> {
        self.keys.key_for(kid, alg).await.map_err(|e| match e {
            KeyError::Unavailable => {
                SetError::InvalidKey("the transmitter's keys could not be fetched")
            }
            KeyError::UnknownKid => SetError::InvalidKey("no key of the transmitter has this kid"),
            KeyError::WrongAlgorithm => {
                SetError::InvalidKey("the key with this kid is not for this algorithm")
            }
            KeyError::Unusable => SetError::InvalidKey("the transmitter's key is unusable"),
        })
    }
}

#[cfg(test)]
mod tests {
    //! Reading a verified SET's claims: its own checks and the subject mapping. The
    //! signature, issuer and audience checks run over HTTP (tests/it/offboarding.rs).

    use super::*;
    use serde_json::json;

    const IDP: &str = "https://login.example";

    fn verifier(format: SubjectFormat) -> SetVerifier {
        SetVerifier::new(
            SharedSignalsSettings {
                issuer: "https://ssf.example".into(),
                jwks_url: "https://ssf.example/jwks".parse().unwrap(),
                audience: "https://broker.example/ssf".into(),
                subject_format: format,
                subject_issuer: IDP.into(),
                max_age: Duration::from_secs(3600),
                token_sha256: None,
            },
            reqwest::Client::new(),
        )
    }

    fn claims(value: serde_json::Value) -> Claims {
        serde_json::from_value(value).unwrap()
    }

    fn now() -> Timestamp {
        time::OffsetDateTime::now_utc()
    }

    fn set(iat: i64, events: serde_json::Value, sub_id: serde_json::Value) -> Claims {
        claims(json!({"jti": "j1", "iat": iat, "events": events, "sub_id": sub_id}))
    }

    #[test]
    fn each_subject_format_names_a_subject_only_when_configured_and_of_the_right_issuer() {
        let by_sub = verifier(SubjectFormat::IssSub);
        let named = |v: &SetVerifier, id: serde_json::Value| v.subject(&id).map(String::from);
        assert_eq!(
            named(
                &by_sub,
                json!({"format": "iss_sub", "iss": IDP, "sub": "u1"})
            ),
            Some("u1".into())
        );
        assert_eq!(
            named(
                &by_sub,
                json!({"format": "iss_sub", "iss": "https://other", "sub": "u1"})
            ),
            None,
            "a sub of another issuer is another person"
        );
        assert_eq!(
            named(
                &by_sub,
                json!({"format": "email", "email": "u1@example.com"})
            ),
            None
        );
        assert_eq!(
            named(
                &by_sub,
                json!({"format": "complex", "user": {"format": "iss_sub", "iss": IDP, "sub": "u2"}})
            ),
            Some("u2".into())
        );
        let by_email = verifier(SubjectFormat::Email);
        assert_eq!(
            named(
                &by_email,
                json!({"format": "email", "email": "Ann@Example.com"})
            ),
            Some("Ann@Example.com".into()),
            "kept byte for byte"
        );
        assert_eq!(
            named(
                &by_email,
                json!({"format": "phone_number", "phone_number": "+1"})
            ),
            None
        );
        let by_opaque = verifier(SubjectFormat::Opaque);
        assert_eq!(
            named(&by_opaque, json!({"format": "opaque", "id": "x-9"})),
            Some("x-9".into())
        );
        assert_eq!(
            named(&by_opaque, json!({"format": "opaque", "id": " x"})),
            None
        );
    }

    #[test]
    fn a_set_needs_a_jti_a_recent_iat_and_events() {
        let v = verifier(SubjectFormat::Opaque);
        let t = now().unix_timestamp();
        let disabled = json!({OffboardingEvent::AccountDisabled.uri(): {}});
        let refused = |c: Claims| v.read(c, now()).unwrap_err();
        assert_eq!(
            refused(claims(json!({"iat": t, "events": disabled}))),
            SetError::InvalidRequest("the SET has no usable jti")
        );
        assert_eq!(
            refused(claims(json!({"jti": "j", "events": disabled}))),
            SetError::InvalidRequest("the SET has no usable iat")
        );
        assert_eq!(
            refused(set(t - 3601, disabled.clone(), json!(null))),
            SetError::InvalidRequest("the SET is older than this receiver accepts")
        );
        assert_eq!(
            refused(set(t + 600, disabled.clone(), json!(null))),
            SetError::InvalidRequest("the SET is issued in the future")
        );
        assert_eq!(
            refused(set(t, json!({}), json!(null))),
            SetError::InvalidRequest("the SET has no events")
        );
        assert!(v.read(set(t - 3500, disabled, json!(null)), now()).is_ok());
    }

    #[test]
    fn only_offboarding_events_are_read_each_with_its_own_subject_first() {
        let v = verifier(SubjectFormat::Opaque);
        let t = now().unix_timestamp();
        let read = v
            .read(
                set(
                    t,
                    json!({
                        OffboardingEvent::SessionRevoked.uri(): {},
                        OffboardingEvent::AccountPurged.uri():
                            {"subject": {"format": "opaque", "id": "own"}},
                        "https://schemas.openid.net/secevent/ssf/event-type/verification": {},
                    }),
                    json!({"format": "opaque", "id": "shared"}),
                ),
                now(),
            )
            .unwrap();
        let got: Vec<(OffboardingEvent, Option<String>)> = read
            .events
            .into_iter()
            .map(|(e, s)| (e, s.map(String::from)))
            .collect();
        assert_eq!(
            got,
            [
                (OffboardingEvent::SessionRevoked, Some("shared".into())),
                (OffboardingEvent::AccountPurged, Some("own".into())),
            ]
        );
    }
}
