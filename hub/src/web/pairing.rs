//! Pairing a checkout from the owner's page: open a pairing (an 8-digit code
//! and its QR code, ten minutes, three tries), watch it end, cancel it, and
//! withdraw a terminal's key. Only the owner: a paired terminal takes money.

use serde_json::json;
use tallybox_core::protocol::TerminalId;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::auth::{session, Session};
use super::error::{bad_request, bad_terminal, internal, not_found, Code};
use super::WebState;
use crate::store::accounts::Role;

fn status(state: &WebState) -> serde_json::Value {
    match state.keys.pairing() {
        Some(p) => json!({"open": true, "code": p.code, "expires_in_s": p.expires_in_s,
                          "tries_left": p.tries_left, "terminal": p.terminal, "paired": p.paired,
                          "others": p.others, "last_other": p.last_other}),
        None => json!({"open": false}),
    }
}

async fn show(_: Session, state: WebState) -> Result<impl Reply, Rejection> {
    Ok(warp::reply::json(&status(&state)))
}

/// `POST /api/v1/pairing`: `{"terminal": "T1"}` opens a code only T1's
/// attempts count against (what the page sends); without it, any checkout's.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct OpenBody {
    terminal: Option<String>,
}

async fn open(
    body: warp::hyper::body::Bytes,
    who: Session,
    state: WebState,
) -> Result<impl Reply, Rejection> {
    let body: OpenBody = match body.is_empty() {
        true => OpenBody::default(),
        false => {
            serde_json::from_slice(&body).map_err(|e| bad_request(Code::BadBody, format!("body: {e}")))?
        }
    };
    let terminal = match body.terminal.filter(|t| !t.is_empty()) {
        Some(t) => Some(TerminalId::parse(&t).map_err(bad_terminal)?),
        None => None,
    };
    state.keys.start_pairing(terminal.as_ref());
    tracing::info!(account = %who.account, terminal = ?terminal.as_ref().map(|t| t.as_str()), "pairing opened");
    Ok(warp::reply::with_status(
        warp::reply::json(&status(&state)),
        StatusCode::CREATED,
    ))
}

async fn cancel(_: Session, state: WebState) -> Result<impl Reply, Rejection> {
    if !state.keys.cancel_pairing() {
        return Err(not_found(Code::NoPairing, "no pairing is open"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The code as a QR code, for a checkout with a scanner.
async fn qr(_: Session, state: WebState) -> Result<impl Reply, Rejection> {
    let pairing = state
        .keys
        .pairing()
        .ok_or_else(|| not_found(Code::NoPairing, "no pairing is open"))?;
    let svg = super::api::qr_svg(&format!("tallybox-pair:{}", pairing.code))
        .ok_or_else(|| internal("the code does not fit a QR code"))?;
    Ok(warp::reply::with_header(svg, "content-type", "image/svg+xml"))
}

async fn revoke(id: String, who: Session, state: WebState) -> Result<impl Reply, Rejection> {
    let terminal = TerminalId::parse(&id).map_err(bad_terminal)?;
    let keys = state.keys.clone();
    let by = who.account.clone();
    tokio::task::spawn_blocking(move || keys.revoke(&terminal, &by))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes(state: WebState) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let with_state = warp::any().map({
        let state = state.clone();
        move || state.clone()
    });
    let owner = session(state, Role::Owner);
    let show = warp::path!("api" / "v1" / "pairing")
        .and(warp::get())
        .and(owner.clone())
        .and(with_state.clone())
        .and_then(show);
    let open = warp::path!("api" / "v1" / "pairing")
        .and(warp::post())
        .and(owner.clone())
        .and(warp::body::content_length_limit(4 * 1024))
        .and(warp::body::bytes())
        .and(with_state.clone())
        .and_then(|who, body, state| open(body, who, state));
    let cancel = warp::path!("api" / "v1" / "pairing")
        .and(warp::delete())
        .and(owner.clone())
        .and(with_state.clone())
        .and_then(cancel);
    let qr = warp::path!("api" / "v1" / "pairing" / "qr.svg")
        .and(warp::get())
        .and(owner.clone())
        .and(with_state.clone())
        .and_then(qr);
    let revoke = warp::path!("api" / "v1" / "terminals" / String / "key")
        .and(warp::delete())
        .and(owner)
        .and(with_state)
        .and_then(revoke);
    show.or(open).or(cancel).or(qr).or(revoke)
}
