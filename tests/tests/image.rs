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
//! Last, two paired checkouts sell without pause while the power is cut
//! five times at random moments, and the three books (the checkouts'
//! screens, the card's database, the acquirer's log) must agree.
//!
//! The card is the power-cut harness's model (`tallybox_e2e::card`, a card
//! that honours flushes and loses what its cache held at a cut), and the
//! hub's acquirer is `tallybox acquirer-sim` on this machine, on a real ISO
//! 8583 link into the guest, set in the card's `/etc/tallybox` before its
//! first start as a shop's installer would.
//!
//! Slow (software emulation of an arm64 machine): not part of `cargo test`.
//! Run by `scripts/test-image`, which builds the image first and passes it
//! in `TALLYBOX_IMAGE` (a `.img` or `.img.xz`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tallybox_e2e::books::{self, Book, Cashiers, Sale, Seen};
use tallybox_e2e::card::{Cache, Card};
use tallybox_e2e::cuts::{self, Back};
use tallybox_e2e::free_port;
use tallybox_e2e::procs::{AcquirerSim, Terminal};
use tallybox_e2e::vm::{plain, user_net, Vm};
use tallybox_e2e::web::{status_json, WebClient};

/// The boot partition's first byte (image/build: 4 MiB in).
const BOOT_OFFSET: u64 = 4 * 1024 * 1024;
const CARD_BYTES: u64 = 4 * 1024 * 1024 * 1024;
const OWNER: &str = "a-shop-owner-password";
/// Where the hub in the machine finds the acquirer (forwarded to acquirer-sim).
const ACQUIRER_IN_GUEST: &str = "10.0.2.100:8583";
/// Power cuts while the checkouts sell.
const CUTS: usize = 5;
/// What the console says when the root file system does not mount.
const MOUNT_FAILED: &str = "Failed to mount";

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

/// The root file system's first byte: the second partition's, from the
/// card's MBR.
fn root_offset(card: &Path) -> u64 {
    let mut mbr = [0u8; 512];
    std::io::Read::read_exact(&mut std::fs::File::open(card).unwrap(), &mut mbr).unwrap();
    assert_eq!(&mbr[510..], [0x55, 0xaa], "an MBR");
    let entry = &mbr[0x1ce..0x1de];
    u64::from(u32::from_le_bytes(entry[8..12].try_into().unwrap())) * 512
}

/// The card's root file system, as e2fsprogs names a file system inside a file.
fn root_fs(card: &Path) -> String {
    format!("{}?offset={}", card.display(), root_offset(card))
}

/// Sets the hub on `card` to sell through `acquirer` (reached in the
/// machine at [`ACQUIRER_IN_GUEST`]), with its terminal master keys in
/// `/etc/tallybox/acquirer-keys`, readable by the hub's group alone.
fn link_to(card: &Path, acquirer: &AcquirerSim, dir: &Path) {
    let root = root_fs(card);
    // debugfs writes past a journal: on a file system that still needs its
    // journal replayed, the first mount would replay the old bitmaps over
    // what it wrote (image/build leaves the root clean).
    let stats = run("debugfs", &["-R", "stats", &root]);
    assert!(
        !stats.contains("needs_recovery"),
        "the image's root file system needs its journal replayed"
    );
    let groups = run("debugfs", &["-R", "cat /etc/group", &root]);
    let gid = groups
        .lines()
        .find_map(|l| l.strip_prefix("tallybox:x:"))
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("no tallybox group on the card:\n{groups}"))
        .to_string();
    let settings = dir.join("tallybox.toml");
    std::fs::write(
        &settings,
        format!(
            "acquirer = \"iso8583://{ACQUIRER_IN_GUEST}\"\n\
             acquirer_master_keys = \"/etc/tallybox/acquirer-keys\"\n\
             acquirer_timeout_ms = 4000\nreversal_retry_secs = 2\n"
        ),
    )
    .unwrap();
    let commands = dir.join("debugfs-commands");
    std::fs::write(
        &commands,
        format!(
            "rm /etc/tallybox/tallybox.toml\n\
             write {} /etc/tallybox/tallybox.toml\n\
             sif /etc/tallybox/tallybox.toml mode 0100644\n\
             write {} /etc/tallybox/acquirer-keys\n\
             sif /etc/tallybox/acquirer-keys mode 0100640\n\
             sif /etc/tallybox/acquirer-keys gid {gid}\n",
            settings.display(),
            acquirer.master_keys_path().display()
        ),
    )
    .unwrap();
    run("debugfs", &["-w", "-f", commands.to_str().unwrap(), &root]);
    let written = run("debugfs", &["-R", "cat /etc/tallybox/tallybox.toml", &root]);
    assert!(written.contains(ACQUIRER_IN_GUEST), "{written}");
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

/// Starts the machine on `card` (served from the file `file`); `start`
/// names this start's console log; `ports`: the web and MQTT ports of an
/// earlier start, for clients to find it again; `acquirer`: acquirer-sim's.
fn boot(card: &Card, file: &Path, dir: &Path, start: &str, ports: Option<(u16, u16)>, acquirer: u16) -> Vm {
    let kernel = from_boot_partition(file, "vmlinuz-*", dir);
    let initrd = from_boot_partition(file, "initrd.img-*", dir);
    let cmdline = std::fs::read_to_string(from_boot_partition(file, "cmdline.txt", dir)).unwrap();
    assert!(cmdline.contains("root=LABEL=tallybox-root"), "{cmdline}");
    // The Pi's console is its UART; the virt machine's is ttyAMA0. The
    // hub's log goes to the console too: here there is no screen or
    // printer to show the setup code on.
    let append = format!(
        "{} console=ttyAMA0 systemd.journald.forward_to_console=1",
        cmdline.trim()
    );
    let (http, mqtt) = ports.unwrap_or_else(|| (free_port(), free_port()));
    let (guest_ip, guest_port) = ACQUIRER_IN_GUEST.split_once(':').unwrap();
    // Each connection the hub opens to the acquirer runs a netcat to it.
    let acquirer_link = format!(",guestfwd=tcp:{guest_ip}:{guest_port}-cmd:busybox nc 127.0.0.1 {acquirer}");
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
            &user_net((http, 80), (mqtt, 1883), &acquirer_link),
        ])
        // No boot ROM: the kernel is given, and Debian's qemu-system-arm
        // does not bring the network card's (ipxe-qemu).
        .args(["-device", "virtio-net-pci,netdev=net,romfile="])
        .args(["-drive", &card.qemu_drive()]);
    Vm::start(qemu, dir.join(format!("console-{start}.log")), http, mqtt)
}

#[test]
fn the_card_boots_grows_sets_up_and_sells() {
    let image = std::env::var("TALLYBOX_IMAGE")
        .expect("TALLYBOX_IMAGE: the image to boot (scripts/test-image builds it and sets this)");
    let dir = tempfile::tempdir().unwrap();
    let file = card_from(Path::new(&image), dir.path());
    let acquirer = AcquirerSim::start();
    link_to(&file, &acquirer, dir.path());
    let card = Card::serve(&file, Cache::Honest);
    let started = Instant::now();
    let vm = boot(&card, &file, dir.path(), "first", None, acquirer.port);

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
    let till = Terminal::start_with("T1", vm.mqtt, &["--heartbeat-secs", "5"]);
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
    card.cut();
    vm.kill();
    card.power_on();
    let again = boot(&card, &file, dir.path(), "second", Some(ports), acquirer.port);
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
    till.keys("C");

    // Two paired checkouts sell without pause; the power is cut five times.
    let t2 = Terminal::start_with("T2", ports.1, &["--heartbeat-secs", "5"]);
    t2.wait_screen("NOT PAIRED", Duration::from_secs(60));
    t2.keys("C");
    t2.pair_through(&web);
    let earlier = [
        (500, Seen::NotCharged),
        (1250, Seen::Approved),
        (990, Seen::Approved),
    ];
    let before = earlier.len();
    let book = Arc::new(Mutex::new(Book {
        sales: earlier
            .into_iter()
            .map(|(amount, seen)| Sale {
                terminal: "T1".into(),
                amount,
                seen,
            })
            .collect(),
        terminal_kills: 0,
    }));
    let cashiers = Cashiers::start(vec![till, t2], cuts::PACE, &book);
    let (vm, cuts) = cuts::cut_rounds(
        &card,
        again,
        CUTS,
        (OWNER, MOUNT_FAILED),
        started,
        |round| {
            boot(
                &card,
                &file,
                dir.path(),
                &format!("cut-{round}"),
                Some(ports),
                acquirer.port,
            )
        },
        |_| {},
    );
    let terminals = cashiers.stop();
    assert!(
        cuts::nothing_pending(ports.0, OWNER),
        "sales still pending two minutes after the last cut"
    );
    let failed: Vec<String> = plain(&vm.console())
        .lines()
        .filter(|l| l.contains("Failed to start"))
        .map(str::to_string)
        .collect();
    card.power_off_cleanly();
    vm.kill();

    // The card read here: its root file system copied out of the card and
    // checked (the journal replayed as the next boot would: e2fsck cannot
    // replay it inside the card's file, where it reopens the file system
    // without the partition's offset), the hub's data copied out and compared.
    let root = dir.path().join("root.img");
    run(
        "dd",
        &[
            &format!("if={}", file.display()),
            &format!("of={}", root.display()),
            &format!("skip={}", root_offset(&file)),
            "iflag=skip_bytes",
            "bs=4M",
            "conv=sparse",
            "status=none",
        ],
    );
    let root = root.to_str().unwrap();
    let fsck = Command::new("e2fsck").args(["-f", "-p", root]).output().unwrap();
    run(
        "debugfs",
        &[
            "-R",
            &format!("rdump /var/lib/tallybox {}", dir.path().display()),
            root,
        ],
    );
    let conn = rusqlite::Connection::open(dir.path().join("tallybox/tallybox.db")).unwrap();
    let book = book.lock().unwrap();
    let books = books::compare(&book, &conn, &acquirer);
    eprintln!(
        "{:>5.0} s  {CUTS} power cuts: came back {:?}; the cache kept {} blocks and lost {}; \
         e2fsck {:?}; {books}",
        started.elapsed().as_secs_f64(),
        cuts.backs,
        cuts.kept,
        cuts.lost,
        fsck.status.code(),
    );
    assert!(failed.is_empty(), "units failed after the cuts: {failed:#?}");
    assert_eq!(
        cuts.backs.keys().collect::<Vec<_>>(),
        [&Back::Whole],
        "{:?}",
        cuts.backs
    );
    assert!(
        fsck.status.code().is_some_and(|c| c <= 1),
        "e2fsck: {:?} {}",
        fsck.status,
        String::from_utf8_lossy(&fsck.stdout)
    );
    books.assert_agree(&terminals);
    assert!(
        book.sales.len() > CUTS + before,
        "only {} sales",
        book.sales.len()
    );
}
