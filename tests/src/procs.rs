//! Handles on real processes: the hub, terminals, mosquitto. Each is killed
//! when dropped; logs go to files the tests read.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::web::{status_json, WebClient, OWNER_PASSWORD};
use crate::{bin, free_port, wait_for};

fn log_file(path: &Path) -> File {
    File::options()
        .create(true)
        .append(true)
        .open(path)
        .expect("open log file")
}

fn terminate(child: &mut Option<Child>, signal: &str) {
    if let Some(mut c) = child.take() {
        if signal == "KILL" {
            let _ = c.kill();
        } else {
            let _ = Command::new("kill")
                .args([&format!("-{signal}"), &c.id().to_string()])
                .status();
        }
        let _ = c.wait();
    }
}

fn port_open(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Any child process, killed when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `tallybox serve` in its own data directory.
pub struct Hub {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub http: u16,
    /// The broker terminals use: the embedded one, or the external one given.
    pub mqtt: u16,
    pub external_broker: bool,
    args: Vec<String>,
    /// More environment for the next (re)start, e.g. a preloaded fake clock.
    pub env: Vec<(String, String)>,
    /// What to run instead of `tallybox` itself (e.g. the launcher and its
    /// arguments), for the next (re)start.
    pub program: Option<Vec<String>>,
    /// The owner's session, signed in on first use and again after a restart.
    owner: std::sync::Mutex<Option<WebClient>>,
}

pub const STORE: &str = "shop";

/// `program` (a launcher and its arguments) when given, else the built `name`.
fn program_or(program: &Option<Vec<String>>, name: &str) -> Command {
    match program.as_deref() {
        Some([first, rest @ ..]) => {
            let mut c = Command::new(first);
            c.args(rest);
            c
        }
        _ => Command::new(bin(name)),
    }
}

impl Hub {
    /// A hub with its embedded broker and no own checkout.
    pub fn start() -> Hub {
        Hub::start_with(None, &[])
    }

    /// `external`: the port of a broker already running; `extra`: more flags.
    ///
    /// These hubs let unpaired terminals sell (`pairing_required = false`):
    /// most tests speak the protocol in the clear, as a test client can. A
    /// shop's hub requires pairing: [`Hub::start_as_shipped`].
    pub fn start_with(external: Option<u16>, extra: &[&str]) -> Hub {
        let mut flags = vec!["--owner-password", OWNER_PASSWORD];
        flags.extend_from_slice(extra);
        Hub::start_full(external, &flags, false)
    }

    /// A hub whose configuration file has `settings` (TOML lines) too.
    pub fn start_configured(settings: &str) -> Hub {
        let mut hub = Hub::prepare_configured(settings);
        hub.spawn();
        hub
    }

    /// A hub not yet started whose configuration file has `settings` too.
    fn prepare_configured(settings: &str) -> Hub {
        let hub = Hub::prepare(None, &["--owner-password", OWNER_PASSWORD], false);
        hub.add_settings(settings);
        hub
    }

    /// Adds `settings` to the end of the hub's configuration file (a table
    /// last); the hub reads them at its next start.
    pub fn add_settings(&self, settings: &str) {
        let config = self.dir.path().join("tallybox.toml");
        let mut text = std::fs::read_to_string(&config).expect("read config");
        text.push_str(settings);
        std::fs::write(&config, text).expect("write config");
    }

    /// A hub with the settings a shop gets (only paired terminals sell).
    pub fn start_as_shipped() -> Hub {
        Hub::start_full(None, &["--owner-password", OWNER_PASSWORD], true)
    }

    /// [`Hub::start_as_shipped`] whose configuration file has `settings` too.
    pub fn start_as_shipped_configured(settings: &str) -> Hub {
        let mut hub = Hub::prepare(None, &["--owner-password", OWNER_PASSWORD], true);
        hub.add_settings(settings);
        hub.spawn();
        hub
    }

    /// A hub with no owner password yet (see [`Hub::setup_code`]).
    pub fn start_fresh() -> Hub {
        Hub::start_full(None, &[], false)
    }

    /// Like [`Hub::start_fresh`], with more flags.
    pub fn start_fresh_with(extra: &[&str]) -> Hub {
        Hub::start_full(None, extra, false)
    }

    /// The one-time setup code the hub logged at start.
    pub fn setup_code(&self) -> String {
        let log = self.log();
        let at = log.rfind("setup_code=").expect("the hub logged a setup code") + "setup_code=".len();
        log[at..].chars().take(9).collect()
    }

    /// A hub started through `program` (the launcher and its arguments, put
    /// before `serve …`) with more environment.
    pub fn start_through(program: Vec<String>, env: Vec<(String, String)>, extra: &[&str]) -> Hub {
        let mut flags = vec!["--owner-password", OWNER_PASSWORD];
        flags.extend_from_slice(extra);
        let mut hub = Hub::prepare(None, &flags, false);
        hub.program = Some(program);
        hub.env = env;
        hub.spawn();
        hub
    }

    /// A hub that joined a chain with head office's one-time `code`
    /// (`tallybox chain join`) before its first start; its settings file
    /// has `settings` (TOML lines) too.
    pub fn start_in_chain(code: &str, settings: &str) -> Hub {
        let mut hub = Hub::prepare_configured(settings);
        hub.join_chain(code);
        hub.spawn();
        hub
    }

    /// [`Hub::start_through`] for a hub that joined a chain with `code` first.
    pub fn start_through_in_chain(
        code: &str,
        program: Vec<String>,
        env: Vec<(String, String)>,
        extra: &[&str],
    ) -> Hub {
        let mut flags = vec!["--owner-password", OWNER_PASSWORD];
        flags.extend_from_slice(extra);
        let mut hub = Hub::prepare(None, &flags, false);
        hub.program = Some(program);
        hub.env = env;
        hub.join_chain(code);
        hub.spawn();
        hub
    }

    fn join_chain(&self, code: &str) {
        let data = self.data_dir();
        std::fs::create_dir_all(&data).expect("data dir");
        let mut join = Command::new(bin("tallybox"));
        join.args(["chain", "join", code, "--data-dir"]).arg(&data);
        crate::chain::run_ok(join, "tallybox chain join");
    }

    fn start_full(external: Option<u16>, extra: &[&str], pairing_required: bool) -> Hub {
        let mut hub = Hub::prepare(external, extra, pairing_required);
        hub.spawn();
        hub
    }

    fn prepare(external: Option<u16>, extra: &[&str], pairing_required: bool) -> Hub {
        let dir = tempfile::tempdir().expect("temp dir");
        let http = free_port();
        let mqtt = external.unwrap_or_else(|| loop {
            let p = free_port();
            if p != http {
                break p;
            }
        });
        let config = dir.path().join("tallybox.toml");
        std::fs::write(
            &config,
            format!(
                "store_name = \"Corner Shop\"\nacquirer_timeout_ms = 4000\nreversal_retry_secs = 2\nsupervisor_pin = \"8888\"\n{}",
                if pairing_required { "" } else { "pairing_required = false\n" }
            ),
        )
        .expect("write config");
        let mut args: Vec<String> = vec![
            "serve".into(),
            "--config".into(),
            config.display().to_string(),
            "--http".into(),
            format!("127.0.0.1:{http}"),
            "--no-mdns".into(),
        ];
        match external {
            // A test may give the broker URL itself (with a user and password).
            Some(_) if extra.contains(&"--broker") => {}
            Some(port) => args.extend(["--broker".into(), format!("mqtt://127.0.0.1:{port}")]),
            None => args.extend(["--mqtt".into(), format!("127.0.0.1:{mqtt}")]),
        }
        if !extra.contains(&"--devices") {
            args.extend(["--devices".into(), "none".into()]);
        }
        // A test may put the data elsewhere (a small or failing disk).
        if !extra.contains(&"--data-dir") {
            args.extend(["--data-dir".into(), dir.path().join("data").display().to_string()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        Hub {
            child: None,
            dir,
            http,
            mqtt,
            external_broker: external.is_some(),
            args,
            env: Vec::new(),
            program: None,
            owner: std::sync::Mutex::new(None),
        }
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("hub.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts a killed or stopped hub whose database is damaged: it serves
    /// its recovery page (`/healthz` answers 503, status `recovery`).
    pub fn start_in_recovery(&mut self) {
        assert!(self.child.is_none(), "the hub is still running");
        self.launch();
        let up = wait_for(Duration::from_secs(20), || {
            let (status, body) = self.get_public("/healthz");
            (status == 503 && body["status"] == "recovery").then_some(())
        });
        assert!(up.is_some(), "no recovery page; log:\n{}", self.log());
    }

    /// Whether the hub's process has ended (reaped if so).
    pub fn exited(&mut self) -> bool {
        let done = self
            .child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
        if done {
            self.child = None;
        }
        done
    }

    fn spawn(&mut self) {
        self.launch();
        let ready = wait_for(Duration::from_secs(20), || {
            let (status, body) = self.get_public("/healthz");
            (status == 200 && body["broker_connected"] == true).then_some(())
        });
        assert!(ready.is_some(), "hub did not become ready; log:\n{}", self.log());
    }

    fn launch(&mut self) {
        let log = log_file(&self.log_path());
        let mut command = program_or(&self.program, "tallybox");
        let child = command
            .args(&self.args)
            .env("RUST_LOG", "info,rumqttd=warn,rumqttc=warn")
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tallybox serve");
        self.child = Some(child);
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the hub and starts it again on the same data; the time from
    /// `exec` to the first healthy `/healthz`, polled every 2 ms.
    pub fn cold_start(&mut self) -> Duration {
        self.kill();
        let started = std::time::Instant::now();
        let child = Command::new(bin("tallybox"))
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log_file(&self.log_path()))
            .spawn()
            .expect("start tallybox serve");
        self.child = Some(child);
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(1)).build();
        let url = format!("http://127.0.0.1:{}/healthz", self.http);
        loop {
            if agent.get(&url).call().is_ok() {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "hub did not start; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// `kill -9`: no chance to clean up.
    pub fn kill(&mut self) {
        terminate(&mut self.child, "KILL");
    }

    pub fn stop(&mut self) {
        terminate(&mut self.child, "TERM");
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Starts a hub that was killed (after a test did something to its
    /// data, as a power cut or a worn SD card would).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the hub is still running");
        self.spawn();
    }

    /// GET without signing in: status and JSON body (Null when not JSON).
    pub fn get_public(&self, path: &str) -> (u16, Value) {
        let url = format!("http://127.0.0.1:{}{path}", self.http);
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(5)).build();
        status_json(agent.get(&url).call())
    }

    /// The owner's signed-in API client (a restarted hub forgets sessions:
    /// this signs in again).
    pub fn web(&self) -> WebClient {
        let mut owner = self.owner.lock().unwrap_or_else(|e| e.into_inner());
        let alive = owner.as_ref().is_some_and(|c| c.get("/api/v1/session").0 == 200);
        if !alive {
            *owner = Some(WebClient::owner(self.http));
        }
        owner.clone().expect("signed in")
    }

    /// GET as the owner: status and JSON body (Null when not JSON).
    pub fn get(&self, path: &str) -> (u16, Value) {
        self.web().get(path)
    }

    pub fn transactions(&self, query: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/api/v1/transactions?{query}"));
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().cloned().unwrap_or_default()
    }

    /// The transaction with `request_id`, read through the API.
    pub fn by_request(&self, request_id: &str) -> Option<Value> {
        self.transactions("limit=200")
            .into_iter()
            .find(|t| t["request_id"] == request_id)
    }
}

impl Drop for Hub {
    /// A failing test shows the end of the hub's log with its panic.
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            eprintln!(
                "the hub's log, its last {} lines:\n{}",
                tail.len(),
                tail.join("\n")
            );
        }
    }
}

/// The acquirer terminal ids the simulated acquirer has master keys for:
/// the checkouts the tests start (`T0`–`T9`), the load's (`B0`–`B19`) and
/// an id an acquirer assigns (`10000042`).
pub const SIM_TERMINALS: [&str; 31] = [
    "T0", "T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "B0", "B1", "B2", "B3", "B4", "B5", "B6",
    "B7", "B8", "B9", "B10", "B11", "B12", "B13", "B14", "B15", "B16", "B17", "B18", "B19", "10000042",
];

/// `tallybox acquirer-sim`: the simulated acquirer as an ISO 8583 host, with
/// its message log.
pub struct AcquirerSim {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// More flags (`--tls-cert …`).
    extra: Vec<String>,
}

impl AcquirerSim {
    pub fn start() -> AcquirerSim {
        AcquirerSim::start_with(&[])
    }

    /// One started with more flags.
    pub fn start_with(extra: &[&str]) -> AcquirerSim {
        let mut a = AcquirerSim {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        a.spawn();
        a
    }

    fn spawn(&mut self) {
        let log = log_file(&self.dir.path().join("acquirer.log"));
        let child = Command::new(bin("tallybox"))
            .args([
                "acquirer-sim",
                "--listen",
                &format!("127.0.0.1:{}", self.port),
                "--log",
            ])
            .arg(self.messages_path())
            .arg("--master-keys")
            .arg(self.master_keys_path())
            .arg("--terminals")
            .arg(SIM_TERMINALS.join(","))
            .args(&self.extra)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tallybox acquirer-sim");
        self.child = Some(child);
        let up = wait_for(Duration::from_secs(10), || port_open(self.port).then_some(()));
        assert!(up.is_some(), "acquirer-sim did not listen");
    }

    /// Every message in and out, one `in|out HEX` line each.
    pub fn messages_path(&self) -> PathBuf {
        self.dir.path().join("messages.log")
    }

    pub fn url(&self) -> String {
        format!("iso8583://127.0.0.1:{}", self.port)
    }

    /// The terminal master keys it made (for [`SIM_TERMINALS`]), which the
    /// hub is given too.
    pub fn master_keys_path(&self) -> PathBuf {
        self.dir.path().join("master.keys")
    }

    /// The hub's flags for a link to it through `port` (its own, or a
    /// proxy's), with the master keys.
    pub fn hub_flags(&self, port: u16) -> Vec<String> {
        vec![
            "--acquirer".into(),
            format!("iso8583://127.0.0.1:{port}"),
            "--acquirer-master-keys".into(),
            self.master_keys_path().display().to_string(),
        ]
    }

    /// The settings (TOML lines) for a link to it, with its master keys.
    pub fn settings(&self) -> String {
        format!(
            "acquirer = \"{}\"\nacquirer_master_keys = \"{}\"\n",
            self.url(),
            self.master_keys_path().display()
        )
    }

    pub fn kill(&mut self) {
        terminate(&mut self.child, "KILL");
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for AcquirerSim {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `tallybox-provider-sim`: Alipay's gateway and WeChat Pay's API simulated
/// over TLS with a test CA, its keys and the merchant's in its folder, and
/// its call log.
pub struct ProviderSim {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    /// Its `gateway.json`: the addresses and the merchant's ids.
    info: Value,
}

impl ProviderSim {
    /// A buyer confirming a `…0001` code takes `confirm_after` seconds.
    pub fn start(confirm_after: u64) -> ProviderSim {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = log_file(&dir.path().join("provider-sim.log"));
        let child = Command::new(bin("tallybox-provider-sim"))
            .arg("--dir")
            .arg(dir.path())
            .arg("--log")
            .arg(dir.path().join("calls.jsonl"))
            .args(["--confirm-after", &confirm_after.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tallybox-provider-sim");
        let info = dir.path().join("gateway.json");
        let up = wait_for(Duration::from_secs(30), || {
            let text = std::fs::read_to_string(&info).ok()?;
            serde_json::from_str::<Value>(&text).ok()
        });
        let info = up.expect("the provider sim did not start");
        ProviderSim {
            child: Some(child),
            info,
            dir,
        }
    }

    /// The hub's settings (TOML) for taking Alipay and WeChat Pay codes
    /// through it.
    pub fn settings(&self) -> String {
        let file = |name: &str| self.dir.path().join(name).display().to_string();
        let info = |key: &str| self.info[key].as_str().unwrap_or_default().to_string();
        let alipay = format!(
            "[alipay]\napp_id = \"{}\"\ngateway = \"{}\"\nprivate_key = \"{}\"\nalipay_public_key = \"{}\"\nca = \"{}\"\n",
            info("app_id"),
            info("gateway"),
            file("app_private_key.txt"),
            file("alipay_public_key.txt"),
            file("ca.pem"),
        );
        let wechat = format!(
            "[wechat_pay]\nappid = \"{}\"\nmch_id = \"{}\"\ngateway = \"{}\"\napi_key = \"{}\"\nclient_cert = \"{}\"\nclient_key = \"{}\"\nca = \"{}\"\n",
            info("wechat_appid"),
            info("wechat_mch_id"),
            info("wechat"),
            file("wechat_api_key.txt"),
            file("apiclient_cert.pem"),
            file("apiclient_key.pem"),
            file("ca.pem"),
        );
        format!("code_poll_ms = 500\n{alipay}{wechat}")
    }

    /// A payment taken with the shop's Alipay account by something other
    /// than the hub (another till, an app given the shop's key): signed
    /// with the merchant's key, straight to the gateway.
    pub fn paid_elsewhere(&self, out_trade_no: &str, code: &str, minor: u64) {
        use tallybox::payments::CodeProvider;
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name)).expect("the sim's keys");
        let alipay = tallybox::payments::alipay::Alipay::new(
            &self.info("gateway"),
            &self.info("app_id"),
            &read("app_private_key.txt"),
            &read("alipay_public_key.txt"),
            &self.dir.path().join("ca.pem"),
            Duration::from_secs(10),
        )
        .expect("the merchant's Alipay client");
        let order = tallybox::payments::Order {
            out_trade_no: out_trade_no.into(),
            code: tallybox_core::secret::Secret::new(code.into()),
            amount: tallybox_core::money::Amount::from_minor(minor).expect("an amount"),
            subject: "another till".into(),
            terminal: "X9".into(),
        };
        let paid = std::thread::scope(|s| {
            s.spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                runtime.block_on(alipay.pay(&order))
            })
            .join()
            .expect("the payment's thread")
        });
        assert!(
            matches!(paid, Ok(tallybox::payments::Answer::Paid { .. })),
            "{paid:?}"
        );
    }

    /// The providers' day (Beijing time) `from_today` days from today, as
    /// `YYYY-MM-DD`: the days of their bills.
    pub fn day(from_today: i64) -> String {
        (chrono::Utc::now().with_timezone(&tallybox::payments::beijing())
            + chrono::Duration::days(from_today))
        .format("%Y-%m-%d")
        .to_string()
    }

    /// A value of its `gateway.json` (`gateway`, `app_id`, `wechat`, …).
    pub fn info(&self, key: &str) -> String {
        self.info[key].as_str().unwrap_or_default().to_string()
    }

    /// WeChat Pay's calls so far, as `(path, request fields)`.
    pub fn wechat_calls(&self) -> Vec<(String, std::collections::BTreeMap<String, String>)> {
        let text = std::fs::read_to_string(self.calls_path()).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|call| call["path"] != "/gateway.do")
            .filter_map(|call| {
                let fields = tallybox::payments::wechat::from_xml(call["form"].as_str()?)?;
                Some((call["path"].as_str()?.to_string(), fields))
            })
            .collect()
    }

    /// Every call and answer, one JSON line each.
    pub fn calls_path(&self) -> PathBuf {
        self.dir.path().join("calls.jsonl")
    }

    /// The calls made so far, as `(method, biz_content)`.
    pub fn calls(&self) -> Vec<(String, Value)> {
        let text = std::fs::read_to_string(self.calls_path()).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|call| call["path"] == "/gateway.do")
            .filter_map(|call| {
                let form = call["form"].as_str()?.to_string();
                let pairs: Vec<(String, String)> = form
                    .split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), percent_decode(v)))
                    .collect();
                let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                Some((get("method")?, serde_json::from_str(&get("biz_content")?).ok()?))
            })
            .collect()
    }

    pub fn kill(&mut self) {
        terminate(&mut self.child, "KILL");
    }
}

impl Drop for ProviderSim {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A form value, URL-decoded (`+` a space, `%XX` a byte).
fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

/// One `tallybox-terminal` process with simulated devices.
pub struct Terminal {
    child: Option<Child>,
    pub id: String,
    /// Extra command-line flags.
    pub extra: Vec<String>,
    pub control: u16,
    broker: u16,
    /// The broker user and password it connects with, if the broker asks.
    credentials: Option<(String, String)>,
    /// What to run instead of `tallybox-terminal` itself (the launcher and
    /// its arguments), and more environment.
    program: Option<Vec<String>>,
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl Terminal {
    pub fn start(id: &str, broker: u16) -> Terminal {
        Terminal::start_with(id, broker, &[])
    }

    pub fn start_with(id: &str, broker: u16, extra: &[&str]) -> Terminal {
        Terminal::start_full(id, broker, extra, None)
    }

    /// A terminal that logs in to the broker as `user` with `password`.
    pub fn start_as(id: &str, broker: u16, user: &str, password: &str) -> Terminal {
        Terminal::start_full(id, broker, &[], Some((user.into(), password.into())))
    }

    fn start_full(id: &str, broker: u16, extra: &[&str], credentials: Option<(String, String)>) -> Terminal {
        let mut t = Terminal::prepare(id, broker, extra, credentials);
        t.spawn();
        t
    }

    /// A terminal started through `program` (the launcher and its
    /// arguments, put before the terminal's flags) with more environment.
    pub fn start_through(
        id: &str,
        broker: u16,
        program: Vec<String>,
        env: Vec<(String, String)>,
        extra: &[&str],
    ) -> Terminal {
        let mut t = Terminal::prepare(id, broker, extra, None);
        t.program = Some(program);
        t.env = env;
        t.spawn();
        t
    }

    fn prepare(id: &str, broker: u16, extra: &[&str], credentials: Option<(String, String)>) -> Terminal {
        Terminal {
            child: None,
            id: id.to_string(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            control: free_port(),
            broker,
            credentials,
            program: None,
            env: Vec::new(),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Whether its process has ended by itself, and how.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("terminal.log")).unwrap_or_default()
    }

    /// Where it keeps its journal, print queue and key.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn spawn(&mut self) {
        let log = log_file(&self.dir.path().join("terminal.log"));
        let mut command = program_or(&self.program, "tallybox-terminal");
        let child = command
            .args([
                "--hub",
                &match &self.credentials {
                    Some((user, password)) => format!("mqtt://{user}:{password}@127.0.0.1:{}", self.broker),
                    None => format!("mqtt://127.0.0.1:{}", self.broker),
                },
                "--id",
                &self.id,
                "--store",
                STORE,
                "--control",
                &format!("127.0.0.1:{}", self.control),
                "--state-dir",
                &self.dir.path().join("state").display().to_string(),
                "--devices",
                "sim",
                "--device-config",
                &self.dir.path().join("no-devices.toml").display().to_string(),
            ])
            .args(&self.extra)
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tallybox-terminal");
        self.child = Some(child);
        let up = wait_for(Duration::from_secs(10), || port_open(self.control).then_some(()));
        assert!(
            up.is_some(),
            "terminal {} control API did not open; log:\n{}",
            self.id,
            self.log()
        );
    }

    pub fn kill(&mut self) {
        terminate(&mut self.child, "KILL");
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Restarts on the same state directory, as after a power cut.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn call(&self, request: Value) -> Value {
        let answer = self
            .try_call(&request)
            .unwrap_or_else(|e| panic!("control API: {e}"));
        assert_eq!(answer["ok"], true, "control refused {request}: {answer}");
        answer
    }

    /// One control request; an error (instead of a panic) while the terminal
    /// is down, for tests that kill it.
    pub fn try_call(&self, request: &Value) -> Result<Value, String> {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.control)).map_err(|e| format!("connect: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        writeln!(stream, "{request}").map_err(|e| format!("write: {e}"))?;
        let mut line = String::new();
        BufReader::new(&stream)
            .read_line(&mut line)
            .map_err(|e| format!("read: {e}"))?;
        serde_json::from_str(&line).map_err(|e| format!("not JSON ({e}): {line:?}"))
    }

    pub fn keys(&self, keys: &str) {
        self.call(json!({"cmd": "keys", "keys": keys}));
    }

    pub fn card(&self, name: &str) {
        self.call(json!({"cmd": "card", "name": name}));
    }

    /// A payment code, as the checkout's scanner reads it.
    pub fn scan(&self, code: &str) {
        self.call(json!({"cmd": "scan", "code": code}));
    }

    pub fn screen(&self) -> (String, String) {
        let a = self.call(json!({"cmd": "screen"}));
        let lines: Vec<&str> = a["lines"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        (
            lines.join("\n"),
            a["state"].as_str().unwrap_or_default().to_string(),
        )
    }

    /// The slips printed once there are `count` (printing runs on its own
    /// thread, a little after the screen); fails after 10 s.
    pub fn wait_paper(&self, count: usize) -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let paper = self.paper();
            if paper.len() >= count || std::time::Instant::now() > deadline {
                assert_eq!(paper.len(), count, "slips printed: {paper:?}");
                return paper;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn paper(&self) -> Vec<String> {
        let a = self.call(json!({"cmd": "paper"}));
        a["slips"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|slip| {
                slip.as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect()
    }

    /// Waits until the screen shows `needle`; the screen text then.
    pub fn wait_screen(&self, needle: &str, limit: Duration) -> String {
        let found = wait_for(limit, || {
            let (text, _) = self.screen();
            text.contains(needle).then_some(text)
        });
        found.unwrap_or_else(|| {
            panic!(
                "terminal {} never showed {needle:?}; screen:\n{}\nlog:\n{}",
                self.id,
                self.screen().0,
                self.log()
            )
        })
    }

    /// Waits for the idle screen after sign-in.
    pub fn wait_ready(&self) {
        self.wait_screen("Ready", Duration::from_secs(15));
    }

    /// The key its pairing gave (kept in its state directory).
    pub fn pairing_key(&self) -> [u8; 32] {
        tallybox_platform::sealed_files::read_key(&self.state_dir().join("hub.key"))
            .expect("read the key file")
            .expect("paired")
    }

    /// Pairs it with `hub` the way a cashier does, with a code from the
    /// owner's page (menu D 5), and waits until it is back at rest.
    pub fn pair(&self, hub: &Hub) {
        self.pair_through(&hub.web());
    }

    /// [`Terminal::pair`] with the owner's session on any hub's page.
    pub fn pair_through(&self, owner: &WebClient) {
        let (status, opened) = owner.send("POST", "/api/v1/pairing", json!({}));
        assert_eq!(status, 201, "{opened}");
        let code = opened["code"].as_str().expect("a pairing code");
        self.keys(&format!("D5{code}#"));
        self.wait_screen("Messages are sealed", Duration::from_secs(30));
        self.keys("C");
        self.wait_ready();
    }

    /// Keys a sale of `minor` units, presents `card`, and returns the result screen.
    pub fn sale(&self, minor: u64, card: &str) -> String {
        self.keys(&format!("A{minor}#"));
        self.card(card);
        self.wait_screen("Any key", Duration::from_secs(20))
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.kill();
    }
}

/// mosquitto on a loopback port, with Nagle off as Tallybox's docs ask.
pub struct Mosquitto {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

fn mosquitto_path() -> PathBuf {
    [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("mosquitto is not installed: scripts/test installs it (apt-get install mosquitto)")
}

impl Mosquitto {
    pub fn start() -> Mosquitto {
        Mosquitto::start_conf(|_| "allow_anonymous true\n".into())
    }

    /// A broker that lets in only `users` (name, password), each limited by
    /// the ACL file Tallybox ships (`hub/broker/mosquitto-acl.conf`).
    pub fn start_locked(users: &[(&str, &str)]) -> Mosquitto {
        Mosquitto::start_conf(|dir| {
            let passwd = dir.join("passwd");
            for (n, (user, password)) in users.iter().enumerate() {
                let mut cmd = Command::new("mosquitto_passwd");
                if n == 0 {
                    cmd.arg("-c");
                }
                let ok = cmd
                    .arg("-b")
                    .arg(&passwd)
                    .args([user, password])
                    .status()
                    .expect("run mosquitto_passwd")
                    .success();
                assert!(ok, "mosquitto_passwd failed");
            }
            let acl = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hub/broker/mosquitto-acl.conf");
            format!(
                "allow_anonymous false\npassword_file {}\nacl_file {}\n",
                passwd.display(),
                acl.display()
            )
        })
    }

    fn start_conf(access: impl FnOnce(&Path) -> String) -> Mosquitto {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let config = dir.path().join("mosquitto.conf");
        let access = access(dir.path());
        std::fs::write(
            &config,
            format!("listener {port} 127.0.0.1\n{access}persistence false\nset_tcp_nodelay true\n"),
        )
        .expect("write mosquitto.conf");
        let mut m = Mosquitto {
            child: None,
            port,
            dir,
        };
        m.spawn();
        m
    }

    fn spawn(&mut self) {
        let child = Command::new(mosquitto_path())
            .args([
                "-c",
                &self.dir.path().join("mosquitto.conf").display().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(log_file(&self.dir.path().join("mosquitto.log")))
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let up = wait_for(Duration::from_secs(10), || port_open(self.port).then_some(()));
        assert!(up.is_some(), "mosquitto did not start");
    }

    pub fn restart(&mut self) {
        terminate(&mut self.child, "KILL");
        self.spawn();
    }

    /// Gone until [`Mosquitto::restart`].
    pub fn kill(&mut self) {
        terminate(&mut self.child, "KILL");
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        terminate(&mut self.child, "KILL");
    }
}

/// A small RAM disk, unmounted when dropped (the tests run as root): fills up
/// for real, and can be made read-only.
pub struct Tmpfs(pub tempfile::TempDir);

impl Tmpfs {
    pub fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("temp dir");
        mount_tmpfs(dir.path(), size);
        Tmpfs(dir)
    }

    /// Remounts it read-only (or writable again); fails while a file on it
    /// is open for writing.
    pub fn read_only(&self, ro: bool) {
        let ok = Command::new("mount")
            .args(["-o", if ro { "remount,ro" } else { "remount,rw" }])
            .arg(self.0.path())
            .status()
            .expect("run mount")
            .success();
        assert!(ok, "cannot remount the tmpfs");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

fn mount_tmpfs(at: &Path, size: &str) {
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(at)
        .status()
        .expect("run mount")
        .success();
    assert!(ok, "cannot mount a tmpfs (the tests run as root)");
}

/// A small RAM disk mounted on a folder that exists (a USB stick plugged
/// in where the hub looks for one), unmounted when dropped.
pub struct Plugged(pub PathBuf);

impl Plugged {
    pub fn at(folder: &Path, size: &str) -> Plugged {
        mount_tmpfs(folder, size);
        Plugged(folder.to_path_buf())
    }
}

impl Drop for Plugged {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
