//! Cashiers on the owner's page: anyone signed in sees who they are, where
//! they are signed on and who is locked; the owner adds them, changes a
//! name or PIN, removes them and unlocks one locked by wrong PINs.

use serde::Deserialize;
use serde_json::json;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::auth::{json_body, session, Session};
use super::error::{bad_request, internal, ApiError, Code};
use super::{read, write, WebState};
use crate::shop::current;
use crate::store::accounts::Role;

/// A cashier number: 1 to 4 digits, as keyed at a checkout.
fn number(text: &str) -> Result<String, Rejection> {
    if (1..=4).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(text.to_string())
    } else {
        Err(bad_request(Code::BadCashierNo, "cashier: 1 to 4 digits"))
    }
}

fn no_cashier(no: &str) -> Rejection {
    ApiError::new(StatusCode::NOT_FOUND, Code::NoCashier, format!("no cashier {no}"))
        .with("no", no)
        .into()
}

async fn list(_: Session, state: WebState) -> Result<impl Reply, Rejection> {
    let cashiers = read(&state, |s| s.cashiers().map_err(internal)).await?;
    Ok(warp::reply::json(&json!({
        "cashiers": cashiers,
        "sign_on_required": current(&state.shop).cashier_sign_on,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetCashier {
    name: String,
    /// Needed for a new cashier; absent keeps the PIN.
    pin: Option<String>,
}

async fn set(no: String, who: Session, body: SetCashier, state: WebState) -> Result<impl Reply, Rejection> {
    let no = number(&no)?;
    let name = body.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 24 {
        return Err(bad_request(Code::BadCashierName, "name: 1 to 24 characters"));
    }
    let hash = match body.pin {
        None => None,
        Some(pin) => {
            if !(4..=8).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad_request(Code::BadCashierPin, "pin: 4 to 8 digits"));
            }
            let hash = tokio::task::spawn_blocking(move || crate::passwords::hash(&pin))
                .await
                .map_err(internal)?
                .map_err(internal)?;
            Some(hash)
        }
    };
    let by = who.account.clone();
    let written = write(&state, move |s| {
        s.set_cashier(&no, &name, hash.as_deref(), &by).map_err(internal)
    })
    .await?;
    if !written {
        return Err(bad_request(
            Code::CashierNeedsPin,
            "pin: a new cashier needs a PIN",
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn remove(no: String, who: Session, state: WebState) -> Result<impl Reply, Rejection> {
    let no = number(&no)?;
    let (n, by) = (no.clone(), who.account.clone());
    if !write(&state, move |s| s.remove_cashier(&n, &by).map_err(internal)).await? {
        return Err(no_cashier(&no));
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn unlock(no: String, who: Session, state: WebState) -> Result<impl Reply, Rejection> {
    let no = number(&no)?;
    let (n, by) = (no.clone(), who.account.clone());
    if !write(&state, move |s| s.unlock_cashier(&n, &by).map_err(internal)).await? {
        return Err(no_cashier(&no));
    }
    tracing::info!(cashier = %no, account = %who.account, "cashier unlocked on the web page");
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes(state: WebState) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let with_state = {
        let state = state.clone();
        warp::any().map(move || state.clone())
    };
    let anyone = session(state.clone(), Role::Manager);
    let owner = session(state, Role::Owner);
    let list = warp::path!("api" / "v1" / "cashiers")
        .and(warp::get())
        .and(anyone)
        .and(with_state.clone())
        .and_then(list);
    let set = warp::path!("api" / "v1" / "cashiers" / String)
        .and(warp::put())
        .and(owner.clone())
        .and(json_body())
        .and(with_state.clone())
        .and_then(set);
    let remove = warp::path!("api" / "v1" / "cashiers" / String)
        .and(warp::delete())
        .and(owner.clone())
        .and(with_state.clone())
        .and_then(remove);
    let unlock = warp::path!("api" / "v1" / "cashiers" / String / "unlock")
        .and(warp::post())
        .and(owner)
        .and(with_state)
        .and_then(unlock);
    list.or(set).or(remove).or(unlock)
}
