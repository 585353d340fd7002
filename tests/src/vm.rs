//! A qemu machine running a hub: its serial console in a file, its web and
//! MQTT ports forwarded to loopback, and nothing else of the network (user
//! networking with `restrict=on`).

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::procs::Guard;
use crate::web::status_json;

pub struct Vm {
    qemu: Mutex<Guard>,
    console: PathBuf,
    /// The loopback ports of the hub's web page and broker.
    pub http: u16,
    pub mqtt: u16,
}

/// The `-netdev` option: the guest reaches nothing but `more` (guestfwd
/// rules); the host reaches the guest's web page and broker on
/// `127.0.0.1:http` and `:mqtt`.
pub fn user_net(http: (u16, u16), mqtt: (u16, u16), more: &str) -> String {
    format!(
        "user,id=net,restrict=on,hostfwd=tcp:127.0.0.1:{}-:{},hostfwd=tcp:127.0.0.1:{}-:{}{more}",
        http.0, http.1, mqtt.0, mqtt.1
    )
}

impl Vm {
    /// Starts `qemu` (all but its serial port, which goes to `console`).
    pub fn start(mut qemu: Command, console: PathBuf, http: u16, mqtt: u16) -> Vm {
        let child = qemu
            .args(["-serial", &format!("file:{}", console.display())])
            .args(["-display", "none", "-monitor", "none"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("qemu (scripts/test-image and scripts/power-cut install it)");
        Vm {
            qemu: Mutex::new(Guard(child)),
            console,
            http,
            mqtt,
        }
    }

    /// Everything the console said, carriage returns dropped.
    pub fn console(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.console) {
            let mut bytes = Vec::new();
            let _ = f.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).replace('\r', "");
        }
        text
    }

    /// Polls `check` until it gives a value; fails with the console's end
    /// if `limit` passes or the machine stops first.
    pub fn until<T>(&self, what: &str, limit: Duration, mut check: impl FnMut(&Vm) -> Option<T>) -> T {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(value) = check(self) {
                return value;
            }
            let stopped = self.qemu.lock().unwrap().0.try_wait().ok().flatten();
            if stopped.is_some() || Instant::now() > deadline {
                let why = stopped.map_or(format!("not within {limit:?}"), |s| format!("qemu stopped: {s}"));
                panic!("{what}: {why}; the console's end:\n{}", tail(&self.console()));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The console once `needle` is on it, without colour codes.
    pub fn wait_console(&self, needle: &str, limit: Duration) -> String {
        self.until(&format!("{needle:?} on the console"), limit, |vm| {
            let text = plain(&vm.console());
            text.contains(needle).then_some(text)
        })
    }

    /// GET `path` on the hub's page: the status and the JSON answer.
    pub fn get(&self, path: &str) -> (u16, Value) {
        status_json(ureq::get(&format!("http://127.0.0.1:{}{path}", self.http)).call())
    }

    /// Pulls the plug: qemu is killed, nothing in the guest runs on.
    pub fn kill(self) {
        drop(self);
    }
}

/// `text` without ANSI colour codes (systemd colours its status lines).
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The last 60 lines of `text`.
pub fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}
