//! Updates that cannot brick the hub: a signed bundle installs, the database
//! is backed up first, the new version proves itself healthy and stays;
//! altered, cut-short, foreign-signed, older, same-version and wrong-product
//! bundles change nothing; a new version that crashes at start is rolled back
//! by the launcher after three starts; a power cut at any step of applying
//! leaves the old version to start.
//!
//! Versions here are small programs that run the `tallybox` under test (a
//! debug build is hundreds of megabytes); what is checked is the switching,
//! the checks and the hub's own proof, not the program's size.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use tallybox_e2e::mqtt::{sale, RawClient};
use tallybox_e2e::procs::{Hub, Terminal, Tmpfs, STORE};
use tallybox_e2e::{bin, test_card, wait_for};

const LAUNCHER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../image/debian/tallybox-launch");
const TEST_KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/keys/update-test.key");
const TEST_PUB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/keys/update-test.pub");

/// An install root with version 0.1.0 of a program (the hub's unless told),
/// and the test key trusted.
struct Install {
    dir: tempfile::TempDir,
    root: PathBuf,
    program: &'static str,
}

impl Install {
    fn new() -> Install {
        Install::of("tallybox")
    }

    fn of(program: &'static str) -> Install {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("opt");
        Install::at(dir, root, program)
    }

    fn at(dir: tempfile::TempDir, root: PathBuf, program: &'static str) -> Install {
        let v1 = root.join("versions/0.1.0");
        std::fs::create_dir_all(&v1).unwrap();
        write_program(&v1.join(program), &runs(program));
        std::os::unix::fs::symlink("versions/0.1.0", root.join("current")).unwrap();
        let keys = dir.path().join("update-keys");
        std::fs::create_dir_all(&keys).unwrap();
        std::fs::copy(TEST_PUB, keys.join("test.pub")).unwrap();
        Install { dir, root, program }
    }

    fn keys(&self) -> PathBuf {
        self.dir.path().join("update-keys")
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A bundle of `program` as the hub's `tallybox`, signed with `key`.
    fn bundle(&self, version: &str, program: &str, key: &str, product: &str) -> PathBuf {
        let file = self.dir.path().join(format!("prog-{version}-{product}"));
        write_program(&file, program);
        let out = self
            .dir
            .path()
            .join(format!("tallybox-{product}-{version}.update"));
        let done = tallybox(&[
            "release",
            "sign",
            "--key",
            key,
            "--product",
            product,
            "--version",
            version,
            "--out",
            out.to_str().unwrap(),
            &format!("{}={}", self.program, file.display()),
        ]);
        assert!(done.status.success(), "{}", text(&done));
        out
    }

    fn update(&self, bundle: &Path, env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(bin("tallybox"));
        command
            .args(["update", bundle.to_str().unwrap(), "--root"])
            .arg(&self.root)
            .arg("--keys")
            .arg(self.keys())
            .arg("--data-dir")
            .arg(self.data());
        command.envs(env.iter().copied()).output().unwrap()
    }

    /// Runs the launcher as the service would, with `args` for the program.
    fn launch(&self, args: &[&str]) -> Output {
        Command::new("sh")
            .arg(LAUNCHER)
            .arg("tallybox")
            .args(args)
            .env("TALLYBOX_ROOT", &self.root)
            .output()
            .unwrap()
    }

    fn current(&self) -> String {
        let link = std::fs::read_link(self.root.join("current")).unwrap();
        link.file_name().unwrap().to_str().unwrap().to_string()
    }

    fn versions(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root.join("versions"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    }

    fn trying(&self) -> bool {
        self.root.join("trying").exists()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("updates.log")).unwrap_or_default()
    }
}

/// A program that runs `name` from this build.
fn runs(name: &str) -> String {
    format!("#!/bin/sh\nexec {} \"$@\"\n", bin(name).display())
}

fn runs_tallybox() -> String {
    runs("tallybox")
}

const CRASHES: &str = "#!/bin/sh\necho 'this build is broken' >&2\nexit 101\n";

fn write_program(path: &Path, body: &str) {
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn tallybox(args: &[&str]) -> Output {
    Command::new(bin("tallybox")).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The hub's `hub.update` check from `tallybox doctor --json`.
fn doctor_update(inst: &Install) -> serde_json::Value {
    let out = Command::new(bin("tallybox"))
        .args(["doctor", "--json", "--data-dir"])
        .arg(inst.data())
        .arg("--root")
        .arg(&inst.root)
        .output()
        .unwrap();
    let all: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    all["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "hub.update")
        .cloned()
        .unwrap_or_else(|| panic!("no hub.update in {all}"))
}

#[test]
fn a_signed_update_is_installed_after_a_backup_proves_itself_and_stays() {
    let inst = Install::new();
    let root = inst.root.display().to_string();
    let data = inst.data().display().to_string();
    let env = vec![("TALLYBOX_ROOT".to_string(), root.clone())];
    let program = vec![LAUNCHER.to_string(), "tallybox".to_string()];
    let mut hub = Hub::start_through(program, env, &["--data-dir", &data, "--root", &root]);
    let raw = RawClient::connect(hub.mqtt, STORE, "T1");
    let answer = raw
        .request(
            "T1",
            &sale("update-sale-0001", &test_card("approved"), 4_321),
            Duration::from_secs(10),
        )
        .expect("a sale before the update");
    assert_eq!(answer["response_code"], "00", "{answer}");

    let bundle = inst.bundle("0.1.1", &runs_tallybox(), TEST_KEY, "hub");
    let done = inst.update(&bundle, &[]);
    assert!(done.status.success(), "{}", text(&done));
    let said = text(&done);
    assert!(said.contains("0.1.1 installed (was 0.1.0)"), "{said}");
    // The backup holds the sale, taken before anything changed.
    let backups: Vec<PathBuf> = std::fs::read_dir(inst.data().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert!(backups[0]
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("before-update-0.1.1-"));
    let copy = rusqlite::Connection::open(&backups[0]).unwrap();
    let amount: i64 = copy
        .query_row("SELECT amount FROM transactions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(amount, 4_321);
    assert_eq!(inst.current(), "0.1.1");
    assert!(inst.trying(), "the new version is not on trial");
    assert_eq!(doctor_update(&inst)["status"], "warn");

    // The hub restarts into it, proves itself, and the trial ends.
    hub.restart();
    // The marker goes first, then the log line: both are waited for.
    let confirmed = wait_for(Duration::from_secs(40), || {
        (!inst.trying() && inst.log().contains("\"event\":\"confirmed\"")).then_some(())
    });
    assert!(
        confirmed.is_some(),
        "never confirmed; update log:\n{}\nhub log:\n{}",
        inst.log(),
        hub.log()
    );
    assert_eq!(inst.current(), "0.1.1");
    assert_eq!(hub.transactions("").len(), 1, "the sale is still there");
    let check = doctor_update(&inst);
    assert_eq!(check["status"], "ok", "{check}");
    assert!(
        check["evidence"]
            .as_str()
            .unwrap()
            .contains("version 0.1.1, updated"),
        "{check}"
    );
    // The same version again is not an update.
    let again = inst.update(&bundle, &[]);
    assert!(!again.status.success() && text(&again).contains("already installed"));
}

#[test]
fn bundles_that_are_altered_cut_short_foreign_older_or_for_a_terminal_change_nothing() {
    let inst = Install::new();
    let good = inst.bundle("0.1.1", &runs_tallybox(), TEST_KEY, "hub");
    let bytes = std::fs::read(&good).unwrap();
    let variant = |name: &str, bytes: Vec<u8>| {
        let path = inst.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    // One byte of the program changed (after the manifest and signature).
    // The program is the last entry: its 512-byte block, then 1024 zero bytes.
    let mut altered = bytes.clone();
    let at = altered.len() - 1024 - 512 + 12;
    altered[at] ^= 0x20;
    // The manifest's version changed: the signature no longer holds.
    let text_of = String::from_utf8_lossy(&bytes).to_string();
    let manifest_at = text_of
        .find("\"version\": \"0.1.1\"")
        .expect("the manifest in the tar");
    let mut forged = bytes.clone();
    forged[manifest_at + 16] = b'9';
    let other_key = inst.dir.path().join("other");
    assert!(tallybox(&["release", "keygen", other_key.to_str().unwrap()])
        .status
        .success());
    let other_key = other_key.with_extension("key");

    let cases: Vec<(&str, PathBuf, &str)> = vec![
        (
            "altered program",
            variant("altered.update", altered),
            "not what its signed manifest says",
        ),
        (
            "altered manifest",
            variant("forged.update", forged),
            "not signed by a key this machine trusts",
        ),
        (
            "cut short",
            variant("short.update", bytes[..bytes.len() / 2].to_vec()),
            "ends early",
        ),
        ("empty", variant("empty.update", Vec::new()), "ends early"),
        (
            "someone else's key",
            inst.bundle("0.1.2", &runs_tallybox(), other_key.to_str().unwrap(), "hub"),
            "not signed by a key this machine trusts",
        ),
        (
            "older",
            inst.bundle("0.0.9", &runs_tallybox(), TEST_KEY, "hub"),
            "older than the installed 0.1.0",
        ),
        (
            "the same",
            inst.bundle("0.1.0", &runs_tallybox(), TEST_KEY, "hub"),
            "already installed",
        ),
        (
            "for a terminal",
            inst.bundle("0.1.3", &runs_tallybox(), TEST_KEY, "terminal"),
            "for terminal, not for hub",
        ),
    ];
    for (what, bundle, says) in cases {
        let done = inst.update(&bundle, &[]);
        let said = text(&done);
        assert!(!done.status.success(), "{what}: installed\n{said}");
        assert!(said.contains(says), "{what}: {said}");
        assert_eq!(inst.current(), "0.1.0", "{what}");
        assert_eq!(inst.versions(), ["0.1.0"], "{what}: something was left behind");
        assert!(!inst.trying(), "{what}");
    }
    // Without any trusted key nothing is installed.
    std::fs::remove_file(inst.keys().join("test.pub")).unwrap();
    let done = inst.update(&good, &[]);
    assert!(
        text(&done).contains("no update key is installed"),
        "{}",
        text(&done)
    );
    assert_eq!(inst.current(), "0.1.0");
}

#[test]
fn an_update_with_no_room_for_it_is_refused() {
    let small = Tmpfs::mount("16m");
    let inst = Install::at(
        tempfile::tempdir().unwrap(),
        small.0.path().join("opt"),
        "tallybox",
    );
    let bundle = inst.bundle("0.1.1", &runs_tallybox(), TEST_KEY, "hub");
    let done = inst.update(&bundle, &[]);
    assert!(!done.status.success());
    assert!(text(&done).contains("not enough room"), "{}", text(&done));
    assert_eq!(inst.current(), "0.1.0");
    assert_eq!(inst.versions(), ["0.1.0"]);
}

#[test]
fn a_version_that_crashes_at_start_is_rolled_back_after_three_starts() {
    let inst = Install::new();
    tallybox::store::Store::open(&inst.data()).expect("a database for the doctor");
    let bundle = inst.bundle("0.2.0", CRASHES, TEST_KEY, "hub");
    let done = inst.update(&bundle, &[]);
    assert!(done.status.success(), "{}", text(&done));
    assert_eq!(inst.current(), "0.2.0");
    for start in 1..=3 {
        let run = inst.launch(&["--version"]);
        assert!(
            !run.status.success(),
            "start {start} of the broken build succeeded"
        );
        assert!(text(&run).contains("this build is broken"), "{}", text(&run));
    }
    // The fourth start is the old version's.
    let run = inst.launch(&["--version"]);
    assert!(run.status.success(), "{}", text(&run));
    assert!(text(&run).contains("tallybox 0.1.0"), "{}", text(&run));
    assert_eq!(inst.current(), "0.1.0");
    assert!(!inst.trying());
    assert!(inst.log().contains("\"event\":\"rolled_back\""), "{}", inst.log());
    let check = doctor_update(&inst);
    assert_eq!(check["status"], "fail", "{check}");
    let evidence = check["evidence"].as_str().unwrap();
    assert!(
        evidence.contains("update to 0.2.0 failed and was undone") && evidence.contains("runs 0.1.0"),
        "{check}"
    );
}

#[test]
fn a_power_cut_at_any_step_of_applying_leaves_the_old_version_to_start() {
    for step in ["unpack", "before-marker", "switch"] {
        let inst = Install::new();
        let bundle = inst.bundle("0.1.1", &runs_tallybox(), TEST_KEY, "hub");
        let cut = inst.update(&bundle, &[("TALLYBOX_UPDATE_CRASH_AT", step)]);
        assert!(!cut.status.success(), "{step}: the update did not stop");
        assert!(text(&cut).contains("stopping dead"), "{step}: {}", text(&cut));
        assert_eq!(inst.current(), "0.1.0", "{step}");
        let run = inst.launch(&["--version"]);
        assert!(
            run.status.success() && text(&run).contains("tallybox 0.1.0"),
            "{step}: {}",
            text(&run)
        );
        assert!(!inst.trying(), "{step}: the marker outlived the start");
        if step == "switch" {
            assert!(inst.log().contains("\"event\":\"interrupted\""), "{}", inst.log());
        }
        // Applied again with the power on, it goes through.
        let done = inst.update(&bundle, &[]);
        assert!(done.status.success(), "{step}: {}", text(&done));
        assert_eq!(inst.current(), "0.1.1", "{step}");
        assert_eq!(inst.versions(), ["0.1.0", "0.1.1"], "{step}");
    }
}

#[test]
fn the_owner_updates_the_hub_from_the_phone_and_it_comes_back_on_the_new_version() {
    let inst = Install::new();
    let (root, data, keys) = (
        inst.root.display().to_string(),
        inst.data().display().to_string(),
        inst.keys().display().to_string(),
    );
    let env = vec![("TALLYBOX_ROOT".to_string(), root.clone())];
    let program = vec![LAUNCHER.to_string(), "tallybox".to_string()];
    let mut hub = Hub::start_through(
        program,
        env,
        &["--data-dir", &data, "--root", &root, "--update-keys", &keys],
    );
    let web = hub.web();
    assert_eq!(web.get("/api/v1/update").1["installed"], "0.1.0");

    // A damaged bundle is refused with the reason, and nothing changes.
    let good = std::fs::read(inst.bundle("0.1.1", &runs_tallybox(), TEST_KEY, "hub")).unwrap();
    let (status, refused) = web.send_bytes("POST", "/api/v1/update", &good[..good.len() / 2]);
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ends early"),
        "{refused}"
    );
    assert_eq!(inst.current(), "0.1.0");

    // The good one: installed, then the hub stops for its service to start it again.
    let (status, answer) = web.send_bytes("POST", "/api/v1/update", &good);
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        (answer["version"].as_str(), answer["previous"].as_str()),
        (Some("0.1.1"), Some("0.1.0"))
    );
    assert!(
        answer["backup"]
            .as_str()
            .unwrap()
            .starts_with("before-update-0.1.1-"),
        "{answer}"
    );
    let backups = std::fs::read_dir(inst.data().join("backups")).unwrap().count();
    assert_eq!(backups, 1, "the refused bundle took a backup too");
    let stopped = wait_for(Duration::from_secs(10), || {
        (hub.get_public("/healthz").0 != 200).then_some(())
    });
    assert!(
        stopped.is_some(),
        "the hub did not stop to restart into the update"
    );
    assert!(
        hub.log().contains("update installed from the web page"),
        "{}",
        hub.log()
    );
    let leftovers: Vec<_> = std::fs::read_dir(inst.data().join("updates")).unwrap().collect();
    assert!(
        leftovers.is_empty(),
        "the upload was left on the disk: {leftovers:?}"
    );

    // What systemd does: start it again, through the launcher.
    hub.restart();
    let confirmed = wait_for(Duration::from_secs(40), || (!inst.trying()).then_some(()));
    assert!(confirmed.is_some(), "never confirmed; hub log:\n{}", hub.log());
    let web = hub.web();
    let (_, status) = web.get("/api/v1/update");
    assert_eq!(status["installed"], "0.1.1", "{status}");
    let events: Vec<&str> = status["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["installed", "confirmed"], "{status}");
}

#[test]
fn a_checkout_takes_the_update_the_owner_uploads_and_comes_back_on_it() {
    let term = Install::of("tallybox-terminal");
    let (root, keys) = (term.root.display().to_string(), term.keys().display().to_string());
    let hub = Hub::start_with(None, &["--update-keys", &keys]);
    let mut t5 = Terminal::start_through(
        "T5",
        hub.mqtt,
        vec![LAUNCHER.to_string(), "tallybox-terminal".to_string()],
        vec![("TALLYBOX_ROOT".to_string(), root.clone())],
        &["--root", &root, "--update-keys", &keys],
    );
    t5.wait_ready();
    assert!(t5.sale(700, "approved").contains("APPROVED"));
    t5.keys("C");

    // The owner uploads a checkout update: kept, offered, fetched, installed.
    let bundle =
        std::fs::read(term.bundle("0.1.1", &runs("tallybox-terminal"), TEST_KEY, "terminal")).unwrap();
    let web = hub.web();
    let (status, answer) = web.send_bytes("POST", "/api/v1/update", &bundle);
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["product"], "terminal", "{answer}");
    assert_eq!(answer["offered_to"], serde_json::json!(["T5"]), "{answer}");
    // Served to anyone on the shop's network: it is signed and holds no secret.
    let url = format!("http://127.0.0.1:{}/updates/terminal.update", hub.http);
    let mut served = Vec::new();
    std::io::Read::read_to_end(&mut ureq::get(&url).call().unwrap().into_reader(), &mut served).unwrap();
    assert!(served == bundle, "the hub serves another file than it was given");
    let stopped = wait_for(Duration::from_secs(30), || t5.exited());
    let stopped = stopped.unwrap_or_else(|| panic!("T5 never stopped to restart into 0.1.1:\n{}", t5.log()));
    assert!(stopped.success(), "{stopped:?}\n{}", t5.log());
    assert_eq!(term.current(), "0.1.1");
    assert!(term.trying());

    // Its service starts it again (through the launcher): it proves itself and sells.
    t5.restart();
    t5.wait_ready();
    // The marker goes first, then the log line: both are waited for.
    let confirmed = wait_for(Duration::from_secs(40), || {
        (!term.trying() && term.log().contains("\"event\":\"confirmed\"")).then_some(())
    });
    assert!(
        confirmed.is_some(),
        "never confirmed; update log:\n{}\ncheckout log:\n{}",
        term.log(),
        t5.log()
    );
    assert!(t5.sale(800, "approved").contains("APPROVED"));
    assert_eq!(hub.transactions("").len(), 2);
}

#[test]
fn head_office_offers_an_update_and_a_shops_hub_fetches_installs_and_comes_back_on_it() {
    use tallybox_e2e::chain::{Hq, Postgres};
    use tallybox_e2e::procs::Mosquitto;
    let inst = Install::new();
    let pg = Postgres::start();
    let broker = Mosquitto::start();
    let hq = Hq::start(&pg, broker.port, &["hq-a"]);
    let (root, keys) = (inst.root.display().to_string(), inst.keys().display().to_string());
    let mut hub = Hub::start_through_in_chain(
        &hq.enrol("S1", broker.port),
        vec![LAUNCHER.to_string(), "tallybox".to_string()],
        vec![("TALLYBOX_ROOT".to_string(), root.clone())],
        &["--root", &root, "--update-keys", &keys],
    );
    let joined = wait_for(Duration::from_secs(20), || {
        (pg.number("SELECT count(*) FROM stores WHERE public_key IS NOT NULL") == 1).then_some(())
    });
    assert!(joined.is_some(), "{}", hub.log());

    // Head office will not offer a bundle the shops' keys do not trust.
    let other_key = inst.dir.path().join("other");
    assert!(tallybox(&["release", "keygen", other_key.to_str().unwrap()])
        .status
        .success());
    let other_key = other_key.with_extension("key");
    let foreign = inst.bundle("0.1.1", &runs_tallybox(), other_key.to_str().unwrap(), "hub");
    let refused = hq.publish_update(&foreign, &inst.keys());
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains("not signed by a key"),
        "{}",
        text(&refused)
    );

    // The good one: fetched from head office, installed, the hub stops for
    // its service to start the new version.
    let good = inst.bundle("0.1.1", &runs_tallybox(), TEST_KEY, "hub");
    let offered = hq.publish_update(&good, &inst.keys());
    assert!(offered.status.success(), "{}", text(&offered));
    let stopped = wait_for(Duration::from_secs(30), || {
        (hub.get_public("/healthz").0 != 200).then_some(())
    });
    assert!(
        stopped.is_some(),
        "the hub did not stop to restart into the update:\n{}",
        hub.log()
    );
    assert!(
        hub.log().contains("update installed from head office"),
        "{}",
        hub.log()
    );
    assert_eq!(inst.current(), "0.1.1");

    // What systemd does: start it again, through the launcher.
    hub.restart();
    let confirmed = wait_for(Duration::from_secs(40), || (!inst.trying()).then_some(()));
    assert!(confirmed.is_some(), "never confirmed; hub log:\n{}", hub.log());
    assert_eq!(hub.web().get("/api/v1/update").1["installed"], "0.1.1");
    // Head office hears the shop took it, once; the shop does not fetch it again.
    let cookie = hq.sign_in(0);
    let answers = hq.answers(&cookie, "hub_update", 1, 1);
    assert!(answers[0]["refused"].is_null(), "{answers:?}");
    assert_eq!(inst.versions(), ["0.1.0", "0.1.1"]);
    let leftovers: Vec<_> = std::fs::read_dir(hub.data_dir().join("updates"))
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(
        leftovers.is_empty(),
        "the download was left on the disk: {leftovers:?}"
    );
}
