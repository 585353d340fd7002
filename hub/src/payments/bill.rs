//! The providers' bills (对账单): what each provider says it took from
//! buyers and gave back on one day (Beijing time), read as the providers
//! document them, and compared order by order with the hub's records
//! ([`compare`]). A bill moves no money: a difference is shown to the
//! owner, never acted on.
//!
//! - **Alipay** (`alipay.data.dataservice.bill.downloadurl.query`,
//!   `bill_type=trade`) answers with a short-lived address of a zip archive
//!   holding the day's business details (`…_业务明细.csv`) and their
//!   summary, in GBK. After lines of notes starting `#` and a header come
//!   rows of type 交易 (a payment) and 退款 (a refund, its amounts negative,
//!   the refund's `out_request_no` in 退款批次号/请求号); a cell may end in a
//!   tab. Cells are not quoted: a comma in the goods' name (the shop's name)
//!   shifts the cells after it, which the reader finds by the next time.
//! - **WeChat Pay** (`pay/downloadbill`, `bill_type=ALL`) answers with the
//!   bill itself as text: a header line, one line per order or refund with
//!   every field led by a backquote, then the totals' header and the totals.
//!   The lines are checked against the totals: a bill cut short is refused.

use std::collections::BTreeMap;

use serde::Serialize;

use super::zip;

/// One money movement of a bill, in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillLine {
    pub out_trade_no: String,
    /// The provider's own trade number.
    pub trade_no: String,
    /// Taken from the buyer.
    pub paid: u64,
    /// Given back to the buyer.
    pub refunded: u64,
}

/// `"42.50"`, `"-0.01"` or `"3"` (yuan) in fen, sign dropped; `None` when
/// it is not money as the bills write it.
fn fen(text: &str) -> Option<u64> {
    let text = text.trim();
    let text = text.strip_prefix('-').unwrap_or(text);
    let (whole, cents) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(cents) {
        return None;
    }
    let cents = cents.trim_end_matches('0');
    if cents.len() > 2 {
        return None;
    }
    let cents = format!("{cents:0<2}");
    whole
        .parse::<u64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(cents.parse().ok()?)
}

/// The columns of a header line, by name.
struct Columns(BTreeMap<String, usize>);

impl Columns {
    fn new<'a>(names: impl Iterator<Item = &'a str>) -> Columns {
        Columns(
            names
                .enumerate()
                .map(|(i, n)| (n.trim().trim_start_matches('\u{feff}').to_string(), i))
                .collect(),
        )
    }

    fn at(&self, name: &str, bill: &str) -> Result<usize, String> {
        self.0
            .get(name)
            .copied()
            .ok_or_else(|| format!("{bill} has no column {name}"))
    }
}

/// Alipay's bill: the zip archive its download address gives.
pub fn alipay(archive: &[u8]) -> Result<Vec<BillLine>, String> {
    for file in zip::entries(archive).map_err(|e| format!("Alipay's bill: {e}"))? {
        let (text, _, _) = encoding_rs::GBK.decode(&file.data);
        if let Some(lines) = alipay_details(&text)? {
            return Ok(lines);
        }
    }
    Err("Alipay's bill has no business details (业务明细)".into())
}

/// The rows of Alipay's business details, or `None` when `text` is
/// another file of the archive (the summary).
fn alipay_details(text: &str) -> Result<Option<Vec<BillLine>>, String> {
    const BILL: &str = "Alipay's bill";
    let mut rows = text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
    let Some(header) = rows.next() else {
        return Ok(None);
    };
    let columns = Columns::new(header.split(','));
    if !header.trim_start_matches('\u{feff}').starts_with("支付宝交易号,") {
        return Ok(None);
    }
    let trade = columns.at("支付宝交易号", BILL)?;
    let order = columns.at("商户订单号", BILL)?;
    let kind = columns.at("业务类型", BILL)?;
    let name = columns.at("商品名称", BILL)?;
    let created = columns.at("创建时间", BILL)?;
    let amount = columns.at("订单金额（元）", BILL)?;
    let width = columns.0.len();
    let is_time = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").is_ok();
    let mut lines = Vec::new();
    for (n, row) in rows.enumerate() {
        let cells: Vec<&str> = row.split(',').map(str::trim).collect();
        // Cells past the goods' name move right by the commas in it.
        let shift = (0..=cells.len().saturating_sub(width))
            .find(|s| cells.get(created + s).is_some_and(|c| is_time(c)))
            .ok_or_else(|| format!("{BILL}: row {} is not a row of business details", n + 1))?;
        let cell = |i: usize| {
            cells
                .get(if i > name { i + shift } else { i })
                .copied()
                .unwrap_or("")
        };
        let money = fen(cell(amount))
            .ok_or_else(|| format!("{BILL}: row {} has no amount ({:?})", n + 1, cell(amount)))?;
        let (paid, refunded) = match cell(kind) {
            "交易" => (money, 0),
            "退款" => (0, money),
            _ => continue,
        };
        lines.push(BillLine {
            out_trade_no: cell(order).to_string(),
            trade_no: cell(trade).to_string(),
            paid,
            refunded,
        });
    }
    Ok(Some(lines))
}

/// WeChat Pay's bill (`bill_type=ALL`) as its text.
pub fn wechat(text: &str) -> Result<Vec<BillLine>, String> {
    const BILL: &str = "WeChat Pay's bill";
    let mut rows = text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty());
    let header = rows.next().ok_or("WeChat Pay's bill is empty")?;
    let columns = Columns::new(header.split(','));
    let state = columns.at("交易状态", BILL)?;
    let order = columns.at("商户订单号", BILL)?;
    let trade = columns.at("微信订单号", BILL)?;
    let settled = columns.at("应结订单金额", BILL)?;
    let refund = columns.at("退款金额", BILL)?;
    // The order's and the refund's own amounts, where the layout has them.
    let total = columns.at("订单金额", BILL).unwrap_or(settled);
    let asked = columns.at("申请退款金额", BILL).unwrap_or(refund);
    let width = columns.0.len();
    let mut lines = Vec::new();
    let (mut settled_sum, mut refund_sum) = (0u64, 0u64);
    let mut totals = None;
    while let Some(row) = rows.next() {
        if row.starts_with("总交易单数") {
            let names = Columns::new(row.split(','));
            let values: Vec<&str> = rows
                .next()
                .ok_or("WeChat Pay's bill ends before its totals")?
                .split(',')
                .map(|c| c.trim().trim_start_matches('`'))
                .collect();
            let value = |name: &str| -> Result<&str, String> {
                Ok(values.get(names.at(name, BILL)?).copied().unwrap_or(""))
            };
            totals = Some((
                value("总交易单数")?.parse::<usize>().ok(),
                fen(value("应结订单总金额")?),
                fen(value("退款总金额")?),
            ));
            break;
        }
        let n = lines.len() + 1;
        let cells: Vec<&str> = row.trim_start_matches('`').split(",`").map(str::trim).collect();
        if cells.len() != width {
            return Err(format!(
                "{BILL}: line {n} has {} fields, not {width}",
                cells.len()
            ));
        }
        let money =
            |i: usize| fen(cells[i]).ok_or_else(|| format!("{BILL}: line {n} has {:?} as money", cells[i]));
        settled_sum += money(settled)?;
        refund_sum += money(refund)?;
        let (paid, refunded) = match cells[state] {
            "SUCCESS" => (money(total)?, 0),
            "REFUND" => (0, money(asked)?),
            // Paid, then given back by a reversal.
            "REVOKED" => (money(total)?, money(total)?),
            _ => (0, 0),
        };
        lines.push(BillLine {
            out_trade_no: cells[order].to_string(),
            trade_no: cells[trade].to_string(),
            paid,
            refunded,
        });
    }
    match totals {
        None => Err("WeChat Pay's bill ends before its totals (cut short?)".into()),
        Some((count, settled, refunds)) if (count, settled, refunds) != (Some(lines.len()), Some(settled_sum), Some(refund_sum)) => Err(format!(
            "WeChat Pay's bill does not add up: {} lines, {settled_sum} and {refund_sum} fen, against its totals {count:?}, {settled:?} and {refunds:?}",
            lines.len()
        )),
        Some(_) => Ok(lines),
    }
}

/// What the hub recorded of one order on the day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HubOrder {
    pub out_trade_no: String,
    /// The sale's status (`approved`, `declined`, `pending`, …), when the
    /// sale itself is of the day.
    pub sale_status: Option<String>,
    pub paid: u64,
    pub refunded: u64,
    /// Some of it is of the day itself, not only of the minutes around it.
    pub inside: bool,
    /// Some of it is within minutes of midnight: the provider may count
    /// it on the other day.
    pub near_midnight: bool,
}

/// Money of one side, in minor units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Money {
    pub paid: u64,
    pub refunded: u64,
}

impl Money {
    fn net(self) -> i128 {
        i128::from(self.paid) - i128::from(self.refunded)
    }
}

/// An order whose money the hub and the bill do not agree on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub out_trade_no: String,
    pub trade_no: String,
    /// What the difference is:
    /// - `not_in_hub`: the provider took money on an order this hub has no
    ///   record of (lost from its records, or taken with the shop's account
    ///   elsewhere);
    /// - `charged_not_sold`: the hub recorded the sale as not paid, the
    ///   provider kept the money;
    /// - `deciding`: the hub is still asking the provider about the sale;
    /// - `not_in_bill`: the hub recorded money the bill does not show;
    /// - `amounts_differ`: both have it, with other amounts.
    pub what: &'static str,
    pub hub: Money,
    pub bill: Money,
    /// The sale's status at the hub.
    pub hub_status: Option<String>,
    pub near_midnight: bool,
}

/// A day's bill of one provider against the hub.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Compared {
    /// Orders on which both agree.
    pub matched: usize,
    pub hub: Money,
    pub bill: Money,
    pub differences: Vec<Difference>,
}

/// The bill's lines against the hub's orders of the same day.
pub fn compare(hub: &[HubOrder], bill: &[BillLine]) -> Compared {
    let mut billed: BTreeMap<&str, (Money, &str)> = BTreeMap::new();
    for line in bill {
        let (money, trade_no) = billed
            .entry(&line.out_trade_no)
            .or_insert((Money::default(), &line.trade_no));
        money.paid += line.paid;
        money.refunded += line.refunded;
        if trade_no.is_empty() {
            *trade_no = &line.trade_no;
        }
    }
    let mut compared = Compared::default();
    for (_, (money, _)) in billed.iter() {
        compared.bill.paid += money.paid;
        compared.bill.refunded += money.refunded;
    }
    let mut recorded: BTreeMap<&str, &HubOrder> = BTreeMap::new();
    for order in hub {
        recorded.insert(&order.out_trade_no, order);
        if order.inside {
            compared.hub.paid += order.paid;
            compared.hub.refunded += order.refunded;
        }
    }
    let orders: std::collections::BTreeSet<&str> = billed.keys().chain(recorded.keys()).copied().collect();
    for no in orders {
        let (bill, trade_no) = billed.get(no).copied().unwrap_or_default();
        let order = recorded.get(no).copied();
        let hub = order.map_or(Money::default(), |o| Money {
            paid: o.paid,
            refunded: o.refunded,
        });
        let in_bill = billed.contains_key(no);
        // Only in the minutes around the day, and not in its bill: the other day's.
        let other_day = order.is_some_and(|o| !o.inside) && !in_bill;
        if hub.net() == bill.net() || other_day {
            compared.matched += usize::from(!other_day);
            continue;
        }
        let status = order.and_then(|o| o.sale_status.clone());
        let what = match (order, status.as_deref()) {
            (None, _) => "not_in_hub",
            (_, Some("pending")) => "deciding",
            _ if hub.net() == 0 && bill.net() > 0 => "charged_not_sold",
            _ if bill == Money::default() => "not_in_bill",
            _ => "amounts_differ",
        };
        compared.differences.push(Difference {
            out_trade_no: no.to_string(),
            trade_no: trade_no.to_string(),
            what,
            hub,
            bill,
            hub_status: status,
            near_midnight: order.is_some_and(|o| o.near_midnight),
        });
    }
    compared
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(order: &str, paid: u64, refunded: u64) -> BillLine {
        BillLine {
            out_trade_no: order.into(),
            trade_no: format!("T{order}"),
            paid,
            refunded,
        }
    }

    fn order(no: &str, status: &str, paid: u64, refunded: u64) -> HubOrder {
        HubOrder {
            out_trade_no: no.into(),
            sale_status: Some(status.into()),
            paid,
            refunded,
            inside: true,
            near_midnight: false,
        }
    }

    #[test]
    fn money_is_read_in_fen_from_the_bills_yuan() {
        assert_eq!(fen("42.50"), Some(4250));
        assert_eq!(fen("-0.01"), Some(1));
        assert_eq!(fen("3"), Some(300));
        assert_eq!(fen("0.60000"), Some(60));
        for bad in ["", "4x.00", "1.005", ".5", "--1"] {
            assert_eq!(fen(bad), None, "{bad:?}");
        }
    }

    /// WeChat Pay's documented `ALL` layout, as its merchant platform
    /// writes it: a payment, a partial refund of it, a reversed order.
    const WECHAT: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注\r\n\
`2026-12-06 10:00:00,`wx2421b1c4370ec43b,`1900000109,`0,`,`4200000001,`aaa,`oUpF8u,`MICROPAY,`SUCCESS,`CMC,`CNY,`42.50,`0.00,`0,`0,`0.00,`0.00,`,`,`小店, 一号,`,`0.25500,`0.60%,`42.50,`0.00,`\r\n\
`2026-12-06 11:00:00,`wx2421b1c4370ec43b,`1900000109,`0,`,`4200000001,`aaa,`oUpF8u,`MICROPAY,`REFUND,`CMC,`CNY,`0.00,`0.00,`500001,`bbb,`10.00,`0.00,`ORIGINAL,`SUCCESS,`小店, 一号,`,`-0.06000,`0.60%,`42.50,`10.00,`\r\n\
`2026-12-06 12:00:00,`wx2421b1c4370ec43b,`1900000109,`0,`,`4200000002,`ccc,`oUpF8u,`MICROPAY,`REVOKED,`CMC,`CNY,`0.00,`0.00,`0,`0,`0.00,`0.00,`,`,`小店,`,`0.00000,`0.60%,`8.00,`0.00,`\r\n\
总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n\
`3,`42.50,`10.00,`0.00,`0.19500,`93.00,`10.00\r\n";

    #[test]
    fn wechat_pays_bill_reads_payments_refunds_and_reversals_and_must_add_up() {
        assert_eq!(
            wechat(WECHAT).unwrap(),
            vec![
                BillLine {
                    out_trade_no: "aaa".into(),
                    trade_no: "4200000001".into(),
                    paid: 4250,
                    refunded: 0
                },
                BillLine {
                    out_trade_no: "aaa".into(),
                    trade_no: "4200000001".into(),
                    paid: 0,
                    refunded: 1000
                },
                BillLine {
                    out_trade_no: "ccc".into(),
                    trade_no: "4200000002".into(),
                    paid: 800,
                    refunded: 800
                },
            ]
        );
        // Cut before its totals, or one line lost: refused.
        let cut = &WECHAT[..WECHAT.find("总交易单数").unwrap()];
        assert!(wechat(cut).unwrap_err().contains("totals"), "{:?}", wechat(cut));
        let lost: String = WECHAT
            .lines()
            .filter(|l| !l.contains("REVOKED"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(wechat(&lost).unwrap_err().contains("does not add up"));
    }

    /// A zip archive of `files` (name, text), both in GBK, as Alipay sends.
    fn archive(files: &[(&str, &str)]) -> Vec<u8> {
        let gbk = |t: &str| encoding_rs::GBK.encode(t).0.into_owned();
        zip::write(&files.iter().map(|(n, t)| (gbk(n), gbk(t))).collect::<Vec<_>>())
    }

    const ALIPAY_HEADER: &str = "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注";

    #[test]
    fn alipays_bill_is_read_from_its_gbk_archive_commas_in_the_goods_name_and_all() {
        let details = format!(
            "#支付宝业务明细查询\r\n#账号：[20880211096256330156]\r\n#起始日期：[2026年12月06日 00:00:00]   终止日期：[2026年12月07日 00:00:00]\r\n\
#-----------------------------------------业务明细列表----------------------------------------\r\n{ALIPAY_HEADER}\r\n\
2026120622001458860515315453\t,aaa\t,交易\t,小店, 一号,2026-12-06 10:55:16,2026-12-06 10:55:23,\t,\t,\t,\t,159****5620\t,42.50,42.50,0.00,0.00,0.00,0.00,0.00,,0.00\t,0.00,\t,0.00,0.00,\r\n\
2026120622001458860515315453\t,aaa\t,退款\t,小店, 一号,2026-12-06 10:55:16,2026-12-06 11:56:48,\t,\t,\t,\t,159****5620\t,-10.00,-10.00,0.00,0.00,0.00,0.00,0.00,,0.00\t,0.00,bbb\t,0.00,0.00,备注, 有逗号\r\n\
#-----------------------------------------业务明细列表结束------------------------------------\r\n#交易合计：1笔，商家实收共42.50元\r\n#退款合计：1笔，商家实收共-10.00元\r\n"
        );
        let summary = "#支付宝业务汇总查询\r\n门店编号,门店名称,交易订单总笔数,退款订单总笔数\r\n";
        let zip = archive(&[
            ("20880211096256330156_20261206_业务明细(汇总).csv", summary),
            ("20880211096256330156_20261206_业务明细.csv", &details),
        ]);
        assert_eq!(
            alipay(&zip).unwrap(),
            vec![
                BillLine {
                    out_trade_no: "aaa".into(),
                    trade_no: "2026120622001458860515315453".into(),
                    paid: 4250,
                    refunded: 0
                },
                BillLine {
                    out_trade_no: "aaa".into(),
                    trade_no: "2026120622001458860515315453".into(),
                    paid: 0,
                    refunded: 1000
                },
            ]
        );
        assert!(alipay(&archive(&[("x.csv", summary)]))
            .unwrap_err()
            .contains("业务明细"));
    }

    #[test]
    fn orders_agree_when_their_net_money_agrees_and_each_difference_is_named() {
        let hub = [
            order("paid", "approved", 4250, 1000),
            order("cancelled_paid", "declined", 0, 0),
            order("told_not_charged", "declined", 0, 0),
            order("asking", "pending", 0, 0),
            order("missing", "approved", 500, 0),
            order("other", "approved", 700, 0),
            HubOrder {
                near_midnight: true,
                ..order("edge", "approved", 300, 0)
            },
            // Just before midnight, in the day before's bill: not a difference.
            HubOrder {
                inside: false,
                near_midnight: true,
                ..order("yesterday", "approved", 900, 0)
            },
        ];
        let bill = [
            line("paid", 4250, 0),
            line("paid", 0, 1000),
            line("cancelled_paid", 800, 800),
            line("told_not_charged", 600, 0),
            line("asking", 200, 0),
            line("other", 70, 0),
            line("elsewhere", 1200, 0),
        ];
        let compared = compare(&hub, &bill);
        let found: Vec<(&str, &str, bool)> = compared
            .differences
            .iter()
            .map(|d| (d.out_trade_no.as_str(), d.what, d.near_midnight))
            .collect();
        assert_eq!(
            found,
            vec![
                ("asking", "deciding", false),
                ("edge", "not_in_bill", true),
                ("elsewhere", "not_in_hub", false),
                ("missing", "not_in_bill", false),
                ("other", "amounts_differ", false),
                ("told_not_charged", "charged_not_sold", false),
            ]
        );
        assert_eq!(compared.matched, 2, "paid, and the reversed one");
        assert_eq!(
            (compared.hub, compared.bill),
            (
                Money {
                    paid: 4250 + 500 + 700 + 300,
                    refunded: 1000
                },
                Money {
                    paid: 4250 + 800 + 600 + 200 + 70 + 1200,
                    refunded: 1800
                }
            )
        );
        assert_eq!(compare(&hub[..1], &bill[..2]).differences, vec![]);
    }
}
