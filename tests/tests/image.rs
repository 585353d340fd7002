//! The SD card image, started as a shop would start it: a copy of the card
//! (4 GiB, bigger than the image) boots under `qemu-system-aarch64 -M virt`
//! with the kernel, initramfs and command line from its own boot partition;
//! the first start grows the root file system to the card; the hub comes up
//! by itself and its page answers on the forwarded port; the owner sets up
//! with the setup code the hub made, pairs a checkout (this machine's
//! `tallybox-terminal`, simulated parts) and it completes a sale against the
//! hub in the image, which keeps it; the page names the Pi parts it could not
//! find. Then the power is pulled (qemu killed) and the card started again:
//! nothing is lost, the card is not grown twice, the checkout sells again.
//!
//! Slow (software emulation of an arm64 machine): not part of `cargo test`.
//! Run by `scripts/test-image`, which builds the image first and passes it
//! in `TALLYBOX_IMAGE` (a `.img` or `.img.xz`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use tallybox_e2e::free_port;
use tallybox_e2e::procs::Terminal;
use tallybox_e2e::vm::{plain, user_net, Vm};
use tallybox_e2e::web::{status_json, WebClient};

/// The boot partition's first byte (image/build: 4 MiB in).
const BOOT_OFFSET: u64 = 4 * 1024 * 1024;
const CARD_BYTES: u64 = 4 * 1024 * 1024 * 1024;
const OWNER: &str = "a-shop-owner-password";

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A copy of the image as a card of `CARD_BYTES`.
fn card_from(image: &Path, dir: &Path) -> PathBuf {
    let card = dir.join("card.img");
    let name = image.to_str().unwrap();
    if name.ends_with(".xz") {
        let out = std::fs::File::create(&card).unwrap();
        let status = Command::new("xz")
            .args(["-dc", name])
            .stdout(out)
            .status()
            .unwrap();
        assert!(status.success(), "xz -dc {name}");
    } else {
        std::fs::copy(image, &card).unwrap();
    }
    let length = std::fs::metadata(&card).unwrap().len();
    assert!(
        length < CARD_BYTES,
        "the image ({length} bytes) is bigger than the card"
    );
    std::fs::File::options()
        .write(true)
        .open(&card)
        .unwrap()
        .set_len(CARD_BYTES)
        .unwrap();
    card
}

/// Copies `name` (a glob) off the card's boot partition into `dir`.
fn from_boot_partition(card: &Path, name: &str, dir: &Path) -> PathBuf {
    let fat = format!("{}@@{BOOT_OFFSET}", card.display());
    let listing = run("mdir", &["-b", "-i", &fat, "::"]);
    let pattern = name.trim_end_matches('*');
    let found = listing
        .lines()
        .map(|l| l.trim_start_matches("::/").trim().to_string())
        .find(|f| {
            if name.ends_with('*') {
                f.starts_with(pattern)
            } else {
                f == name
            }
        })
        .unwrap_or_else(|| panic!("no {name} on the boot partition:\n{listing}"));
    let to = dir.join(&found);
    run(
        "mcopy",
        &["-o", "-i", &fat, &format!("::{found}"), to.to_str().unwrap()],
    );
    to
}

/// Starts the card; `start` names this start's console log; `ports`: the
/// web and MQTT ports of an earlier start, for clients to find it again.
fn boot(card: &Path, dir: &Path, start: &str, ports: Option<(u16, u16)>) -> Vm {
    let kernel = from_boot_partition(card, "vmlinuz-*", dir);
    let initrd = from_boot_partition(card, "initrd.img-*", dir);
    let cmdline = std::fs::read_to_string(from_boot_partition(card, "cmdline.txt", dir)).unwrap();
    assert!(cmdline.contains("root=LABEL=tallybox-root"), "{cmdline}");
    // The Pi's console is its UART; the virt machine's is ttyAMA0. The
    // hub's log goes to the console too: here there is no screen or
    // printer to show the setup code on.
    let append = format!(
        "{} console=ttyAMA0 systemd.journald.forward_to_console=1",
        cmdline.trim()
    );
    let (http, mqtt) = ports.unwrap_or_else(|| (free_port(), free_port()));
    let mut qemu = Command::new("qemu-system-aarch64");
    qemu.args(["-M", "virt", "-cpu", "cortex-a72", "-smp", "2", "-m", "1024"])
        .args(["-accel", "tcg,thread=multi"])
        .args([
            "-kernel",
            kernel.to_str().unwrap(),
            "-initrd",
            initrd.to_str().unwrap(),
        ])
        .args([
            "-append",
            &append,
            "-netdev",
            &user_net((http, 80), (mqtt, 1883), ""),
        ])
        // No boot ROM: the kernel is given, and Debian's qemu-system-arm
        // does not bring the network card's (ipxe-qemu).
        .args(["-device", "virtio-net-pci,netdev=net,romfile="])
        .args(["-drive", &format!("file={},format=raw,if=virtio", card.display())]);
    Vm::start(qemu, dir.join(format!("console-{start}.log")), http, mqtt)
}

#[test]
fn the_card_boots_grows_sets_up_and_sells() {
    let image = std::env::var("TALLYBOX_IMAGE")
        .expect("TALLYBOX_IMAGE: the image to boot (scripts/test-image builds it and sets this)");
    let dir = tempfile::tempdir().unwrap();
    let card = card_from(Path::new(&image), dir.path());
    let started = Instant::now();
    let vm = boot(&card, dir.path(), "first", None);

    // First start: the root file system grows from the image's size to the card's.
    let console = vm.wait_console("root file system on", Duration::from_secs(600));
    let grown = console
        .lines()
        .find(|l| l.contains("root file system on"))
        .unwrap()
        .to_string();
    let mib: Vec<u64> = grown.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert!(mib.len() == 2 && mib[0] < 2048 && mib[1] > 3500, "{grown}");
    eprintln!("{:>5.0} s  {grown}", started.elapsed().as_secs_f64());

    // The hub starts by itself and answers on the forwarded port.
    let health = vm.until("/healthz", Duration::from_secs(600), |vm| {
        let (status, body) = vm.get("/healthz");
        (status == 200).then_some(body)
    });
    eprintln!("{:>5.0} s  /healthz: {health}", started.elapsed().as_secs_f64());
    let (status, body) = vm.get("/api/v1/transactions");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("setup_required")),
        "{body}"
    );

    // The owner sets up with the code this hub made at its first start.
    let console = vm.wait_console("setup_code=", Duration::from_secs(60));
    let line = console.lines().rev().find(|l| l.contains("setup_code=")).unwrap();
    let raw = vm.console();
    let hub_lines: Vec<&str> = raw.lines().filter(|l| l.contains("tallybox-launch[")).collect();
    assert!(
        !hub_lines.is_empty() && hub_lines.iter().all(|l| !l.contains('\x1b')),
        "the hub's log in the journal has colour codes: {:?}",
        hub_lines.first()
    );
    let at = line.find("setup_code=").unwrap() + "setup_code=".len();
    let code: String = line[at..].chars().take(9).collect();
    let (status, body) = status_json(
        ureq::post(&format!("http://127.0.0.1:{}/api/v1/setup", vm.http))
            .send_json(json!({"code": code, "password": OWNER})),
    );
    assert_eq!(status, 200, "setup with {code:?}: {body}");
    let web = WebClient::login(vm.http, None, OWNER).expect("the owner signs in");
    let (_, settings) = web.get("/api/v1/settings");
    assert_eq!(settings["pairing_required"], true, "{settings}");

    // A checkout pairs with the owner's code and sells.
    let till = Terminal::start("T1", vm.mqtt);
    till.keys("A500#");
    till.card("approved");
    till.wait_screen("NOT PAIRED", Duration::from_secs(60));
    till.keys("C");
    let (status, opened) = web.send("POST", "/api/v1/pairing", json!({}));
    assert_eq!(status, 201, "{opened}");
    let pairing = opened["code"].as_str().unwrap().to_string();
    till.keys(&format!("D5{pairing}#"));
    till.wait_screen("PAIRED", Duration::from_secs(60));
    till.keys("C");
    let slip = till.sale(1250, "approved");
    assert!(slip.contains("APPROVED"), "{slip}");
    let (_, list) = web.get("/api/v1/transactions?status=approved");
    let sales = list["items"].as_array().cloned().unwrap_or_default();
    assert!(
        sales
            .iter()
            .any(|t| t["terminal_id"] == "T1" && t["amount"] == 1250),
        "{list}"
    );
    eprintln!(
        "{:>5.0} s  sold through the image's hub",
        started.elapsed().as_secs_f64()
    );

    // No Pi here: the troubleshooting page names the hub's own checkout's
    // parts that did not start.
    let parts = vm.until("terminal.T0.parts on the page", Duration::from_secs(60), |_| {
        let (_, checks) = web.get("/api/v1/checks");
        checks["checks"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["id"] == "terminal.T0.parts").cloned())
    });
    assert_eq!(parts["status"], "fail", "{parts}");
    assert!(parts["evidence"].as_str().unwrap().contains("OLED"), "{parts}");
    let console = plain(&vm.console());
    let failed: Vec<&str> = console
        .lines()
        .filter(|l| l.contains("Failed to start"))
        .collect();
    assert!(failed.is_empty(), "units failed: {failed:#?}");

    // The power is pulled (qemu killed) and comes back: the owner's
    // password, the sale and the pairing are there; the card is not grown
    // again; the same checkout sells again.
    till.keys("C");
    let ports = (vm.http, vm.mqtt);
    drop(vm);
    let again = boot(&card, dir.path(), "second", Some(ports));
    again.until("/healthz after the power cut", Duration::from_secs(600), |vm| {
        (vm.get("/healthz").0 == 200).then_some(())
    });
    eprintln!(
        "{:>5.0} s  back after a power cut",
        started.elapsed().as_secs_f64()
    );
    let web = WebClient::login(again.http, None, OWNER).expect("the owner's password survived");
    let (_, list) = web.get("/api/v1/transactions?status=approved");
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["amount"] == 1250),
        "the sale was lost: {list}"
    );
    assert!(
        !plain(&again.console()).contains("root file system on"),
        "first-boot ran again"
    );
    till.wait_screen("Ready", Duration::from_secs(120));
    let slip = till.sale(990, "approved");
    assert!(
        slip.contains("APPROVED"),
        "the paired checkout sells after the power cut: {slip}"
    );
    eprintln!("{:>5.0} s  sold again", started.elapsed().as_secs_f64());
}
