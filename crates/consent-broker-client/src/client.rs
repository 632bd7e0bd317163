//! [`BrokerClient`]: the `/v1` endpoints as typed async calls. The service's credential
//! ([`Credential`]: its token, a fresh client assertion, its workload token) is sent as a
//! bearer token on every request; handles travel only in bodies, never in URLs; the
//! client follows no redirects, so neither can leak to another host.

use std::time::{Duration, Instant};

use consent_broker_api::{
    CreateElicitation, ElicitationView, GrantView, HandleBody, Problem, ReadyView, RedeemBody,
    RedeemedView, Secret,
};
use reqwest::{Method, RequestBuilder, Response, StatusCode, header};
use serde::de::DeserializeOwned;
use url::Url;

use crate::Error;
use crate::credential::Credential;

/// Longest single long-poll the broker accepts.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Time allowed for an ordinary request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The answer to `create`.
#[derive(Clone, Debug)]
pub enum Created {
    /// An active grant already covers the request: redeem `handle`, no user needed.
    Ready(ReadyView),
    /// The user must consent: hand `mcp` (or `mcp_error`) to the MCP client.
    Pending(Box<ElicitationView>),
}

#[derive(Clone)]
pub struct BrokerClient {
    http: reqwest::Client,
    base: Url,
    credential: Credential,
}

impl std::fmt::Debug for BrokerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl BrokerClient {
    /// A client of the broker at `base_url` (e.g. `https://consent.example.com/`),
    /// authenticating with this service's bearer token.
    pub fn new(base_url: Url, service_token: impl Into<Secret>) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("consent-broker-client/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Self::with_http(http, base_url, service_token)
    }

    /// The same with your own `reqwest::Client` (proxies, roots). Give it no redirects.
    pub fn with_http(
        http: reqwest::Client,
        base_url: Url,
        service_token: impl Into<Secret>,
    ) -> Result<Self, Error> {
        Self::with_credential(http, base_url, Credential::Token(service_token.into()))
    }

    /// A client authenticating with `credential`: the static token, an RFC 7523 client
    /// assertion signed for each request, or a workload identity token.
    pub fn with_credential(
        http: reqwest::Client,
        mut base_url: Url,
        credential: Credential,
    ) -> Result<Self, Error> {
        if base_url.cannot_be_a_base() || !matches!(base_url.scheme(), "http" | "https") {
            return Err(Error::InvalidUrl("not an http(s) base URL".into()));
        }
        if !base_url.path().ends_with('/') {
            let path = format!("{}/", base_url.path());
            base_url.set_path(&path);
        }
        Ok(Self {
            http,
            base: base_url,
            credential,
        })
    }

    /// `POST /v1/elicitations`: ready with a handle, or pending with a consent link.
    pub async fn create(&self, request: &CreateElicitation) -> Result<Created, Error> {
        let response = self
            .request(Method::POST, &["v1", "elicitations"])?
            .json(request)
            .send()
            .await?;
        match response.status() {
            StatusCode::OK => Ok(Created::Ready(response.json().await?)),
            StatusCode::CREATED => Ok(Created::Pending(response.json().await?)),
            _ => Err(problem(response).await),
        }
    }

    /// `GET /v1/elicitations/{id}`: where it stands now.
    pub async fn get(&self, id: &str) -> Result<ElicitationView, Error> {
        let response = self
            .request(Method::GET, &["v1", "elicitations", id])?
            .send()
            .await?;
        ok_json(response).await
    }

    /// Waits up to `wait` for the elicitation to leave `pending` (long-polls, one request
    /// per minute at most), then returns it as it is, pending or not.
    pub async fn wait(&self, id: &str, wait: Duration) -> Result<ElicitationView, Error> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .min(MAX_WAIT);
            let response = self
                .request(Method::GET, &["v1", "elicitations", id])?
                .query(&[("wait", left.as_secs())])
                .timeout(left + REQUEST_TIMEOUT)
                .send()
                .await?;
            let view: ElicitationView = ok_json(response).await?;
            if !view.status.is_pending() || Instant::now() + Duration::from_secs(1) > deadline {
                return Ok(view);
            }
        }
    }

    /// `POST /v1/redeem`: the credential behind a handle (refreshed first when due).
    pub async fn redeem(&self, handle: &Secret) -> Result<RedeemedView, Error> {
        self.redeem_with(handle, false, None).await
    }

    /// `POST /v1/redeem` with `subject_token`: the access token the user's MCP client
    /// presented, for a service whose `subject_proof` is `required` (or `optional`).
    pub async fn redeem_proving(
        &self,
        handle: &Secret,
        subject_token: Option<Secret>,
    ) -> Result<RedeemedView, Error> {
        self.redeem_with(handle, false, subject_token).await
    }

    /// `POST /v1/redeem` with `force_refresh`: call it when the upstream refused the access
    /// token (HTTP 401). The broker refreshes at most once per grant per 30 seconds.
    pub async fn redeem_refreshed(&self, handle: &Secret) -> Result<RedeemedView, Error> {
        self.redeem_with(handle, true, None).await
    }

    async fn redeem_with(
        &self,
        handle: &Secret,
        force_refresh: bool,
        subject_token: Option<Secret>,
    ) -> Result<RedeemedView, Error> {
        let response = self
            .request(Method::POST, &["v1", "redeem"])?
            .json(&RedeemBody {
                handle: handle.clone(),
                force_refresh,
                subject_token,
            })
            .send()
            .await?;
        ok_json(response).await
    }

    /// `POST /v1/revoke`: revokes the grant behind a handle (and its upstream tokens).
    pub async fn revoke(&self, handle: &Secret) -> Result<GrantView, Error> {
        let response = self
            .request(Method::POST, &["v1", "revoke"])?
            .json(&HandleBody {
                handle: handle.clone(),
            })
            .send()
            .await?;
        ok_json(response).await
    }

    /// `DELETE /v1/grants/{grant_id}`: the same, by grant id.
    pub async fn revoke_grant(&self, grant_id: &str) -> Result<GrantView, Error> {
        let response = self
            .request(Method::DELETE, &["v1", "grants", grant_id])?
            .send()
            .await?;
        ok_json(response).await
    }

    fn request(&self, method: Method, segments: &[&str]) -> Result<RequestBuilder, Error> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| Error::InvalidUrl("cannot be a base".into()))?
            .pop_if_empty()
            .extend(segments);
        Ok(self
            .http
            .request(method, url)
            .bearer_auth(self.credential.bearer()?.expose())
            .timeout(REQUEST_TIMEOUT))
    }
}

async fn ok_json<T: DeserializeOwned>(response: Response) -> Result<T, Error> {
    if response.status() == StatusCode::OK {
        Ok(response.json().await?)
    } else {
        Err(problem(response).await)
    }
}

/// The error of a non-success answer: its problem, or the bare status.
async fn problem(response: Response) -> Error {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .map(Duration::from_secs);
    match response.json::<Problem>().await {
        Ok(p) => Error::from_problem(p, retry_after),
        Err(_) => Error::UnexpectedResponse { status },
    }
}
