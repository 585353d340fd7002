//! The shop's money records when the storage under SQLite fails: a WAL cut
//! short after a power cut loses committed sales, which the history's
//! witness sees. Sales stop with the reason on the checkout and the page
//! until the owner accepts the loss; trace numbers are never issued twice.
//! A backup put back with `tallybox restore` brings back its receipts and
//! audit chain, and what came after it is named the same way.

use std::time::Duration;

use serde_json::{json, Value};
use tallybox_e2e::procs::{AcquirerSim, Hub, Mosquitto, Plugged, Terminal};
use tallybox_e2e::proxy::Proxy;
use tallybox_e2e::s3::S3Store;
use tallybox_e2e::web::{wait_check, WebClient};
use tallybox_e2e::{strs, tallybox, wait_for};

fn audit_verify(hub: &Hub) -> (bool, String) {
    let data = hub.data_dir().display().to_string();
    tallybox(&["audit", "verify", "--data-dir", &data])
}

fn traces(hub: &Hub) -> Vec<u64> {
    hub.transactions("")
        .iter()
        .map(|t| t["trace_no"].as_u64().unwrap())
        .collect()
}

/// Power is cut under `hub`, which had `sold` sales, and the SD card kept
/// only the first half of the WAL; the hub starts again. The sales it kept,
/// and how many of them were approved.
fn cut_wal_in_half(hub: &mut Hub, sold: usize) -> (usize, usize) {
    hub.kill();
    let wal = hub.data_dir().join("tallybox.db-wal");
    let len = std::fs::metadata(&wal).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&wal).unwrap();
    file.set_len(len / 2).unwrap();
    file.sync_all().unwrap();
    drop(file);
    // The approvals the cut database still holds, read on a copy as the
    // hub will read it: a cut between a sale's two commits keeps the sale,
    // pending.
    let (_copy, cut) = tallybox_e2e::bench::wal::open_copy(&hub.data_dir().join("tallybox.db")).unwrap();
    let approved: i64 = cut
        .query_row(
            "SELECT count(*) FROM transactions WHERE status = 'approved'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let approved = approved as usize;
    hub.start_again();
    // What the hub found missing at its start (a paired checkout may bring
    // it back at once, so the list of sales does not tell).
    let log = hub.log();
    let said = log
        .lines()
        .find(|l| l.contains("history lost"))
        .unwrap_or_else(|| panic!("the cut must have lost sales for this test to mean anything\n{log}"));
    let first_missing: usize = match said.split_once("transactions ") {
        Some((_, rest)) => rest.split('–').next(),
        None => said
            .split_once("transaction ")
            .map(|(_, rest)| rest.split(' ').next().unwrap_or("")),
    }
    .and_then(|n| n.parse().ok())
    .unwrap_or_else(|| panic!("which transactions are missing: {said}"));
    assert!(first_missing <= sold, "{said}");
    (first_missing - 1, approved)
}

#[test]
fn a_wal_cut_short_after_a_power_cut_stops_sales_until_the_owner_accepts_the_loss() {
    let mut hub = Hub::start();
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    for i in 1..=12 {
        assert!(t1.sale(100 * i, "approved").contains("APPROVED"));
        t1.keys("C");
    }
    assert_eq!(traces(&hub).len(), 12);

    let (kept, _) = cut_wal_in_half(&mut hub, 12);

    // Nothing says all is well: the check, the checkout and the command line.
    let web = hub.web();
    let history = wait_check(&web, "store.history", "fail");
    let evidence = history["evidence"].as_str().unwrap();
    let missing = match kept {
        11 => "transaction 12 is missing".to_string(),
        _ => format!("transactions {}–12 are missing", kept + 1),
    };
    assert!(evidence.contains(&missing), "{history}");
    assert!(
        history["fix_en"].as_str().unwrap().contains("Accept the loss"),
        "{history}"
    );
    t1.wait_ready();
    let refused = t1.sale(5000, "approved");
    assert!(
        refused.contains("NOT CHARGED") && refused.contains("Hub records missing"),
        "{refused}"
    );
    t1.keys("C");
    assert_eq!(traces(&hub).len(), kept, "the refused sale left no row");
    let (ok, out) = audit_verify(&hub);
    assert!(!ok && out.contains("history LOST"), "{out}");

    // A manager cannot accept it; the owner does, and sales resume past the
    // trace numbers that went out before the cut.
    let (code, body) = web.send(
        "PUT",
        "/api/v1/accounts/ann",
        json!({"password": "manager-pass-1"}),
    );
    assert_eq!(code, 204, "{body}");
    let ann = WebClient::login(hub.http, Some("ann"), "manager-pass-1").unwrap();
    let (code, _) = ann.send("POST", "/api/v1/history/accept-loss", json!({}));
    assert_eq!(code, 403);
    let (code, body) = web.send("POST", "/api/v1/history/accept-loss", json!({}));
    assert_eq!(code, 204, "{body}");
    wait_check(&web, "store.history", "ok");
    let (code, _) = web.send("POST", "/api/v1/history/accept-loss", json!({}));
    assert_eq!(code, 409, "nothing left to accept");
    assert!(t1.sale(600, "approved").contains("APPROVED"));
    t1.keys("C");
    assert_eq!(
        traces(&hub)[0],
        13,
        "trace numbers 1–12 were printed on slips already"
    );
    let (ok, out) = audit_verify(&hub);
    assert!(ok, "{out}");

    // The acceptance stands after a restart, and the witness follows again.
    hub.restart();
    t1.wait_ready();
    assert!(t1.sale(700, "approved").contains("APPROVED"));
    assert_eq!(traces(&hub)[0], 14);
    assert!(hub.log().contains("the owner accepted the lost history"));
}

#[test]
fn a_wal_cut_short_loses_no_approval_a_paired_checkout_printed_and_the_batch_settles_balanced() {
    approvals_come_back_after_a_wal_cut(None);
}

/// The same on mosquitto: the checkout stays connected through the hub's
/// restart and signs in when the hub's status says it is back.
#[test]
fn on_an_external_broker_too_the_checkouts_record_brings_back_what_a_wal_cut_lost() {
    approvals_come_back_after_a_wal_cut(Some(Mosquitto::start()));
}

fn approvals_come_back_after_a_wal_cut(broker: Option<Mosquitto>) {
    let acquirer = AcquirerSim::start();
    let mut hub = Hub::start_with(
        broker.as_ref().map(|b| b.port),
        &strs(&acquirer.hub_flags(acquirer.port)),
    );
    let t1 = Terminal::start("T1", broker.as_ref().map_or(hub.mqtt, |b| b.port));
    t1.wait_ready();
    t1.pair(&hub);
    for i in 1..=12 {
        assert!(t1.sale(100 * i, "approved").contains("APPROVED"));
        t1.keys("C");
    }
    let before = hub.transactions("");

    let (_, approved) = cut_wal_in_half(&mut hub, 12);

    // The checkout signs in again and sends its record: every approval it
    // printed is back, as printed.
    let back = wait_for(Duration::from_secs(20), || {
        let rows = hub.transactions("");
        (rows.len() == 12).then_some(rows)
    })
    .unwrap_or_else(|| {
        panic!(
            "{} of 12 after the checkout signed in\n{}\n{}",
            traces(&hub).len(),
            hub.log(),
            t1.log()
        )
    });
    let fields = |rows: &[Value]| -> Vec<(Value, Value, Value, Value, Value)> {
        rows.iter()
            .map(|t| {
                (
                    t["request_id"].clone(),
                    t["trace_no"].clone(),
                    t["amount"].clone(),
                    t["status"].clone(),
                    t["auth_code"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(fields(&back), fields(&before));
    let web = hub.web();
    let history = wait_check(&web, "store.history", "fail");
    let evidence = history["evidence"].as_str().unwrap();
    assert!(
        evidence.contains(&format!(
            "{} approvals it lacked were brought back from the checkouts' own records",
            12 - approved
        )),
        "{history}"
    );
    assert!(hub
        .log()
        .contains("approvals the hub's records had lost were brought back from the checkout's own record"));

    // Sales stay stopped until the owner accepts; then the batch the bank
    // holds and the hub's agree.
    let (code, body) = web.send("POST", "/api/v1/history/accept-loss", json!({}));
    assert_eq!(code, 204, "{body}");
    t1.wait_ready();
    assert!(t1.sale(1300, "approved").contains("APPROVED"));
    t1.keys("C");
    assert_eq!(traces(&hub)[0], 13);
    t1.keys("D3");
    let screen = t1.wait_screen("Any key", Duration::from_secs(10));
    assert!(screen.contains("SETTLED"), "{screen}");
    let report = wait_for(Duration::from_secs(10), || {
        t1.paper().into_iter().find(|s| s.contains("结算单 SETTLEMENT"))
    })
    .expect("the settlement report");
    assert!(
        report.contains("BALANCED") && !report.contains("OUT OF BALANCE"),
        "{report}"
    );
    let (ok, out) = audit_verify(&hub);
    assert!(ok, "{out}");
}

/// A card that acknowledges its flushes without keeping them can lose the
/// database and its witness alike: both go back to the same earlier day,
/// and the hub starts as if nothing was lost. The checkout's sign-in says
/// how far its trace numbers went (one more for the sale it had in flight),
/// so the sale it sends again takes a new one and its record's approvals
/// all come back.
#[test]
fn an_old_database_and_witness_alike_never_reissue_a_trace_number_a_checkout_was_given() {
    let acquirer = AcquirerSim::start();
    let line = Proxy::start(acquirer.port);
    let mut hub = Hub::start_with(None, &strs(&acquirer.hub_flags(line.port)));
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    t1.pair(&hub);
    for i in 1..=4 {
        assert!(t1.sale(100 * i, "approved").contains("APPROVED"));
        t1.keys("C");
    }
    hub.kill();
    let data = hub.data_dir();
    let old = tempfile::tempdir().unwrap();
    let kept = ["tallybox.db", "tallybox.db-wal", "history.witness"];
    for name in kept {
        std::fs::copy(data.join(name), old.path().join(name)).unwrap();
    }
    hub.start_again();
    t1.wait_ready();
    for i in 5..=8 {
        assert!(t1.sale(100 * i, "approved").contains("APPROVED"));
        t1.keys("C");
    }
    // Sale 9 reaches the bank, whose answer is held up; the power goes.
    line.delay(Duration::from_secs(60));
    let sent = std::fs::read_to_string(acquirer.messages_path())
        .unwrap()
        .lines()
        .count();
    t1.keys("A900#");
    t1.card("approved");
    wait_for(Duration::from_secs(10), || {
        let now = std::fs::read_to_string(acquirer.messages_path()).unwrap();
        (now.lines().count() > sent).then_some(())
    })
    .expect("sale 9 reached the acquirer");
    hub.kill();
    for name in kept {
        std::fs::copy(old.path().join(name), data.join(name)).unwrap();
    }
    let _ = std::fs::remove_file(data.join("tallybox.db-shm"));
    line.delay(Duration::ZERO);
    hub.start_again();

    // The sale in flight is answered under a trace number of its own.
    let screen = t1.wait_screen("Any key", Duration::from_secs(30));
    assert!(screen.contains("APPROVED"), "{screen}");
    t1.keys("C");
    let rows = wait_for(Duration::from_secs(20), || {
        let rows = hub.transactions("");
        (rows.len() == 9).then_some(rows)
    })
    .unwrap_or_else(|| panic!("{:?}\n{}\n{}", traces(&hub), hub.log(), t1.log()));
    let of_900 = rows.iter().find(|t| t["amount"] == 900).expect("sale 9");
    assert_eq!(
        of_900["trace_no"], 10,
        "trace 9 went to the bank before the cut; 1–8 are on slips"
    );
    let mut all = traces(&hub);
    all.sort_unstable();
    assert_eq!(all, vec![1, 2, 3, 4, 5, 6, 7, 8, 10]);
    let log = hub.log();
    assert!(!log.contains("another transaction's here"), "{log}");
    assert!(log.contains("its trace numbers go on past them"), "{log}");
    wait_check(&hub.web(), "store.history", "warn");
    assert!(t1.sale(1000, "approved").contains("APPROVED"));
    assert_eq!(traces(&hub)[0], 11);
}

/// Everything checkpointed into the stopped hub's database file (as the hub
/// does every thousand pages); then the SD card gives back only its first
/// half. The file's whole length.
fn cut_in_half(hub: &Hub) -> u64 {
    let db = hub.data_dir().join("tallybox.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    let len = std::fs::metadata(&db).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    len
}

/// A restore ordered from the page refused with `status` and `code`: the answer.
fn restore_refused(web: &WebClient, order: Value, status: u16, code: &str) -> Value {
    let (got, body) = web.send("POST", "/api/v1/restore", order);
    assert_eq!(
        (got, body["error"]["code"].as_str()),
        (status, Some(code)),
        "{body}"
    );
    body
}

/// `store.history` turns red and names `missing`.
fn history_names(web: &WebClient, missing: &str) {
    let history = wait_check(web, "store.history", "fail");
    assert!(
        history["evidence"].as_str().unwrap().contains(missing),
        "{history}"
    );
}

fn restore(hub: &Hub, file: &std::path::Path) -> (bool, String) {
    let (file, data) = (file.display().to_string(), hub.data_dir().display().to_string());
    tallybox(&["restore", &file, "--data-dir", &data])
}

/// Settles at `t1` (D 3) and waits for the backup the settlement leaves.
fn settle_and_back_up(hub: &Hub, t1: &Terminal) -> std::path::PathBuf {
    t1.keys("D3");
    let screen = t1.wait_screen("Any key", Duration::from_secs(10));
    assert!(screen.contains("SETTLED"), "{screen}");
    wait_for(Duration::from_secs(10), || in_backups(hub, "auto-")).expect("a backup after the settlement")
}

/// The first file in the hub's `backups/` whose name starts with `prefix`.
fn in_backups(hub: &Hub, prefix: &str) -> Option<std::path::PathBuf> {
    std::fs::read_dir(hub.data_dir().join("backups"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
}

/// A copy that left the hub: a whole database holding one sale of
/// `amount`, and no key (the card-hash key stays on the hub).
fn assert_whole_without_key(copy: &std::path::Path, amount: i64) {
    let conn =
        rusqlite::Connection::open_with_flags(copy, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let sales: i64 = conn
        .query_row(
            "SELECT count(*) FROM transactions WHERE amount = ?1",
            [amount],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(sales, 1);
    let keys: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'backup_keys'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(keys, 0, "a copy that leaves the hub holds no key");
}

#[test]
fn a_usb_stick_plugged_into_the_hub_gets_a_proven_copy_of_the_backups_without_the_card_hash_key() {
    let mut hub = Hub::start();
    let stick = hub.dir.path().join("usb");
    std::fs::create_dir(&stick).unwrap();
    let t1 = sold_and_settled_with(&mut hub, &format!("backup_usb_dir = \"{}\"\n", stick.display()));
    // No stick: the folder is on the hub's own disk, and nothing goes there.
    let web = hub.web();
    let backup = wait_check(&web, "store.backup", "ok");
    assert!(
        backup["evidence"].as_str().unwrap().contains("no USB stick"),
        "{backup}"
    );
    assert_eq!(std::fs::read_dir(&stick).unwrap().count(), 0);

    // Plugged in: a proven copy, holding the sale and no key, within seconds.
    let plugged = Plugged::at(&stick, "64m");
    let copy = wait_for(Duration::from_secs(20), || {
        std::fs::read_dir(stick.join("tallybox-backups"))
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("auto-"))
            })
    })
    .expect("a copy on the stick");
    assert_whole_without_key(&copy, 1250);
    // The check says so once the copy's record is written, just after the file.
    let said = wait_for(Duration::from_secs(10), || {
        let backup = wait_check(&web, "store.backup", "ok");
        backup["evidence"]
            .as_str()
            .unwrap()
            .contains("a copy is on the USB stick")
            .then_some(backup)
    });
    assert!(said.is_some(), "{}", wait_check(&web, "store.backup", "ok"));

    // A stick that turns read-only: the next copy fails, and the page says so.
    std::process::Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&plugged.0)
        .status()
        .unwrap();
    assert!(t1.sale(800, "approved").contains("APPROVED"));
    t1.keys("C");
    t1.keys("D3");
    t1.wait_screen("SETTLED", Duration::from_secs(10));
    let failed = wait_check(&web, "store.backup", "warn");
    assert!(
        failed["evidence"]
            .as_str()
            .unwrap()
            .contains("the copy on the USB stick failed"),
        "{failed}"
    );
    assert!(
        failed["fix_en"].as_str().unwrap().contains("read-only"),
        "{failed}"
    );
}

/// The hub's `[offsite]` settings for `store`, the secret in `secret`.
fn offsite_settings(store: &S3Store, secret: &std::path::Path) -> String {
    format!(
        "\n[offsite]\nurl = \"https://127.0.0.1:{}/{}/shop-a\"\naccess_key_id = \"{}\"\nsecret_key = \"{}\"\nca = \"{}\"\n",
        store.port,
        store.bucket,
        store.access_key,
        secret.display(),
        store.ca.display()
    )
}

/// A hub whose settings send its copies to `store`, with `secret` in its
/// secret file (0600), that has sold ¥12.50 at T1 and settled (a backup):
/// the hub, T1 and the secret file.
fn selling_with_offsite(store: &S3Store, secret: &str) -> (Hub, Terminal, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let mut hub = Hub::start();
    let file = hub.dir.path().join("offsite.secret");
    std::fs::write(&file, secret).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let t1 = sold_and_settled_with(&mut hub, &offsite_settings(store, &file));
    (hub, t1, file)
}

/// The hub, started again on what came back, has the ¥12.50 sale approved.
fn assert_sold_again(hub: &Hub) {
    let sales = hub.transactions("limit=10");
    assert!(
        sales
            .iter()
            .any(|s| s["amount"] == 1250 && s["status"] == "approved"),
        "{sales:?}"
    );
}

/// Restarts `hub` with `settings` added; then T1 sells ¥12.50 and settles,
/// which leaves a backup. T1.
fn sold_and_settled_with(hub: &mut Hub, settings: &str) -> Terminal {
    hub.add_settings(settings);
    hub.restart();
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    assert!(t1.sale(1250, "approved").contains("APPROVED"));
    t1.keys("C");
    settle_and_back_up(hub, &t1);
    t1.keys("C");
    t1
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_larger_than_a_part_goes_up_in_parts_and_comes_back_whole() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let store = S3Store::start(dir.path(), "tallybox-backups");
    let secret = dir.path().join("offsite.secret");
    std::fs::write(&secret, &store.secret).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = tallybox::config::OffsiteConfig {
        url: format!("https://127.0.0.1:{}/{}/shop-a", store.port, store.bucket),
        region: "us-east-1".into(),
        access_key_id: store.access_key.clone(),
        secret_key: secret,
        ca: store.ca.clone(),
    };
    let bucket = tallybox::offsite::Bucket::new(&config, "shop")
        .unwrap()
        .in_parts_of(5 << 20);
    // 12 MiB whose every part differs: three parts of 5, 5 and 2 MiB.
    let big: Vec<u8> = (0..12u32 << 20).map(|i| ((i / 4099) ^ i) as u8).collect();
    let file = dir.path().join("big.db");
    std::fs::write(&file, &big).unwrap();
    let name = "auto-20261207-120000.db";
    bucket.put(name, &file).await.unwrap();

    let requests = store.requests();
    let sent: Vec<(String, String, u64)> = requests
        .iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with(name))
        .map(|r| {
            assert_eq!(r["verdict"], "ok", "{r}");
            let query = r["query"].as_str().unwrap();
            let part = query
                .split('&')
                .find(|q| q.starts_with("partNumber="))
                .unwrap_or(query);
            (
                r["method"].as_str().unwrap().to_string(),
                part.to_string(),
                r["bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    let parts: Vec<(&str, &str, u64)> = sent
        .iter()
        .map(|(m, q, b)| (m.as_str(), q.as_str(), *b))
        .collect();
    assert_eq!(
        parts[..4],
        [
            ("POST", "uploads=", 0),
            ("PUT", "partNumber=1", 5 << 20),
            ("PUT", "partNumber=2", 5 << 20),
            ("PUT", "partNumber=3", 2 << 20),
        ],
        "{sent:?}"
    );
    assert!(parts.len() == 5 && parts[4].0 == "POST", "completed: {sent:?}");

    // What the store holds is the file, read by boto3 and by the hub alike.
    let object = format!("shop-a/shop/{name}");
    let back = dir.path().join("back.db");
    tokio::task::block_in_place(|| store.get(&object, &back));
    assert!(std::fs::read(&back).unwrap() == big, "boto3 reads it whole");
    let again = dir.path().join("again.db");
    assert_eq!(bucket.get(name, &again).await.unwrap(), 12 << 20);
    assert!(std::fs::read(&again).unwrap() == big, "the hub reads it whole");
}

#[test]
fn a_damaged_database_with_no_backup_left_on_the_card_comes_back_from_the_off_site_copy() {
    let s3_dir = tempfile::tempdir().unwrap();
    let store = S3Store::start(s3_dir.path(), "tallybox-backups");
    let secret = format!("{}\n", store.secret);
    let (mut hub, _t1, _) = selling_with_offsite(&store, &secret);
    wait_check(&hub.web(), "store.offsite", "ok");
    hub.stop();

    // The card lost its backups and half the database file: the recovery
    // page brings the newest off-site copy and offers it.
    std::fs::remove_dir_all(hub.data_dir().join("backups")).unwrap();
    cut_in_half(&hub);
    hub.start_in_recovery();
    wait_for(Duration::from_secs(20), || {
        let (_, health) = hub.get_public("/healthz");
        health["backup"].as_str()?.contains("offsite-auto-").then_some(())
    })
    .expect("the off-site copy is brought");
    let page = ureq::get(&format!("http://127.0.0.1:{}/", hub.http))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        page.contains("the newest off-site copy is here")
            && page.contains("tallybox-backups/shop-a/shop/auto-"),
        "{page}"
    );
    let (code, answer) = post_form(&hub, "/recovery/restore", &[("understood", "yes")]);
    assert!(code == 200 && answer.contains("Restored"), "{code} {answer}");
    wait_for(Duration::from_secs(10), || hub.exited().then_some(()))
        .expect("the recovery page ends after the restore");
    hub.start_again();
    assert_sold_again(&hub);
}

#[test]
fn an_off_site_bucket_gets_a_proven_copy_without_the_key_and_a_wrong_secret_is_said_on_the_page() {
    let s3_dir = tempfile::tempdir().unwrap();
    let store = S3Store::start(s3_dir.path(), "tallybox-backups");
    // Older copies already there: the newest 14 stay, the oldest go.
    let old = s3_dir.path().join("old.db");
    std::fs::write(&old, b"an older copy").unwrap();
    for n in 1..=15 {
        store.put(&format!("shop-a/shop/auto-20250101-0000{n:02}.db"), &old);
    }
    store.put("shop-a/another-shop/auto-20250101-000001.db", &old);

    let (mut hub, _t1, secret) = selling_with_offsite(&store, "not the secret\n");

    // The wrong secret: the store refuses, the page says so in its words.
    let web = hub.web();
    let failed = wait_check(&web, "store.offsite", "warn");
    assert!(
        failed["evidence"]
            .as_str()
            .unwrap()
            .contains("403 SignatureDoesNotMatch"),
        "{failed}"
    );
    assert!(
        failed["fix_en"].as_str().unwrap().contains("[offsite]"),
        "{failed}"
    );
    assert!(
        store.requests().iter().any(|r| r["method"] == "PUT"
            && r["verdict"].as_str().unwrap().contains("SignatureDoesNotMatch")),
        "{:?}",
        store.requests()
    );
    assert_eq!(
        store
            .names()
            .iter()
            .filter(|n| n.starts_with("shop-a/shop/"))
            .count(),
        15
    );

    // Put right, and the hub restarted: a copy at once.
    std::fs::write(&secret, format!("{}\n", store.secret)).unwrap();
    hub.restart();
    let done = wait_check(&web, "store.offsite", "ok");
    let mine: Vec<String> = store
        .names()
        .into_iter()
        .filter(|n| n.starts_with("shop-a/shop/"))
        .collect();
    assert_eq!(mine.len(), 14, "the newest 14 kept: {mine:?}");
    assert!(
        !mine.iter().any(|n| n.ends_with("20250101-000001.db")),
        "{mine:?}"
    );
    let newest = mine.last().unwrap();
    assert!(!newest.starts_with("shop-a/shop/auto-2025"), "{mine:?}");
    assert!(
        done["evidence"]
            .as_str()
            .unwrap()
            .contains(&format!("tallybox-backups/{newest}")),
        "{done}"
    );
    assert!(
        store
            .names()
            .contains(&"shop-a/another-shop/auto-20250101-000001.db".to_string()),
        "another shop's copies are not touched"
    );

    // What arrived is a whole database with the sale, and no key.
    let copy = s3_dir.path().join("copy.db");
    store.get(newest, &copy);
    assert_whole_without_key(&copy, 1250);
    // Every request after the fix was signed as S3 checks it, the upload's
    // body included.
    let after: Vec<Value> = store
        .requests()
        .into_iter()
        .skip_while(|r| !r["verdict"].as_str().unwrap().contains("SignatureDoesNotMatch"))
        .skip_while(|r| r["verdict"] != "ok")
        .collect();
    let put = after.iter().find(|r| r["method"] == "PUT").expect("the upload");
    assert_eq!(put["bytes"], std::fs::metadata(&copy).unwrap().len());
    assert!(after
        .iter()
        .any(|r| r["method"] == "GET" && r["query"].as_str().unwrap().contains("list-type=2")));
    assert!(after.iter().any(|r| r["method"] == "DELETE"));
    assert!(after.iter().all(|r| r["verdict"] == "ok"), "{after:?}");

    // From the page, a copy in the bucket that is not a database: refused,
    // nothing ordered, and what was brought for it does not stay.
    restore_refused(
        &web,
        json!({"offsite": "auto-20250101-000015.db"}),
        422,
        "backup_refused",
    );
    assert!(
        in_backups(&hub, "offsite-").is_none(),
        "a copy brought for a refused restore is removed"
    );
    assert!(!hub.exited(), "the hub sells on");

    // The hub is lost: a new SD card with the same settings brings the
    // copy back from the bucket, the sale in it.
    hub.kill();
    std::fs::remove_dir_all(hub.data_dir()).unwrap();
    let (config, data) = (
        hub.dir.path().join("tallybox.toml").display().to_string(),
        hub.data_dir().display().to_string(),
    );
    let from_bucket = |name: Option<&str>| {
        let mut args = vec!["restore", "--offsite", "--config", &config, "--data-dir", &data];
        args.extend(name);
        tallybox(&args)
    };
    let (ok, listed) = from_bucket(None);
    assert!(ok, "{listed}");
    let listed: Vec<&str> = listed.lines().collect();
    assert_eq!(listed.len(), 14, "{listed:?}");
    assert_eq!(
        Some(listed[0]),
        newest.strip_prefix("shop-a/shop/"),
        "newest first"
    );
    // A copy that is not a database is refused, and nothing is put back.
    let (ok, out) = from_bucket(Some("auto-20250101-000015.db"));
    assert!(!ok, "{out}");
    assert!(!hub.data_dir().join("tallybox.db").exists(), "{out}");
    let (ok, out) = from_bucket(Some("latest"));
    assert!(ok && out.contains("restored"), "{out}");
    assert!(
        out.contains(&format!("brought tallybox-backups/{newest} (")),
        "{out}"
    );
    hub.start_again();
    assert_sold_again(&hub);
}

#[test]
fn a_backup_restored_brings_back_its_receipts_and_chain_and_names_what_came_after() {
    let mut hub = Hub::start();
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    for minor in [100, 200, 300] {
        assert!(t1.sale(minor, "approved").contains("APPROVED"));
        t1.keys("C");
    }
    let web = hub.web();
    let at_backup = hub.transactions("");
    let r = ureq::get(&format!("http://127.0.0.1:{}/api/v1/backup", hub.http))
        .set("cookie", web.cookie())
        .call()
        .unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut r.into_reader(), &mut bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("tallybox-backup.db");
    std::fs::write(&backup, &bytes).unwrap();
    for minor in [400, 500] {
        assert!(t1.sale(minor, "approved").contains("APPROVED"));
        t1.keys("C");
    }

    // Not under a running hub; not a file that is no backup.
    let (ok, out) = restore(&hub, &backup);
    assert!(!ok && out.contains("already running"), "{out}");
    hub.stop();
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"not a database at all").unwrap();
    let (ok, out) = restore(&hub, &junk);
    assert!(
        !ok && out.contains("cannot be restored") && out.contains("nothing was changed"),
        "{out}"
    );

    let (ok, out) = restore(&hub, &backup);
    assert!(ok, "{out}");
    assert!(
        out.contains("restored") && out.contains("3 transactions"),
        "{out}"
    );
    assert!(out.contains("transactions 4–5 are missing"), "{out}");
    assert!(out.contains("is kept in"), "{out}");

    hub.start_again();
    let back = hub.transactions("");
    let key = |rows: &[Value]| -> Vec<(Value, Value, Value)> {
        rows.iter()
            .map(|t| (t["trace_no"].clone(), t["amount"].clone(), t["status"].clone()))
            .collect()
    };
    assert_eq!(key(&back), key(&at_backup), "the backup's receipts, as they were");
    let (ok, out) = audit_verify(&hub);
    assert!(
        !ok && out.contains("audit log intact") && out.contains("history LOST"),
        "the restored chain holds, and what came after the backup is named: {out}"
    );
    let web = hub.web();
    history_names(&web, "transactions 4–5 are missing");
    let (code, body) = web.send("POST", "/api/v1/history/accept-loss", json!({}));
    assert_eq!(code, 204, "{body}");
    t1.wait_ready();
    assert!(t1.sale(600, "approved").contains("APPROVED"));
    assert_eq!(traces(&hub)[0], 6, "trace numbers 4 and 5 are not issued again");
}

#[test]
fn the_owner_puts_a_backup_back_from_the_page_and_the_hub_starts_again_on_it() {
    let mut hub = Hub::start();
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    assert!(t1.sale(1250, "approved").contains("APPROVED"));
    t1.keys("C");
    let backup = settle_and_back_up(&hub, &t1);
    let name = backup.file_name().unwrap().to_string_lossy().into_owned();
    t1.keys("C");
    assert!(t1.sale(990, "approved").contains("APPROVED"));
    t1.keys("C");

    let web = hub.web();
    let (code, listed) = web.get("/api/v1/backups");
    assert_eq!(code, 200, "{listed}");
    assert_eq!(listed["on_hub"][0]["name"], name.as_str(), "{listed}");
    assert!(listed["on_hub"][0]["bytes"].as_u64().unwrap() > 0, "{listed}");
    assert_eq!(listed["offsite"], false);
    assert!(listed["last_restore"].is_null());

    // Refusals change nothing, and the hub goes on.
    restore_refused(&web, json!({"backup": "../tallybox.db"}), 404, "no_backup");
    restore_refused(&web, json!({"offsite": "latest"}), 409, "no_offsite");
    let junk = hub.data_dir().join("backups/auto-20250101-000000.db");
    std::fs::write(&junk, b"not a database at all").unwrap();
    let body = restore_refused(
        &web,
        json!({"backup": "auto-20250101-000000.db"}),
        422,
        "backup_refused",
    );
    assert!(
        body["error"]["params"]["detail"]
            .as_str()
            .unwrap()
            .contains("nothing was changed"),
        "{body}"
    );
    std::fs::remove_file(&junk).unwrap();
    assert!(!hub.exited(), "a refused restore leaves the hub selling");
    assert_eq!(hub.transactions("").len(), 2);

    // The backup put back: the hub stops, and started again (as its
    // service does) it has the backup's sale, names the one after it as
    // missing, and keeps the database it replaced.
    let (code, body) = web.send("POST", "/api/v1/restore", json!({"backup": name}));
    assert_eq!(code, 202, "{body}");
    assert_eq!(
        (body["file"].as_str(), body["restarting"].as_bool()),
        (Some(name.as_str()), Some(true))
    );
    wait_for(Duration::from_secs(10), || hub.exited().then_some(())).expect("the hub stops to restore");
    hub.start_again();
    let amounts: Vec<Value> = hub.transactions("").iter().map(|t| t["amount"].clone()).collect();
    assert_eq!(amounts, vec![json!(1250)], "the backup's one sale");
    let web = hub.web();
    history_names(&web, "transaction 2 is missing");
    let (_, listed) = web.get("/api/v1/backups");
    let last = &listed["last_restore"];
    assert!(
        last["file"] == name.as_str() && last["by"] == "owner" && last["error"].is_null(),
        "{listed}"
    );
    let replaced = in_backups(&hub, "replaced-").expect("the database it replaced is kept");
    let kept = rusqlite::Connection::open(replaced.join("tallybox.db")).unwrap();
    let sold: i64 = kept
        .query_row("SELECT count(*) FROM transactions WHERE amount = 990", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(sold, 1, "the sale after the backup is in the kept database");
    assert!(hub
        .log()
        .contains("the backup ordered from the web page is put back"));
    let (ok, out) = audit_verify(&hub);
    assert!(out.contains("audit log intact"), "{ok} {out}");
}

#[test]
fn each_settlement_leaves_a_proven_backup_on_the_hub() {
    let hub = Hub::start();
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    assert!(t1.sale(1250, "approved").contains("APPROVED"));
    t1.keys("C");
    let web = hub.web();
    let none = wait_check(&web, "store.backup", "ok");
    assert!(
        none["evidence"]
            .as_str()
            .unwrap()
            .contains("no automatic backup yet"),
        "{none}"
    );
    let backup = settle_and_back_up(&hub, &t1);
    let copy =
        rusqlite::Connection::open_with_flags(&backup, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let (sales, settled): (i64, i64) = copy
        .query_row(
            "SELECT (SELECT count(*) FROM transactions), (SELECT count(*) FROM settlements)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((sales, settled), (1, 1), "the sale and its settlement are in it");
    let check = wait_check(&web, "store.backup", "ok");
    assert!(check["evidence"].as_str().unwrap().contains("1 kept"), "{check}");
    assert!(hub.log().contains("backup after the settlement taken and proven"));
}

/// The recovery page's form, sent without a session (there is none to have).
fn post_form(hub: &Hub, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    match ureq::post(&format!("http://127.0.0.1:{}{path}", hub.http)).send_form(form) {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

#[test]
fn a_database_cut_in_half_serves_the_recovery_page_and_its_newest_backup_comes_back() {
    let mut hub = Hub::start();
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    assert!(t1.sale(1250, "approved").contains("APPROVED"));
    t1.keys("C");
    settle_and_back_up(&hub, &t1);
    t1.keys("C");
    assert!(t1.sale(800, "approved").contains("APPROVED"));
    t1.keys("C");
    let sold: Vec<String> = hub
        .transactions("")
        .iter()
        .map(|t| t["request_id"].as_str().unwrap().to_string())
        .collect();
    hub.stop();

    let len = cut_in_half(&hub);
    hub.start_in_recovery();
    let page = ureq::get(&format!("http://127.0.0.1:{}/", hub.http))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        page.contains("数据库已损坏") && page.contains("cut short") && page.contains("auto-"),
        "{page}"
    );
    let kept = in_backups(&hub, "damaged-").expect("the damaged files are kept first");
    assert_eq!(
        std::fs::metadata(kept.join("tallybox.db")).unwrap().len(),
        len / 2
    );

    // What the damaged file still holds, read page by page: only sales the
    // hub made, each listed in a file for support, those the backup lacks
    // named on the page.
    let page = wait_for(Duration::from_secs(10), || {
        let page = ureq::get(&format!("http://127.0.0.1:{}/", hub.http))
            .call()
            .ok()?
            .into_string()
            .ok()?;
        page.contains("transactions, the newest at").then_some(page)
    })
    .expect("the salvage on the page");
    let csv = std::fs::read_to_string(kept.join("salvaged-transactions.csv")).unwrap();
    let found: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert!(found.iter().all(|id| sold.iter().any(|s| s == id)), "{csv}");
    assert!(
        page.contains(&format!("{} transactions, the newest at", found.len())),
        "{page}"
    );
    let after_backup = &sold[0]; // the newest first
    assert_eq!(
        found.contains(&after_backup.as_str()),
        page.contains("of them are not in the backup"),
        "{page}"
    );

    // The box unticked: nothing happens. Ticked: the backup comes back.
    let (code, answer) = post_form(&hub, "/recovery/restore", &[]);
    assert!(code == 200 && answer.contains("tick the box"), "{code} {answer}");
    let (code, answer) = post_form(&hub, "/recovery/restore", &[("understood", "yes")]);
    assert!(code == 200 && answer.contains("Restored"), "{code} {answer}");
    assert!(answer.contains("transaction 2 is missing"), "{answer}");
    wait_for(Duration::from_secs(10), || hub.exited().then_some(()))
        .expect("the recovery page ends after the restore");

    // Started again on the backup: its sale, the later one named until accepted.
    hub.start_again();
    assert_eq!(traces(&hub), [1]);
    let web = hub.web();
    history_names(&web, "transaction 2 is missing");
    let (code, _) = web.send("POST", "/api/v1/history/accept-loss", json!({}));
    assert_eq!(code, 204);
    t1.wait_ready();
    assert!(t1.sale(600, "approved").contains("APPROVED"));
    // Trace 2 went to the settlement (its field 11), 3 to the lost sale:
    // the next is 4, never a number already printed or sent.
    assert_eq!(traces(&hub)[0], 4);
}
