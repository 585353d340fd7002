//! Voids and refunds from the owner's phone: the owner picks a sale on its
//! receipt, the amount (a refund) and a checkout that is on; the hub sends
//! that checkout the order, it asks for the card, and the void or refund goes
//! to the acquirer like one keyed in with the supervisor PIN (the owner's
//! signed-in session is the approval). Voids only at the sale's own
//! checkout, in the open batch, as the acquirer takes them.

use serde::Deserialize;
use serde_json::json;
use tallybox_core::protocol::{Response, TerminalId, TxnKind, TxnStatus};
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::auth::{json_body, session, Session};
use super::error::{bad_terminal, internal, no_transaction, terminal_offline, ApiError, Code};
use super::{read, write, WebState};
use crate::orders::ORDER_LIFE;
use crate::store::accounts::Role;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UndoBody {
    /// `void` or `refund`.
    kind: String,
    /// The checkout that reads the card.
    terminal: String,
    /// A refund's amount, as the page's currency writes it (`20.00`).
    #[serde(default)]
    amount: Option<String>,
}

fn refused(code: Code, message: &str) -> Rejection {
    ApiError::new(StatusCode::CONFLICT, code, message).into()
}

async fn order(id: i64, who: Session, body: UndoBody, state: WebState) -> Result<impl Reply, Rejection> {
    let kind = match body.kind.as_str() {
        "void" => TxnKind::Void,
        "refund" => TxnKind::Refund,
        _ => {
            return Err(super::error::bad_request(
                Code::BadRequest,
                "kind: void or refund",
            ))
        }
    };
    let terminal = TerminalId::parse(&body.terminal).map_err(bad_terminal)?;
    let (sale, undoings, open_batch) = read(&state, move |s| {
        let sale = s.get(id).map_err(internal)?;
        let undoings = s.undoings(id).map_err(internal)?;
        let open_batch = s.batch_no().map_err(internal)?;
        Ok((sale, undoings, open_batch))
    })
    .await?;
    let sale = sale.ok_or_else(|| no_transaction(id))?;
    if sale.kind != TxnKind::Sale || sale.status != TxnStatus::Approved {
        return Err(refused(
            Code::NotUndoable,
            "only an approved sale can be voided or refunded",
        ));
    }
    let (voided, refunded) = crate::store::undone_of(&undoings);
    if voided {
        return Err(refused(Code::NotUndoable, "this sale is already voided"));
    }
    let left = sale.amount.minor().saturating_sub(refunded);
    let amount = match kind {
        TxnKind::Void => {
            if refunded > 0 {
                return Err(refused(
                    Code::NotUndoable,
                    "part of this sale is refunded: refund the rest instead",
                ));
            }
            if sale.batch_no != open_batch {
                return Err(refused(
                    Code::VoidSettled,
                    "this sale's batch is settled: a void is no longer possible, refund it instead",
                ));
            }
            if sale.terminal_id != terminal.as_str() {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    Code::VoidElsewhere,
                    format!("a void is made at the sale's own checkout, {}", sale.terminal_id),
                )
                .with("terminal", &sale.terminal_id)
                .into());
            }
            sale.amount
        }
        _ => {
            let text = body.amount.as_deref().unwrap_or_default().trim();
            let amount = state
                .currency
                .parse(text)
                .map_err(|e| super::error::bad_request(Code::BadAmount, format!("amount: {e}")))?;
            if amount.is_zero() || amount.minor() > left {
                let most = state.currency.format_minor(left);
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    Code::RefundTooLarge,
                    format!("a refund of this sale is at most {most}"),
                )
                .with("max", most)
                .into());
            }
            amount
        }
    };
    let (_, online) = super::checks::known(&state, terminal.as_str()).await?;
    if !online {
        return Err(terminal_offline(&terminal, "pick a checkout that is on"));
    }
    let sale_terminal = TerminalId::parse(&sale.terminal_id).map_err(internal)?;
    let order = state.orders.place(
        terminal.clone(),
        kind,
        sale_terminal,
        sale.trace_no,
        sale.id,
        amount,
        &who.account,
    );
    let (o2, t2, by) = (order.clone(), terminal.clone(), who.account.clone());
    write(&state, move |s| {
        s.note_undo_order(&o2, kind.as_str(), id, amount.minor(), t2.as_str(), &by)
            .map_err(internal)
    })
    .await?;
    let news = Response::UndoOrder {
        order: order.clone(),
        kind,
        trace_no: sale.trace_no,
        amount,
        tender: Some(sale.paid.tender()),
    };
    state
        .push
        .send((terminal.clone(), news))
        .await
        .map_err(|_| internal("the hub's link to the checkouts has stopped"))?;
    tracing::warn!(sale = id, kind = kind.as_str(), terminal = %terminal, account = %who.account, "void or refund ordered on the web page");
    Ok(warp::reply::with_status(
        warp::reply::json(&json!({
            "order": order,
            "kind": kind.as_str(),
            "terminal": terminal.as_str(),
            "amount": amount.minor(),
            "amount_text": state.currency.format(amount),
            "expires_in_s": ORDER_LIFE.as_secs(),
        })),
        StatusCode::ACCEPTED,
    ))
}

async fn order_state(order: String, _: Session, state: WebState) -> Result<impl Reply, Rejection> {
    Ok(warp::reply::json(&json!({ "state": state.orders.state(&order) })))
}

pub fn routes(state: WebState) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let state_any = state.clone();
    let state = warp::any().map(move || state.clone());
    let order = warp::path!("api" / "v1" / "transactions" / i64 / "undo")
        .and(warp::post())
        .and(session(state_any.clone(), Role::Owner))
        .and(json_body())
        .and(state.clone())
        .and_then(order);
    let order_state = warp::path!("api" / "v1" / "orders" / String)
        .and(warp::get())
        .and(session(state_any, Role::Owner))
        .and(state)
        .and_then(order_state);
    order.or(order_state)
}
