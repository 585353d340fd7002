//! The end-to-end harness: starts real `tallybox` and `tallybox-terminal`
//! processes (and mosquitto) on loopback ports, drives checkouts through their
//! control API, and reads results back through the hub's HTTP API, a raw MQTT
//! client and the SQLite file itself.
//!
//! Every process is killed when its handle drops, so a failing test leaves
//! nothing running.

pub mod bench;
pub mod books;
pub mod browser;
pub mod card;
pub mod chain;
pub mod cuts;
pub mod mqtt;
pub mod paper;
pub mod procs;
pub mod proxy;
pub mod s3;
pub mod vm;
pub mod web;

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A binary of this workspace, built by `cargo build --workspace --bins`, from
/// the same profile as the running test or benchmark.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // A test runs from target/<profile>/deps/, the benchmark from target/<profile>/.
    let mut dir = exe.parent().expect("target dir");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("target dir");
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test does)",
        path.display()
    );
    path
}

/// A loopback port that was free a moment ago, for a process a test starts.
pub fn free_port() -> u16 {
    free_port_run(1)
}

/// `n` consecutive loopback ports that were free a moment ago (for the demo,
/// whose checkouts take the ports after the first).
///
/// Ports come from outside the kernel's ephemeral range, each handed out once
/// per run: a port the kernel chose for `bind(":0")` is in that range, where
/// every outgoing connection of a parallel test also takes its local port, so
/// one released and then listened on a moment later could already be taken
/// (a hub failing to start with "Address already in use").
pub fn free_port_run(n: u16) -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (low, high) = test_port_range();
    let span = u32::from(high - low);
    // Test binaries run one after another; starting each at another place
    // keeps them off ports a previous one may have left in TIME_WAIT.
    let start = std::process::id() % span;
    for _ in 0..span / u32::from(n) {
        let k = NEXT.fetch_add(u32::from(n), Ordering::Relaxed);
        let base = (start + k) % span;
        if base + u32::from(n) > span {
            continue;
        }
        let base = low + base as u16;
        let held: Vec<_> = (base..base + n)
            .filter_map(|p| TcpListener::bind(("127.0.0.1", p)).ok())
            .collect();
        if held.len() == usize::from(n) {
            return base;
        }
    }
    panic!("no run of {n} free loopback ports in {low}..{high}");
}

/// Ports for the servers tests start: below the kernel's ephemeral ports
/// (32768-60999 by default on Linux), or above them if there is no room below.
fn test_port_range() -> (u16, u16) {
    let ephemeral: Vec<u16> = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .map(|s| s.split_whitespace().filter_map(|p| p.parse().ok()).collect())
        .unwrap_or_default();
    let (low, high) = match ephemeral[..] {
        [low, high] => (low, high),
        _ => (32768, 60999),
    };
    if low >= 12000 {
        (10000, low)
    } else if high <= 63000 {
        (high + 1, 65535)
    } else {
        panic!("the ephemeral port range {low}-{high} leaves no room for test servers")
    }
}

/// `tallybox drive` against a checkout's control API on loopback: what it
/// printed, or what it said on stderr when it failed (e.g. not listening yet).
pub fn try_drive(control: u16, args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new(bin("tallybox"))
        .args(["drive", "--control", &format!("127.0.0.1:{control}")])
        .args(args)
        .output()
        .map_err(|e| format!("run tallybox drive: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// [`try_drive`], where a failure fails the test.
pub fn drive(control: u16, args: &[&str]) -> String {
    try_drive(control, args).unwrap_or_else(|e| panic!("drive {args:?}: {e}"))
}

/// Polls `check` until it returns `Some` or `limit` passes.
pub fn wait_for<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `args` as the `&[&str]` a process helper takes.
pub fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// The test card called `name`.
pub fn test_card(name: &str) -> serde_json::Value {
    test_cards()
        .into_iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no test card named {name}"))
}

/// The test cards, as `tallybox test-cards --json` prints them.
pub fn test_cards() -> Vec<serde_json::Value> {
    let out = std::process::Command::new(bin("tallybox"))
        .args(["test-cards", "--json"])
        .output()
        .expect("run tallybox test-cards");
    assert!(out.status.success());
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .expect("test-cards --json prints JSON")
        .as_array()
        .cloned()
        .expect("an array")
}

/// Runs `tallybox ARGS`: whether it succeeded, and what it printed (stdout,
/// then stderr).
pub fn tallybox(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(bin("tallybox"))
        .args(args)
        .output()
        .expect("run tallybox");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The acquirer link's message log (`tallybox acquirer-sim --log`) read by
/// an independent codec (pyiso8583, `py/iso8583_check.py`): its report
/// (`checked`, `types`, `fields`, `currencies`, `errors`).
pub fn iso8583_check(log: &std::path::Path) -> serde_json::Value {
    iso8583_check_in("iso8583-1987", log)
}

/// The same for a log in `dialect` (`iso8583-1987` or `cup-pos`).
pub fn iso8583_check_in(dialect: &str, log: &std::path::Path) -> serde_json::Value {
    let out = std::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/py/iso8583_check.py"))
        .args(["--dialect", dialect])
        .arg(log)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "the independent codec did not run (scripts/test installs pyiso8583): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the checker prints JSON")
}

/// The calls to the simulated Alipay gateway checked by an independent
/// reading of Alipay's signature rules (`py/alipay_check.py`, the
/// `cryptography` package): its report (`checked`, `methods`, `errors`).
pub fn alipay_check(sim: &procs::ProviderSim) -> serde_json::Value {
    let key = |name: &str| sim.dir.path().join(name);
    let out = std::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/py/alipay_check.py"))
        .arg(sim.calls_path())
        .arg(key("app_public_key.txt"))
        .arg(key("alipay_public_key.txt"))
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "the independent signature check did not run (scripts/test installs python3-cryptography): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the checker prints JSON")
}

/// WeChat Pay's calls to the simulated provider checked by an independent
/// reading of its signature and reversal rules (`py/wechat_check.py`): its
/// report (`checked`, `paths`, `errors`).
pub fn wechat_check(sim: &procs::ProviderSim) -> serde_json::Value {
    let out = std::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/py/wechat_check.py"))
        .arg(sim.calls_path())
        .arg(sim.dir.path().join("wechat_api_key.txt"))
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "the independent check did not run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the checker prints JSON")
}

/// What `systemd-analyze verify` finds wrong with the unit at `unit` (a path
/// inside `root`). A bare folder has no sysinit.target to order against: that
/// is not counted.
pub fn unit_faults(root: &std::path::Path, unit: &str) -> Vec<String> {
    let out = std::process::Command::new("systemd-analyze")
        .arg(format!("--root={}", root.display()))
        .args(["verify", unit])
        .output()
        .expect("systemd-analyze (scripts/test installs systemd)");
    let said = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    said.lines()
        .filter(|l| !l.contains("sysinit.target"))
        .map(str::to_string)
        .collect()
}

/// A CA and a certificate it signed for 127.0.0.1, made with OpenSSL in
/// `dir`: (ca, certificate, key) as PEM files.
pub fn openssl_certificates(dir: &std::path::Path) -> (String, String, String) {
    let path = |name: &str| dir.join(name).display().to_string();
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &path("ca.key"),
        "-out",
        &path("ca.pem"),
        "-days",
        "2",
        "-subj",
        "/CN=Test Acquirer CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &path("host.key"),
        "-out",
        &path("host.csr"),
        "-subj",
        "/CN=acquirer host",
    ]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        &path("host.csr"),
        "-CA",
        &path("ca.pem"),
        "-CAkey",
        &path("ca.key"),
        "-CAcreateserial",
        "-out",
        &path("host.pem"),
        "-days",
        "2",
        "-extfile",
        &path("ext.cnf"),
    ]);
    (path("ca.pem"), path("host.pem"), path("host.key"))
}
