//! Bad input gets a clear, typed refusal and loses nothing: malformed MQTT
//! payloads, bad command-line arguments, a bad config file.

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use tallybox_e2e::mqtt::{sale, RawClient};
use tallybox_e2e::procs::{Hub, Tmpfs, STORE};
use tallybox_e2e::{bin, free_port, test_cards};

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn malformed_payloads_get_typed_errors_and_the_hub_keeps_serving() {
    let hub = Hub::start();
    let raw = RawClient::connect(hub.mqtt, STORE, "T9");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"this is not json".to_vec(), "malformed"),
        (b"[1,2,3]".to_vec(), "malformed"),
        (serde_json::to_vec(&json!({"v": 2, "type": "sale", "request_id": "v2-00000001"})).unwrap(), "unsupported_version"),
        (serde_json::to_vec(&json!({"type": "sale", "request_id": "nov-0000001"})).unwrap(), "unsupported_version"),
        (serde_json::to_vec(&json!({"v": 1, "type": "teleport", "request_id": "tp-00000001"})).unwrap(), "unknown_type"),
        (
            serde_json::to_vec(&json!({"v": 1, "type": "sale", "request_id": "neg-0000001", "amount": -5, "currency": "CNY"}))
                .unwrap(),
            "malformed",
        ),
        (vec![b'x'; 20 * 1024], "too_large"),
        (vec![0xff, 0xfe, 0x00], "malformed"),
    ];
    for (payload, code) in cases {
        let shown = String::from_utf8_lossy(&payload[..payload.len().min(40)]).to_string();
        raw.publish_raw("T9", payload);
        let answer = raw
            .answer(None, WAIT)
            .unwrap_or_else(|| panic!("no answer to {shown:?}"));
        assert_eq!(answer["type"], "error", "{shown:?}: {answer}");
        assert_eq!(answer["code"], code, "{shown:?}: {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // The request id is echoed when it could be read, so a terminal can match it.
    raw.publish(
        "T9",
        &json!({"v": 9, "type": "sale", "request_id": "echo-000001"}),
    );
    let answer = raw.answer(Some("echo-000001"), WAIT).expect("correlated error");
    assert_eq!(answer["code"], "unsupported_version");

    // A bad card number inside an otherwise good sale.
    let mut bad_card = sale("luhn-0000001", &test_cards()[0], 100);
    bad_card["card"]["pan"] = json!("6222021000000006");
    raw.publish("T9", &bad_card);
    let answer = raw.answer(Some("luhn-0000001"), WAIT).expect("answer");
    assert_eq!(answer["code"], "malformed");

    // A bad topic (no valid terminal id) is logged, not answered, not fatal.
    raw.publish_raw("bad terminal", b"{}".to_vec());
    // The hub still sells.
    let ok = raw
        .request("T9", &sale("after-000001", &test_cards()[0], 100), WAIT)
        .expect("answer");
    assert_eq!(ok["status"], "approved");
    assert!(hub.log().contains("bad request refused"));
    assert!(
        hub.transactions("").len() == 1,
        "none of the bad payloads was stored"
    );
}

/// `tallybox serve` on `data` and free ports, expected to stop by itself:
/// its exit code and what it printed to stderr.
fn serve_once(data: &std::path::Path) -> (i32, String) {
    let (http, mqtt) = (free_port().to_string(), free_port().to_string());
    run(&[
        "serve",
        "--data-dir",
        data.to_str().unwrap(),
        "--http",
        &format!("127.0.0.1:{http}"),
        "--mqtt",
        &format!("127.0.0.1:{mqtt}"),
        "--no-mdns",
        "--devices",
        "none",
    ])
}

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(bin("tallybox"))
        .args(args)
        .output()
        .expect("run tallybox");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_arguments_get_one_clear_line_and_a_failing_exit() {
    for args in [
        vec!["serve", "--http", "not-an-address"],
        vec!["serve", "--broker", "http://x"],
        vec!["serve", "--devices", "laser"],
        vec!["serve", "--no-such-flag"],
        vec!["demo", "--terminals", "500"],
        vec!["frobnicate"],
    ] {
        let (code, stderr) = run(&args);
        assert_ne!(code, 0, "{args:?}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("tallybox: "), "{args:?}: {stderr}");
    }
    let out = Command::new(bin("tallybox-terminal"))
        .args(["--id", "bad id!"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn a_bad_config_file_gets_one_clear_line_and_a_failing_exit() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("store_nmae = \"typo\"\n", "store_nmae"),
        ("acquirer_timeout_ms = 5\n", "acquirer_timeout_ms"),
        ("currency = \"yuan\"\n", "currency"),
        ("this is = = not toml\n", "config file"),
        // No key is built in: the acquirer's own master keys are needed.
        (
            "acquirer = \"iso8583://127.0.0.1:5800\"\n",
            "acquirer_master_keys",
        ),
        (
            "acquirer = \"iso8583://127.0.0.1:5800\"\nacquirer_master_keys = \"/nonexistent/keys\"\n",
            "cannot read /nonexistent/keys",
        ),
        // The acquirer's own layout: read and checked before anything starts.
        (
            "acquirer_layout = \"/nonexistent/layout.toml\"\n",
            "cannot read /nonexistent/layout.toml",
        ),
        (
            &format!(
                "acquirer_dialect = \"cup-pos\"\nacquirer_layout = \"{}/../hub/dialects/iso8583-1987.toml\"\n",
                env!("CARGO_MANIFEST_DIR")
            ),
            "writes iso8583-1987, but acquirer_dialect is cup-pos",
        ),
        // Keys set by hand before working keys: said what replaced them.
        ("acquirer_mac_key = \"0F1E\"\n", "acquirer_master_keys"),
    ];
    for (text, needle) in cases {
        let path = dir.path().join("tallybox.toml");
        std::fs::write(&path, text).unwrap();
        let (code, stderr) = run(&[
            "serve",
            "--config",
            path.to_str().unwrap(),
            "--data-dir",
            dir.path().to_str().unwrap(),
        ]);
        assert_ne!(code, 0, "{text}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{text}: {stderr}");
        assert!(stderr.contains(needle), "{text}: {stderr}");
    }
    let (code, stderr) = run(&["serve", "--config", "/nonexistent/tallybox.toml"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("cannot read config file"), "{stderr}");
}

#[test]
fn a_busy_port_is_one_clear_error() {
    let hub = Hub::start();
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = run(&[
        "serve",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--mqtt",
        &format!("127.0.0.1:{}", hub.mqtt),
        "--http",
        "127.0.0.1:0",
        "--no-mdns",
    ]);
    assert_ne!(code, 0);
    assert!(stderr.contains("cannot listen for MQTT"), "{stderr}");
}

#[test]
fn a_read_only_data_disk_is_one_clear_error_and_loses_nothing() {
    let disk = Tmpfs::mount("64m");
    let data = disk.0.path().join("data");
    let mut hub = Hub::start_with(None, &["--data-dir", &data.display().to_string()]);
    let raw = RawClient::connect(hub.mqtt, STORE, "T9");
    let sold = raw
        .request("T9", &sale("ro-0000000001", &test_cards()[0], 700), WAIT)
        .expect("answer");
    assert_eq!(sold["status"], "approved");
    hub.stop();
    // The SD card turned read-only (ext4 does so after I/O errors).
    disk.read_only(true);
    let (code, stderr) = serve_once(&data);
    assert_ne!(code, 0);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    disk.read_only(false);
    hub.restart();
    let rows = hub.transactions("");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "approved");
}

#[test]
fn an_upgrade_on_a_full_disk_says_how_much_room_it_needs_and_loses_nothing() {
    let disk = Tmpfs::mount("32m");
    let data = disk.0.path().join("data");
    let mut hub = Hub::start_with(None, &["--data-dir", &data.display().to_string()]);
    let raw = RawClient::connect(hub.mqtt, STORE, "T9");
    let sold = raw
        .request("T9", &sale("up-0000000001", &test_cards()[0], 700), WAIT)
        .expect("answer");
    assert_eq!(sold["status"], "approved");
    hub.stop();
    // The database as a Tallybox ten schema steps older left it
    // (migrations 16 to 25 undone).
    const LATEST: u32 = 25;
    let conn = rusqlite::Connection::open(data.join("tallybox.db")).unwrap();
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, LATEST, "a new migration: undo it here too");
    conn.execute_batch(
        "DROP INDEX transactions_terminal_declines; \
         CREATE INDEX transactions_terminal_status ON transactions (terminal_id, status, local_time); \
         DROP TABLE bill_checks; \
         DROP TRIGGER daily_totals_insert; DROP TRIGGER daily_totals_leave; DROP TRIGGER daily_totals_enter; \
         DROP TRIGGER daily_totals_delete; DROP TABLE daily_totals; \
         DROP TABLE outbox; ALTER TABLE transactions DROP COLUMN provider; ALTER TABLE transactions DROP COLUMN buyer; \
         ALTER TABLE transactions DROP COLUMN tender; ALTER TABLE transactions DROP COLUMN tendered; \
         DROP INDEX transactions_split; ALTER TABLE transactions DROP COLUMN split_of; \
         ALTER TABLE transactions DROP COLUMN split_total; \
         DROP TABLE drawer_events; \
         ALTER TABLE check_history DROP COLUMN evidence_zh; ALTER TABLE fraud_hits DROP COLUMN detail_zh; \
         ALTER TABLE freezes DROP COLUMN reason_zh; \
         DROP TABLE settlement_traces; ALTER TABLE transactions DROP COLUMN reversals_sent; \
         DROP INDEX settlements_request; ALTER TABLE settlements DROP COLUMN request_id; \
         DROP TABLE settling; PRAGMA user_version = 15;",
    )
    .unwrap();
    drop(conn);
    // The card is full but for 256 KiB.
    let filler = disk.0.path().join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    while std::io::Write::write_all(&mut f, &[0u8; 1 << 16]).is_ok() {}
    let full = f.metadata().unwrap().len();
    f.set_len(full - (256 << 10)).unwrap();
    drop(f);
    let (code, stderr) = serve_once(&data);
    assert_ne!(code, 0);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("upgrading the database (schema 15 to {LATEST}) needs"))
            && stderr.contains("MiB free")
            && stderr.contains("nothing was changed"),
        "{stderr}"
    );
    std::fs::remove_file(&filler).unwrap();
    hub.restart();
    let rows = hub.transactions("");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "approved");
    let conn = rusqlite::Connection::open(data.join("tallybox.db")).unwrap();
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, LATEST, "upgraded once there was room");
}
