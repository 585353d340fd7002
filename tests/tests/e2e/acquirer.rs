//! A shop's day over the ISO 8583 link, against `tallybox acquirer-sim` on a
//! real TCP socket: sign-in, sales, a void, refunds in parts, declines, a PIN,
//! a balance inquiry, a silent acquirer (time-out, 0400, "not charged"), the
//! hub killed during a 0200 (reversed on restart), the acquirer going away and
//! coming back (the reversal is stored and sent until acknowledged), and two
//! settlements (out of balance, then balanced). The whole message log is then
//! decoded and re-encoded by an independent codec (pyiso8583).

use std::time::Duration;

use serde_json::Value;
use tallybox::acquirer::iso8583::codec::{Dialect, Message};
use tallybox::acquirer::iso8583::keys::{MasterKeys, WorkingKeys};
use tallybox_core::card::pin_block;
use tallybox_e2e::procs::{AcquirerSim, Hub, Terminal};
use tallybox_e2e::proxy::Proxy;
use tallybox_e2e::web::wait_check;
use tallybox_e2e::{iso8583_check, iso8583_check_in, openssl_certificates, strs, wait_for};

/// The `n`th settlement report the terminal printed (printing runs a moment
/// after the screen).
fn settlement_report(t: &Terminal, n: usize) -> String {
    wait_for(Duration::from_secs(10), || {
        let reports: Vec<String> = t
            .paper()
            .into_iter()
            .filter(|s| s.contains("结算单 SETTLEMENT"))
            .collect();
        reports.get(n - 1).cloned()
    })
    .unwrap_or_else(|| panic!("settlement report {n} not printed"))
}

/// Asserts that the messages of type `mti` in an `iso8583_check` report carried `fields`.
fn carries(report: &Value, mti: &str, fields: &[u64]) {
    let carried: Vec<u64> = report["fields"][mti]
        .as_array()
        .unwrap_or_else(|| panic!("no {mti} in {report}"))
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    for f in fields {
        assert!(carried.contains(f), "{mti} without field {f}: {carried:?}");
    }
}

fn last_status(hub: &Hub) -> (String, String) {
    let rows = hub.transactions("limit=1");
    let row = rows.first().expect("a transaction");
    (
        row["status"].as_str().unwrap().to_string(),
        row["response_code"].as_str().unwrap_or_default().to_string(),
    )
}

/// A decline (51), a PIN sale (the hub translates the checkout's PIN block
/// into the terminal's working PIN key; it travels in field 52 and the host
/// checks it) and a balance inquiry (field 54), on `t1`.
fn decline_pin_sale_and_balance(t1: &Terminal, hub: &Hub) {
    let screen = t1.sale(20_000, "low-balance");
    assert!(screen.contains("Insufficient funds"), "{screen}");
    assert_eq!(last_status(hub), ("declined".into(), "51".into()));
    t1.keys("C");
    t1.keys("A500#");
    t1.card("pin");
    t1.wait_screen("Enter PIN", Duration::from_secs(5));
    t1.keys("1234#");
    t1.wait_screen("APPROVED", Duration::from_secs(10));
    t1.keys("C");
    t1.keys("D1");
    t1.card("low-balance");
    let screen = t1.wait_screen("Any key", Duration::from_secs(10));
    assert!(screen.contains("CNY 100.00"), "balance from field 54: {screen}");
    t1.keys("C");
}

#[test]
fn a_day_of_sales_over_the_iso8583_link_decodes_with_an_independent_codec() {
    let mut acquirer = AcquirerSim::start();
    let mut hub = Hub::start_with(None, &strs(&acquirer.hub_flags(acquirer.port)));
    let t1 = Terminal::start_with("T1", hub.mqtt, &["--hub-silent-secs", "2"]);
    t1.wait_ready();
    // Paired: it takes PINs, under a key of its own.
    t1.pair(&hub);

    let screen = t1.sale(1250, "approved");
    assert!(screen.contains("APPROVED"), "{screen}");
    let row = &hub.transactions("limit=1")[0];
    assert_eq!(row["status"], "approved");
    assert_eq!(row["auth_code"].as_str().unwrap().len(), 6);
    assert!(screen.contains(row["auth_code"].as_str().unwrap()));
    t1.keys("C");

    // Void it (same card, supervisor PIN), once.
    let trace = row["trace_no"].as_u64().unwrap();
    t1.keys(&format!("B18888#{trace}#"));
    t1.card("approved");
    let screen = t1.wait_screen("Any key", Duration::from_secs(10));
    assert!(screen.contains("APPROVED"), "void: {screen}");
    let void = &hub.transactions("limit=1")[0];
    assert_eq!(
        (void["kind"].as_str(), void["status"].as_str()),
        (Some("void"), Some("approved"))
    );
    assert_eq!(void["amount"], row["amount"]);
    let slips = t1.wait_paper(4);
    assert!(
        slips[3].contains("撤销 VOID") && slips[3].contains("CNY 12.50"),
        "{}",
        slips[3]
    );
    t1.keys("C");
    t1.keys(&format!("B18888#{trace}#"));
    t1.card("approved");
    let screen = t1.wait_screen("Any key", Duration::from_secs(10));
    assert!(screen.contains("No such sale to undo"), "a second void: {screen}");
    t1.keys("C");

    // Refunds: in parts, never more than the sale; a wrong supervisor PIN stops it.
    t1.sale(5000, "visa");
    let sale = hub.transactions("limit=1")[0].clone();
    let trace = sale["trace_no"].as_u64().unwrap();
    t1.keys("C");
    let refund = |pin: &str, minor: u64, card: &str| {
        t1.keys(&format!("B2{pin}#{trace}#{minor}#"));
        t1.card(card);
        let screen = t1.wait_screen("Any key", Duration::from_secs(10));
        t1.keys("C");
        screen
    };
    assert!(refund("8888", 2000, "visa").contains("APPROVED"));
    assert!(refund("8888", 4000, "visa").contains("More than the sale"));
    assert!(refund("1111", 1000, "visa").contains("Wrong supervisor PIN"));
    assert!(refund("8888", 3000, "visa").contains("APPROVED"), "the rest");
    let (status, detail) = hub.get(&format!("/api/v1/transactions/{}", sale["id"]));
    assert_eq!(status, 200);
    assert_eq!(detail["refunded"], "50.00", "{detail}");
    // A void needs the sale's own card.
    t1.sale(800, "approved");
    let trace = hub.transactions("limit=1")[0]["trace_no"].as_u64().unwrap();
    t1.keys("C");
    t1.keys(&format!("B18888#{trace}#"));
    t1.card("mastercard");
    let screen = t1.wait_screen("Any key", Duration::from_secs(10));
    assert!(screen.contains("Not the sale's card"), "{screen}");
    t1.keys("C");

    decline_pin_sale_and_balance(&t1, &hub);

    // The acquirer never answers: time-out, 0400, not charged.
    t1.keys("A700#");
    t1.card("no-answer");
    let screen = t1.wait_screen("NOT CHARGED", Duration::from_secs(15));
    assert!(screen.contains("NC"), "{screen}");
    assert_eq!(last_status(&hub), ("reversed".into(), "NC".into()));
    t1.keys("C");

    // The hub is killed while the acquirer works on a sale (this card takes
    // 3 s): on restart it reverses the pending sale (0400) before anything
    // else, and the terminal's retry learns "not charged".
    t1.keys("A1100#");
    t1.card("slow");
    wait_for(Duration::from_secs(5), || {
        (last_status(&hub).0 == "pending").then_some(())
    })
    .expect("the sale is pending at the acquirer");
    hub.restart();
    let screen = t1.wait_screen("NOT CHARGED", Duration::from_secs(20));
    assert!(screen.contains("NC"), "{screen}");
    assert_eq!(last_status(&hub), ("reversed".into(), "NC".into()));
    t1.keys("C");

    // The acquirer goes away: the sale cannot be asked, its reversal cannot be
    // sent; both wait in the store until the acquirer is back.
    acquirer.kill();
    t1.keys("A900#");
    t1.card("approved");
    t1.wait_screen("NO ANSWER YET", Duration::from_secs(10));
    assert_eq!(last_status(&hub).0, "pending");
    acquirer.restart();
    let screen = t1.wait_screen("NOT CHARGED", Duration::from_secs(20));
    assert!(screen.contains("NOT CHARGED"), "{screen}");
    assert_eq!(last_status(&hub).0, "reversed");
    t1.keys("C");
    // And sales go through again on the new connection.
    let screen = t1.sale(300, "visa");
    assert!(screen.contains("APPROVED"), "{screen}");
    assert!(hub.log().contains("signed in with the acquirer"));

    t1.keys("C");

    // Settlement: the restarted acquirer forgot the morning's approvals, so
    // its totals disagree: reported, not hidden. The next batch balances.
    let batch = hub.transactions("limit=1")[0]["batch_no"].as_u64().unwrap();
    t1.keys("D3");
    let screen = t1.wait_screen("Any key", Duration::from_secs(10));
    assert!(
        screen.contains("OUT OF BALANCE") && screen.contains(&format!("{batch:06}")),
        "{screen}"
    );
    let report = settlement_report(&t1, 1);
    assert!(report.contains("不平 OUT"), "{report}");
    t1.keys("C");
    t1.sale(1500, "approved");
    t1.keys("C");
    assert_eq!(
        hub.transactions("limit=1")[0]["batch_no"].as_u64(),
        Some(batch + 1),
        "a new batch"
    );
    t1.keys("D3");
    let screen = t1.wait_screen("Any key", Duration::from_secs(10));
    assert!(
        screen.contains("SETTLED") && screen.contains("Totals agree"),
        "{screen}"
    );
    let report = settlement_report(&t1, 2);
    assert!(
        report.contains("CNY 15.00") && report.contains("*** 对账平 BALANCED ***"),
        "{report}"
    );

    // Field 52 on the wire opens under the acquirer's PIN key alone: no key
    // in the program's source opens it, nor does the checkout's own.
    let log = std::fs::read_to_string(acquirer.messages_path()).unwrap();
    let pin_sale = log
        .lines()
        .filter_map(|l| l.strip_prefix("in "))
        .filter_map(|h| Message::decode(&hex::decode(h).unwrap()).ok())
        .find(|m| m.get(52).is_some())
        .expect("a 0200 with a PIN block");
    let (block, pan) = (
        hex::encode_upper(pin_sale.get(52).unwrap()),
        pin_sale.text(2).unwrap(),
    );
    assert_eq!(
        pin_block::decrypt(&block, pan, &pin_key_of(&acquirer, &pin_sale, Dialect::Iso1987))
            .unwrap()
            .as_deref(),
        Some("1234")
    );
    let pairing_key: [u8; 32] = t1.pairing_key();
    let checkout = pin_block::checkout_key(&pairing_key);
    assert_ne!(
        pin_block::decrypt(&block, pan, &checkout).unwrap().as_deref(),
        Some("1234")
    );

    // Every sign-in brought working keys of its own (the acquirer's restart
    // gave new ones): no two sign-in answers carried the same field 62.
    let sign_ins: Vec<Vec<u8>> = log
        .lines()
        .filter_map(|l| l.strip_prefix("out "))
        .filter_map(|h| Message::decode(&hex::decode(h).unwrap()).ok())
        .filter(|m| m.mti == "0810" && m.text(41) == Some("T1      "))
        .filter_map(|m| m.get(62).map(<[u8]>::to_vec))
        .collect();
    assert!(
        sign_ins.len() >= 2,
        "T1 signed in on each connection: {}",
        sign_ins.len()
    );
    let distinct: std::collections::HashSet<&Vec<u8>> = sign_ins.iter().collect();
    assert_eq!(distinct.len(), sign_ins.len(), "new keys at every sign-in");

    // Each settlement went with a trace number of its own, not its batch's.
    let settlements: Vec<Message> = log
        .lines()
        .filter_map(|l| l.strip_prefix("in "))
        .filter_map(|h| Message::decode(&hex::decode(h).unwrap()).ok())
        .filter(|m| m.mti == "0500")
        .collect();
    assert_eq!(settlements.len(), 2);
    for m in &settlements {
        let (stan, batch) = (m.text(11).unwrap(), &m.text(60).unwrap()[2..]);
        assert_ne!(stan, batch, "settlement field 11 is the batch number");
    }

    // Every message both ways, decoded by pyiso8583 and encoded back byte for byte.
    let report = iso8583_check(&acquirer.messages_path());
    assert_eq!(report["errors"], Value::Array(vec![]), "{report}");
    let types: Vec<&str> = report["types"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // 0401: the reversal sent while the acquirer was away went again as a repeat.
    for mti in [
        "0800", "0810", "0200", "0210", "0220", "0230", "0400", "0401", "0410", "0500", "0510",
    ] {
        assert!(types.contains(&mti), "no {mti} in the log: {types:?}");
    }
    assert!(report["checked"].as_u64().unwrap() >= 14, "{report}");
    // The sale carried the card, trace, terminal, merchant, PIN or chip data and a MAC.
    carries(
        &report,
        "0200",
        &[2, 3, 4, 7, 11, 12, 13, 14, 22, 25, 35, 41, 42, 49, 64],
    );
    // A reversal names its original in field 90 (a secondary bitmap), its MAC in 128.
    carries(&report, "0400", &[1, 3, 4, 7, 11, 39, 41, 42, 49, 90, 128]);
}

#[test]
fn a_day_in_china_unionpays_layout_decodes_with_an_independent_codec() {
    // The host numbers T1's batches from 417 (the hub's own start at 1).
    let mut acquirer = AcquirerSim::start_with(&["--dialect", "cup-pos", "--first-batch", "417"]);
    let mut flags = acquirer.hub_flags(acquirer.port);
    flags.extend(["--acquirer-dialect".to_string(), "cup-pos".to_string()]);
    let hub = Hub::start_with(None, &strs(&flags));
    let t1 = Terminal::start_with("T1", hub.mqtt, &["--hub-silent-secs", "2"]);
    t1.wait_ready();
    t1.pair(&hub);

    assert!(t1.sale(1250, "approved").contains("APPROVED"));
    t1.keys("C");
    let trace = hub.transactions("limit=1")[0]["trace_no"].as_u64().unwrap();
    t1.keys(&format!("B18888#{trace}#"));
    t1.card("approved");
    assert!(
        t1.wait_screen("Any key", Duration::from_secs(10))
            .contains("APPROVED"),
        "void"
    );
    t1.keys("C");
    assert!(t1.sale(5000, "visa").contains("APPROVED"));
    t1.keys("C");
    let trace = hub.transactions("limit=1")[0]["trace_no"].as_u64().unwrap();
    t1.keys(&format!("B28888#{trace}#2000#"));
    t1.card("visa");
    assert!(
        t1.wait_screen("Any key", Duration::from_secs(10))
            .contains("APPROVED"),
        "refund"
    );
    t1.keys("C");
    decline_pin_sale_and_balance(&t1, &hub);
    t1.keys("A700#");
    t1.card("no-answer");
    t1.wait_screen("NOT CHARGED", Duration::from_secs(15));
    assert_eq!(last_status(&hub), ("reversed".into(), "NC".into()));
    t1.keys("C");
    // Settlement: field 48 in China UnionPay's layout, the result digit in the answer's.
    t1.keys("D3");
    let screen = t1.wait_screen("Any key", Duration::from_secs(10));
    assert!(
        screen.contains("SETTLED") && screen.contains("Totals agree"),
        "{screen}"
    );
    t1.keys("C");

    // The acquirer restarts and forgets the next two sales' approvals: the
    // settlement is out of balance, and the batch goes up to it one
    // transaction at a time (0320), then its end, which names how many.
    assert!(t1.sale(1500, "approved").contains("APPROVED"));
    t1.keys("C");
    assert!(t1.sale(2500, "visa").contains("APPROVED"));
    t1.keys("C");
    let signed_in = |hub: &Hub| {
        hub.log()
            .matches("signed in with the acquirer; working keys")
            .count()
    };
    let before = signed_in(&hub);
    acquirer.restart();
    wait_for(Duration::from_secs(20), || {
        (signed_in(&hub) > before).then_some(())
    })
    .expect("the hub signs in again");
    t1.keys("D3");
    let screen = t1.wait_screen("Any key", Duration::from_secs(15));
    assert!(screen.contains("OUT OF BALANCE"), "{screen}");
    t1.keys("C");
    let d = Dialect::CupPos;
    let log = std::fs::read_to_string(acquirer.messages_path()).unwrap();
    let both_ways: Vec<(String, Message)> = log
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(way, h)| {
            Some((
                way.to_string(),
                d.decode(d.unwrap(&hex::decode(h).ok()?).ok()?).ok()?,
            ))
        })
        .collect();
    let uploads: Vec<&Message> = both_ways
        .iter()
        .filter(|(way, m)| way == "in" && m.mti == "0320")
        .map(|(_, m)| m)
        .collect();
    assert_eq!(
        uploads.len(),
        3,
        "two transactions and the batch end: {uploads:?}"
    );
    assert_eq!(uploads[2].text(48), Some("0002"));
    // Every message names the batch as the host numbers it: 417 until the
    // first settlement, 418 after (the upload of the second batch too).
    let batches = |mti: &str| -> Vec<String> {
        both_ways
            .iter()
            .filter(|(way, m)| way == "in" && m.mti == mti)
            .map(|(_, m)| m.text(60).unwrap()[2..8].to_string())
            .collect()
    };
    let sales = batches("0200");
    let first_settled = sales
        .iter()
        .position(|b| b == "000418")
        .expect("sales after the settlement");
    assert!(first_settled >= 3, "{sales:?}");
    assert!(sales[..first_settled].iter().all(|b| b == "000417"), "{sales:?}");
    assert!(sales[first_settled..].iter().all(|b| b == "000418"), "{sales:?}");
    assert_eq!(batches("0500"), ["000417", "000418"]);
    assert_eq!(batches("0320"), ["000418"; 3]);
    assert!(uploads[2].text(60).unwrap().ends_with("202"));
    let answers: Vec<&str> = both_ways
        .iter()
        .filter(|(way, m)| way == "out" && m.mti == "0330")
        .filter_map(|(_, m)| m.text(39))
        .collect();
    assert_eq!(answers, vec!["00", "00", "00"], "the acquirer took each");

    let report = iso8583_check_in("cup-pos", &acquirer.messages_path());
    assert_eq!(report["errors"], Value::Array(vec![]), "{report}");
    let types: Vec<&str> = report["types"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for mti in [
        "0800", "0810", "0200", "0210", "0220", "0230", "0400", "0410", "0500", "0510", "0320", "0330",
    ] {
        assert!(types.contains(&mti), "no {mti} in the log: {types:?}");
    }
    assert!(!types.contains(&"0401"), "repeats are 0400 here");
    assert!(report["checked"].as_u64().unwrap() >= 20, "{report}");
    carries(&report, "0800", &[11, 41, 42, 60, 63]);
    carries(&report, "0810", &[11, 39, 41, 42, 62]);
    carries(
        &report,
        "0200",
        &[2, 3, 4, 11, 14, 22, 25, 35, 41, 42, 49, 60, 64],
    );
    carries(&report, "0400", &[3, 4, 11, 25, 39, 41, 42, 49, 60, 64]);
    carries(&report, "0500", &[11, 41, 42, 48, 49, 60, 63, 64]);
    carries(&report, "0320", &[3, 4, 11, 25, 37, 38, 41, 42, 49, 60, 64]);
    for (mti, fields) in report["fields"].as_object().unwrap() {
        for absent in [7, 12, 13, 90] {
            let request = !mti.ends_with("10") && !mti.ends_with("30");
            assert!(
                !request || !fields.as_array().unwrap().contains(&Value::from(absent)),
                "{mti} carries field {absent}, which this layout has not"
            );
        }
    }

    // What the hub sent, read back: the void named its sale in 61, the PIN
    // came with 26 and 53 and opens under the working key of its sign-in.
    let sent: Vec<Message> = log
        .lines()
        .filter_map(|l| l.strip_prefix("in "))
        .filter_map(|h| d.decode(d.unwrap(&hex::decode(h).unwrap()).ok()?).ok())
        .collect();
    let void = sent
        .iter()
        .find(|m| m.text(60).is_some_and(|f| f.starts_with("23")))
        .expect("a void");
    assert_eq!(
        void.text(61).map(str::len),
        Some(16),
        "batch, trace and date: {void:?}"
    );
    let pin_sale = sent.iter().find(|m| m.get(52).is_some()).expect("a PIN sale");
    assert_eq!(
        (pin_sale.text(26), pin_sale.text(53)),
        (Some("12"), Some("2600000000000000"))
    );
    let block = hex::encode_upper(pin_sale.get(52).unwrap());
    let pan = pin_sale.text(2).unwrap();
    let key = pin_key_of(&acquirer, pin_sale, d);
    assert_eq!(
        pin_block::decrypt(&block, pan, &key).unwrap().as_deref(),
        Some("1234")
    );
}

#[test]
fn a_checkout_id_too_long_for_field_41_is_refused_clearly_until_the_owner_gives_it_the_acquirers_id() {
    let acquirer = AcquirerSim::start();
    let mut hub = Hub::start_with(None, &strs(&acquirer.hub_flags(acquirer.port)));
    let t = Terminal::start("FRONT-COUNTER-1", hub.mqtt);
    t.wait_ready();

    // Fifteen characters cannot go in field 41's eight: not sent, not
    // charged, said so, and nothing left pending to block the settlement.
    let screen = t.sale(1250, "approved");
    assert!(
        screen.contains("NOT CHARGED") && screen.contains("No bank terminal id"),
        "{screen}"
    );
    t.keys("C");
    assert_eq!(last_status(&hub), ("failed".into(), "XI".into()));
    assert!(hub.transactions("status=pending").is_empty());
    let types = message_types(&acquirer);
    assert!(
        !types.iter().any(|t| t == "0200"),
        "nothing reached the acquirer: {types:?}"
    );

    // The owner sets the id the acquirer assigned: the checkout sells and settles under it.
    hub.add_settings("\n[acquirer_terminal_ids]\nFRONT-COUNTER-1 = \"10000042\"\n");
    hub.restart();
    t.wait_ready();
    assert!(t.sale(1500, "approved").contains("APPROVED"));
    t.keys("C");
    t.keys("D3");
    let screen = t.wait_screen("Any key", Duration::from_secs(10));
    assert!(
        screen.contains("SETTLED") && screen.contains("Totals agree"),
        "{screen}"
    );
    let types = message_types(&acquirer);
    assert!(types.contains(&"0200".to_string()) && types.contains(&"0500".to_string()));
    let field_41: String = b"10000042".iter().map(|b| format!("{b:02X}")).collect();
    let sent = std::fs::read_to_string(acquirer.messages_path()).unwrap();
    assert!(sent.contains(&field_41), "field 41 carries the acquirer's id");
}

#[test]
fn the_owner_enters_a_master_key_from_its_two_components_and_never_sees_it_again() {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Stdio};
    use tallybox::acquirer::iso8583::keys::MasterKey;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acquirer-keys");
    let tallybox = |args: &[&str], input: &str| {
        let mut child = Command::new(tallybox_e2e::bin("tallybox"))
            .args(args)
            .arg("--file")
            .arg(&file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    // The classic test key and its published check value, and a second
    // component with its own.
    let (c1, k1) = ("0123456789ABCDEFFEDCBA9876543210", "08D7B4");
    let c2 = "F0E1D2C3B4A5968778695A4B3C2D1E0F";
    let k2 = MasterKey::from_bytes(hex::decode(c2).unwrap().try_into().unwrap()).check_value();
    let add = ["acquirer-keys", "add", "--terminal", "10000042"];

    // A mistyped check value: refused, nothing written.
    let (ok, said) = tallybox(&add, &format!("{c1}\n{k1}\n{c2}\n000000\n"));
    assert!(
        !ok && said.contains("component 2") && said.contains("mistyped"),
        "{said}"
    );
    assert!(!file.exists());

    let (ok, said) = tallybox(&add, &format!("{c1}\n{k1}\n{c2}\n{k2}\n"));
    assert!(ok, "{said}");
    let key: Vec<u8> = hex::decode(c1)
        .unwrap()
        .iter()
        .zip(hex::decode(c2).unwrap())
        .map(|(a, b)| a ^ b)
        .collect();
    let check = MasterKey::from_bytes(key.clone().try_into().unwrap()).check_value();
    assert!(said.contains(&format!("check value {check}")), "{said}");
    for secret in [c1.to_string(), c2.to_string(), hex::encode_upper(&key)] {
        assert!(!said.contains(&secret), "a key shown: {said}");
    }
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let kept = MasterKeys::load(&file).unwrap();
    assert_eq!(kept.get("10000042").unwrap().check_value(), check);

    let (ok, listed) = tallybox(&["acquirer-keys", "list"], "");
    assert!(
        ok && listed.contains(&format!("10000042  check value {check}")),
        "{listed}"
    );
    assert!(!listed.contains(&hex::encode_upper(&key)), "{listed}");
}

/// The working PIN key `sale` went under: from the last sign-in answer of
/// its terminal before it in the acquirer's log, opened with the terminal's
/// master key (what only the acquirer and the hub hold).
fn pin_key_of(acquirer: &AcquirerSim, sale: &Message, d: Dialect) -> [u8; 16] {
    let master_keys = MasterKeys::load(&acquirer.master_keys_path()).unwrap();
    let terminal = sale.text(41).unwrap().trim_end();
    let tmk = master_keys.get(terminal).expect("the terminal's master key");
    let log = std::fs::read_to_string(acquirer.messages_path()).unwrap();
    let mut key = None;
    for line in log.lines() {
        let (_, hex_bytes) = line.split_once(' ').unwrap();
        let frame = hex::decode(hex_bytes).unwrap();
        let Ok(m) = d.unwrap(&frame).and_then(|m| d.decode(m)) else {
            continue;
        };
        if m.text(41).map(str::trim_end) != Some(terminal) {
            continue;
        }
        if m.mti == "0810" {
            if let Some(field) = m.get(62) {
                key = Some(WorkingKeys::from_field62(field, tmk).unwrap().pin);
            }
        }
        if &m == sale {
            return key.expect("a sign-in before the sale");
        }
    }
    panic!("the sale is not in the log")
}

/// Field 35 of every sale request (0200) in the acquirer's log.
fn tracks_sent(acquirer: &AcquirerSim, d: Dialect) -> Vec<String> {
    let log = std::fs::read_to_string(acquirer.messages_path()).unwrap();
    log.lines()
        .filter_map(|l| l.strip_prefix("in "))
        .filter_map(|h| hex::decode(h.trim()).ok())
        .filter_map(|frame| d.decode(d.unwrap(&frame).ok()?).ok())
        .filter(|m| m.mti == "0200")
        .filter_map(|m| m.text(35).map(str::to_string))
        .collect()
}

/// The swiped test card's whole track 2 (as `tallybox_core`'s test cards
/// carry it): PAN, expiry, service code and discretionary data.
fn whole_track(card: &str) -> String {
    let t = tallybox_core::card::test_cards::by_name(card).unwrap();
    format!(
        "{}={}{}{}",
        t.pan,
        t.expiry,
        t.service_code,
        tallybox_core::card::test_cards::DISCRETIONARY
    )
}

/// The types of the messages on the link so far, read by the independent codec.
fn message_types(acquirer: &AcquirerSim) -> Vec<String> {
    serde_json::from_value(iso8583_check(&acquirer.messages_path())["types"].clone()).unwrap()
}

#[test]
fn a_hub_killed_after_the_acquirer_settled_records_that_settlement_with_its_first_answer() {
    let acquirer = AcquirerSim::start();
    let proxy = Proxy::start(acquirer.port);
    let mut hub = Hub::start_with(None, &strs(&acquirer.hub_flags(proxy.port)));
    let t1 = Terminal::start_with("T1", hub.mqtt, &["--hub-silent-secs", "2"]);
    t1.wait_ready();
    for minor in [1250, 800] {
        assert!(t1.sale(minor, "approved").contains("APPROVED"));
        t1.keys("C");
    }

    // The acquirer settles the batch, but its answer is held up on the way,
    // and the hub dies before it arrives.
    proxy.delay(Duration::from_secs(5));
    t1.keys("D3");
    wait_for(Duration::from_secs(10), || {
        message_types(&acquirer)
            .contains(&"0500".to_string())
            .then_some(())
    })
    .expect("the settlement reached the acquirer");
    hub.kill();
    proxy.cut();
    proxy.delay(Duration::ZERO);
    hub.start_again();

    // Asked again, the acquirer gives its first answer: balanced, once.
    let settled = wait_for(Duration::from_secs(20), || {
        let conn = rusqlite::Connection::open(hub.data_dir().join("tallybox.db")).ok()?;
        conn.query_row("SELECT batch_no, balanced FROM settlements", [], |r| {
            Ok((r.get::<_, u32>(0)?, r.get::<_, bool>(1)?))
        })
        .ok()
    });
    assert_eq!(settled, Some((1, true)), "{}", hub.log());
    let types = message_types(&acquirer);
    assert_eq!(types.iter().filter(|t| *t == "0500").count(), 2, "{types:?}");
    // The checkout asked again on its own and shows the settlement.
    let screen = t1.wait_screen("Totals agree", Duration::from_secs(20));
    assert!(screen.contains("Batch 000001"), "{screen}");
    t1.keys("C");
    t1.wait_ready();
    assert!(t1.sale(600, "approved").contains("APPROVED"));
    assert_eq!(hub.transactions("limit=1")[0]["batch_no"], 2);
}

#[test]
fn a_long_day_of_1005_sales_on_one_checkout_settles_balanced() {
    use tallybox_e2e::mqtt::{sale, RawClient};
    use tallybox_e2e::procs::STORE;
    let acquirer = AcquirerSim::start();
    let hub = Hub::start_with(None, &strs(&acquirer.hub_flags(acquirer.port)));
    let raw = RawClient::connect(hub.mqtt, STORE, "T9");
    let card = tallybox_e2e::test_cards()
        .into_iter()
        .find(|c| c["name"] == "approved")
        .unwrap();
    let wait = Duration::from_secs(10);
    for n in 0..1005u64 {
        let answer = raw
            .request("T9", &sale(&format!("long-{n:010}"), &card, 100 + n), wait)
            .expect("answer");
        assert_eq!(answer["status"], "approved", "{answer}");
    }
    // The 1 005th sale's count went out as 005 before (3 digits, cut).
    let answer = raw
        .request(
            "T9",
            &serde_json::json!({"v": 1, "type": "settle", "request_id": "long-settle-1"}),
            wait,
        )
        .expect("answer");
    assert_eq!(answer["type"], "settled", "{answer}");
    let acquirer_log = std::fs::read_to_string(acquirer.dir.path().join("acquirer.log")).unwrap_or_default();
    let hub_log: String = hub
        .log()
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        answer["balanced"], true,
        "{answer}\nacquirer:\n{acquirer_log}\nhub warnings:\n{hub_log}"
    );
    let report = answer["report"].to_string();
    assert!(report.contains("1005"), "{report}");
}

#[test]
fn the_acquirer_documents_samples_decode_with_an_independent_codec() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../hub/ACQUIRER.md")).unwrap();
    // ISO 8583:1987 samples, and China UnionPay's (named `cup-…`), each in its own log.
    let (mut iso, mut cup) = (String::new(), String::new());
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        if let Some(name) = line.strip_prefix("<!-- sample: ") {
            let hex: String = lines
                .by_ref()
                .skip_while(|l| l.starts_with("```"))
                .take_while(|l| !l.starts_with("```"))
                .collect();
            let log = if name.starts_with("cup-") {
                &mut cup
            } else {
                &mut iso
            };
            log.push_str(&format!("out {hex}\n"));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    for (dialect, log) in [("iso8583-1987", iso), ("cup-pos", cup)] {
        let path = dir.path().join(format!("{dialect}.log"));
        std::fs::write(&path, &log).unwrap();
        let report = iso8583_check_in(dialect, &path);
        assert_eq!(report["errors"], Value::Array(vec![]), "{dialect}: {report}");
        assert_eq!(report["checked"], 6, "{dialect}: {report}");
        assert_eq!(
            report["types"],
            serde_json::json!(["0800", "0810", "0200", "0210", "0400", "0500"]),
            "{dialect}"
        );
        carries(&report, "0810", &[11, 39, 41, 42, 62]);
    }
}

#[test]
fn over_tls_a_sale_goes_through_and_the_page_says_the_link_is_tls() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = openssl_certificates(certs.path());
    let acquirer = AcquirerSim::start_with(&["--tls-cert", &cert, "--tls-key", &key]);
    let settings = acquirer.settings().replace("iso8583://", "iso8583+tls://");
    let hub = Hub::start_configured(&format!("{settings}acquirer_tls_ca = \"{ca}\"\n"));
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    let screen = t1.sale(1250, "approved");
    assert!(screen.contains("APPROVED"), "{screen}");
    let link = wait_check(&hub.web(), "network.acquirer", "ok");
    assert!(
        link["evidence"]
            .as_str()
            .unwrap()
            .contains("(TLS, iso8583-1987 layout)"),
        "{link}"
    );
    // Track 2 went whole, its discretionary data too.
    assert_eq!(
        tracks_sent(&acquirer, Dialect::Iso1987),
        [whole_track("approved")]
    );
    // The message log is the host's, after TLS: the sale went as ISO 8583 inside it.
    let report = iso8583_check(&acquirer.messages_path());
    assert_eq!(report["errors"], Value::Array(vec![]), "{report}");
    assert!(
        report["types"].as_array().unwrap().contains(&Value::from("0200")),
        "{report}"
    );
}

#[test]
fn an_acquirers_own_layout_read_from_a_file_is_what_goes_on_the_wire() {
    // The acquirer's specification routes its terminals' messages to NII
    // 0012: a copy of the shipped table with that TPDU, on both sides.
    let dir = tempfile::tempdir().unwrap();
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../hub/dialects/cup-pos.toml");
    let layout = dir.path().join("acquirer-layout.toml");
    let text = std::fs::read_to_string(shipped).unwrap();
    assert!(text.contains("tpdu = \"6000030000\""));
    std::fs::write(
        &layout,
        text.replace("tpdu = \"6000030000\"", "tpdu = \"6000120000\""),
    )
    .unwrap();
    let path = layout.display().to_string();
    let acquirer = AcquirerSim::start_with(&["--dialect", "cup-pos", "--layout", &path]);
    let hub = Hub::start_configured(&format!(
        "{}acquirer_dialect = \"cup-pos\"\nacquirer_layout = \"{path}\"\n",
        acquirer.settings()
    ));
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    assert!(t1.sale(1250, "approved").contains("APPROVED"));

    let log = std::fs::read_to_string(acquirer.messages_path()).unwrap();
    let frames: Vec<(&str, &str)> = log.lines().filter_map(|l| l.split_once(' ')).collect();
    assert!(frames.len() >= 4, "{log}");
    for (direction, hex) in frames {
        let tpdu = if direction == "in" {
            "6000120000"
        } else {
            "6000000012"
        };
        assert!(hex.to_ascii_lowercase().starts_with(tpdu), "{direction} {hex}");
    }
    // Track 2 went whole (BCD, `=` as the nibble D), discretionary data too.
    assert_eq!(tracks_sent(&acquirer, Dialect::CupPos), [whole_track("approved")]);
}
