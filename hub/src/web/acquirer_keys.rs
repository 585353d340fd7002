//! The acquirer's terminal master keys on the owner's page (Settings,
//! Acquirer keys): each acquirer terminal id with its key's check value, and
//! a key entered from the two components the acquirer sent, each checked
//! against its check value. The key goes to the key file and the terminal
//! signs in under it at once; the page is told whether that worked. No key
//! or component is ever sent back, logged or put in the database (the audit
//! log has the check value).

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use tallybox_core::secret::Secret;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::auth::{json_body, session, Session};
use super::error::{bad_request, internal, reject, ApiError, Code};
use super::{read, write, WebState};
use crate::acquirer::iso8583::keys::{self, check_terminal};
use crate::store::accounts::Role;

/// How long the page waits for the sign-in under a new key.
const SIGN_IN_WAIT: Duration = Duration::from_secs(15);

fn no_link() -> Rejection {
    reject(
        StatusCode::CONFLICT,
        Code::NoAcquirerLink,
        "the hub runs the built-in simulated acquirer: it has no master keys",
    )
}

async fn list(_: Session, state: WebState) -> Result<impl Reply, Rejection> {
    let Some(link) = &state.acquirer_keys else {
        return Ok(warp::reply::json(&json!({ "link": false, "terminals": [] })));
    };
    let seen = read(&state, |s| s.terminals().map_err(internal)).await?;
    let checkouts: Vec<String> = state
        .own_checkouts
        .iter()
        .map(|t| t.as_str().to_string())
        .chain(seen.into_iter().map(|t| t.id))
        .collect();
    let terminals = link.master_key_checks(&checkouts);
    Ok(warp::reply::json(
        &json!({ "link": true, "terminals": terminals }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Components {
    component_1: Secret<String>,
    check_value_1: String,
    component_2: Secret<String>,
    check_value_2: String,
}

async fn enter(
    terminal: String,
    who: Session,
    body: Components,
    state: WebState,
) -> Result<impl Reply, Rejection> {
    let link = state.acquirer_keys.clone().ok_or_else(no_link)?;
    check_terminal(&terminal)
        .map_err(|e| bad_request(Code::BadAcquirerTerminal, format!("terminal: {e}")))?;
    let key = keys::combine([
        (body.component_1.expose(), &body.check_value_1),
        (body.component_2.expose(), &body.check_value_2),
    ])
    .map_err(|e| {
        let code = match e.mistyped_check {
            true => Code::KeyCheckMistyped,
            false => Code::BadKeyComponent,
        };
        ApiError::new(StatusCode::BAD_REQUEST, code, e.to_string()).with("component", e.component)
    })?;
    let check = key.check_value();
    let signed_in = tokio::time::timeout(SIGN_IN_WAIT, link.enter_master_key(&terminal, key));
    // The key is written (or refused) at once; the sign-in may take longer.
    let signed_in = match signed_in.await {
        Ok(Err(not_kept)) => {
            tracing::error!(terminal, error = %not_kept, "master key entered on the page not kept");
            return Err(reject(
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::KeyNotKept,
                not_kept,
            ));
        }
        Ok(Ok(result)) => result,
        Err(_) => Err(format!("no sign-in answer within {} s", SIGN_IN_WAIT.as_secs())),
    };
    let (t2, c2, by) = (terminal.clone(), check.clone(), who.account.clone());
    write(&state, move |s| {
        s.note_master_key(&t2, &c2, &by).map_err(internal)
    })
    .await?;
    tracing::warn!(
        terminal,
        check_value = %check,
        account = %who.account,
        signed_in = signed_in.is_ok(),
        "acquirer master key entered on the web page"
    );
    Ok(warp::reply::json(&json!({
        "terminal": terminal,
        "check_value": check,
        "signed_in": signed_in.is_ok(),
        "sign_in_error": signed_in.err(),
    })))
}

pub fn routes(state: WebState) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let with_state = {
        let state = state.clone();
        warp::any().map(move || state.clone())
    };
    let owner = session(state, Role::Owner);
    let list = warp::path!("api" / "v1" / "acquirer-keys")
        .and(warp::get())
        .and(owner.clone())
        .and(with_state.clone())
        .and_then(list);
    let enter = warp::path!("api" / "v1" / "acquirer-keys" / String)
        .and(warp::put())
        .and(owner)
        .and(json_body())
        .and(with_state)
        .and_then(enter);
    list.or(enter)
}
