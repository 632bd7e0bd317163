//! "Your connections": the signed-in user's own grants, and revoking one of them. A user
//! only ever reaches their own grants: another user's grant id answers exactly like an
//! unknown one (404), and revocation goes through `Broker::revoke_own`, which checks the
//! owner before it calls `Broker::revoke`.

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::flash;
use super::grant_view::{GrantView, Names};
use crate::broker::Broker;
use crate::http::extract::{CsrfForm, NoFields, SignedIn};
use crate::http::render::{Chrome, MessagePage, PageError, Tone, chrome};

#[derive(Template, WebTemplate)]
#[template(path = "connections.html")]
pub struct ConnectionsPage {
    pub chrome: Chrome,
    pub title: String,
    pub flash: Option<String>,
    pub active: Vec<GrantView>,
    pub ended: Vec<GrantView>,
}

pub async fn show(
    State(broker): State<Arc<Broker>>,
    me: SignedIn,
) -> Result<ConnectionsPage, PageError> {
    let names = Names::of(&broker).await?;
    let grants = broker.grants_of(&me.user.subject).await?;
    let (active, ended): (Vec<GrantView>, Vec<GrantView>) = grants
        .iter()
        .map(|g| GrantView::new(&names, g))
        .partition(|g| g.revocable);
    let chrome = chrome(&broker, &me.session).await?;
    Ok(ConnectionsPage {
        title: chrome.t.nav_connections().into(),
        chrome,
        flash: flash::take(&me.session).await?,
        active,
        ended,
    })
}

pub async fn revoke(
    State(broker): State<Arc<Broker>>,
    Path(id): Path<String>,
    me: SignedIn,
    _: CsrfForm<NoFields>,
) -> Result<Response, PageError> {
    let names = Names::of(&broker).await?;
    match broker.revoke_own(&me.user, &id).await? {
        Some(g) => {
            let view = GrantView::new(&names, &g);
            let t = chrome(&broker, &me.session).await?.t;
            flash::set(
                &me.session,
                &t.revoked_flash(&view.service_name, &view.provider_name),
            )
            .await?;
            Ok(Redirect::to("/connections").into_response())
        }
        None => Ok(not_found(&broker, &me).await?),
    }
}

async fn not_found(broker: &Broker, me: &SignedIn) -> Result<Response, PageError> {
    let chrome = chrome(broker, &me.session).await?;
    let (heading, body) = chrome.t.connection_not_found();
    let page = MessagePage::new(chrome, Tone::Warning, heading, body);
    Ok((StatusCode::NOT_FOUND, page).into_response())
}
