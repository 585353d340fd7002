//! A real headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`, which `scripts/test` installs), sized like a phone,
//! for the owner's page. Screenshots go to `target/screenshots/` for a
//! person to look at after a run.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::free_port;

pub const PHONE: (u32, u32) = (360, 780);

pub struct Browser {
    driver: Child,
    /// chromedriver's loopback port.
    driver_port: u16,
    pub client: Client,
    _profile: tempfile::TempDir,
}

fn find(names: &[&str]) -> PathBuf {
    names
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("none of {names:?} is installed: scripts/test installs chromium and chromium-driver")
        })
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a phone-sized window.
    pub async fn start() -> Browser {
        Browser::start_with(&[]).await
    }

    /// A phone set to dark mode (`prefers-color-scheme: dark`).
    pub async fn start_dark() -> Browser {
        Browser::start_with(&["--force-dark-mode"]).await
    }

    async fn start_with(extra: &[&str]) -> Browser {
        let driver_bin = find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]);
        let chromium = find(&["/usr/bin/chromium", "/usr/bin/chromium-browser"]);
        let port = free_port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("profile dir");
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--hide-scrollbars",
            "--lang=en-US",
        ]
        .iter()
        .chain(extra)
        .map(|a| a.to_string())
        .collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.push(format!("--window-size={},{}", PHONE.0, PHONE.1));
        let caps = json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": args,
                "prefs": {"intl.accept_languages": "en-US"},
                // The page's viewport exactly, whatever the window's frame takes.
                "mobileEmulation": {"deviceMetrics": {"width": PHONE.0, "height": PHONE.1, "pixelRatio": 1.0}}
            }
        });
        let caps: serde_json::Map<String, Value> = caps.as_object().cloned().unwrap_or_default();
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if started.elapsed() > Duration::from_secs(20) => panic!("chromedriver: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Browser {
            driver,
            driver_port: port,
            client,
            _profile: profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// The text of the first element matching `css` ("" when there is none).
    pub async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Waits until `css`'s text contains `needle`; the text then.
    pub async fn wait_text(&self, css: &str, needle: &str, limit: Duration) -> String {
        let started = Instant::now();
        loop {
            let text = self.text(css).await;
            if text.contains(needle) {
                return text;
            }
            if started.elapsed() > limit {
                panic!("{css} never showed {needle:?} within {limit:?}; it shows:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let e = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|_| panic!("no {css}"));
        e.clear().await.expect("clear");
        e.send_keys(value).await.expect("type");
    }

    /// Clicks the first element matching `css`; a live page may redraw it
    /// between finding and clicking, so a stale element is looked up again.
    pub async fn click(&self, css: &str) {
        let mut tries = 0;
        loop {
            let found = self.client.find(Locator::Css(css)).await;
            let e = found.unwrap_or_else(|_| panic!("no {css}"));
            match e.click().await {
                Ok(()) => return,
                Err(err) if tries < 5 && err.to_string().contains("stale") => tries += 1,
                Err(err) => panic!("click {css}: {err}"),
            }
        }
    }

    /// Runs `script` in the page (a returned promise is awaited).
    pub async fn run(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.expect("script")
    }

    /// axe-core's findings of serious or critical impact on the page as it
    /// shows now (hidden parts are not judged), one line each: the rule, its
    /// impact and the elements it found.
    pub async fn accessibility_violations(&self) -> Vec<String> {
        let engine = concat!(env!("CARGO_MANIFEST_DIR"), "/js/node_modules/axe-core/axe.min.js");
        let source = std::fs::read_to_string(engine)
            .unwrap_or_else(|e| panic!("{engine}: {e}; scripts/test installs axe-core (npm ci in tests/js)"));
        if self.run("return typeof window.axe").await != json!("object") {
            self.run(&format!("{source}\nreturn true")).await;
        }
        let found = self
            .run(
                "return axe.run(document, {resultTypes: ['violations']}).then((r) => r.violations \
                   .filter((v) => v.impact === 'serious' || v.impact === 'critical') \
                   .map((v) => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`))",
            )
            .await;
        serde_json::from_value(found).unwrap_or_default()
    }

    /// Runs a DevTools protocol command in the browser (chromedriver's
    /// `goog/cdp/execute`), for what WebDriver cannot do: slow the CPU or
    /// the network, empty the cache.
    pub async fn devtools(&self, command: &str, params: Value) -> Value {
        let session = self
            .client
            .session_id()
            .await
            .ok()
            .flatten()
            .expect("a WebDriver session");
        let url = format!(
            "http://127.0.0.1:{}/session/{session}/goog/cdp/execute",
            self.driver_port
        );
        let body = json!({ "cmd": command, "params": params });
        tokio::task::block_in_place(|| {
            let answer = ureq::post(&url)
                .send_json(body)
                .unwrap_or_else(|e| panic!("{command}: {e}"));
            answer.into_json().unwrap_or_else(|e| panic!("{command}: {e}"))
        })
    }

    /// Saves the window as `target/screenshots/{name}.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).expect("screenshots dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// `target/screenshots` of this workspace.
pub fn screenshots_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.ancestors()
        .find(|p| p.ends_with("target"))
        .map(|t| t.join("screenshots"))
        .unwrap_or_else(|| PathBuf::from("target/screenshots"))
}
