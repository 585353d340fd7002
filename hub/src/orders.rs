//! Voids and refunds the owner orders on the web page: the page places an
//! order for one checkout, the hub sends it there, the checkout asks for the
//! card and sends the void or refund naming the order. The order stands for
//! the supervisor's PIN (the owner's session approved it), once, for a short
//! while, at that checkout, for that sale and amount only.
//!
//! Orders live in memory: a hub restart drops them, like an order that ran
//! out of time (the owner orders again).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tallybox_core::money::Amount;
use tallybox_core::protocol::{RequestId, TerminalId, TxnKind};

/// How long a checkout has to take the order and read the card.
pub const ORDER_LIFE: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
pub struct UndoOrder {
    /// The checkout told to carry it out.
    pub terminal: TerminalId,
    pub kind: TxnKind,
    /// The sale it undoes: its checkout and trace number (the store's key for
    /// it) and its id.
    pub sale_terminal: TerminalId,
    pub trace_no: u32,
    pub sale_id: i64,
    /// What goes back: the whole sale for a void.
    pub amount: Amount,
    /// Who ordered it (the account signed in on the page).
    pub by: String,
    placed: Instant,
    /// The request that carried it out, once one did: a copy of that request
    /// (a retry) is let through again, any other is not.
    taken_by: Option<String>,
}

/// What became of an order, as the page asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Sent; the checkout has not sent the void or refund yet.
    Waiting,
    /// The checkout sent it: the sale's receipt shows how it went.
    Taken,
    /// Not taken in time, or not known (a restart).
    Lapsed,
}

#[derive(Debug, Default)]
pub struct UndoOrders {
    orders: Mutex<HashMap<String, UndoOrder>>,
}

impl UndoOrders {
    /// Places an order; its id (random, for the checkout to name it).
    #[allow(clippy::too_many_arguments)]
    pub fn place(
        &self,
        terminal: TerminalId,
        kind: TxnKind,
        sale_terminal: TerminalId,
        trace_no: u32,
        sale_id: i64,
        amount: Amount,
        by: &str,
    ) -> String {
        let id = RequestId::new().to_string();
        let order = UndoOrder {
            terminal,
            kind,
            sale_terminal,
            trace_no,
            sale_id,
            amount,
            by: by.to_string(),
            placed: Instant::now(),
            taken_by: None,
        };
        let mut orders = self.lock();
        orders.retain(|_, o| o.placed.elapsed() < ORDER_LIFE * 10);
        orders.insert(id.clone(), order);
        id
    }

    /// Takes `id` for `request_id` from `terminal`, when it is the order for
    /// this kind, trace number and amount and still in time (or this very
    /// request took it before): the order, to carry out.
    pub fn take(
        &self,
        id: &str,
        terminal: &TerminalId,
        kind: TxnKind,
        trace_no: u32,
        amount: Amount,
        request_id: &RequestId,
    ) -> Option<UndoOrder> {
        let mut orders = self.lock();
        let order = orders.get_mut(id)?;
        let same = order.terminal == *terminal
            && order.kind == kind
            && order.trace_no == trace_no
            && (kind == TxnKind::Void || order.amount == amount);
        let free = match &order.taken_by {
            None => order.placed.elapsed() < ORDER_LIFE,
            Some(by) => by == request_id.as_str(),
        };
        if !same || !free {
            return None;
        }
        order.taken_by = Some(request_id.to_string());
        Some(order.clone())
    }

    pub fn state(&self, id: &str) -> OrderState {
        match self.lock().get(id) {
            Some(o) if o.taken_by.is_some() => OrderState::Taken,
            Some(o) if o.placed.elapsed() < ORDER_LIFE => OrderState::Waiting,
            _ => OrderState::Lapsed,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, UndoOrder>> {
        self.orders.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str) -> TerminalId {
        TerminalId::parse(id).unwrap()
    }

    #[test]
    fn an_order_is_taken_once_at_its_checkout_for_its_sale_and_amount() {
        let orders = UndoOrders::default();
        let amount = Amount::from_minor(2000).unwrap();
        let id = orders.place(t("T2"), TxnKind::Refund, t("T1"), 7, 3, amount, "owner");
        assert_eq!(orders.state(&id), OrderState::Waiting);
        let request = RequestId::new();
        let other = Amount::from_minor(2001).unwrap();
        // Another checkout, kind, sale or amount: refused.
        assert!(orders
            .take(&id, &t("T1"), TxnKind::Refund, 7, amount, &request)
            .is_none());
        assert!(orders
            .take(&id, &t("T2"), TxnKind::Void, 7, amount, &request)
            .is_none());
        assert!(orders
            .take(&id, &t("T2"), TxnKind::Refund, 8, amount, &request)
            .is_none());
        assert!(orders
            .take(&id, &t("T2"), TxnKind::Refund, 7, other, &request)
            .is_none());
        assert!(orders
            .take("nope", &t("T2"), TxnKind::Refund, 7, amount, &request)
            .is_none());
        let taken = orders
            .take(&id, &t("T2"), TxnKind::Refund, 7, amount, &request)
            .unwrap();
        assert_eq!((taken.sale_terminal, taken.sale_id), (t("T1"), 3));
        assert_eq!(orders.state(&id), OrderState::Taken);
        // The same request again (a retry) passes; another request does not.
        assert!(orders
            .take(&id, &t("T2"), TxnKind::Refund, 7, amount, &request)
            .is_some());
        let second = RequestId::new();
        assert!(orders
            .take(&id, &t("T2"), TxnKind::Refund, 7, amount, &second)
            .is_none());
        assert_eq!(orders.state("unknown"), OrderState::Lapsed);
    }
}
