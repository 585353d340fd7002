//! A terminal with no `--hub` finds the hub by mDNS, as in a shop: the hub and
//! the terminal are two hosts (network namespaces made by this test, joined by
//! a veth pair), so the multicast never leaves this machine.

use std::process::{Command, Stdio};
use std::time::Duration;

use tallybox_e2e::procs::Guard;
use tallybox_e2e::{bin, wait_for};

/// Two namespaces joined by a veth pair; removed on drop.
struct Lan {
    hub: String,
    shop: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("the `ip` command (iproute2)");
    assert!(
        out.status.success(),
        "ip {args:?}: {} (network namespaces need root; CI runs as root)",
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

impl Lan {
    fn new() -> Lan {
        let tag = std::process::id() % 100_000;
        let lan = Lan {
            hub: format!("tbx-hub-{tag}"),
            shop: format!("tbx-shop-{tag}"),
        };
        let (a, b) = (format!("tbh{tag}"), format!("tbs{tag}"));
        ip(&["netns", "add", &lan.hub]);
        ip(&["netns", "add", &lan.shop]);
        ip(&["link", "add", &a, "type", "veth", "peer", "name", &b]);
        ip(&["link", "set", &a, "netns", &lan.hub]);
        ip(&["link", "set", &b, "netns", &lan.shop]);
        ip(&["-n", &lan.hub, "addr", "add", "10.77.0.1/24", "dev", &a]);
        ip(&["-n", &lan.shop, "addr", "add", "10.77.0.2/24", "dev", &b]);
        for (ns, dev) in [(&lan.hub, &a), (&lan.shop, &b)] {
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        lan
    }

    fn spawn(&self, ns: &str, program: &str, args: &[&str], log: &std::path::Path) -> Guard {
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(bin(program))
            .args(args)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("log file"))
            .spawn()
            .expect("start in namespace");
        Guard(child)
    }

    fn drive(&self, control: &str, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.shop])
            .arg(bin("tallybox"))
            .args(["drive", "--control", control])
            .args(args)
            .output()
            .expect("tallybox drive");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in [&self.hub, &self.shop] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

#[test]
fn a_terminal_without_an_address_finds_the_hub_by_mdns_and_sells() {
    let lan = Lan::new();
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).display().to_string();
    // This test is about finding the hub; the terminal sells unpaired.
    std::fs::write(dir.path().join("tallybox.toml"), "pairing_required = false\n").unwrap();
    let _hub = lan.spawn(
        &lan.hub,
        "tallybox",
        &[
            "serve",
            "--config",
            &path("tallybox.toml"),
            "--data-dir",
            &path("hub"),
            "--http",
            "10.77.0.1:8080",
            "--mqtt",
            "0.0.0.0:1883",
            "--devices",
            "none",
        ],
        &dir.path().join("hub.log"),
    );
    let _terminal = lan.spawn(
        &lan.shop,
        "tallybox-terminal",
        &[
            "--id",
            "T5",
            "--control",
            "127.0.0.1:7000",
            "--state-dir",
            &path("t5"),
            "--devices",
            "sim",
            "--device-config",
            &path("no-devices.toml"),
        ],
        &dir.path().join("t5.log"),
    );
    let ready = wait_for(Duration::from_secs(20), || {
        lan.drive("127.0.0.1:7000", &["screen"])
            .contains("Ready")
            .then_some(())
    });
    let log = std::fs::read_to_string(dir.path().join("t5.log")).unwrap_or_default();
    assert!(ready.is_some(), "terminal never signed in; log:\n{log}");
    assert!(
        log.contains("found the hub by mDNS broker=mqtt://10.77.0.1:1883"),
        "{log}"
    );
    lan.drive("127.0.0.1:7000", &["keys", "A888#"]);
    lan.drive("127.0.0.1:7000", &["card", "approved"]);
    let approved = wait_for(Duration::from_secs(10), || {
        lan.drive("127.0.0.1:7000", &["screen"])
            .contains("APPROVED")
            .then_some(())
    });
    assert!(approved.is_some(), "{}", lan.drive("127.0.0.1:7000", &["screen"]));
}
