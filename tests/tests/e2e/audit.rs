//! `tallybox audit verify` on a real hub's database: intact after a day of
//! sales; an edited record is named, and the command fails.

use std::process::Command;

use tallybox_e2e::bin;
use tallybox_e2e::procs::{Hub, Terminal};

fn verify(hub: &Hub) -> (bool, String) {
    let out = Command::new(bin("tallybox"))
        .args(["audit", "verify", "--data-dir"])
        .arg(hub.data_dir())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn audit_verify_passes_a_real_log_and_names_the_first_altered_record() {
    let mut hub = Hub::start();
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    t1.sale(1250, "approved");
    t1.keys("C");
    t1.sale(20_000, "low-balance");
    hub.stop();

    let (ok, out) = verify(&hub);
    assert!(ok, "{out}");
    // The owner's password set at start, two sales begun and finished.
    assert!(out.contains("intact: 5 records"), "{out}");

    // Someone turns the decline into an approval behind the hub's back.
    let conn = rusqlite::Connection::open(hub.data_dir().join("tallybox.db")).unwrap();
    conn.execute(
        "UPDATE audit_log SET detail = replace(detail, 'declined', 'approved') WHERE seq = 5",
        [],
    )
    .unwrap();
    drop(conn);
    let (ok, out) = verify(&hub);
    assert!(!ok, "{out}");
    assert!(out.contains("BROKEN") && out.contains("record 5"), "{out}");

    let missing = Command::new(bin("tallybox"))
        .args(["audit", "verify", "--data-dir", "/nonexistent/tallybox"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no Tallybox database"));
}
