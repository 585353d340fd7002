//! The card's settings file (`tallybox.txt` on the boot partition, which the
//! owner edits on any computer) applied by the image's
//! `usr/lib/tallybox-image/settings`, run here on a copy of a card's files
//! (`TALLYBOX_CARD_ROOT`) with `systemctl`, `wpa_passphrase` and `runuser`
//! stood in for by scripts that record what they were asked: the Wi-Fi is
//! saved as its key only and the password on the card replaced by
//! "(saved)", a bad password or id changes nothing and says why, a checkout
//! gets an id of its own and then the owner's, and `reset_owner = yes`
//! removes the hub's owner password (with a backup) once, and nothing else.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use tallybox_e2e::procs::Hub;
use tallybox_e2e::web::{status_json, WebClient};
use tallybox_e2e::{bin, unit_faults};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../image/rootfs/usr/lib/tallybox-image/settings"
);
const TEMPLATE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../image/rootfs/usr/lib/tallybox-image/tallybox.txt"
);

struct Card {
    dir: tempfile::TempDir,
}

impl Card {
    /// A card's files: the settings file as shipped, a machine id, and the
    /// stand-ins on PATH.
    fn new() -> Card {
        let card = Card {
            dir: tempfile::tempdir().unwrap(),
        };
        for d in [
            "boot/firmware",
            "etc/wpa_supplicant",
            "etc/default",
            "usr/bin",
            "fake",
        ] {
            std::fs::create_dir_all(card.root().join(d)).unwrap();
        }
        std::fs::copy(TEMPLATE, card.settings_path()).unwrap();
        std::fs::write(
            card.root().join("etc/machine-id"),
            "3fa2c0de5b1e4b7e8d6e9c1a2b3c4d5e\n",
        )
        .unwrap();
        let log = card.root().join("fake/calls");
        card.fake(
            "systemctl",
            &format!("echo \"systemctl $*\" >> {}", log.display()),
        );
        card.fake(
            "wpa_passphrase",
            &format!(
                "echo \"wpa_passphrase $1\" >> {}\nprintf 'network={{\\n\\tssid=\"%s\"\\n\\t#psk=\"%s\"\\n\\tpsk=5e1f00d\\n}}\\n' \"$1\" \"$2\"",
                log.display()
            ),
        );
        // runuser -u USER -- COMMAND...: runs COMMAND, noting the user.
        card.fake(
            "runuser",
            &format!("echo \"runuser $2\" >> {}\nshift 3\nexec \"$@\"", log.display()),
        );
        card
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("card")
    }

    fn settings_path(&self) -> PathBuf {
        self.root().join("boot/firmware/tallybox.txt")
    }

    fn fake(&self, name: &str, body: &str) {
        let path = self.root().join("fake").join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Sets `key = value` in the settings file, with Windows line ends as
    /// Notepad may save it.
    fn set(&self, key: &str, value: &str) {
        let text = std::fs::read_to_string(self.settings_path()).unwrap();
        let text: Vec<String> = text
            .lines()
            .map(|l| {
                if l.starts_with(&format!("{key} =")) {
                    format!("{key} = {value}")
                } else {
                    l.to_string()
                }
            })
            .collect();
        std::fs::write(self.settings_path(), text.join("\r\n") + "\r\n").unwrap();
    }

    fn setting(&self, key: &str) -> String {
        let text = std::fs::read_to_string(self.settings_path()).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key} =")))
            .unwrap_or_else(|| panic!("no {key} in:\n{text}"))
            .trim()
            .to_string()
    }

    /// Runs the settings script: (succeeded, what it printed).
    fn apply(&self) -> (bool, String) {
        let path = format!(
            "{}:{}",
            self.root().join("fake").display(),
            std::env::var("PATH").unwrap()
        );
        let out = Command::new("sh")
            .arg(SCRIPT)
            .env("TALLYBOX_CARD_ROOT", self.root())
            .env("PATH", path)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), said)
    }

    /// The stand-ins' calls since the last look.
    fn calls(&self) -> String {
        let path = self.root().join("fake/calls");
        let calls = std::fs::read_to_string(&path).unwrap_or_default();
        let _ = std::fs::remove_file(path);
        calls
    }

    fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.root().join(path)).unwrap_or_default()
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_shops_wifi_is_saved_as_its_key_and_the_password_leaves_the_card() {
    let card = Card::new();
    // As shipped: nothing to do, nothing done.
    assert_eq!(card.apply(), (true, String::new()));
    assert_eq!(card.calls(), "");

    card.set("wifi_name", "Corner Shop 5G");
    card.set("wifi_password", "open sesame 42");
    card.set("wifi_country", "GB");
    let (ok, said) = card.apply();
    assert!(ok, "{said}");
    assert!(said.contains("Wi-Fi 'Corner Shop 5G' saved"), "{said}");
    let conf = card.read("etc/wpa_supplicant/wpa_supplicant-wlan0.conf");
    assert!(
        conf.contains("country=GB") && conf.contains("ssid=\"Corner Shop 5G\""),
        "{conf}"
    );
    assert!(conf.contains("psk=5e1f00d"), "{conf}");
    assert!(
        !conf.contains("open sesame"),
        "the password itself was kept:\n{conf}"
    );
    let conf_path = card.root().join("etc/wpa_supplicant/wpa_supplicant-wlan0.conf");
    assert_eq!(mode(&conf_path), 0o600);
    assert_eq!(card.setting("wifi_password"), "(saved)");
    assert_eq!(card.setting("wifi_name"), "Corner Shop 5G");
    assert!(!std::fs::read_to_string(card.settings_path())
        .unwrap()
        .contains("sesame"));
    let calls = card.calls();
    assert!(calls.contains("wpa_passphrase Corner Shop 5G"), "{calls}");
    assert!(calls.contains("restart wpa_supplicant@wlan0.service"), "{calls}");

    // The next start changes nothing.
    assert!(card.apply().0);
    assert_eq!(card.calls(), "");
    assert_eq!(card.read("etc/wpa_supplicant/wpa_supplicant-wlan0.conf"), conf);

    // A password too short for WPA: said, and the saved network stays.
    card.set("wifi_password", "short");
    let (ok, said) = card.apply();
    assert!(!ok);
    assert!(said.contains("8 to 63 characters"), "{said}");
    assert_eq!(card.read("etc/wpa_supplicant/wpa_supplicant-wlan0.conf"), conf);
    assert_eq!(card.setting("wifi_password"), "short");

    // An open network (no password).
    card.set("wifi_name", "Market Guest");
    card.set("wifi_password", "");
    assert!(card.apply().0);
    let open = card.read("etc/wpa_supplicant/wpa_supplicant-wlan0.conf");
    assert!(
        open.contains("ssid=\"Market Guest\"") && open.contains("key_mgmt=NONE"),
        "{open}"
    );
}

#[test]
fn a_checkout_card_gets_an_id_of_its_own_then_the_owners() {
    let card = Card::new();
    std::fs::write(
        card.root().join("etc/default/tallybox-terminal"),
        "# settings\nTALLYBOX_TERMINAL_ID=T1\n",
    )
    .unwrap();
    let (ok, said) = card.apply();
    assert!(ok, "{said}");
    assert!(said.contains("this checkout's id: T3FA2"), "{said}");
    assert!(card
        .read("etc/default/tallybox-terminal")
        .contains("TALLYBOX_TERMINAL_ID=T3FA2\n"));
    assert_eq!(
        card.setting("checkout_id"),
        "T3FA2",
        "written back for the owner to see"
    );

    card.set("checkout_id", "Till-2");
    assert!(card.apply().0);
    assert!(card
        .read("etc/default/tallybox-terminal")
        .contains("TALLYBOX_TERMINAL_ID=Till-2\n"));

    card.set("checkout_id", "Till 3!");
    let (ok, said) = card.apply();
    assert!(!ok);
    assert!(said.contains("letters, digits"), "{said}");
    assert!(card
        .read("etc/default/tallybox-terminal")
        .contains("TALLYBOX_TERMINAL_ID=Till-2\n"));

    // A hub's card has no checkout settings: the id line is left alone.
    let hub_card = Card::new();
    hub_card.set("checkout_id", "Till-9");
    assert!(hub_card.apply().0);
    assert!(!hub_card.root().join("etc/default/tallybox-terminal").exists());
}

fn set_up(hub: &Hub, password: &str) {
    let (status, body) = status_json(
        ureq::post(&format!("http://127.0.0.1:{}/api/v1/setup", hub.http))
            .send_json(json!({"code": hub.setup_code(), "password": password})),
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn reset_owner_on_the_card_removes_the_password_once_and_keeps_the_shops_data() {
    let mut hub = Hub::start_fresh();
    set_up(&hub, "the-first-password");
    let web = WebClient::login(hub.http, None, "the-first-password").unwrap();
    let renamed = json!({"store_name": "Corner Shop", "pairing_required": true});
    assert_eq!(web.send("PUT", "/api/v1/settings", renamed).0, 204);
    let first_code = hub.setup_code();
    hub.stop();

    let card = Card::new();
    std::os::unix::fs::symlink(bin("tallybox"), card.root().join("usr/bin/tallybox")).unwrap();
    std::fs::create_dir_all(card.root().join("var/lib")).unwrap();
    std::os::unix::fs::symlink(hub.data_dir(), card.root().join("var/lib/tallybox")).unwrap();
    card.set("reset_owner", "yes");
    let (ok, said) = card.apply();
    assert!(ok, "{said}");
    assert!(said.contains("backup of everything taken first"), "{said}");
    assert!(card.calls().contains("runuser tallybox"));
    assert_eq!(card.setting("reset_owner"), "no", "done once, not at every start");

    // The hub starts with a new setup code; the old password is gone, the
    // shop's settings stay, and a backup was taken.
    hub.restart();
    assert_eq!(
        hub.get_public("/api/v1/settings").1["error"]["code"],
        "setup_required"
    );
    assert_ne!(hub.setup_code(), first_code);
    assert!(WebClient::login(hub.http, None, "the-first-password").is_err());
    set_up(&hub, "the-new-password");
    let web = WebClient::login(hub.http, None, "the-new-password").unwrap();
    assert_eq!(web.get("/api/v1/settings").1["store_name"], "Corner Shop");
    assert_eq!(
        std::fs::read_dir(hub.data_dir().join("backups")).unwrap().count(),
        1
    );

    // The next start does not reset again.
    assert!(card.apply().0);
    assert_eq!(card.calls(), "");
}

#[test]
fn the_cards_own_units_are_valid_systemd_units() {
    let rootfs = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../image/rootfs"));
    for unit in ["tallybox-first-boot.service", "tallybox-settings.service"] {
        let faults = unit_faults(rootfs, &format!("/etc/systemd/system/{unit}"));
        assert!(faults.is_empty(), "{unit}: {faults:?}");
    }
}
