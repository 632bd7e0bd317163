//! The language switch every end-user page shows: `GET /lang/{code}?return_to=<page>` sets
//! the `cb_lang` cookie and sends the browser back to the page it came from.
//!
//! A link, not a form: it changes nothing on the server and nothing in the session (the
//! CSRF token and the sign-in stay as they are), only which words the pages use. The way
//! back is a local path with its query (so a sign-in page keeps its own `return_to`); an
//! absolute or protocol-relative address, or anything else, becomes `/`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::Error;
use crate::broker::Broker;
use crate::http::i18n::{COOKIE, Lang};
use crate::http::render::PageError;

#[derive(Deserialize)]
pub struct SwitchQuery {
    #[serde(default)]
    return_to: String,
}

pub async fn switch(
    State(broker): State<Arc<Broker>>,
    Path(code): Path<String>,
    Query(q): Query<SwitchQuery>,
) -> Response {
    let Some(lang) = Lang::from_code(&code) else {
        return PageError(Error::NoSuchRoute).into_response();
    };
    let secure = if broker.public_url().scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly{secure}",
        lang.code()
    );
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, local_target(&q.return_to)),
        ],
    )
        .into_response()
}

/// `raw` if it is a local path (see `login::safe_return_to`) with at most a plain query;
/// else `/`.
fn local_target(raw: &str) -> String {
    let (path, query) = raw.split_once('?').unwrap_or((raw, ""));
    let path_ok = super::login::safe_return_to(path) == path;
    let query_ok = query
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.~=&%+/".contains(&b));
    if path_ok && query_ok && raw.len() <= 1024 {
        raw.to_owned()
    } else {
        "/".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::local_target;

    #[test]
    fn only_local_pages_are_returned_to() {
        assert_eq!(local_target("/e/abc"), "/e/abc");
        assert_eq!(
            local_target("/login?return_to=%2Fe%2Fabc"),
            "/login?return_to=%2Fe%2Fabc"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "/e/abc?x=<script>",
            "/e/a b",
            "",
            "e/abc",
        ] {
            assert_eq!(local_target(bad), "/", "{bad}");
        }
    }
}
