//! Enterprise sign-in with OpenID Connect: authorization code + PKCE + nonce at the IdP.
//!
//! The pending sign-in (state, nonce, verifier, where to return) lives in the server-side
//! session and is consumed by the callback, so a callback can complete only the sign-in
//! its own browser started, once. The ID token is verified (signature from the IdP's JWKS,
//! issuer, audience, expiry, nonce) before any claim is read; the subject comes from the
//! configured claim of that verified token. Admin comes from a configured claim value or a
//! list of subjects.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use url::Url;

use super::{SessionUser, SignInMethod};
use crate::Error;
use crate::config::settings::OidcSettings;
use crate::domain::Subject;
use crate::domain::policy::Claims;

const METADATA_TTL: Duration = Duration::from_secs(3600);

/// A sign-in in progress, kept in the session until the callback.
#[derive(Serialize, Deserialize)]
pub struct PendingSignIn {
    state: String,
    nonce: String,
    verifier: String,
    pub return_to: String,
}

/// What the IdP sent back to `/auth/callback`.
#[derive(Deserialize)]
pub struct SignInCallback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub iss: Option<String>,
}

pub struct OidcLogin {
    pub settings: OidcSettings,
    metadata: Mutex<Option<(Instant, CoreProviderMetadata)>>,
}

impl OidcLogin {
    pub fn new(settings: OidcSettings) -> Self {
        Self {
            settings,
            metadata: Mutex::new(None),
        }
    }

    async fn provider_metadata(
        &self,
        http: &reqwest::Client,
    ) -> Result<CoreProviderMetadata, Error> {
        if let Ok(cached) = self.metadata.lock()
            && let Some((at, m)) = cached.as_ref()
            && at.elapsed() < METADATA_TTL
        {
            return Ok(m.clone());
        }
        let issuer = IssuerUrl::new(self.settings.issuer.clone())
            .map_err(|_| Error::Internal("identity.oidc.issuer is not a URL".into()))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, http)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "identity provider discovery failed");
                Error::UpstreamUnavailable("the sign-in service could not be reached".into())
            })?;
        if let Ok(mut cached) = self.metadata.lock() {
            *cached = Some((Instant::now(), metadata.clone()));
        }
        Ok(metadata)
    }

    /// The broker's client at the IdP, as the metadata describes it.
    fn client(
        &self,
        metadata: CoreProviderMetadata,
        redirect: &Url,
    ) -> CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    > {
        CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(
                self.settings.client_secret.expose_secret().to_owned(),
            )),
        )
        .set_redirect_uri(RedirectUrl::from_url(redirect.clone()))
    }

    /// The IdP authorization URL to send the browser to, and what to keep in its session.
    pub async fn start(
        &self,
        http: &reqwest::Client,
        redirect: &Url,
        return_to: String,
    ) -> Result<(Url, PendingSignIn), Error> {
        let metadata = self.provider_metadata(http).await?;
        let client = self.client(metadata, redirect);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scopes(
                self.settings
                    .scopes
                    .iter()
                    .filter(|s| *s != "openid")
                    .map(|s| Scope::new(s.clone())),
            )
            .set_pkce_challenge(challenge)
            .url();
        let pending = PendingSignIn {
            state: state.secret().to_owned(),
            nonce: nonce.secret().to_owned(),
            verifier: verifier.secret().to_owned(),
            return_to,
        };
        Ok((url, pending))
    }

    /// Completes a sign-in: checks state and issuer, redeems the code, verifies the ID
    /// token and reads the subject from it.
    pub async fn finish(
        &self,
        http: &reqwest::Client,
        redirect: &Url,
        pending: PendingSignIn,
        callback: SignInCallback,
        policy_claims: &std::collections::BTreeSet<&str>,
    ) -> Result<SessionUser, Error> {
        let state_ok = callback
            .state
            .as_deref()
            .is_some_and(|s| bool::from(s.as_bytes().ct_eq(pending.state.as_bytes())));
        if !state_ok {
            return Err(Error::FlowStateRejected);
        }
        if let Some(error) = callback.error {
            return Err(Error::SignInFailed(format!(
                "The sign-in service answered `{}`",
                safe_code(&error)
            )));
        }
        let metadata = self.provider_metadata(http).await?;
        let issuer = metadata
            .issuer()
            .url()
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        if callback
            .iss
            .as_deref()
            .is_some_and(|iss| iss.trim_end_matches('/') != issuer)
        {
            return Err(Error::SignInFailed(
                "The response came from another issuer".into(),
            ));
        }
        let code = callback
            .code
            .ok_or_else(|| Error::SignInFailed("The sign-in response had no code".into()))?;
        let client = self.client(metadata, redirect);
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|_| Error::SignInFailed("The sign-in service has no token endpoint".into()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
            .request_async(http)
            .await
            .map_err(|e| {
                tracing::warn!(error = %safe_code(&e.to_string()), "sign-in code exchange failed");
                Error::SignInFailed("The sign-in service did not accept the sign-in".into())
            })?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| Error::SignInFailed("The sign-in service sent no ID token".into()))?;
        id_token
            .claims(&client.id_token_verifier(), &Nonce::new(pending.nonce))
            .map_err(|e| {
                // The kind only: the library's messages quote claim values from the token.
                tracing::warn!(reason = rejected_claims(&e), "ID token verification failed");
                Error::SignInFailed("The sign-in service's ID token did not verify".into())
            })?;
        // Verified above: reading the same token's payload for the configured claims is safe.
        let claims = payload(&id_token.to_string())?;
        let subject = claim_string(&claims, &self.settings.subject_claim)
            .and_then(|s| Subject::parse(s).ok())
            .ok_or_else(|| {
                Error::SignInFailed(format!(
                    "The ID token has no usable `{}` claim",
                    self.settings.subject_claim
                ))
            })?;
        let admin = self
            .settings
            .admin_subjects
            .iter()
            .any(|a| a == subject.as_str())
            || self
                .settings
                .admin_claim
                .as_ref()
                .is_some_and(|(claim, value)| claim_holds(&claims, claim, value));
        Ok(SessionUser {
            profile: profile(&claims, &subject),
            subject,
            method: SignInMethod::Oidc,
            admin,
            claims: Claims::from_payload(&claims, policy_claims.iter().copied()),
        })
    }
}

fn payload(jwt: &str) -> Result<serde_json::Value, Error> {
    let bad = || Error::SignInFailed("The ID token could not be read".into());
    let part = jwt.split('.').nth(1).ok_or_else(bad)?;
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

/// "Name, e-mail" from the verified token's `name` and `email` claims, leaving out what
/// merely repeats the subject; control and format characters are not kept.
fn profile(claims: &serde_json::Value, subject: &Subject) -> Option<String> {
    let parts: Vec<String> = ["name", "email"]
        .into_iter()
        .filter_map(|c| claim_string(claims, c))
        .map(|v| {
            v.chars()
                .filter(|c| !c.is_control() && !crate::domain::text::is_invisible_format(*c))
                .take(128)
                .collect::<String>()
        })
        .filter(|v| !v.trim().is_empty() && v != subject.as_str())
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn claim_string(claims: &serde_json::Value, name: &str) -> Option<String> {
    match claims.get(name)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn claim_holds(claims: &serde_json::Value, name: &str, value: &str) -> bool {
    match claims.get(name) {
        Some(serde_json::Value::String(s)) => s == value,
        Some(serde_json::Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(value)),
        _ => false,
    }
}

/// An error code from a remote party, cut down to characters safe to show and log.
pub fn safe_code(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect()
}

/// Why an ID token was refused, as a fixed word (never the claim values the library's
/// message quotes).
fn rejected_claims(e: &openidconnect::ClaimsVerificationError) -> &'static str {
    use openidconnect::ClaimsVerificationError as E;
    match e {
        E::Expired(_) => "expired",
        E::InvalidAudience(_) => "audience",
        E::InvalidAuthContext(_) => "auth_context",
        E::InvalidAuthTime(_) => "auth_time",
        E::InvalidIssuer(_) => "issuer",
        E::InvalidNonce(_) => "nonce",
        E::InvalidSubject(_) => "subject",
        E::SignatureVerification(_) => "signature",
        E::Unsupported(_) => "unsupported",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use openidconnect::ClaimsVerificationError as E;

    use super::rejected_claims;

    #[test]
    fn the_profile_shows_name_and_email_without_repeating_the_subject_or_hidden_characters() {
        let subject = crate::domain::Subject::parse("u-123").unwrap();
        let claims = serde_json::json!({"name": "Ann\u{202e}Lee", "email": "ann@example.com"});
        assert_eq!(
            super::profile(&claims, &subject).as_deref(),
            Some("AnnLee, ann@example.com")
        );
        let same = serde_json::json!({"name": "u-123"});
        assert_eq!(super::profile(&same, &subject), None);
    }

    #[test]
    fn a_refused_id_token_is_logged_by_kind_without_its_claim_values() {
        let refused = [
            (
                E::InvalidIssuer("https://idp.evil.example".into()),
                "issuer",
            ),
            (E::InvalidAudience("alice@corp.example".into()), "audience"),
            (E::InvalidNonce("n-0123456789".into()), "nonce"),
            (E::Expired("2026-11-26T10:00:00Z".into()), "expired"),
        ];
        for (error, kind) in refused {
            assert_eq!(rejected_claims(&error), kind, "{error}");
        }
    }
}
