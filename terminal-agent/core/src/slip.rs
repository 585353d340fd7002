//! The receipt slip as text: the same lines go to the printer (as ESC/POS in
//! GB18030) and to the web page's receipt view, so what the owner sees is what
//! the customer holds. Labels are Chinese with English, as on slips in China.
//! Widths count printer columns: a Chinese character takes two.

use serde::{Deserialize, Serialize};

use crate::money::Amount;
use crate::protocol::{Paid, Receipt, TxnKind, TxnStatus};

/// One slip as the printer gets it: its lines, and the customer's e-receipt
/// link, printed as a QR code under them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slip {
    pub lines: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr: Option<String>,
}

impl Slip {
    /// The slip for `receipt` as a checkout prints it: the cardholder's copy
    /// ends with its e-receipt QR code, when the hub gave a link.
    pub fn of(receipt: &Receipt, copy: Copy, reprint: bool, width: usize) -> Slip {
        let mut lines = render_for(receipt, copy, reprint, width);
        let qr = match (copy, &receipt.link) {
            (Copy::Cardholder, Some(link)) => {
                lines.push("扫码查看电子签购单".to_string());
                lines.push("Scan for your e-receipt".to_string());
                Some(link.clone())
            }
            _ => None,
        };
        Slip { lines, qr }
    }

    /// About how much paper it takes: a text line is 30 dots at 8 dots per
    /// mm, the QR code about 30 mm, and the feed before the cut about 20 mm.
    pub fn paper_mm(&self) -> u64 {
        self.lines.len() as u64 * 15 / 4 + if self.qr.is_some() { 30 } else { 0 } + 20
    }
}

/// The slip the owner prints from the troubleshooting page to see that a
/// checkout's printer works: who and when, both languages, and a ruler of
/// every column to show a worn print head (gaps in the line).
pub fn test_slip(store: &str, terminal: &str, local_time: &str, version: &str, width: usize) -> Slip {
    let ruler: String = (0..width).map(|i| char::from(b'0' + (i % 10) as u8)).collect();
    let lines = vec![
        "打印测试 PRINTER TEST".to_string(),
        store.to_string(),
        format!("终端 TERMINAL {terminal}"),
        format!("时间 TIME {local_time}"),
        format!("版本 VERSION {version}"),
        ruler,
        "#".repeat(width),
        "中文打印正常 Chinese prints".to_string(),
        "此单无需保留 Nothing to keep".to_string(),
    ];
    Slip { lines, qr: None }
}

/// The first slip of a new hub: the one-time code that sets the owner's
/// password, and where to enter it (also as a QR code).
pub fn setup(code: &str, page: &str) -> Slip {
    let lines = [
        "TALLYBOX",
        "店主设置码 OWNER SETUP CODE",
        "",
        code,
        "",
        "用手机打开以下网址并输入设置码",
        "Open this page on your phone",
        "and enter the code:",
        page,
    ];
    Slip {
        lines: lines.iter().map(|l| l.to_string()).collect(),
        qr: Some(page.to_string()),
    }
}

/// 58 mm paper: 32 columns.
pub const WIDTH: usize = 32;
/// 80 mm paper: 48 columns.
pub const WIDE: usize = 48;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copy {
    /// 商户存根, kept by the shop, with a signature line.
    Merchant,
    /// 持卡人存根, handed to the customer.
    Cardholder,
}

/// Printer columns `text` takes: two for each wide (CJK) character.
pub fn columns(text: &str) -> usize {
    text.chars().map(|c| if is_wide(c) { 2 } else { 1 }).sum()
}

fn is_wide(c: char) -> bool {
    matches!(c as u32, 0x1100..=0x115F | 0x2E80..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6)
}

/// Lines laid out for paper `width` columns wide (slips, settlement reports).
pub struct Layout {
    width: usize,
    lines: Vec<String>,
}

impl Layout {
    pub fn new(width: usize) -> Layout {
        Layout {
            width,
            lines: Vec::with_capacity(24),
        }
    }

    pub fn line(&mut self, text: &str) {
        self.lines.push(text.to_string());
    }

    pub fn into_lines(self) -> Vec<String> {
        self.lines
    }

    /// Label left, value right; the value goes on its own line when both do not fit.
    pub fn pair(&mut self, label: &str, value: &str) {
        let used = columns(label) + columns(value);
        if used < self.width {
            self.lines
                .push(format!("{label}{}{value}", " ".repeat(self.width - used)));
        } else {
            self.lines.push(label.to_string());
            let pad = self.width.saturating_sub(columns(value));
            self.lines.push(format!("{}{value}", " ".repeat(pad)));
        }
    }

    pub fn centred(&mut self, text: &str) {
        let pad = self.width.saturating_sub(columns(text)) / 2;
        self.lines.push(format!("{}{text}", " ".repeat(pad)));
    }

    pub fn rule(&mut self, c: char) {
        self.lines.push(c.to_string().repeat(self.width));
    }
}

/// The slip for `receipt` on 58 mm paper, one string per printed line.
pub fn render(receipt: &Receipt, copy: Copy, reprint: bool) -> Vec<String> {
    render_for(receipt, copy, reprint, WIDTH)
}

/// The slip for paper `width` columns wide.
pub fn render_for(receipt: &Receipt, copy: Copy, reprint: bool, width: usize) -> Vec<String> {
    let mut slip = Layout::new(width);
    slip.centred(&receipt.merchant_name);
    if !receipt.merchant_address.is_empty() {
        slip.centred(&receipt.merchant_address);
    }
    for line in &receipt.header {
        slip.centred(line);
    }
    let card = receipt.paid.card();
    slip.centred(match (copy, card) {
        (Copy::Merchant, _) => "商户存根 MERCHANT COPY",
        (Copy::Cardholder, Some(_)) => "持卡人存根 CARDHOLDER COPY",
        (Copy::Cardholder, None) => "顾客联 CUSTOMER COPY",
    });
    if reprint {
        slip.centred("*** 重打印 REPRINT ***");
    }
    slip.rule('-');
    slip.pair("商户编号 MERCHANT NO", &receipt.merchant_id);
    slip.pair("终端号 TERMINAL NO", &receipt.terminal_id);
    if let Some(cashier) = &receipt.cashier {
        slip.pair("操作员号 CASHIER NO", cashier);
    }
    match card {
        Some(card) => {
            slip.pair("卡号 CARD", card.masked_pan.as_str());
            slip.pair(
                "卡组织 BRAND",
                &format!("{} {}", card.brand.label(), card.entry_mode.label()),
            );
        }
        None => match &receipt.paid {
            Paid::Code { provider, buyer } => {
                slip.pair("付款方式 PAID BY", provider.slip_name());
                if let Some(buyer) = buyer {
                    slip.pair("付款账户 BUYER", buyer);
                }
            }
            _ => slip.pair("付款方式 PAID BY", "现金 CASH"),
        },
    }
    let kind = match receipt.kind {
        TxnKind::Sale => "消费 SALE",
        TxnKind::Balance => "余额查询 BALANCE",
        TxnKind::Void => "撤销 VOID",
        TxnKind::Refund => "退货 REFUND",
    };
    slip.pair("交易类型 TYPE", kind);
    slip.pair("批次号 BATCH NO", &format!("{:06}", receipt.batch_no));
    slip.pair("凭证号 TRACE NO", &format!("{:06}", receipt.trace_no));
    if card.is_some() {
        slip.pair("参考号 REF NO", &receipt.reference_no);
        slip.pair("授权码 AUTH CODE", &receipt.auth_code);
    }
    if let (Paid::Code { .. }, false) = (&receipt.paid, receipt.reference_no.is_empty()) {
        // The provider's trade number: what its bill and the buyer's app show.
        slip.line("交易号 TRADE NO");
        slip.line(&receipt.reference_no);
    }
    slip.pair("日期时间 DATE/TIME", &receipt.at);
    slip.rule('-');
    slip.pair("金额 AMOUNT", &receipt.currency.show(receipt.amount));
    if let (Paid::Cash { tendered }, TxnKind::Sale) = (&receipt.paid, receipt.kind) {
        let tendered = *tendered;
        let change = receipt.paid.change(receipt.amount).unwrap_or(Amount::ZERO);
        slip.pair("收款 TENDERED", &receipt.currency.show(tendered));
        slip.pair("找零 CHANGE", &receipt.currency.show(change));
    }
    if receipt.status != TxnStatus::Approved {
        slip.pair("状态 STATUS", &receipt.status.as_str().to_uppercase());
    }
    slip.rule('-');
    if copy == Copy::Merchant && card.is_some() {
        slip.lines.push("持卡人签名 CARDHOLDER SIGNATURE".to_string());
        slip.lines.push(String::new());
        slip.rule('_');
        slip.lines.push("本人确认以上交易".to_string());
        slip.lines.push("I agree to pay the above total".to_string());
    }
    for line in &receipt.footer {
        slip.centred(line);
    }
    slip.lines
}

/// The customer's one receipt of a sale paid in parts (cash, then a card
/// for the rest): each part with its tender and trace number, and the
/// total. A card part's signed merchant copy is printed on its own.
pub fn render_split(parts: &[Receipt], width: usize) -> Vec<String> {
    let mut slip = Layout::new(width);
    let Some(first) = parts.first() else {
        return slip.into_lines();
    };
    slip.centred(&first.merchant_name);
    if !first.merchant_address.is_empty() {
        slip.centred(&first.merchant_address);
    }
    for line in &first.header {
        slip.centred(line);
    }
    slip.centred("顾客联 CUSTOMER COPY");
    slip.rule('-');
    slip.pair("商户编号 MERCHANT NO", &first.merchant_id);
    slip.pair("终端号 TERMINAL NO", &first.terminal_id);
    if let Some(cashier) = &first.cashier {
        slip.pair("操作员号 CASHIER NO", cashier);
    }
    slip.pair("交易类型 TYPE", "消费 SALE");
    slip.pair("日期时间 DATE/TIME", &parts[parts.len() - 1].at);
    slip.line("分次付款 PAID IN PARTS");
    let mut total = 0u64;
    for part in parts {
        total += part.amount.minor();
        let what = match &part.paid {
            Paid::Cash { .. } => "现金 CASH".to_string(),
            Paid::Card(card) => format!("卡 {}", card.masked_pan),
            Paid::Code { provider, .. } => provider.slip_name().to_string(),
        };
        slip.pair(&what, &part.currency.show(part.amount));
        let mut detail = format!("  凭证号 {:06}", part.trace_no);
        if !part.auth_code.is_empty() {
            detail.push_str(&format!(" 授权码 {}", part.auth_code));
        }
        slip.line(&detail);
    }
    slip.rule('-');
    let total = Amount::from_minor(total).unwrap_or(Amount::ZERO);
    slip.pair("合计 TOTAL", &first.currency.show(total));
    slip.rule('-');
    for line in &first.footer {
        slip.centred(line);
    }
    slip.into_lines()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::card::{Brand, EntryMode, Pan};
    use crate::money::Amount;

    pub(crate) fn receipt() -> Receipt {
        Receipt {
            merchant_name: "Corner Shop".into(),
            merchant_address: String::new(),
            header: Vec::new(),
            footer: Vec::new(),
            merchant_id: "898310058120001".into(),
            terminal_id: "T1".into(),
            kind: TxnKind::Sale,
            status: TxnStatus::Approved,
            amount: Amount::from_minor(1250).unwrap(),
            currency: crate::money::Currency::CNY,
            paid: Paid::Card(crate::protocol::CardPaid {
                masked_pan: Pan::parse("6222021000000005").unwrap().masked(),
                brand: Brand::UnionPay,
                entry_mode: EntryMode::Swipe,
            }),
            batch_no: 1,
            trace_no: 42,
            reference_no: "112519000042".into(),
            auth_code: "A1B2C3".into(),
            cashier: Some("07".into()),
            at: "2026-11-25 19:00:42".into(),
            link: None,
        }
    }

    #[test]
    fn slip_carries_every_field_a_customer_needs() {
        let text = render(&receipt(), Copy::Cardholder, false).join("\n");
        for needle in [
            "Corner Shop",
            "CARDHOLDER COPY",
            "622202******0005",
            "CNY 12.50",
            "2026-11-25 19:00:42",
            "终端号 TERMINAL NO            T1",
            "消费 SALE",
            "000001",
            "000042",
            "112519000042",
            "A1B2C3",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert!(!text.contains("SIGNATURE"));
        assert!(render(&receipt(), Copy::Merchant, false)
            .join("\n")
            .contains("SIGNATURE"));
        assert!(render(&receipt(), Copy::Merchant, true)
            .join("\n")
            .contains("REPRINT"));
    }

    #[test]
    fn lines_fit_58mm_and_80mm_paper() {
        for width in [WIDTH, WIDE] {
            for line in render_for(&receipt(), Copy::Merchant, true, width) {
                assert!(columns(&line) <= width, "{line:?}");
            }
        }
        // A pair that does not fit moves its value to the next line, right-aligned.
        let wide = render_for(&receipt(), Copy::Merchant, false, WIDE);
        assert!(wide
            .iter()
            .any(|l| l.starts_with("商户编号 MERCHANT NO") && l.ends_with("898310058120001")));
        let narrow = render(&receipt(), Copy::Merchant, false);
        let at = narrow.iter().position(|l| l == "商户编号 MERCHANT NO").unwrap();
        assert_eq!(columns(&narrow[at + 1]), WIDTH);
    }

    #[test]
    fn a_cash_slip_shows_what_was_handed_over_and_the_change_and_no_card() {
        let cash = Receipt {
            paid: Paid::Cash {
                tendered: Amount::from_minor(5000).unwrap(),
            },
            reference_no: String::new(),
            auth_code: String::new(),
            ..receipt()
        };
        let text = render(&cash, Copy::Cardholder, false).join("\n");
        for needle in [
            "顾客联 CUSTOMER COPY",
            "付款方式 PAID BY       现金 CASH",
            "金额 AMOUNT            CNY 12.50",
            "收款 TENDERED          CNY 50.00",
            "找零 CHANGE            CNY 37.50",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        for absent in ["卡号", "REF NO", "AUTH CODE", "SIGNATURE"] {
            assert!(!text.contains(absent), "{absent:?} on a cash slip:\n{text}");
        }
        assert!(!render(&cash, Copy::Merchant, false)
            .join("\n")
            .contains("SIGNATURE"));
    }

    #[test]
    fn a_sale_paid_in_parts_lists_each_part_and_the_total_on_one_receipt() {
        let cash = Receipt {
            paid: Paid::Cash {
                tendered: Amount::from_minor(3000).unwrap(),
            },
            amount: Amount::from_minor(3000).unwrap(),
            trace_no: 41,
            auth_code: String::new(),
            ..receipt()
        };
        let lines = render_split(&[cash, receipt()], WIDTH);
        let text = lines.join("\n");
        for needle in [
            "顾客联 CUSTOMER COPY",
            "分次付款 PAID IN PARTS",
            "现金 CASH",
            "CNY 30.00",
            "凭证号 000041",
            "卡 622202******0005",
            "CNY 12.50",
            "授权码 A1B2C3",
            "合计 TOTAL             CNY 42.50",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert!(lines.iter().all(|l| columns(l) <= WIDTH), "{text}");
    }

    #[test]
    fn chinese_characters_take_two_columns() {
        assert_eq!(columns("消费 SALE"), 9);
        assert_eq!(columns("CNY 12.50"), 9);
    }
}
