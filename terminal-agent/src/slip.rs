//! The receipt slip as text: the same lines go to the printer (later as ESC/POS)
//! and to the web page's receipt view, so what the owner sees is what the
//! customer holds.

use crate::protocol::{Receipt, TxnKind, TxnStatus};

/// 58 mm paper: 32 columns.
pub const WIDTH: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copy {
    /// 商户存根, kept by the shop, with a signature line.
    Merchant,
    /// 持卡人存根, handed to the customer.
    Cardholder,
}

fn pair(label: &str, value: &str) -> String {
    let pad = WIDTH.saturating_sub(label.chars().count() + value.chars().count());
    format!("{label}{}{value}", " ".repeat(pad.max(1)))
}

fn centred(text: &str) -> String {
    let pad = WIDTH.saturating_sub(text.chars().count()) / 2;
    format!("{}{text}", " ".repeat(pad))
}

/// The slip for `receipt`, one string per printed line.
pub fn render(receipt: &Receipt, copy: Copy, reprint: bool) -> Vec<String> {
    let rule = "-".repeat(WIDTH);
    let mut lines = vec![
        centred(&receipt.merchant_name),
        centred(match copy {
            Copy::Merchant => "MERCHANT COPY",
            Copy::Cardholder => "CARDHOLDER COPY",
        }),
    ];
    if reprint {
        lines.push(centred("*** REPRINT ***"));
    }
    lines.push(rule.clone());
    lines.push(pair("MERCHANT NO", &receipt.merchant_id));
    lines.push(pair("TERMINAL NO", &receipt.terminal_id));
    lines.push(pair("CARD", receipt.masked_pan.as_str()));
    lines.push(pair(
        "BRAND/ENTRY",
        &format!("{} {}", receipt.brand.label(), receipt.entry_mode.label()),
    ));
    let kind = match receipt.kind {
        TxnKind::Sale => "SALE",
        TxnKind::Balance => "BALANCE",
    };
    lines.push(pair("TYPE", kind));
    lines.push(pair("BATCH NO", &format!("{:06}", receipt.batch_no)));
    lines.push(pair("TRACE NO", &format!("{:06}", receipt.trace_no)));
    lines.push(pair("REF NO", &receipt.reference_no));
    lines.push(pair("AUTH CODE", &receipt.auth_code));
    lines.push(pair("DATE/TIME", &receipt.at));
    lines.push(rule.clone());
    lines.push(pair(
        "AMOUNT",
        &format!("{} {}", receipt.currency, receipt.amount),
    ));
    if receipt.status != TxnStatus::Approved {
        lines.push(pair("STATUS", &receipt.status.as_str().to_uppercase()));
    }
    lines.push(rule);
    if copy == Copy::Merchant {
        lines.push("CARDHOLDER SIGNATURE".to_string());
        lines.push(String::new());
        lines.push("_".repeat(WIDTH));
        lines.push("I agree to pay the above total".to_string());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amount::Amount;
    use crate::card::{Brand, EntryMode, Pan};

    pub(crate) fn receipt() -> Receipt {
        Receipt {
            merchant_name: "Corner Shop".into(),
            merchant_id: "898310058120001".into(),
            terminal_id: "T1".into(),
            kind: TxnKind::Sale,
            status: TxnStatus::Approved,
            amount: Amount::from_minor(1250).unwrap(),
            currency: "CNY".into(),
            masked_pan: Pan::parse("6222021000000005").unwrap().masked(),
            brand: Brand::UnionPay,
            entry_mode: EntryMode::Swipe,
            batch_no: 1,
            trace_no: 42,
            reference_no: "112519000042".into(),
            auth_code: "A1B2C3".into(),
            at: "2026-11-25 19:00:42".into(),
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
            "TERMINAL NO                   T1",
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
    fn lines_fit_58mm_paper() {
        for line in render(&receipt(), Copy::Merchant, true) {
            assert!(line.chars().count() <= WIDTH, "{line:?}");
        }
    }
}
