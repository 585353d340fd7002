//! The payment-code providers on the owner's page (Settings): how each is
//! set up, and the merchant's credentials entered, checked with the
//! provider and kept (`payments/setup.rs`). No key is ever sent back.

use serde_json::json;
use tallybox_core::protocol::Provider;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::auth::{json_body, session, Session};
use super::error::{bad_request, internal, reject, said, Code};
use super::{write, WebState};
use crate::payments::setup::{Entered, SaveError};
use crate::store::accounts::Role;

fn provider(name: &str) -> Result<Provider, Rejection> {
    Provider::parse(name)
        .filter(|p| *p != Provider::UnionPay)
        .ok_or_else(|| {
            reject(
                StatusCode::NOT_FOUND,
                Code::NotFound,
                "no such provider: alipay or wechat_pay",
            )
        })
}

async fn list(_: Session, state: WebState) -> Result<impl Reply, Rejection> {
    Ok(warp::reply::json(
        &json!({ "providers": state.code_setup.access() }),
    ))
}

async fn enter(
    name: String,
    who: Session,
    body: serde_json::Value,
    state: WebState,
) -> Result<impl Reply, Rejection> {
    let bad = |e: serde_json::Error| bad_request(Code::BadBody, format!("the credentials: {e}"));
    let entered = match provider(&name)? {
        Provider::Alipay => Entered::Alipay(serde_json::from_value(body).map_err(bad)?),
        _ => Entered::Wechat(serde_json::from_value(body).map_err(bad)?),
    };
    if state.currency != tallybox_core::money::Currency::CNY {
        return Err(said(
            StatusCode::BAD_REQUEST,
            Code::BadCodeCredentials,
            "payment codes are taken in CNY, and this shop's currency is another".into(),
        ));
    }
    tracing::info!(provider = %name, account = %who.account, "payment-code credentials entered from the web page");
    match state.code_setup.save(&entered).await {
        Ok(access) => {
            let (id, by) = (access.id.clone(), who.account.clone());
            write(&state, move |s| {
                s.note_code_credentials(&name, id.as_deref(), &by)
                    .map_err(internal)
            })
            .await?;
            Ok(warp::reply::json(&access))
        }
        Err(SaveError::Bad(why)) => Err(said(StatusCode::BAD_REQUEST, Code::BadCodeCredentials, why)),
        Err(SaveError::Refused(words)) => Err(said(
            StatusCode::UNPROCESSABLE_ENTITY,
            Code::CredentialsRefused,
            words,
        )),
        Err(SaveError::Failed(why)) => Err(internal(why)),
    }
}

async fn forget(name: String, who: Session, state: WebState) -> Result<impl Reply, Rejection> {
    let provider = provider(&name)?;
    tracing::info!(provider = %name, account = %who.account, "payment-code credentials forgotten from the web page");
    state.code_setup.forget(provider).map_err(internal)?;
    let by = who.account.clone();
    write(&state, move |s| {
        s.note_code_credentials(&name, None, &by).map_err(internal)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes(state: WebState) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let with_state = {
        let state = state.clone();
        warp::any().map(move || state.clone())
    };
    let owner = session(state, Role::Owner);
    let list = warp::path!("api" / "v1" / "code-providers")
        .and(warp::get())
        .and(owner.clone())
        .and(with_state.clone())
        .and_then(list);
    let enter = warp::path!("api" / "v1" / "code-providers" / String)
        .and(warp::put())
        .and(owner.clone())
        .and(json_body())
        .and(with_state.clone())
        .and_then(enter);
    let forget = warp::path!("api" / "v1" / "code-providers" / String)
        .and(warp::delete())
        .and(owner)
        .and(with_state)
        .and_then(forget);
    list.or(enter).or(forget)
}
