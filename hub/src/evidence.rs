//! The evidence pack for the bank, the acquirer and the police after a
//! fraudulent transaction: the transactions of the period (masked), their
//! slips as text, the hash-chained audit log with its verification, the fraud
//! rule hits, the web logins, the CCTV time windows to pull, and the steps to
//! take. `tallybox evidence` writes it to a file; the owner's page downloads it.

use chrono::{Duration, NaiveDateTime};
use tallybox_core::protocol::{Paid, TxnStatus};
use tallybox_core::slip::{self, Copy};

use crate::shop::Shop;
use crate::store::query::{Filter, ListError};
use crate::store::{Store, StoreError, Txn};

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error(transparent)]
    List(#[from] ListError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot build the archive: {0}")]
    Archive(#[from] std::io::Error),
}

/// A tar of `files`, each under `dir/`, owner-only.
pub fn tar(dir: &str, files: &[(&str, Vec<u8>)]) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(tallybox_platform::clock::now().timestamp().max(0) as u64);
        header.set_cksum();
        tar.append_data(&mut header, format!("{dir}/{name}"), bytes.as_slice())?;
    }
    tar.into_inner()
}

/// The archive (a tar) and what is in it.
pub struct Pack {
    pub tar: Vec<u8>,
    pub transactions: usize,
    pub hits: usize,
    /// One line: whether the audit log is intact.
    pub verify: String,
}

/// Transactions (given newest first) as a CSV that Excel opens right: UTF-8
/// with a byte order mark (or Chinese turns to mojibake), CRLF line ends,
/// bilingual headers, oldest first, and a decline's reason in both languages.
pub fn transactions_csv(txns: &[Txn]) -> String {
    let mut out = String::with_capacity(256 + txns.len() * 160);
    out.push('\u{feff}');
    out.push_str(
        "id,时间 time,终端 terminal,收银员 cashier,类型 kind,状态 status,金额 amount,币种 currency,付款方式 tender,收款 tendered,卡号 card,卡组织 brand,\
         方式 entry,批次 batch,凭证号 trace,参考号 reference_no,授权码 auth_code,应答码 response_code,原因,reason\r\n",
    );
    for t in txns.iter().rev() {
        let card = t.paid.card();
        let (zh, en) = match t.response_code {
            None => ("", ""),
            Some(code) => {
                let x = tallybox_core::reason::explain(code);
                (x.reason_zh, x.reason_en)
            }
        };
        let fields = [
            t.id.to_string(),
            t.local_time.clone(),
            t.terminal_id.clone(),
            t.cashier.clone().unwrap_or_default(),
            t.kind.as_str().into(),
            t.status.as_str().into(),
            t.currency.format(t.amount),
            t.currency.code().to_string(),
            t.paid.tender().as_str().into(),
            match t.paid {
                Paid::Cash { tendered } => t.currency.format(tendered),
                Paid::Card(_) | Paid::Code { .. } => String::new(),
            },
            // A code payment: the buyer's account (masked by the provider)
            // and the provider where a card's number and brand go.
            match &t.paid {
                Paid::Code { buyer, .. } => buyer.clone().unwrap_or_default(),
                _ => card.map(|c| c.masked_pan.as_str().into()).unwrap_or_default(),
            },
            match &t.paid {
                Paid::Code { provider, .. } => provider.slip_name().into(),
                _ => card.map(|c| c.brand.label().into()).unwrap_or_default(),
            },
            card.map(|c| c.entry_mode.label().into()).unwrap_or_default(),
            t.batch_no.to_string(),
            t.trace_no.to_string(),
            t.reference_no.clone(),
            t.auth_code.clone(),
            t.response_code.map(String::from).unwrap_or_default(),
            zh.to_string(),
            en.to_string(),
        ];
        out.push_str(&fields.iter().map(|f| csv(f)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

/// One CSV field. A field a spreadsheet would take for a formula (it
/// starts with `= + - @`, a tab or a return, and is not a plain number: a
/// checkout renamed `=HYPERLINK(…)`, a fraud rule's detail) gets a leading
/// `'`, so Excel shows it as text instead of running it.
pub fn csv(field: &str) -> String {
    let formula = field.starts_with(['=', '+', '-', '@', '\t', '\r']) && field.parse::<f64>().is_err();
    let field = match formula {
        true => format!("'{field}"),
        false => field.to_string(),
    };
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field
    }
}

/// Two minutes either side of `local_time`, for the CCTV.
fn window(local_time: &str) -> String {
    match NaiveDateTime::parse_from_str(local_time, "%Y-%m-%d %H:%M:%S") {
        Ok(t) => format!(
            "{} to {}",
            (t - Duration::minutes(2)).format("%Y-%m-%d %H:%M:%S"),
            (t + Duration::minutes(2)).format("%H:%M:%S")
        ),
        Err(_) => local_time.to_string(),
    }
}

pub const STEPS: &str = "\
What to do (按以下步骤处理)
1. Stop more losses: freeze the terminal or the store (tallybox freeze), keep it frozen until the bank has answered.
2. Call the acquirer's merchant hotline: give the merchant number, the transactions in transactions.csv (trace no., reference no., time), and ask them to stop settlement of the suspect ones.
3. If a customer's card was used without them: the customer calls their bank to block the card and have it reissued.
4. Pull the CCTV recordings for the windows in cctv_windows.txt before they are overwritten.
5. Report to the police with this archive; keep the archive and the data directory unchanged (audit_verify.txt says whether the log is intact).
";

/// The evidence of local times `from` to `to` (a bare `to` date includes its whole day).
pub fn pack(store: &Store, shop: &Shop, from: &str, to: &str) -> Result<Pack, EvidenceError> {
    let txns = store.all(
        Filter {
            from: Some(from.into()),
            to: Some(to.into()),
            ..Default::default()
        },
        usize::MAX,
    )?;
    let to_end = if to.len() == 10 {
        format!("{to} 23:59:59")
    } else {
        to.to_string()
    };
    let hits = store.fraud_hits(from, &to_end)?;
    let mut files: Vec<(&str, Vec<u8>)> = Vec::new();

    let t = transactions_csv(&txns);
    let mut slips = String::new();
    let mut cctv = String::from("Pull these recordings (local time, terminal, why):\n");
    for x in txns.iter().rev() {
        if x.status == TxnStatus::Approved {
            let receipt = x.receipt(shop);
            slips += &slip::render(&receipt, Copy::Merchant, true).join("\n");
            slips += "\n\n";
        }
        if x.status == TxnStatus::Declined || x.status == TxnStatus::Failed {
            cctv += &format!(
                "{}  {}  {} {}\n",
                window(&x.local_time),
                x.terminal_id,
                x.kind.as_str(),
                x.status.as_str()
            );
        }
    }
    let mut h = String::from("local_time,terminal,rule,action,detail\n");
    for hit in &hits {
        h += &format!(
            "{},{},{},{},{}\n",
            csv(&hit.local_time),
            csv(&hit.terminal_id),
            csv(&hit.rule),
            csv(&hit.action),
            csv(&hit.detail)
        );
        cctv += &format!(
            "{}  {}  fraud rule {} ({})\n",
            window(&hit.local_time),
            hit.terminal_id,
            hit.rule,
            hit.action
        );
    }
    let verify = match store.verify_audit() {
        Ok(n) => format!("audit log intact: {n} records, each chained to the one before\n"),
        Err(e) => format!("audit log BROKEN: {e}\n"),
    };
    let mut audit = String::new();
    for r in store.audit_records()? {
        audit += &serde_json::to_string(&r).unwrap_or_default();
        audit.push('\n');
    }
    let readme = format!(
        "Tallybox evidence pack — {store} (merchant {merchant})\nPeriod: {from} to {to}\nMade: {made}\n\n\
         transactions.csv   every transaction of the period; card numbers masked (first 6, last 4)\n\
         slips.txt          the slips of the approved ones, as printed\n\
         fraud_hits.csv     the store's fraud rules that fired\n\
         audit_log.jsonl    the tamper-evident log of every state change\n\
         audit_verify.txt   whether that log is intact\n\
         cctv_windows.txt   when to look on the cameras\n\
         logins.csv         every sign-in attempt on the owner's web page\n\
         terminals.csv      each checkout's device counters (reads, errors, stuck cards, printer)\n\n{STEPS}",
        store = shop.name,
        merchant = shop.merchant_id,
        made = tallybox_platform::clock::now().format("%Y-%m-%d %H:%M:%S"),
    );
    files.push(("README.txt", readme.into_bytes()));
    files.push(("transactions.csv", t.into_bytes()));
    files.push(("slips.txt", slips.into_bytes()));
    files.push(("fraud_hits.csv", h.into_bytes()));
    files.push(("audit_log.jsonl", audit.into_bytes()));
    files.push(("audit_verify.txt", verify.clone().into_bytes()));
    files.push(("cctv_windows.txt", cctv.into_bytes()));
    let mut logins = String::from("at_utc,account,ip,ok\n");
    for l in store.logins(10_000)?.iter().rev() {
        logins += &format!("{},{},{},{}\n", csv(&l.at), csv(&l.account), csv(&l.ip), l.ok);
    }
    files.push(("logins.csv", logins.into_bytes()));
    let mut terminals = String::from(
        "terminal,name,online,version,last_seen_utc,swipes,swipe_errors,taps,tap_errors,cards_stuck,printer,frozen\n",
    );
    for t in store.terminals()? {
        let d = t.devices.unwrap_or_default();
        let printer = d.printer.map(|p| format!("{p:?}")).unwrap_or_default();
        let fields = [
            t.id,
            t.name,
            t.online.to_string(),
            t.version,
            t.last_seen,
            d.swipes.to_string(),
            d.swipe_errors.to_string(),
            d.taps.to_string(),
            d.tap_errors.to_string(),
            d.cards_stuck.to_string(),
            printer,
            t.frozen.unwrap_or_default(),
        ];
        terminals += &fields.iter().map(|f| csv(f)).collect::<Vec<_>>().join(",");
        terminals.push('\n');
    }
    files.push(("terminals.csv", terminals.into_bytes()));

    Ok(Pack {
        tar: tar("evidence", &files)?,
        transactions: txns.len(),
        hits: hits.len(),
        verify: verify.trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::csv;

    #[test]
    fn fields_a_spreadsheet_would_run_are_written_as_text() {
        assert_eq!(
            csv(r#"=HYPERLINK("http://x","y")"#),
            r#""'=HYPERLINK(""http://x"",""y"")""#
        );
        assert_eq!(csv("+cmd|' /C calc'!A0"), "'+cmd|' /C calc'!A0");
        assert_eq!(csv("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv("\t=1"), "'\t=1");
        assert_eq!(csv("-2+3"), "'-2+3");
        // Numbers, and everything else, as they are.
        assert_eq!(csv("-12.50"), "-12.50");
        assert_eq!(csv("T1"), "T1");
        assert_eq!(csv("a,b"), "\"a,b\"");
        assert_eq!(csv("line\rbreak"), "\"line\rbreak\"");
    }
}
