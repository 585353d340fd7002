//! The architecture invariants of `ARCHITECTURE.md` that a machine can
//! check: what each crate may depend on, what the core may do, where the
//! checkout's crate may be used, and that drivers stay drivers.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The crates `package` builds with (normal dependencies, all the way down).
fn dependencies(package: &str) -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .current_dir(root())
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-p",
            package,
        ])
        .output()
        .expect("run cargo tree");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Every `.rs` file below `dir`, with its text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read source dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("read source");
                out.push((path, text));
            }
        }
    }
    out
}

#[test]
fn the_core_depends_on_no_other_tallybox_crate_and_on_no_runtime_database_or_network_crate() {
    let deps = dependencies("tallybox-core");
    for banned in [
        "tallybox",
        "tallybox-platform",
        "tallybox-terminal",
        "tokio",
        "rusqlite",
        "warp",
        "rumqttc",
        "rumqttd",
        "mdns-sd",
        "chrono",
        "tracing",
        "ureq",
        "rppal",
        "evdev",
    ] {
        assert!(
            !deps.iter().any(|d| d == banned),
            "tallybox-core depends on {banned}: {deps:?}"
        );
    }
}

#[test]
fn the_platform_crate_knows_nothing_of_the_checkout_or_the_hub() {
    let deps = dependencies("tallybox-platform");
    for banned in ["tallybox", "tallybox-terminal", "rusqlite", "warp", "rumqttd"] {
        assert!(
            !deps.iter().any(|d| d == banned),
            "tallybox-platform depends on {banned}"
        );
    }
    assert!(dependencies("tallybox-terminal")
        .iter()
        .all(|d| d != "tallybox" && d != "rusqlite"));
}

#[test]
fn the_core_reads_no_file_socket_clock_or_environment() {
    let banned = [
        "std::fs",
        "std::net",
        "std::env",
        "std::process",
        "SystemTime::now",
        "Instant::now",
        "std::thread",
        "println!",
        "eprintln!",
    ];
    for (path, text) in sources(&root().join("terminal-agent/core/src")) {
        // Tests may write what they check.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for word in banned {
            assert!(!code.contains(word), "{} uses {word}", path.display());
        }
    }
}

#[test]
fn only_the_hubs_own_checkout_uses_the_checkout_crate() {
    // hub.rs runs the hub's own checkout; notices.rs feeds it the setup code;
    // main.rs and cmd/ are the binary's (hw-test, demo and serve flags).
    let allowed = ["hub.rs", "notices.rs", "main.rs", "cmd"];
    for (path, text) in sources(&root().join("hub/src")) {
        let rel = path.strip_prefix(root().join("hub/src")).unwrap_or(&path);
        let first = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().to_string());
        if first.as_deref().is_some_and(|f| allowed.contains(&f)) {
            continue;
        }
        assert!(
            !text.contains("tallybox_terminal"),
            "{} uses the checkout crate: what it needs belongs in tallybox-core or tallybox-platform",
            rel.display()
        );
    }
}

#[test]
fn no_log_line_carries_an_exposed_secret_or_a_whole_card_number() {
    // A `Pan`, `Pin` or `Secret` prints nothing in full by construction; this
    // catches the other way to leak one: its `expose()`d value in a log line.
    for dir in [
        "hub/src",
        "terminal-agent/src",
        "terminal-agent/core/src",
        "terminal-agent/platform/src",
    ] {
        for (path, text) in sources(&root().join(dir)) {
            for (n, line) in text.lines().enumerate() {
                let logs = ["tracing::", "info!(", "warn!(", "error!(", "debug!("]
                    .iter()
                    .any(|m| line.contains(m));
                let leaks = line.contains(".expose()") || line.contains(".digits()");
                assert!(
                    !(logs && leaks),
                    "{}:{}: a log line with a secret: {line}",
                    path.display(),
                    n + 1
                );
            }
        }
    }
}

#[test]
fn gpio_goes_through_the_kernels_character_device_not_rppal() {
    // rppal's GPIO maps /dev/gpiomem, which Debian's kernel does not have.
    for (path, text) in sources(&root().join("terminal-agent"))
        .into_iter()
        .chain(sources(&root().join("hub")))
    {
        assert!(
            !text.contains("rppal::gpio"),
            "{} drives GPIO through rppal",
            path.display()
        );
    }
}

#[test]
fn no_driver_knows_the_session_or_the_runtime() {
    let devices = root().join("terminal-agent/src/devices");
    for (path, text) in sources(&devices) {
        if path.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for word in [
            "crate::session",
            "crate::agent",
            "crate::hw",
            "crate::control",
            "tokio::",
        ] {
            assert!(
                !code.contains(word),
                "{} uses {word}: a driver depends on core and embedded-hal only",
                path.display()
            );
        }
    }
}

#[test]
fn response_codes_are_spelled_as_strings_only_in_the_codecs() {
    // `ResponseCode::WRONG_PIN`, `reason::FROZEN`…: a code written as "55" or
    // "XZ" is one a typo can change without the compiler noticing.
    let codecs = ["code.rs", "reason.rs", "iso8583"];
    let codes = [
        "\"00\"", "\"05\"", "\"14\"", "\"41\"", "\"43\"", "\"51\"", "\"54\"", "\"55\"", "\"NC\"", "\"NR\"",
        "\"XZ\"",
    ];
    for dir in ["hub/src", "terminal-agent/src", "terminal-agent/core/src"] {
        for (path, text) in sources(&root().join(dir)) {
            let name = path.to_string_lossy();
            if codecs.iter().any(|c| name.contains(c)) || name.ends_with("tests.rs") {
                continue;
            }
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                assert!(
                    !codes.iter().any(|c| line.contains(c)),
                    "{}: a response code as a string: {line}",
                    path.display()
                );
            }
        }
    }
}
