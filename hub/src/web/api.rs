//! The JSON API under `/api/v1/` and `/healthz`.

use std::convert::Infallible;

use serde::Serialize;
use serde_json::{json, Value};
use tallybox_terminal::amount::Amount;
use tallybox_terminal::reason::explain;
use tallybox_terminal::slip::{self, Copy, Slip};
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::WebState;
use crate::store::query::{Filter as TxnFilter, ListError};
use crate::store::{Store, Txn};

#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl warp::reject::Reject for ApiError {}

fn reject(status: StatusCode, code: &'static str, message: impl Into<String>) -> Rejection {
    warp::reject::custom(ApiError {
        status,
        code,
        message: message.into(),
    })
}

fn error_body(status: StatusCode, code: &str, message: &str) -> warp::reply::Response {
    let body = json!({"error": {"code": code, "message": message}});
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

/// One transaction as the page sees it: the stored fields plus the amount as
/// text and, for a decline, what it means.
fn view(txn: &Txn) -> Value {
    let mut v = serde_json::to_value(txn).unwrap_or(Value::Null);
    v["amount_text"] = Value::from(txn.amount.to_string());
    if !txn.response_code.is_empty() {
        let x = explain(&txn.response_code);
        v["reason"] =
            json!({"en": x.reason_en, "zh-CN": x.reason_zh, "hint_en": x.hint_en, "hint_zh-CN": x.hint_zh});
    }
    v
}

async fn with_store<R: Send + 'static>(
    state: &WebState,
    f: impl FnOnce(&Store) -> Result<R, Rejection> + Send + 'static,
) -> Result<R, Rejection> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || f(&store.lock().unwrap_or_else(|e| e.into_inner())))
        .await
        .map_err(|e| reject(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
}

fn internal(e: impl std::fmt::Display) -> Rejection {
    tracing::error!(error = %e, "API failure");
    reject(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the hub could not read its database; see troubleshooting",
    )
}

async fn list(filter: TxnFilter, state: WebState) -> Result<impl Reply, Rejection> {
    let page = with_store(&state, move |s| {
        s.list(&filter).map_err(|e| match e {
            ListError::Filter(f) => reject(StatusCode::BAD_REQUEST, "bad_filter", f.to_string()),
            ListError::Store(e) => internal(e),
        })
    })
    .await?;
    let items: Vec<Value> = page.items.iter().map(view).collect();
    Ok(warp::reply::json(
        &json!({"items": items, "next_before": page.next_before}),
    ))
}

async fn one(id: i64, state: WebState) -> Result<impl Reply, Rejection> {
    let found = with_store(&state, move |s| {
        let txn = s.get(id).map_err(internal)?;
        let undone = s.undone(id).map_err(internal)?;
        Ok(txn.map(|t| (t, undone)))
    })
    .await?;
    let Some((txn, (voided, refunded))) = found else {
        return Err(reject(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no transaction {id}"),
        ));
    };
    let mut v = view(&txn);
    // What was undone of a sale (pending voids and refunds count too).
    v["voided"] = Value::from(voided);
    v["refunded"] = Value::from(Amount::from_minor(refunded).unwrap_or(Amount::ZERO).to_string());
    let receipt = txn.receipt(&state.store_name, &state.merchant_id, &state.public_url);
    // The customer's copy as printed; its QR code is the e-receipt link.
    let slip = Slip::of(&receipt, Copy::Cardholder, false, slip::WIDTH);
    v["slip"] = Value::from(slip.lines);
    v["receipt_link"] = Value::from(slip.qr);
    Ok(warp::reply::json(&v))
}

/// The customer's e-receipt: one receipt, nothing else, for whoever holds the
/// link (printed as a QR code). Tokens are 128 random bits; an unknown one
/// reads like any missing page.
async fn e_receipt(token: String, state: WebState) -> Result<impl Reply, Rejection> {
    let valid = token.len() == 26 && token.bytes().all(|b| b.is_ascii_alphanumeric());
    let txn = if valid {
        let token = token.to_ascii_uppercase();
        with_store(&state, move |s| s.by_receipt_token(&token).map_err(internal)).await?
    } else {
        None
    };
    let Some(txn) = txn else {
        return Err(reject(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such receipt".to_string(),
        ));
    };
    let receipt = txn.receipt(&state.store_name, &state.merchant_id, &state.public_url);
    let slip = slip::render(&receipt, Copy::Cardholder, false).join("\n");
    let page = format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><link rel=\"stylesheet\" href=\"/style.css\"></head>\
         <body><main><h1>{title}</h1><pre class=\"slip\">{slip}</pre></main></body></html>",
        title = html_escape(&format!("电子签购单 e-receipt · {}", state.store_name)),
        slip = html_escape(&slip),
    );
    Ok(warp::reply::with_header(
        warp::reply::html(page),
        "cache-control",
        "no-store",
    ))
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    broker_connected: bool,
    database: String,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FraudQuery {
    from: Option<String>,
    to: Option<String>,
}

/// The fraud rules' hits of a period (default: all) and what is frozen now.
async fn fraud(q: FraudQuery, state: WebState) -> Result<impl Reply, Rejection> {
    let from = q.from.unwrap_or_else(|| "0000".into());
    let to = match q.to {
        Some(d) if d.len() == 10 => format!("{d} 23:59:59"),
        Some(d) => d,
        None => "9999".into(),
    };
    let (hits, frozen) = with_store(&state, move |s| {
        Ok((
            s.fraud_hits(&from, &to).map_err(internal)?,
            s.freezes().map_err(internal)?,
        ))
    })
    .await?;
    Ok(warp::reply::json(&json!({"hits": hits, "frozen": frozen})))
}

async fn health(state: WebState) -> Result<impl Reply, Rejection> {
    let broker_connected = *state.broker_connected.borrow();
    let database = with_store(&state, |s| {
        // A read that touches the table but costs the same at ten rows or ten million.
        Ok(s.connection()
            .query_row("SELECT max(id) FROM transactions", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .map(|_| "ok".to_string())
            .unwrap_or_else(|e| e.to_string()))
    })
    .await?;
    let ok = database == "ok" && broker_connected;
    let body = Health {
        status: if ok { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        broker_connected,
        database,
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(warp::reply::with_status(warp::reply::json(&body), status))
}

pub fn routes(state: WebState) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let state = warp::any().map(move || state.clone());
    let query = warp::query::<TxnFilter>().or_else(|e: Rejection| async move {
        let message = match e.find::<warp::reject::InvalidQuery>() {
            Some(q) => format!("bad query: {q}"),
            None => "bad query".to_string(),
        };
        Err::<(TxnFilter,), _>(reject(StatusCode::BAD_REQUEST, "bad_filter", message))
    });
    let list = warp::path!("api" / "v1" / "transactions")
        .and(warp::get())
        .and(query)
        .and(state.clone())
        .and_then(list);
    let one = warp::path!("api" / "v1" / "transactions" / i64)
        .and(warp::get())
        .and(state.clone())
        .and_then(one);
    let e_receipt = warp::path!("r" / String)
        .and(warp::get())
        .and(state.clone())
        .and_then(e_receipt);
    let fraud = warp::path!("api" / "v1" / "fraud")
        .and(warp::get())
        .and(warp::query::<FraudQuery>())
        .and(state.clone())
        .and_then(fraud);
    let health = warp::path!("healthz")
        .and(warp::get())
        .and(state)
        .and_then(health);
    list.or(one).or(fraud).or(e_receipt).or(health)
}

pub async fn recover(e: Rejection) -> Result<warp::reply::Response, Infallible> {
    if let Some(api) = e.find::<ApiError>() {
        return Ok(error_body(api.status, api.code, &api.message));
    }
    if e.is_not_found() {
        return Ok(error_body(StatusCode::NOT_FOUND, "not_found", "no such page"));
    }
    if e.find::<warp::reject::MethodNotAllowed>().is_some() {
        return Ok(error_body(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this address only answers GET",
        ));
    }
    Ok(error_body(
        StatusCode::BAD_REQUEST,
        "bad_request",
        "the request could not be understood",
    ))
}
