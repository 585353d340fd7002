//! The support bundle: one download with what a support person needs to
//! help a shop — the checks and their history, versions, the settings, each
//! checkout's counters, the hub's recent log, and the recent transactions
//! with card numbers masked. Never in it: passwords or their hashes, PINs,
//! terminal keys, setup or pairing codes (the test looks for each).

use serde_json::json;

use crate::doctor::Check;
use crate::evidence::{self, EvidenceError};
use crate::shop::Shop;
use crate::store::query::Filter;
use crate::store::Store;

/// Transactions in the bundle, newest first.
const TRANSACTIONS: u32 = crate::store::query::MAX_LIMIT;

/// A log line as the bundle holds it: the one-time setup code the hub logs
/// for the owner while no password is set ("1234 5678", the line's last
/// field) is hidden with everything after it.
fn redact(line: &str) -> String {
    const KEY: &str = "setup_code=";
    match line.find(KEY) {
        Some(at) => format!("{}[hidden]", &line[..at + KEY.len()]),
        None => line.to_string(),
    }
}

/// The bundle as a tar.
pub fn bundle(
    store: &Store,
    shop: &Shop,
    checks: &[Check],
    log: &[String],
) -> Result<Vec<u8>, EvidenceError> {
    let os = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let release = os("/etc/os-release");
    let pretty = release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .unwrap_or("unknown")
        .trim_matches('"');
    let terminals = store.terminals()?;
    let schema = store.schema_version()?;
    let mut versions = format!(
        "tallybox {}\ndatabase schema {}\nsystem {pretty}, kernel {}\n",
        env!("CARGO_PKG_VERSION"),
        schema,
        os("/proc/sys/kernel/osrelease").trim(),
    );
    for t in &terminals {
        versions += &format!("checkout {} ({}): {}\n", t.id, t.name, t.version);
    }
    // The settings a support person needs, by name: nothing secret.
    let settings = json!({
        "store_name": shop.name,
        "address": shop.address,
        "merchant_id": shop.merchant_id,
        "public_url": shop.public_url,
        "time_zone": shop.time_zone,
        "cashier_sign_on": shop.cashier_sign_on,
        "pairing_required": shop.pairing_required,
        "supervisor_pin_set": shop.supervisor_pin_hash.is_some(),
        "slip_header": shop.slip_header,
        "slip_footer": shop.slip_footer,
    });
    let recent = store.list(&Filter {
        limit: Some(TRANSACTIONS),
        ..Default::default()
    })?;
    let verify = match store.verify_audit() {
        Ok(n) => format!("audit log intact: {n} records\n"),
        Err(e) => format!("audit log BROKEN: {e}\n"),
    };
    let pretty_json = |v: &serde_json::Value| serde_json::to_vec_pretty(v).unwrap_or_default();
    let readme = format!(
        "Tallybox support bundle — {}\nMade: {}\n\n\
         checks.json        the troubleshooting checks now: status, evidence, fix\n\
         history.json       when each check changed, and the daily self-checks\n\
         versions.txt       the hub's and each checkout's version, the system\n\
         settings.json      the shop's settings (no PINs, passwords or keys)\n\
         terminals.json     each checkout: online, counters, odometers, restarts\n\
         hub.log            the hub's last {} log lines\n\
         transactions.csv   the last {TRANSACTIONS} transactions, card numbers masked\n\
         audit_verify.txt   whether the tamper-evident log is intact\n\n\
         Nothing in this bundle is secret: no card numbers, PINs, passwords,\n\
         password hashes, keys or setup codes.\n",
        shop.name,
        tallybox_platform::clock::now().format("%Y-%m-%d %H:%M:%S"),
        log.len(),
    );
    let files = vec![
        ("README.txt", readme.into_bytes()),
        ("checks.json", pretty_json(&json!(checks))),
        ("history.json", pretty_json(&json!(store.check_history(1000)?))),
        ("versions.txt", versions.into_bytes()),
        ("settings.json", pretty_json(&settings)),
        (
            "terminals.json",
            pretty_json(&json!({"terminals": terminals, "odometers": store.wear()?})),
        ),
        (
            "hub.log",
            log.iter()
                .map(|l| redact(l) + "\n")
                .collect::<String>()
                .into_bytes(),
        ),
        (
            "transactions.csv",
            evidence::transactions_csv(&recent.items).into_bytes(),
        ),
        ("audit_verify.txt", verify.into_bytes()),
    ];
    Ok(evidence::tar("support", &files)?)
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn the_setup_code_never_leaves_in_the_bundles_log() {
        let line = "2026-11-26T05:00:00Z WARN tallybox::hub: no owner password yet setup_code=4821 9930";
        let hidden = redact(line);
        assert!(!hidden.contains("4821") && !hidden.contains("9930"), "{hidden}");
        assert!(hidden.ends_with("setup_code=[hidden]"), "{hidden}");
        assert_eq!(redact("nothing secret here"), "nothing secret here");
    }
}
