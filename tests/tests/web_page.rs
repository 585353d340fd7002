//! The owner's page in a real headless Chromium: receipts appear, and a
//! receipt opens as its slip.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tallybox_e2e::mqtt::{sale, RawClient};
use tallybox_e2e::procs::{Hub, STORE};
use tallybox_e2e::test_card;

fn chromium() -> PathBuf {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("chromium is not installed: scripts/test installs it (apt-get install chromium)")
}

/// Loads `url` in a 390-pixel-wide phone viewport, lets its scripts run, and
/// returns the DOM; also saves a screenshot to `shot` for a person to look at.
fn render(url: &str, profile: &std::path::Path, shot: &std::path::Path) -> String {
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--window-size=390,844",
        "--virtual-time-budget=4000",
    ];
    let profile_arg = format!("--user-data-dir={}", profile.display());
    let out = Command::new(chromium())
        .args(common)
        .arg(&profile_arg)
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = Command::new(chromium())
        .args(common)
        .arg(&profile_arg)
        .arg(format!("--screenshot={}", shot.display()))
        .arg(url)
        .output();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn receipts_list_and_slip_render_in_a_real_browser() {
    let hub = Hub::start();
    let raw = RawClient::connect(hub.mqtt, STORE, "T3");
    let wait = Duration::from_secs(10);
    raw.request("T3", &sale("web-000000001", &test_card("approved"), 1250), wait)
        .expect("sale");
    raw.request("T3", &sale("web-000000002", &test_card("lost"), 3300), wait)
        .expect("decline");

    let dir = tempfile::tempdir().unwrap();
    let base = format!("http://127.0.0.1:{}", hub.http);
    let list = render(
        &format!("{base}/"),
        &dir.path().join("p1"),
        &dir.path().join("list.png"),
    );
    assert!(list.contains("CNY 12.50") && list.contains("CNY 33.00"), "{list}");
    assert!(list.contains("622202******0005"), "{list}");
    assert!(list.contains("declined · Lost card"), "{list}");

    let id = hub.by_request("web-000000001").unwrap()["id"].clone();
    let slip = render(
        &format!("{base}/#/receipt/{id}"),
        &dir.path().join("p2"),
        &dir.path().join("slip.png"),
    );
    assert!(
        slip.contains("CARDHOLDER COPY") && slip.contains("AUTH CODE"),
        "{slip}"
    );
    assert!(slip.contains("APPROVED"), "{slip}");

    // Keep the pictures where a person can look at them after a run.
    let out = std::env::var_os("TALLYBOX_SCREENSHOTS").map(PathBuf::from);
    if let Some(out) = out {
        std::fs::create_dir_all(&out).unwrap();
        for name in ["list.png", "slip.png"] {
            let _ = std::fs::copy(dir.path().join(name), out.join(name));
        }
    }
}
