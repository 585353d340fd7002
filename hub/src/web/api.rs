//! The JSON API under `/api/v1/` and `/healthz`.

use serde::Serialize;
use serde_json::{json, Value};
use tallybox_core::protocol::{Response, TerminalId, TxnStatus};
use tallybox_core::reason::explain;
use tallybox_core::slip::{self, Copy, Slip};
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::auth::{session, Session};
use super::error::{
    bad_filter, bad_request, bad_terminal, internal, no_transaction, not_found, terminal_offline, Code,
};
use super::{read, WebState};
use crate::shop::current;
use crate::store::accounts::Role;
use crate::store::query::{Filter as TxnFilter, ListError};
use crate::store::Txn;

/// One transaction as the page sees it: the stored fields plus the amount as
/// text and, for a decline, what it means.
fn view(txn: &Txn) -> Value {
    let mut v = serde_json::to_value(txn).unwrap_or(Value::Null);
    v["amount_text"] = Value::from(txn.currency.format(txn.amount));
    if let Some(code) = txn.response_code {
        let x = explain(code);
        v["reason"] =
            json!({"en": x.reason_en, "zh-CN": x.reason_zh, "hint_en": x.hint_en, "hint_zh-CN": x.hint_zh});
    }
    v
}

async fn list(_: Session, mut filter: TxnFilter, state: WebState) -> Result<impl Reply, Rejection> {
    filter.currency = state.currency;
    let (page, undone) = read(&state, move |s| {
        let page = s.list(&filter).map_err(|e| match e {
            ListError::Filter(f) => bad_filter(&f),
            ListError::Store(e) => internal(e),
        })?;
        // What became of each approved sale listed: one lookup in the
        // index of undoings per row of the page.
        let mut undone = Vec::with_capacity(page.items.len());
        for t in &page.items {
            let sold = t.kind == tallybox_core::protocol::TxnKind::Sale && t.status == TxnStatus::Approved;
            undone.push(match sold {
                true => crate::store::undone_of(&s.undoings(t.id).map_err(internal)?),
                false => (false, 0),
            });
        }
        Ok((page, undone))
    })
    .await?;
    let items: Vec<Value> = page
        .items
        .iter()
        .zip(undone)
        .map(|(t, (voided, refunded))| {
            let mut v = view(t);
            v["voided"] = Value::from(voided);
            v["refunded"] = Value::from(t.currency.format_minor(refunded));
            v
        })
        .collect();
    Ok(warp::reply::json(
        &json!({"items": items, "next_before": page.next_before}),
    ))
}

async fn one(id: i64, _: Session, state: WebState) -> Result<impl Reply, Rejection> {
    let found = read(&state, move |s| {
        let txn = s.get(id).map_err(internal)?;
        let undoings = s.undoings(id).map_err(internal)?;
        Ok(txn.map(|t| (t, undoings)))
    })
    .await?;
    let Some((txn, undoings)) = found else {
        return Err(no_transaction(id));
    };
    let (voided, refunded) = crate::store::undone_of(&undoings);
    let mut v = view(&txn);
    // The voids and refunds made of it, each a receipt of its own.
    v["undone_by"] = undoings
        .into_iter()
        .map(|(id, kind, amount, status)| {
            json!({"id": id, "kind": kind, "status": status, "amount_text": txn.currency.format_minor(amount.max(0) as u64)})
        })
        .collect();
    // What was undone of a sale (pending voids and refunds count too).
    v["voided"] = Value::from(voided);
    v["refunded"] = Value::from(txn.currency.format_minor(refunded));
    // What a refund may still give back.
    let left = if voided {
        0
    } else {
        txn.amount.minor().saturating_sub(refunded)
    };
    v["refundable"] = Value::from(txn.currency.format_minor(left));
    let receipt = txn.receipt(&current(&state.shop));
    // The customer's copy as printed; its QR code is the e-receipt link.
    let slip = Slip::of(&receipt, Copy::Cardholder, false, slip::WIDTH);
    v["slip"] = Value::from(slip.lines);
    v["receipt_link"] = Value::from(slip.qr);
    Ok(warp::reply::json(&v))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReprintBody {
    terminal: String,
}

/// Prints the customer's copy of an approved transaction on a terminal the
/// owner picks; the terminal must be online (an offline one would never
/// hear it).
async fn reprint(id: i64, _: Session, body: ReprintBody, state: WebState) -> Result<impl Reply, Rejection> {
    let terminal = TerminalId::parse(&body.terminal).map_err(bad_terminal)?;
    let t2 = terminal.clone();
    let (txn, online) = read(&state, move |s| {
        let txn = s.get(id).map_err(internal)?;
        let online = s
            .terminals()
            .map_err(internal)?
            .into_iter()
            .any(|t| t.id == t2.as_str() && t.online);
        Ok((txn, online))
    })
    .await?;
    let txn = txn.ok_or_else(|| no_transaction(id))?;
    if txn.status != TxnStatus::Approved {
        return Err(bad_request(
            Code::NoSlipToPrint,
            "only an approved transaction has a slip to print",
        ));
    }
    if !online {
        return Err(terminal_offline(&terminal, "pick a checkout that is on"));
    }
    let receipt = txn.receipt(&current(&state.shop));
    state
        .push
        .send((terminal.clone(), Response::Print { receipt }))
        .await
        .map_err(|_| internal("the MQTT link has stopped"))?;
    tracing::info!(txn = id, terminal = %terminal, "reprint sent from the web page");
    Ok(warp::reply::with_status(
        warp::reply::json(&json!({"terminal": terminal.as_str(), "sent": true})),
        StatusCode::ACCEPTED,
    ))
}

/// The customer's e-receipt: one receipt, nothing else, for whoever holds the
/// link (printed as a QR code). Tokens carry 80 random bits or more (see
/// the store's `receipt_token`); an unknown one reads like any missing page.
async fn by_token(token: String, state: &WebState) -> Result<Txn, Rejection> {
    let valid = token.len() == 26 && token.bytes().all(|b| b.is_ascii_alphanumeric());
    let txn = if valid {
        let token = token.to_ascii_uppercase();
        read(state, move |s| s.by_receipt_token(&token).map_err(internal)).await?
    } else {
        None
    };
    txn.ok_or_else(|| not_found(Code::NotFound, "no such receipt"))
}

async fn e_receipt(token: String, state: WebState) -> Result<warp::reply::Response, Rejection> {
    let shop = current(&state.shop);
    let page = |title: &str, status: &str, body: &str| {
        format!(
            "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title}</title><link rel=\"stylesheet\" href=\"/style.css\"></head>\
             <body><main><h1>{title}</h1>{status}{body}</main></body></html>",
            title = html_escape(title),
        )
    };
    let found = match by_token(token, &state).await {
        Ok(txn) => txn,
        Err(_) => {
            // A mistyped or old link: a page that says so, not an API error.
            let html = page(
                &format!("电子签购单 e-receipt · {}", shop.name),
                "",
                "<p class=\"status declined banner\">找不到这张签购单。请核对链接，或请店家重新出示。<br>\
                 No such receipt: check the link, or ask the shop to show it again.</p>",
            );
            let reply = warp::reply::with_status(warp::reply::html(html), StatusCode::NOT_FOUND);
            return Ok(warp::reply::with_header(reply, "cache-control", "no-store").into_response());
        }
    };
    let txn = found;
    let id = txn.id;
    let (voided, refunded) = read(&state, move |s| s.undone(id).map_err(internal)).await?;
    // A sale undone since it was printed says so above its slip.
    let mut undone = Vec::new();
    if voided {
        undone.push("已撤销，未扣款 · VOIDED, not charged".to_string());
    }
    if refunded > 0 {
        let back = format!("{} {}", txn.currency, txn.currency.format_minor(refunded));
        undone.push(format!("已退货 {back} · REFUNDED {back}"));
    }
    let status = if undone.is_empty() {
        String::new()
    } else {
        format!(
            "<p class=\"status declined banner\" id=\"undone\">{}</p>",
            html_escape(&undone.join(" · "))
        )
    };
    let receipt = txn.receipt(&shop);
    let slip = slip::render(&receipt, Copy::Cardholder, false).join("\n");
    let html = page(
        &format!("电子签购单 e-receipt · {}", shop.name),
        &status,
        &format!("<pre class=\"slip\">{}</pre>", html_escape(&slip)),
    );
    Ok(warp::reply::with_header(warp::reply::html(html), "cache-control", "no-store").into_response())
}

/// The e-receipt link as a QR code, for the owner to show a customer.
async fn e_receipt_qr(token: String, state: WebState) -> Result<impl Reply, Rejection> {
    let txn = by_token(token, &state).await?;
    let link = txn.receipt(&current(&state.shop)).link.unwrap_or_default();
    let svg = qr_svg(&link).ok_or_else(|| internal("the e-receipt link does not fit a QR code"))?;
    Ok(warp::reply::with_header(svg, "content-type", "image/svg+xml"))
}

/// A QR code as SVG: one path of dark modules inside a 4-module quiet zone.
pub(crate) fn qr_svg(data: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(data, qrcode::EcLevel::M).ok()?;
    let width = code.width();
    let mut path = String::new();
    for (i, color) in code.to_colors().iter().enumerate() {
        if *color == qrcode::Color::Dark {
            path.push_str(&format!("M{} {}h1v1h-1z", i % width + 4, i / width + 4));
        }
    }
    let size = width + 8;
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" shape-rendering=\"crispEdges\">\
         <rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>"
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
async fn fraud(_: Session, q: FraudQuery, state: WebState) -> Result<impl Reply, Rejection> {
    let from = q.from.unwrap_or_else(|| "0000".into());
    let to = match q.to {
        Some(d) if d.len() == 10 => format!("{d} 23:59:59"),
        Some(d) => d,
        None => "9999".into(),
    };
    let (hits, frozen) = read(&state, move |s| {
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
    let database = read(&state, |s| {
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

/// The receipt filters from the query string; a bad one is a 400 naming it.
pub fn filter_query() -> impl Filter<Extract = (TxnFilter,), Error = Rejection> + Clone {
    super::query::<TxnFilter>()
}

pub fn routes(state: WebState) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let state_any = state.clone();
    let state = warp::any().map(move || state.clone());
    let query = filter_query();
    let list = warp::path!("api" / "v1" / "transactions")
        .and(warp::get())
        .and(session(state_any.clone(), Role::Manager))
        .and(query)
        .and(state.clone())
        .and_then(list);
    let one = warp::path!("api" / "v1" / "transactions" / i64)
        .and(warp::get())
        .and(session(state_any.clone(), Role::Manager))
        .and(state.clone())
        .and_then(one);
    let reprint = warp::path!("api" / "v1" / "transactions" / i64 / "reprint")
        .and(warp::post())
        .and(session(state_any.clone(), Role::Manager))
        .and(super::auth::json_body())
        .and(state.clone())
        .and_then(reprint);
    let e_receipt = warp::path!("r" / String)
        .and(warp::get())
        .and(state.clone())
        .and_then(e_receipt);
    let e_receipt_qr = warp::path!("r" / String / "qr.svg")
        .and(warp::get())
        .and(state.clone())
        .and_then(e_receipt_qr);
    let fraud = warp::path!("api" / "v1" / "fraud")
        .and(warp::get())
        .and(session(state_any, Role::Manager))
        .and(super::query::<FraudQuery>())
        .and(state.clone())
        .and_then(fraud);
    let health = warp::path!("healthz")
        .and(warp::get())
        .and(state)
        .and_then(health);
    list.or(one)
        .or(reprint)
        .or(fraud)
        .or(e_receipt)
        .or(e_receipt_qr)
        .or(health)
}
