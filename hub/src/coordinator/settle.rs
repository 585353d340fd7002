//! Settlement (结算): the open batch's approved sales (less voids) and refunds
//! per terminal go to the acquirer, which says whether its totals agree; the
//! report is printed and stored, and a new batch opens. An out-of-balance
//! answer is reported as such — the batch still closes, as with a real
//! acquirer, and the report keeps the figures to take up with them.
//!
//! The settlement is noted (`settling`, with the request that asked) before
//! the acquirer is asked, and money requests wait until its answer is
//! recorded: after a crash or a silent acquirer it is asked again (by the
//! checkout's retry, another request, or the sweep), and the acquirer answers
//! a batch it settled with its first answer. A repeat of a request whose
//! settlement is recorded gets that settlement, never a second one.

use std::collections::BTreeMap;

use tallybox_core::money::Currency;
use tallybox_core::protocol::{RequestId, Response, Tender, TxnKind};
use tallybox_core::slip::{Layout, WIDTH};

use super::Coordinator;
use crate::acquirer::{Acquirer, BatchTotals};
use crate::store::settlement::BatchRow;

/// A settled batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub batch_no: u32,
    pub balanced: bool,
    pub report: Vec<String>,
}

/// Per terminal: card sales net of voids, and refunds (what the acquirer
/// settles; cash stays in the drawer).
pub(super) fn totals(batch_no: u32, rows: &[BatchRow]) -> Vec<BatchTotals> {
    let mut by_terminal: BTreeMap<&str, Vec<(TxnKind, u32, u64)>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.tender == Tender::Card) {
        by_terminal
            .entry(&r.terminal_id)
            .or_default()
            .push((r.kind, r.count, r.minor));
    }
    by_terminal
        .into_iter()
        .map(|(terminal, approved)| BatchTotals::of(terminal, batch_no, approved))
        .collect()
}

fn money(currency: Currency, minor: u64) -> String {
    format!("{currency} {}", currency.format_minor(minor))
}

fn report(
    store_name: &str,
    currency: Currency,
    batch_no: u32,
    rows: &[BatchRow],
    results: &[(BatchTotals, bool)],
) -> Vec<String> {
    let mut r = Layout::new(WIDTH);
    r.centred("结算单 SETTLEMENT");
    r.centred(store_name);
    r.pair("批次号 BATCH NO", &format!("{batch_no:06}"));
    r.pair(
        "日期时间 DATE/TIME",
        &tallybox_platform::clock::now()
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
    );
    let (mut net, mut all_balanced) = (0i128, true);
    for (t, balanced) in results {
        r.rule('-');
        r.pair("终端号 TERMINAL NO", &t.terminal_id);
        r.pair(
            &format!("消费 SALES {}", t.sales_count),
            &money(currency, t.sales_minor),
        );
        r.pair(
            &format!("退货 REFUNDS {}", t.refunds_count),
            &money(currency, t.refunds_minor),
        );
        r.pair("对账 RECONCILED", if *balanced { "平 OK" } else { "不平 OUT" });
        net += t.sales_minor as i128 - t.refunds_minor as i128;
        all_balanced &= balanced;
    }
    let mut brands: BTreeMap<&str, (u32, u64)> = BTreeMap::new();
    let sales = rows.iter().filter(|r| r.kind == TxnKind::Sale);
    for row in sales.clone().filter(|r| r.tender == Tender::Card) {
        let b = brands.entry(row.brand.label()).or_default();
        b.0 += row.count;
        b.1 += row.minor;
    }
    if !brands.is_empty() {
        r.rule('-');
        r.line("卡组织 BY BRAND (SALES)");
        for (brand, (count, minor)) in brands {
            r.pair(&format!("{brand} {count}"), &money(currency, minor));
        }
    }
    // Cash is not the acquirer's: shown apart, out of the net it pays.
    let (cash_count, cash_minor) = sales
        .filter(|r| r.tender == Tender::Cash)
        .fold((0, 0), |(n, m), r| (n + r.count, m + r.minor));
    if cash_count > 0 {
        r.rule('-');
        r.pair(&format!("现金 CASH {cash_count}"), &money(currency, cash_minor));
    }
    r.rule('-');
    let sign = if net < 0 { "-" } else { "" };
    r.pair(
        "净额 NET",
        &format!("{sign}{}", money(currency, net.unsigned_abs() as u64)),
    );
    if results.is_empty() {
        r.centred("无交易 NO TRANSACTIONS");
    }
    r.centred(if all_balanced {
        "*** 对账平 BALANCED ***"
    } else {
        "*** 对账不平 OUT OF BALANCE ***"
    });
    r.into_lines()
}

/// What settling starts from.
enum Plan {
    /// This request's settlement is recorded: its answer again.
    Recorded(Settlement),
    /// Nothing approved in the open batch: nothing to settle.
    Empty(u32),
    /// Batch `batch_no` is to be asked of the acquirer for `request_id`
    /// (begun now, or left by a crash or an acquirer that did not answer).
    Ask { batch_no: u32, request_id: String },
}

impl<A: Acquirer> Coordinator<A> {
    /// After an approval: when its terminal's batch has reached the
    /// acquirer's limit, the settling job is told ([`Self::batch_filled`]).
    pub(super) async fn note_batch_size(&self, batch_no: u32, terminal: &str) {
        let Some(limit) = self.acquirer.batch_limit() else {
            return;
        };
        let terminal = terminal.to_string();
        let counted = self.store(move |s| s.batch_count(batch_no, &terminal)).await;
        match counted {
            Ok(n) if n >= limit => {
                tracing::info!(
                    batch_no,
                    count = n,
                    limit,
                    "a checkout's batch is as large as the acquirer takes; settling it"
                );
                self.batch_full.notify_one();
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot count the open batch"),
        }
    }

    /// After a settlement out of balance: the terminal's transactions go to
    /// the acquirer (where it takes a batch upload), so it can find the
    /// difference. The batch is reported out of balance either way.
    async fn upload_batch(&self, totals: &BatchTotals) {
        let (batch_no, terminal) = (totals.batch_no, totals.terminal_id.clone());
        let items = match self.store(move |s| s.batch_items(batch_no, &terminal)).await {
            Ok(items) => items,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the batch to upload it");
                return;
            }
        };
        match self.acquirer.upload_batch(totals, &items).await {
            Ok(0) => {}
            Ok(sent) => {
                tracing::info!(batch_no, terminal = %totals.terminal_id, sent, "batch uploaded to the acquirer")
            }
            Err(e) => {
                tracing::error!(batch_no, terminal = %totals.terminal_id, error = %e, "batch upload failed; the acquirer has the totals only")
            }
        }
    }

    /// Waits until a terminal's batch reaches the acquirer's limit.
    pub async fn batch_filled(&self) {
        self.batch_full.notified().await
    }

    /// Settles the open batch for `request_id` (a checkout's request; the
    /// daily settlement makes one up). A settlement left unrecorded by a
    /// crash or a silent acquirer is finished first; a request already
    /// settled gets its recorded settlement. A person-readable reason when
    /// it cannot be done now.
    pub async fn settle(&self, request_id: &RequestId) -> Result<Settlement, String> {
        let unreadable = |e: crate::store::StoreError| format!("the hub could not read its database: {e}");
        let rid = request_id.to_string();
        let plan = self
            .store(move |s| {
                if let Some(done) = s.settlement_by_request(&rid)? {
                    return Ok(Ok(Plan::Recorded(Settlement {
                        batch_no: done.batch_no,
                        balanced: done.balanced,
                        report: done.report,
                    })));
                }
                if let Some((batch_no, request_id)) = s.settling()? {
                    return Ok(Ok(Plan::Ask { batch_no, request_id }));
                }
                let batch_no = s.batch_no()?;
                let pending = s.pending_in_batch(batch_no)?;
                if pending > 0 {
                    return Ok(Err(format!(
                        "{pending} transactions still wait for the acquirer; settle again in a minute"
                    )));
                }
                if s.batch_rows(batch_no)?.is_empty() {
                    return Ok(Ok(Plan::Empty(batch_no)));
                }
                s.start_settlement(batch_no, &rid)?;
                Ok(Ok(Plan::Ask {
                    batch_no,
                    request_id: rid,
                }))
            })
            .await
            .map_err(unreadable)??;
        let (batch_no, asked_by) = match plan {
            Plan::Recorded(done) => return Ok(done),
            Plan::Empty(batch_no) => {
                // Nothing to settle: the batch stays open, nothing to record.
                return Ok(Settlement {
                    batch_no,
                    balanced: true,
                    report: report(&self.shop().name, self.settings.currency, batch_no, &[], &[]),
                });
            }
            Plan::Ask { batch_no, request_id } => (batch_no, request_id),
        };
        let rows = self
            .store(move |s| s.batch_rows(batch_no))
            .await
            .map_err(unreadable)?;
        let mut results = Vec::new();
        for t in totals(batch_no, &rows) {
            let terminal = t.terminal_id.clone();
            let trace_no = self
                .store(move |s| s.settlement_trace(batch_no, &terminal))
                .await
                .map_err(unreadable)?;
            let t = BatchTotals { trace_no, ..t };
            let balanced = self
                .within_timeout(self.acquirer.settle(t.clone()))
                .await
                .map_err(|e| {
                    format!("settlement of batch {batch_no} not done: {e}; sales wait, and it is asked again shortly")
                })?;
            if !balanced {
                self.upload_batch(&t).await;
            }
            results.push((t, balanced));
        }
        let balanced = results.iter().all(|(_, b)| *b);
        let report = report(
            &self.shop().name,
            self.settings.currency,
            batch_no,
            &rows,
            &results,
        );
        let lines = report.clone();
        let next = self
            .store(move |s| s.close_batch(batch_no, balanced, &lines, &asked_by))
            .await
            .map_err(|e| {
                format!("settled with the acquirer but not recorded: {e}; it is asked again shortly")
            })?;
        if balanced {
            tracing::info!(batch_no, next, "batch settled: balanced");
        } else {
            tracing::warn!(
                batch_no,
                next,
                "batch settled OUT OF BALANCE: take the report up with the acquirer"
            );
        }
        Ok(Settlement {
            batch_no,
            balanced,
            report,
        })
    }

    /// Finishes a settlement a crash or a silent acquirer left unrecorded
    /// (sales wait for it); nothing when there is none.
    pub async fn finish_settling(&self) {
        let Ok(Some((_, request_id))) = self.store(|s| s.settling()).await else {
            return;
        };
        let Ok(request_id) = RequestId::parse(&request_id) else {
            return;
        };
        let Some(_claim) = self.claim(&request_id) else {
            return; // its checkout is asking right now
        };
        match self.settle(&request_id).await {
            Ok(s) => tracing::info!(
                batch_no = s.batch_no,
                balanced = s.balanced,
                "an unfinished settlement is finished"
            ),
            Err(e) => tracing::warn!(error = %e, "an unfinished settlement is still not done"),
        }
    }

    /// A terminal's settlement request; a repeat of the same request id gets
    /// the same settlement, never a second one.
    pub(super) async fn settle_request(&self, request_id: RequestId) -> Option<Response> {
        let _claim = self.claim(&request_id)?;
        Some(match self.settle(&request_id).await {
            Ok(s) => Response::Settled {
                request_id: request_id.clone(),
                batch_no: s.batch_no,
                balanced: s.balanced,
                report: s.report,
            },
            Err(message) => Response::Error {
                request_id: Some(request_id.to_string()),
                code: tallybox_core::protocol::ErrorCode::Internal,
                message,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tallybox_core::card::Brand;

    fn row(t: &str, kind: TxnKind, brand: Brand, count: u32, minor: u64) -> BatchRow {
        BatchRow {
            terminal_id: t.into(),
            kind,
            tender: Tender::Card,
            brand,
            count,
            minor,
        }
    }

    #[test]
    fn voids_come_off_the_sales_and_refunds_count_apart() {
        let rows = [
            row("T1", TxnKind::Sale, Brand::UnionPay, 3, 6_250),
            row("T1", TxnKind::Sale, Brand::Visa, 1, 1_000),
            row("T1", TxnKind::Void, Brand::UnionPay, 1, 1_250),
            row("T1", TxnKind::Refund, Brand::Visa, 2, 500),
            row("T2", TxnKind::Sale, Brand::UnionPay, 1, 99),
            BatchRow {
                tender: Tender::Cash,
                ..row("T2", TxnKind::Sale, Brand::Other, 2, 4_000)
            },
        ];
        let t = totals(7, &rows);
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].sales_count, t[0].sales_minor), (3, 6_000));
        assert_eq!((t[0].refunds_count, t[0].refunds_minor), (2, 500));
        assert_eq!((t[1].terminal_id.as_str(), t[1].sales_minor), ("T2", 99));
        let results: Vec<_> = t.into_iter().map(|t| (t, true)).collect();
        let text = report("Shop", Currency::CNY, 7, &rows, &results).join("\n");
        assert!(
            text.contains("000007") && text.contains("CNY 60.00") && text.contains("BALANCED"),
            "{text}"
        );
        // Cash is on the report apart, and neither in the acquirer's
        // totals nor in the net the acquirer pays.
        assert!(text.contains("净额 NET") && text.contains("CNY 55.99"), "{text}");
        assert!(
            text.contains("现金 CASH 2") && text.contains("CNY 40.00"),
            "{text}"
        );
        let mixed = vec![(results[0].0.clone(), false)];
        assert!(report("Shop", Currency::CNY, 7, &rows, &mixed)
            .join("\n")
            .contains("OUT OF BALANCE"));
    }
}
