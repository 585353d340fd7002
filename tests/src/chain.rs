//! A chain's head office for the tests: PostgreSQL from Debian's packages
//! in a temporary directory (its own socket, no TCP port), and
//! `tallybox-hq` instances on one database and one key.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::{bin, free_port, wait_for};

/// The newest PostgreSQL server Debian installed.
fn pg_bin(name: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.exists())
        .collect();
    found.sort_by_key(|p| {
        p.components()
            .nth(4)
            .and_then(|c| c.as_os_str().to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found
        .pop()
        .expect("PostgreSQL is not installed: scripts/test installs it (apt-get install postgresql)")
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// PostgreSQL refuses to run as root: then it runs as Debian's `postgres`.
fn as_server_user(program: PathBuf) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Runs `c` to its end; its output, or a panic that says what it printed.
pub(crate) fn run_ok(mut c: Command, what: &str) -> Output {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A PostgreSQL server of the test's own, stopped when dropped.
pub struct Postgres {
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Postgres {
    pub fn start() -> Postgres {
        let dir = tempfile::tempdir().expect("temp dir");
        let (data, socket) = (dir.path().join("data"), dir.path().join("socket"));
        std::fs::create_dir(&socket).expect("socket dir");
        if is_root() {
            run_ok(
                {
                    let mut c = Command::new("chown");
                    c.args(["-R", "postgres"]).arg(dir.path());
                    c
                },
                "chown the database directory",
            );
        }
        let mut initdb = as_server_user(pg_bin("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale"]);
        run_ok(initdb, "initdb");
        let port = free_port();
        let mut start = as_server_user(pg_bin("pg_ctl"));
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.path().join("postgres.log"))
            .arg("-o")
            .arg(format!(
                "-p {port} -k {} -c listen_addresses=''",
                socket.display()
            ))
            .args(["-w", "start"]);
        run_ok(start, "pg_ctl start");
        let pg = Postgres { dir, port };
        let mut create = Command::new(pg_bin("createdb"));
        create
            .arg("-h")
            .arg(pg.socket())
            .args(["-p", &port.to_string(), "-U", "postgres", "tallybox_hq"]);
        run_ok(create, "createdb");
        pg
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("socket")
    }

    /// The connection string `tallybox-hq --db` takes.
    pub fn url(&self) -> String {
        format!(
            "host={} port={} user=postgres dbname=tallybox_hq",
            self.socket().display(),
            self.port
        )
    }

    /// One value (or rows joined by newlines, fields by `|`) of `sql`.
    pub fn query(&self, sql: &str) -> String {
        let mut c = Command::new(pg_bin("psql"));
        c.arg("-h").arg(self.socket()).args([
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            "-d",
            "tallybox_hq",
            "-At",
            "-c",
            sql,
        ]);
        let out = run_ok(c, "psql");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn number(&self, sql: &str) -> i64 {
        let text = self.query(sql);
        text.parse().unwrap_or_else(|_| panic!("{sql}: {text}"))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let mut stop = as_server_user(pg_bin("pg_ctl"));
        stop.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = stop.status();
    }
}

/// Head office: `tallybox-hq serve` instances sharing one database and key.
pub struct Hq {
    dir: tempfile::TempDir,
    db: String,
    broker: u16,
    /// Running instances: client id, page port, process.
    instances: Vec<(String, u16, Option<Child>)>,
}

pub const HQ_ACCOUNT: (&str, &str) = ("head", "head-office-pw");

impl Hq {
    /// Head office on `pg`, reading the chain's broker on `broker`, with
    /// one instance per client id; an account [`HQ_ACCOUNT`] for every store.
    pub fn start(pg: &Postgres, broker: u16, client_ids: &[&str]) -> Hq {
        let mut hq = Hq {
            dir: tempfile::tempdir().expect("temp dir"),
            db: pg.url(),
            broker,
            instances: Vec::new(),
        };
        let mut account = hq.command(&["account", HQ_ACCOUNT.0]);
        account
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = account.spawn().expect("tallybox-hq account");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(HQ_ACCOUNT.1.as_bytes())
            .expect("password");
        let out = child.wait_with_output().expect("tallybox-hq account");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        for id in client_ids {
            hq.instances.push((id.to_string(), free_port(), None));
            hq.launch(hq.instances.len() - 1);
        }
        hq
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("tallybox-hq"));
        c.args(["--db", &self.db, "--key"])
            .arg(self.key())
            .args(args)
            .env("RUST_LOG", "info");
        c
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("hq.key")
    }

    pub fn log_path(&self, n: usize) -> PathBuf {
        self.dir.path().join(format!("hq-{}.log", self.instances[n].0))
    }

    pub fn log(&self, n: usize) -> String {
        std::fs::read_to_string(self.log_path(n)).unwrap_or_default()
    }

    fn launch(&mut self, n: usize) {
        let (id, port) = (self.instances[n].0.clone(), self.instances[n].1);
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.log_path(n))
            .expect("log file");
        let child = self
            .command(&[
                "serve",
                "--broker",
                &format!("mqtt://127.0.0.1:{}", self.broker),
                "--client-id",
                &id,
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start tallybox-hq");
        self.instances[n].2 = Some(child);
        let up = wait_for(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ())
        });
        assert!(up.is_some(), "tallybox-hq did not serve; log:\n{}", self.log(n));
    }

    /// SIGKILLs instance `n`.
    pub fn kill(&mut self, n: usize) {
        if let Some(mut c) = self.instances[n].2.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self, n: usize) {
        self.kill(n);
        self.launch(n);
    }

    /// A one-time code for `store`, its hubs reaching the broker on `broker`.
    pub fn enrol(&self, store: &str, broker: u16) -> String {
        let enrol = self.command(&["enrol", store, "--broker", &format!("mqtt://127.0.0.1:{broker}")]);
        let out = run_ok(enrol, "tallybox-hq enrol");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Publishes document `kind` with `toml` to every store (`tallybox-hq publish`).
    pub fn publish(&self, kind: &str, toml: &str) {
        let file = self.dir.path().join(format!("{kind}.toml"));
        std::fs::write(&file, toml).expect("write the document");
        let publish = self.command(&[
            "publish",
            kind,
            &file.display().to_string(),
            "--broker",
            &format!("mqtt://127.0.0.1:{}", self.broker),
        ]);
        run_ok(publish, "tallybox-hq publish");
    }

    /// Offers update `bundle` to every store (`tallybox-hq publish-update`),
    /// served by instance 0's page; checked against the keys in `keys`.
    pub fn publish_update(&self, bundle: &std::path::Path, keys: &std::path::Path) -> std::process::Output {
        let url = self.url(0);
        let mut publish = self.command(&[
            "publish-update",
            &bundle.display().to_string(),
            "--url",
            &url,
            "--broker",
            &format!("mqtt://127.0.0.1:{}", self.broker),
            "--keys",
        ]);
        publish.arg(keys);
        publish.output().expect("tallybox-hq publish-update")
    }

    /// Waits until `stores` stores answered version `version` of head
    /// office's document `kind` (taken or refused): their answers as the
    /// page's API lists them.
    pub fn answers(&self, cookie: &str, kind: &str, stores: usize, version: i64) -> Vec<Value> {
        let answered = wait_for(Duration::from_secs(30), || {
            let (_, docs) = self.get(0, "/api/documents", cookie);
            let document = docs["documents"]
                .as_array()
                .and_then(|d| d.iter().find(|d| d["kind"] == kind))
                .cloned()
                .unwrap_or_default();
            let all = document["stores"].as_array().cloned().unwrap_or_default();
            (all.len() == stores && all.iter().all(|s| s["applied"] == version)).then_some(all)
        });
        answered.unwrap_or_else(|| panic!("{}", self.get(0, "/api/documents", cookie).1))
    }

    /// Revokes `store`'s key (`tallybox-hq revoke`).
    pub fn revoke(&self, store: &str) {
        run_ok(self.command(&["revoke", store]), "tallybox-hq revoke");
    }

    /// Signs in to instance `n`'s page; the session cookie.
    pub fn sign_in(&self, n: usize) -> String {
        let url = format!("http://127.0.0.1:{}/api/login", self.instances[n].1);
        let response = ureq::post(&url)
            .send_json(serde_json::json!({"name": HQ_ACCOUNT.0, "password": HQ_ACCOUNT.1}))
            .expect("sign in to head office");
        let cookie = response
            .header("set-cookie")
            .expect("a session cookie")
            .to_string();
        cookie.split(';').next().expect("cookie").to_string()
    }

    /// Instance `n`'s page.
    pub fn url(&self, n: usize) -> String {
        format!("http://127.0.0.1:{}", self.instances[n].1)
    }

    /// The status of signing in to instance `n` as `name` with `password`.
    pub fn sign_in_status(&self, n: usize, name: &str, password: &str) -> u16 {
        let url = format!("http://127.0.0.1:{}/api/login", self.instances[n].1);
        match ureq::post(&url).send_json(serde_json::json!({"name": name, "password": password})) {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(code, _)) => code,
            Err(e) => panic!("POST {url}: {e}"),
        }
    }

    /// GET `path` on instance `n`'s page with `cookie`: status and JSON.
    pub fn get(&self, n: usize, path: &str, cookie: &str) -> (u16, Value) {
        let url = format!("http://127.0.0.1:{}{path}", self.instances[n].1);
        match ureq::get(&url).set("cookie", cookie).call() {
            Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
            Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
            Err(e) => panic!("GET {url}: {e}"),
        }
    }

    /// GET `path`'s body as text.
    pub fn get_text(&self, n: usize, path: &str, cookie: &str) -> String {
        let url = format!("http://127.0.0.1:{}{path}", self.instances[n].1);
        let response = ureq::get(&url)
            .set("cookie", cookie)
            .call()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        response
            .into_string()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }
}

impl Drop for Hq {
    fn drop(&mut self) {
        for n in 0..self.instances.len() {
            self.kill(n);
        }
    }
}

/// A store simulator for head office's benches and scale runs: joins as
/// `code`'s store with a key of its own and sends `entries` (a real hub's
/// outbox, replayed: the hash chain does not name the store) as a hub's
/// uplink does, in batches within a window, following head office's acks.
/// Returns when head office holds every entry: how long that took from
/// the first batch.
pub async fn replay_store(
    broker: u16,
    code: &str,
    entries: &[tallybox::chain::wire::Entry],
) -> anyhow::Result<Duration> {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    use tallybox::chain::uplink::IN_FLIGHT;
    use tallybox::chain::wire::{self, Ack, Batch, ChainTopics, EnrolCode, BATCH_MAX};

    let code = EnrolCode::decode(code).map_err(anyhow::Error::msg)?;
    let hq = wire::verifying_key(&code.hq)?;
    let secret = hex::decode(&code.secret)?;
    let key = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let topics = ChainTopics::new(&code.store);
    let mut options = MqttOptions::new(format!("sim-store-{}", code.store), "127.0.0.1", broker);
    options.set_max_packet_size(1 << 20, 1 << 20);
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(options, 64);
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    events.set_network_options(network);
    let (acks_tx, mut acks) = tokio::sync::mpsc::unbounded_channel::<Ack>();
    let (ack_topic, subscriber) = (topics.ack.clone(), client.clone());
    let poller = tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = subscriber.subscribe(&ack_topic, QoS::AtLeastOnce).await;
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if let Ok(ack) = wire::open::<Ack>(&p.payload, &hq) {
                        let _ = acks_tx.send(ack);
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
    let public = hex::encode(key.verifying_key().to_bytes());
    let enrol = wire::Enrol {
        store: code.store.clone(),
        proof: wire::enrol_proof(&secret, &code.store, &public),
        key: public,
    };
    // Enrolled once head office answers (it answers every enrolment).
    let mut enrolled = None;
    for _ in 0..50 {
        client
            .publish(&topics.enrol, QoS::AtLeastOnce, false, wire::seal(&enrol, &key))
            .await?;
        if let Ok(Some(ack)) = tokio::time::timeout(Duration::from_millis(500), acks.recv()).await {
            enrolled = Some(ack);
            break;
        }
    }
    anyhow::ensure!(
        enrolled.is_some(),
        "head office did not answer store {}'s enrolment",
        code.store
    );
    let total = entries.len() as u64;
    let started = std::time::Instant::now();
    let (mut next, mut acked) = (1u64, 0u64);
    let mut sent = std::collections::VecDeque::new();
    while acked < total {
        while next <= total && sent.len() < IN_FLIGHT {
            let from = (next - 1) as usize;
            let batch = Batch {
                store: code.store.clone(),
                entries: entries[from..(from + BATCH_MAX).min(entries.len())].to_vec(),
            };
            next += batch.entries.len() as u64;
            sent.push_back(next - 1);
            client
                .publish(&topics.outbox, QoS::AtLeastOnce, false, wire::seal(&batch, &key))
                .await?;
        }
        match tokio::time::timeout(Duration::from_secs(10), acks.recv()).await {
            Ok(Some(ack)) => {
                acked = acked.max(ack.next - 1);
                while sent.front().is_some_and(|last| *last < ack.next) {
                    sent.pop_front();
                }
                if ack.resend {
                    sent.clear();
                    next = ack.next.max(acked + 1);
                }
            }
            Ok(None) => anyhow::bail!("the simulator's MQTT client stopped"),
            Err(_) => {
                sent.clear();
                next = acked + 1;
            }
        }
    }
    poller.abort();
    Ok(started.elapsed())
}

/// The entries of a hub's outbox (the hub may be running).
pub fn recorded_outbox(data_dir: &std::path::Path) -> Vec<tallybox::chain::wire::Entry> {
    tallybox::store::Store::open(data_dir)
        .and_then(|s| s.outbox_after(0, usize::MAX))
        .expect("read the hub's outbox")
}
