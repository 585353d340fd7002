//! `tallybox doctor` on a running hub: a checkout that dies turns its check
//! red with what to do, and green again when it is back; the exit code is
//! the worst status (0 ok, 1 warn, 2 fail).

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tallybox_e2e::procs::{Hub, Terminal};
use tallybox_e2e::{bin, wait_for};

fn doctor(hub: &Hub) -> (i32, Value) {
    let out = Command::new(bin("tallybox"))
        .args(["doctor", "--json", "--data-dir"])
        .arg(hub.data_dir())
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), report)
}

fn check<'a>(report: &'a Value, id: &str) -> Option<&'a Value> {
    report["checks"].as_array()?.iter().find(|c| c["id"] == id)
}

#[test]
fn a_dead_checkout_turns_red_with_the_fix_and_green_when_it_is_back() {
    let hub = Hub::start();
    let mut t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    let (code, report) = doctor(&hub);
    assert_eq!(
        check(&report, "terminal.T1.online").unwrap()["status"],
        "ok",
        "{report}"
    );
    assert_eq!(check(&report, "store.integrity").unwrap()["status"], "ok");
    let expected = match report["status"].as_str() {
        Some("ok") => 0,
        Some("warn") => 1,
        _ => 2,
    };
    assert_eq!(code, expected, "the exit code is the worst status: {report}");

    // Killed: the broker's last will says offline; the check says what to do.
    t1.kill();
    let (code, down) = wait_for(Duration::from_secs(15), || {
        let (code, report) = doctor(&hub);
        (check(&report, "terminal.T1.online")?["status"] == "fail").then_some((code, report))
    })
    .expect("T1's check turned red");
    assert_eq!(code, 2);
    let c = check(&down, "terminal.T1.online").unwrap();
    assert!(c["evidence"].as_str().unwrap().contains("offline"), "{c}");
    assert!(c["fix_en"].as_str().unwrap().contains("power"), "{c}");
    assert!(c["fix_zh-CN"].as_str().unwrap().contains("电源"), "{c}");
    assert_eq!(down["checks"][0]["status"], "fail", "worst first");

    // Back: green again.
    t1.restart();
    t1.wait_ready();
    wait_for(Duration::from_secs(15), || {
        let (_, report) = doctor(&hub);
        (check(&report, "terminal.T1.online")?["status"] == "ok").then_some(())
    })
    .expect("T1's check turned green again");

    // A doctor that cannot look fails loudly.
    let out = Command::new(bin("tallybox"))
        .args(["doctor", "--data-dir", "/nonexistent-tallybox-dir"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Tallybox database"));
}
