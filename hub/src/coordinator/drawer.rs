//! The cash drawer without a sale: the supervisor opens it ("no sale":
//! change for a note) or counts it at a shift's end. Both need the
//! supervisor's PIN and are recorded once per request with an audit record;
//! a count (of the takings: the drawer less the float the shop keeps in it)
//! is compared with the checkout's cash sales since its last count and its
//! report printed. A frozen checkout may still count its drawer,
//! not open it.

use tallybox_core::money::Currency;
use tallybox_core::protocol::DrawerCount;
use tallybox_core::slip::{Layout, WIDTH};

use super::*;
use crate::store::drawer::Count;

impl<A: Acquirer> Coordinator<A> {
    pub(super) async fn no_sale(&self, terminal: &TerminalId, ask: requests::NoSale) -> Option<Response> {
        let requests::NoSale {
            request_id,
            supervisor_pin,
        } = ask;
        let _claim = self.claim(&request_id)?;
        if !self.supervisor_pin_ok(&supervisor_pin).await {
            return Some(drawer_refused(request_id, reason::SUPERVISOR_PIN));
        }
        let (rid, tid) = (request_id.clone(), terminal.clone());
        let done = self
            .store(move |s| match s.frozen(&tid)? {
                Some(_) => Ok(Err(reason::FROZEN)),
                None => s.no_sale(&rid, &tid).map(Ok),
            })
            .await;
        Some(match done {
            Ok(Ok(first)) => {
                if first {
                    tracing::info!(terminal = %terminal, "cash drawer opened without a sale");
                }
                Response::Drawer {
                    request_id,
                    refused: None,
                    count: None,
                    report: Vec::new(),
                }
            }
            Ok(Err(code)) => drawer_refused(request_id, code),
            Err(e) => internal(&request_id, &e),
        })
    }

    pub(super) async fn count_drawer(
        &self,
        terminal: &TerminalId,
        ask: requests::CountDrawer,
    ) -> Option<Response> {
        let requests::CountDrawer {
            request_id,
            supervisor_pin,
            counted,
        } = ask;
        let _claim = self.claim(&request_id)?;
        if !self.supervisor_pin_ok(&supervisor_pin).await {
            return Some(drawer_refused(request_id, reason::SUPERVISOR_PIN));
        }
        let (rid, tid) = (request_id.clone(), terminal.clone());
        let done = self.store(move |s| s.count_drawer(&rid, &tid, counted)).await;
        Some(match done {
            Ok(count) => {
                tracing::info!(
                    terminal = %terminal, expected = count.count.expected.minor(), counted = count.count.counted.minor(),
                    difference = count.count.difference(), "cash drawer counted"
                );
                Response::Drawer {
                    request_id,
                    refused: None,
                    count: Some(count.count),
                    report: report(&self.shop().name, self.settings.currency, &count),
                }
            }
            Err(e) => internal(&request_id, &e),
        })
    }
}

fn drawer_refused(request_id: RequestId, code: ReasonCode) -> Response {
    Response::Drawer {
        request_id,
        refused: Some(code),
        count: None,
        report: Vec::new(),
    }
}

/// The count's difference as the report prints it: "长款 OVER 1.00",
/// "短款 SHORT 0.50" or "平 OK".
fn difference_text(currency: Currency, count: &DrawerCount) -> String {
    match count.difference() {
        0 => "平 OK".into(),
        d if d > 0 => format!("长款 OVER {}", currency.format_minor(d as u64)),
        d => format!("短款 SHORT {}", currency.format_minor(d.unsigned_abs())),
    }
}

/// The count's report, printed at the checkout.
fn report(store_name: &str, currency: Currency, count: &Count) -> Vec<String> {
    let mut r = Layout::new(WIDTH);
    r.centred("交班点钞 DRAWER COUNT");
    r.centred(store_name);
    r.pair("终端号 TERMINAL NO", &count.terminal_id);
    if let Some(cashier) = &count.cashier {
        r.pair("操作员号 CASHIER NO", cashier);
    }
    r.pair("日期时间 DATE/TIME", &count.local_time);
    r.pair("上次点钞 SINCE", count.since.as_deref().unwrap_or("-"));
    r.rule('-');
    r.pair(
        &format!("现金销售 CASH SALES {}", count.cash_sales),
        &currency.show(Amount::from_minor(count.cash_taken).unwrap_or(Amount::ZERO)),
    );
    r.pair(
        "退还现金 CASH BACK",
        &currency.show(Amount::from_minor(count.cash_given_back).unwrap_or(Amount::ZERO)),
    );
    r.pair("开钱箱 NO SALE", &count.no_sales.to_string());
    r.pair("应有 EXPECTED", &currency.show(count.count.expected));
    r.pair("实点 COUNTED", &currency.show(count.count.counted));
    r.rule('-');
    r.pair("差额 DIFFERENCE", &difference_text(currency, &count.count));
    r.into_lines()
}
