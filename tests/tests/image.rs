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
//! The checkout's card boots the same way, with a simulated GPIO chip
//! (the kernel's gpio-sim) for its keypad and swipe reader and the ESC/POS
//! printer model on a serial port: `hw-test` passes its parts, and it pairs
//! and sells from its keypad and reader (see that test).
//!
//! Slow (software emulation of an arm64 machine): not part of `cargo test`.
//! Run by `scripts/test-image`, which builds the images first and passes
//! them in `TALLYBOX_IMAGE` and `TALLYBOX_CHECKOUT_IMAGE` (a `.img` or
//! `.img.xz`).

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
use tallybox_terminal::devices::model::pty::PtyPrinter;

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
/// A test's own directory (the card's file, the consoles), kept when the
/// test fails, but for files of more than 64 MiB (the card), so what the
/// machines printed can be read after.
struct Scratch(Option<tempfile::TempDir>);

impl Scratch {
    fn new() -> Scratch {
        Scratch(Some(tempfile::tempdir().unwrap()))
    }

    fn path(&self) -> &Path {
        self.0.as_ref().expect("the directory").path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let Some(dir) = self.0.take() else { return };
        if !std::thread::panicking() {
            return;
        }
        let kept = dir.keep();
        for entry in std::fs::read_dir(&kept).into_iter().flatten().flatten() {
            if entry.metadata().is_ok_and(|m| m.is_file() && m.len() > 64 << 20) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        eprintln!("the failed test's consoles are kept in {}", kept.display());
    }
}

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
    write_onto(
        card,
        dir,
        &format!(
            "rm /etc/tallybox/tallybox.toml\n\
             write {} /etc/tallybox/tallybox.toml\n\
             sif /etc/tallybox/tallybox.toml mode 0100644\n\
             write {} /etc/tallybox/acquirer-keys\n\
             sif /etc/tallybox/acquirer-keys mode 0100640\n\
             sif /etc/tallybox/acquirer-keys gid {gid}\n",
            settings.display(),
            acquirer.master_keys_path().display()
        ),
    );
    let written = run("debugfs", &["-R", "cat /etc/tallybox/tallybox.toml", &root]);
    assert!(written.contains(ACQUIRER_IN_GUEST), "{written}");
}

/// Runs `commands` (debugfs's, one a line) on the card's root file system,
/// before its first start.
fn write_onto(card: &Path, dir: &Path, commands: &str) {
    let root = root_fs(card);
    // debugfs writes past a journal: on a file system that still needs its
    // journal replayed, the first mount would replay the old bitmaps over
    // what it wrote (image/build leaves the root clean).
    let stats = run("debugfs", &["-R", "stats", &root]);
    assert!(
        !stats.contains("needs_recovery"),
        "the image's root file system needs its journal replayed"
    );
    let file = dir.join("debugfs-commands");
    std::fs::write(&file, commands).unwrap();
    run("debugfs", &["-w", "-f", file.to_str().unwrap(), &root]);
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

/// The machine a card boots in, as far as both images share it: the
/// kernel, initramfs and command line from the card's boot partition, the
/// card on `card`, a network card `mac` on the network `netdev` (id `net`).
fn machine(card: &Card, file: &Path, dir: &Path, netdev: &str, mac: &str) -> Command {
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
    let mut qemu = Command::new("qemu-system-aarch64");
    qemu.args(["-M", "virt", "-cpu", "cortex-a72", "-smp", "2", "-m", "1024"])
        .args(["-accel", "tcg,thread=multi"])
        .args([
            "-kernel",
            kernel.to_str().unwrap(),
            "-initrd",
            initrd.to_str().unwrap(),
        ])
        .args(["-append", &append, "-netdev", netdev])
        // No boot ROM: the kernel is given, and Debian's qemu-system-arm
        // does not bring the network card's (ipxe-qemu).
        .args([
            "-device",
            &format!("virtio-net-pci,netdev=net,mac={mac},romfile="),
        ])
        .args(["-drive", &card.qemu_drive()]);
    qemu
}

/// `,guestfwd=…`: each connection the machine opens to `in_guest`
/// (ADDRESS:PORT) runs a netcat to `port` on this machine's loopback.
fn forward(in_guest: &str, port: u16) -> String {
    let (ip, guest_port) = in_guest.split_once(':').unwrap();
    format!(",guestfwd=tcp:{ip}:{guest_port}-cmd:busybox nc 127.0.0.1 {port}")
}

/// Starts the hub's machine on `card` (served from the file `file`);
/// `start` names this start's console log; `ports`: the web and MQTT ports
/// of an earlier start, for clients to find it again; `acquirer`:
/// acquirer-sim's.
fn boot(card: &Card, file: &Path, dir: &Path, start: &str, ports: Option<(u16, u16)>, acquirer: u16) -> Vm {
    let (http, mqtt) = ports.unwrap_or_else(|| (free_port(), free_port()));
    let netdev = user_net((http, 80), (mqtt, 1883), &forward(ACQUIRER_IN_GUEST, acquirer));
    let qemu = machine(card, file, dir, &netdev, HUB_MAC);
    Vm::start(qemu, dir.join(format!("console-{start}.log")), http, mqtt)
}

/// The units the machine's console says failed to start.
fn failed_units(vm: &Vm) -> Vec<String> {
    plain(&vm.console())
        .lines()
        .filter(|l| l.contains("Failed to start"))
        .map(str::to_string)
        .collect()
}

/// The owner sets up the hub in `vm` with the code it made at its first
/// start (on its console here: no screen or printer), and signs in.
fn set_up(vm: &Vm) -> WebClient {
    let console = vm.wait_console("setup_code=", Duration::from_secs(60));
    let line = console.lines().rev().find(|l| l.contains("setup_code=")).unwrap();
    let at = line.find("setup_code=").unwrap() + "setup_code=".len();
    let code: String = line[at..].chars().take(9).collect();
    let (status, body) = status_json(
        ureq::post(&format!("http://127.0.0.1:{}/api/v1/setup", vm.http))
            .send_json(json!({"code": code, "password": OWNER})),
    );
    assert_eq!(status, 200, "setup with {code:?}: {body}");
    WebClient::login(vm.http, None, OWNER).expect("the owner signs in")
}

#[test]
fn the_card_boots_grows_sets_up_and_sells() {
    let image = std::env::var("TALLYBOX_IMAGE")
        .expect("TALLYBOX_IMAGE: the image to boot (scripts/test-image builds it and sets this)");
    let dir = Scratch::new();
    let file = card_from(Path::new(&image), dir.path());
    let acquirer = AcquirerSim::start();
    link_to(&file, &acquirer, dir.path());
    let card = Card::serve(&file, Cache::Honest);
    let started = Instant::now();
    let vm = boot(&card, &file, dir.path(), "first", None, acquirer.port);

    // First start: the root file system grows from the image's size to the card's.
    let grown = console_line(&vm, "root file system on", Duration::from_secs(600));
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

    let web = set_up(&vm);
    let raw = vm.console();
    let hub_lines: Vec<&str> = raw.lines().filter(|l| l.contains("tallybox-launch[")).collect();
    assert!(
        !hub_lines.is_empty() && hub_lines.iter().all(|l| !l.contains('\x1b')),
        "the hub's log in the journal has colour codes: {:?}",
        hub_lines.first()
    );
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
    let failed = failed_units(&vm);
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

/// The network cards' addresses: each machine's first, and the hub's
/// card on the shop's LAN in the two-card test.
const HUB_MAC: &str = "52:54:00:12:34:56";
const CHECKOUT_MAC: &str = "52:54:00:12:34:57";
const HUB_LAN_MAC: &str = "52:54:00:12:34:58";
/// Where the checkout in its machine finds the hub's broker (forwarded to
/// the hub on this machine).
const HUB_IN_GUEST: &str = "10.0.2.100:1883";
/// The test card the guest's agent swipes, as slips and reports mask it.
const SWIPED: &str = "622202******0005";
/// The checkout's test files on the card (tests/guest/checkout-hands).
const TEST_FILES: &str = "/usr/local/lib/tallybox-test";

/// The test's hands at the checkout's counter: commands to the guest's
/// `checkout-hands serve` through a virtio serial port (a Unix socket on
/// this side), each answered with its output and `== end STATUS`.
struct Hands {
    port: std::io::BufReader<std::os::unix::net::UnixStream>,
}

impl Hands {
    /// The port once qemu has connected to `listener` and the guest has
    /// said it is ready.
    fn connect(listener: &std::os::unix::net::UnixListener, vm: &Vm, limit: Duration) -> Hands {
        listener.set_nonblocking(true).unwrap();
        let stream = vm.until("qemu on the hands' socket", Duration::from_secs(30), |_| {
            listener.accept().ok().map(|(s, _)| s)
        });
        stream.set_nonblocking(false).unwrap();
        let mut hands = Hands {
            port: std::io::BufReader::new(stream),
        };
        let said = hands.read_until("== ready", limit);
        assert!(said.ends_with("== ready"), "{said}");
        hands
    }

    /// What the guest says up to the line starting with `mark`, that line included.
    fn read_until(&mut self, mark: &str, limit: Duration) -> String {
        use std::io::BufRead;
        self.port.get_ref().set_read_timeout(Some(limit)).unwrap();
        let mut said = String::new();
        loop {
            let mut line = String::new();
            match self.port.read_line(&mut line) {
                Ok(0) => panic!("the machine closed the hands' port; it said:\n{said}"),
                Ok(_) => {}
                Err(e) => panic!("nothing more from the hands' port ({e}); it said:\n{said}"),
            }
            let line = line.trim_end();
            said.push_str(line);
            if line.starts_with(mark) {
                return said;
            }
            said.push('\n');
        }
    }

    /// Runs `command` in the guest: what it said and its exit status.
    fn run(&mut self, command: &str, limit: Duration) -> (String, i32) {
        use std::io::Write;
        writeln!(self.port.get_mut(), "{command}").unwrap();
        let said = self.read_until("== end ", limit);
        let (output, status) = said.rsplit_once("== end ").unwrap();
        (output.to_string(), status.trim().parse().unwrap())
    }

    /// The owner opens a pairing on the hub's page (`web`) and its code is
    /// pressed on the keypad of the checkout in `card`, until the page
    /// shows that checkout paired.
    fn pair(&mut self, web: &WebClient, card: &Vm, id: &str) {
        let (status, opened) = web.send("POST", "/api/v1/pairing", json!({}));
        assert_eq!(status, 201, "{opened}");
        self.keys(&format!("D5{}#", opened["code"].as_str().unwrap()));
        card.until("the checkout paired", Duration::from_secs(120), |_| {
            listed(web, id).filter(|t| t["pairing"] == "paired")
        });
        self.keys("C");
    }

    /// Presses `keys` on the checkout's keypad; fails if the agent did.
    fn keys(&mut self, keys: &str) {
        let (said, status) = self.run(&format!("keys {keys}"), Duration::from_secs(300));
        assert_eq!(status, 0, "pressing {keys}: {said}");
    }
}

/// `hw-test`'s line for `part` in `report`, whatever its verdict.
fn verdict<'a>(report: &'a str, part: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.trim_start().starts_with(part))
        .unwrap_or_else(|| panic!("no {part} in the report:\n{report}"))
}

/// Writes the test's hands onto a checkout's card before its first start:
/// gpio-sim (from `parts`, checked to be built for the card's kernel) and
/// the agent, `tests/guest/checkout-hands` and its two units, and
/// `defaults` added to `/etc/default/tallybox-terminal`.
fn give_hands(file: &Path, dir: &Path, parts: &Path, defaults: &str) {
    // The module is for the card's kernel, or the guest cannot load it.
    let kernel = from_boot_partition(file, "vmlinuz-*", dir);
    let release = kernel.file_name().unwrap().to_str().unwrap()["vmlinuz-".len()..].to_string();
    let module = parts.join("gpio-sim.ko");
    let vermagic = run("modinfo", &["-F", "vermagic", module.to_str().unwrap()]);
    assert!(
        vermagic.starts_with(&format!("{release} ")),
        "gpio-sim.ko is built for {vermagic:?}, the card runs {release}: \
         scripts/test-gpio --build-only --kernel {release}"
    );

    let root = root_fs(file);
    let mut settings = run("debugfs", &["-R", "cat /etc/default/tallybox-terminal", &root]);
    settings.push_str(defaults);
    let defaults_file = dir.join("tallybox-terminal.default");
    std::fs::write(&defaults_file, settings).unwrap();
    let guest = Path::new(env!("CARGO_MANIFEST_DIR")).join("guest");
    let units = "/etc/systemd/system";
    let mut commands = format!("mkdir {TEST_FILES}\n");
    for (from, to, mode) in [
        (
            guest.join("checkout-hands"),
            format!("{TEST_FILES}/checkout-hands"),
            "0100755",
        ),
        (module, format!("{TEST_FILES}/gpio-sim.ko"), "0100644"),
        (
            parts.join("gpio_sim_agent"),
            format!("{TEST_FILES}/gpio_sim_agent"),
            "0100755",
        ),
        (defaults_file, "/etc/default/tallybox-terminal".into(), "0100644"),
    ]
    .into_iter()
    .chain(
        ["checkout-hands-setup.service", "checkout-hands.service"]
            .map(|unit| (guest.join(unit), format!("{units}/{unit}"), "0100644")),
    ) {
        commands.push_str(&format!(
            "rm {to}\nwrite {} {to}\nsif {to} mode {mode}\n",
            from.display()
        ));
    }
    for unit in ["checkout-hands-setup.service", "checkout-hands.service"] {
        commands.push_str(&format!(
            "symlink {units}/multi-user.target.wants/{unit} {units}/{unit}\n"
        ));
    }
    write_onto(file, dir, &commands);
    let listing = run("debugfs", &["-R", &format!("ls -l {TEST_FILES}"), &root]);
    assert!(listing.contains("gpio_sim_agent"), "{listing}");
}

/// The checkout's machine on `netdev`, with the printer model on its PCI
/// serial port and the hands' virtio serial port on a socket in `dir`
/// (named for this `start`), whose listener is returned for
/// [`Hands::connect`].
fn checkout_machine(
    card: &Card,
    file: &Path,
    dir: &Path,
    netdev: &str,
    printer: &PtyPrinter,
    start: &str,
) -> (Command, std::os::unix::net::UnixListener) {
    let socket = dir.join(format!("hands-{start}.sock"));
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let mut qemu = machine(card, file, dir, netdev, CHECKOUT_MAC);
    qemu.args([
        "-chardev",
        &format!("serial,id=printer,path={}", printer.path.display()),
        "-device",
        "pci-serial,chardev=printer",
        "-device",
        "virtio-serial-pci",
        "-chardev",
        &format!("socket,id=hands,path={}", socket.display()),
        "-device",
        "virtserialport,chardev=hands,name=tallybox.hands",
    ]);
    (qemu, listener)
}

/// The first line of `vm`'s console that contains `needle`, once there is
/// one (within `limit`).
fn console_line(vm: &Vm, needle: &str, limit: Duration) -> String {
    let console = vm.wait_console(needle, limit);
    console
        .lines()
        .find(|l| l.contains(needle))
        .unwrap()
        .trim()
        .to_string()
}

/// The line that says the hands' chip is ready.
fn hands_ready(vm: &Vm) -> String {
    console_line(vm, "checkout-hands: gpiochip", Duration::from_secs(60))
}

/// The checkout's SD card, booted on its own kernel: its keypad and swipe
/// reader are GPIO lines of the kernel's simulated chip (gpio-sim) named
/// as the Pi's header lines, its printer the host's ESC/POS model on the
/// machine's PCI serial port. `hw-test` passes the keypad, the swipe
/// reader (a reader module, then a raw read head), the printer and the
/// drawer; then the checkout pairs with a hub on this machine by keys
/// pressed on its keypad and sells a swiped card, and its slips come off
/// the printer model.
///
/// `TALLYBOX_CHECKOUT_IMAGE`: the checkout's image; `TALLYBOX_GPIO_SIM`: a
/// directory with `gpio-sim.ko` built for the image's kernel and the
/// aarch64 `gpio_sim_agent` (scripts/test-image sets both).
#[test]
fn the_checkout_card_reads_its_keypad_and_swipe_reader_and_sells() {
    use tallybox_e2e::paper::drawer_kicks;
    use tallybox_e2e::procs::{Hub, STORE};

    let image = std::env::var("TALLYBOX_CHECKOUT_IMAGE")
        .expect("TALLYBOX_CHECKOUT_IMAGE: the checkout's image (scripts/test-image builds it and sets this)");
    let parts = PathBuf::from(
        std::env::var("TALLYBOX_GPIO_SIM")
            .expect("TALLYBOX_GPIO_SIM: gpio-sim.ko and gpio_sim_agent (scripts/test-gpio --build-only)"),
    );
    let dir = Scratch::new();
    let file = card_from(Path::new(&image), dir.path());
    let started = Instant::now();
    let hub = Hub::start_as_shipped();
    give_hands(
        &file,
        dir.path(),
        &parts,
        &format!("TALLYBOX_HUB=mqtt://{HUB_IN_GUEST}\nTALLYBOX_STORE={STORE}\n"),
    );

    // The machine: the hub's broker forwarded in, the printer model on a
    // PCI serial port, the hands on a virtio serial port.
    let card = Card::serve(&file, Cache::Honest);
    let printer = PtyPrinter::start().unwrap();
    let netdev = format!("user,id=net,restrict=on{}", forward(HUB_IN_GUEST, hub.mqtt));
    let (qemu, listener) = checkout_machine(&card, &file, dir.path(), &netdev, &printer, "first");
    let vm = Vm::start(qemu, dir.path().join("console-checkout.log"), 0, 0);
    let mut hands = Hands::connect(&listener, &vm, Duration::from_secs(900));
    eprintln!("{:>5.0} s  {}", started.elapsed().as_secs_f64(), hands_ready(&vm));

    // hw-test, as the checkout's service user: through a reader module
    // (strobe and data), then a raw read head (F2F from the kernel's edge
    // timestamps).
    for kind in ["gpio", "f2f"] {
        let (report, status) = hands.run(&format!("hw-test {kind}"), Duration::from_secs(600));
        eprintln!(
            "{:>5.0} s  hw-test ({kind}), exit {status}:\n{report}",
            started.elapsed().as_secs_f64()
        );
        for part in ["printer", "cash drawer", "swipe reader", "keypad"] {
            assert!(
                verdict(&report, part).contains("PASS"),
                "{part} ({kind}) did not pass:\n{report}"
            );
        }
        assert!(verdict(&report, "swipe reader").contains(SWIPED), "{report}");
        assert!(verdict(&report, "keypad").contains("all 16 keys"), "{report}");
        assert_eq!(status, 0, "hw-test failed a part:\n{report}");
    }
    let tests = wait_printed(&vm, &printer, 2);
    assert!(
        tests
            .iter()
            .all(|s| s.contains("TALLYBOX PRINTER TEST") && s.contains("打印测试")),
        "{tests:#?}"
    );
    assert_eq!(drawer_kicks(&printer), vec![2, 2], "one drawer pulse a run");

    // The checkout's service, back on its parts, finds the hub; the owner
    // opens a pairing and the code is keyed on the checkout's keypad.
    let web = hub.web();
    let id = checkout_id(&vm);
    hands.pair(&web, &vm, &id);
    eprintln!(
        "{:>5.0} s  {id} paired by its keypad",
        started.elapsed().as_secs_f64()
    );

    // A sale keyed on the keypad and swiped: the hub keeps it approved,
    // the checkout prints both copies.
    hands.keys("A1250#");
    let (said, status) = hands.run("swipe", Duration::from_secs(300));
    assert_eq!(status, 0, "the swipe: {said}");
    let sale = vm.until("the sale at the hub", Duration::from_secs(120), |_| {
        hub.transactions("")
            .into_iter()
            .find(|t| t["terminal_id"] == id.as_str() && t["status"] == "approved")
    });
    assert_eq!(sale["amount"], 1250, "{sale}");
    let slips = wait_printed(&vm, &printer, 4);
    let customer = &slips[3];
    for needle in ["持卡人存根 CARDHOLDER COPY", "消费 SALE", SWIPED, "CNY 12.50"] {
        assert!(customer.contains(needle), "{needle:?} missing:\n{customer}");
    }
    assert!(slips[2].contains("商户存根 MERCHANT COPY"), "{}", slips[2]);
    let failed = failed_units(&vm);
    assert!(failed.is_empty(), "units failed: {failed:#?}");
    eprintln!(
        "{:>5.0} s  sold CNY 12.50 by keypad and swipe; slips printed",
        started.elapsed().as_secs_f64()
    );
}

/// The slips on `printer` once there are `count`, as the checkout in `vm`
/// prints them (at 9600 baud, from an emulated machine).
fn wait_printed(vm: &Vm, printer: &PtyPrinter, count: usize) -> Vec<String> {
    vm.until(&format!("{count} slips"), Duration::from_secs(120), |_| {
        let slips = tallybox_e2e::paper::printed(printer);
        (slips.len() >= count).then_some(slips)
    })
}

/// The approved sale of `amount` by `terminal` on the hub's page.
fn approved(web: &WebClient, terminal: &str, amount: u64) -> Option<serde_json::Value> {
    let (_, list) = web.get("/api/v1/transactions?status=approved");
    list["items"]
        .as_array()?
        .iter()
        .find(|t| t["terminal_id"] == terminal && t["amount"] == amount)
        .cloned()
}

/// The id the checkout in `card` said it connected to the hub with (the
/// image gives each card its own); waits for it.
fn checkout_id(card: &Vm) -> String {
    const SAID: &str = "connected to broker terminal=";
    let console = plain(&card.wait_console(SAID, Duration::from_secs(600)));
    let (_, after) = console.split_once(SAID).unwrap();
    after.split_whitespace().next().unwrap().to_string()
}

/// The checkout `id`'s entry on the hub's page, once it is there.
fn listed(web: &WebClient, id: &str) -> Option<serde_json::Value> {
    let (_, list) = web.get("/api/v1/terminals");
    list["terminals"]
        .as_array()?
        .iter()
        .find(|t| t["id"] == id)
        .cloned()
}

/// Two cards, one shop: the hub's image and the checkout's boot as two
/// machines on one LAN of their own (qemu's datagram network between two
/// loopback ports: nothing else on it, no router, so each card takes a
/// link-local address as its network settings allow; a shop's router
/// would give them addresses by DHCP). The checkout finds the hub by
/// mDNS; the owner sets the hub up on its page, opens a pairing, and the
/// code is pressed on the checkout's keypad (gpio-sim); a sale keyed and
/// swiped there is approved through acquirer-sim on this machine and both
/// copies come off the checkout's printer model. Then the checkout's power
/// is cut while a sale waits on the acquirer (its answers held up by a
/// proxy): the hub finishes it, and the checkout recalls it at its next
/// start and prints its slips.
#[test]
fn two_cards_one_shop_find_each_other_pair_and_sell() {
    use tallybox_e2e::proxy::Proxy;

    let images = ["TALLYBOX_IMAGE", "TALLYBOX_CHECKOUT_IMAGE", "TALLYBOX_GPIO_SIM"].map(|name| {
        std::env::var(name)
            .map(PathBuf::from)
            .unwrap_or_else(|_| panic!("{name}: scripts/test-image sets it"))
    });
    let [hub_image, checkout_image, parts] = images;
    let dir = Scratch::new();
    let (hub_dir, till_dir) = (dir.path().join("hub"), dir.path().join("checkout"));
    for d in [&hub_dir, &till_dir] {
        std::fs::create_dir(d).unwrap();
    }
    let started = Instant::now();
    let since = || started.elapsed().as_secs_f64();

    let hub_file = card_from(&hub_image, &hub_dir);
    let acquirer = AcquirerSim::start();
    let link = Proxy::start(acquirer.port);
    link_to(&hub_file, &acquirer, &hub_dir);
    // The test's own network card on the hub takes qemu's address alone:
    // a link-local address on it too would be in the LAN's subnet, and
    // mDNS could offer the checkout that one.
    let uplink = hub_dir.join("uplink.network");
    std::fs::write(
        &uplink,
        format!("[Match]\nMACAddress={HUB_MAC}\n\n[Network]\nDHCP=yes\nLinkLocalAddressing=no\n"),
    )
    .unwrap();
    let network = "/etc/systemd/network/10-test-uplink.network";
    write_onto(
        &hub_file,
        &hub_dir,
        &format!(
            "write {} {network}\nsif {network} mode 0100644\n",
            uplink.display()
        ),
    );
    let till_file = card_from(&checkout_image, &till_dir);
    // No TALLYBOX_HUB: the checkout looks for the hub by mDNS.
    give_hands(&till_file, &till_dir, &parts, "");

    // The LAN: each machine's datagrams to the other's loopback port.
    let (hub_port, till_port) = (free_port(), free_port());
    let lan = |id: &str, local: u16, remote: u16| {
        format!(
            "dgram,id={id},local.type=inet,local.host=127.0.0.1,local.port={local},\
             remote.type=inet,remote.host=127.0.0.1,remote.port={remote}"
        )
    };
    // The hub's machine: its first card on qemu's user network (the
    // page and the acquirer's link for this test), its second on the LAN.
    let hub_card = Card::serve(&hub_file, Cache::Honest);
    let (http, mqtt) = (free_port(), free_port());
    let netdev = user_net((http, 80), (mqtt, 1883), &forward(ACQUIRER_IN_GUEST, link.port));
    let mut qemu = machine(&hub_card, &hub_file, &hub_dir, &netdev, HUB_MAC);
    qemu.args([
        "-netdev",
        &lan("lan", hub_port, till_port),
        "-device",
        &format!("virtio-net-pci,netdev=lan,mac={HUB_LAN_MAC},romfile="),
    ]);
    let hub = Vm::start(qemu, hub_dir.join("console-hub.log"), http, mqtt);
    // The checkout's machine: the LAN is its only network.
    let till_card = Card::serve(&till_file, Cache::Honest);
    let printer = PtyPrinter::start().unwrap();
    let checkout = |start: &str| {
        let (qemu, listener) = checkout_machine(
            &till_card,
            &till_file,
            &till_dir,
            &lan("net", till_port, hub_port),
            &printer,
            start,
        );
        let vm = Vm::start(qemu, till_dir.join(format!("console-{start}.log")), 0, 0);
        let hands = Hands::connect(&listener, &vm, Duration::from_secs(900));
        (vm, hands)
    };
    let (till, mut hands) = checkout("first");
    eprintln!("{:>5.0} s  {}", since(), hands_ready(&till));

    hub.until("/healthz", Duration::from_secs(900), |vm| {
        (vm.get("/healthz").0 == 200).then_some(())
    });
    let web = set_up(&hub);
    eprintln!("{:>5.0} s  the hub is set up", since());

    // The checkout found the hub by mDNS on the LAN and connected.
    let found = console_line(&till, "found the hub by mDNS", Duration::from_secs(600));
    assert!(found.contains("169.254."), "the hub's LAN address: {found}");
    let id = checkout_id(&till);
    eprintln!("{:>5.0} s  {found}", since());

    // The owner pairs it; the code is pressed on its keypad.
    hands.pair(&web, &till, &id);
    eprintln!("{:>5.0} s  {id} paired by its keypad", since());

    // A sale keyed and swiped: approved at the hub, both copies printed.
    hands.keys("A1250#");
    let (said, status) = hands.run("swipe", Duration::from_secs(300));
    assert_eq!(status, 0, "the swipe: {said}");
    hub.until("the sale approved at the hub", Duration::from_secs(120), |_| {
        approved(&web, &id, 1250)
    });
    let printed = wait_printed(&till, &printer, 2);
    assert!(printed[0].contains("商户存根 MERCHANT COPY"), "{}", printed[0]);
    for needle in ["持卡人存根 CARDHOLDER COPY", SWIPED, "CNY 12.50"] {
        assert!(printed[1].contains(needle), "{needle:?} missing:\n{}", printed[1]);
    }
    hands.keys("C");
    eprintln!("{:>5.0} s  sold CNY 12.50; both copies printed", since());

    // The power goes while a sale waits on the acquirer.
    link.delay(Duration::from_millis(3000));
    hands.keys("A990#");
    let (said, status) = hands.run("swipe", Duration::from_secs(300));
    assert_eq!(status, 0, "the swipe: {said}");
    hub.until(
        "the sale waiting on the acquirer",
        Duration::from_secs(60),
        |_| {
            let (_, list) = web.get("/api/v1/transactions?status=pending");
            list["items"]
                .as_array()?
                .iter()
                .any(|t| t["amount"] == 990)
                .then_some(())
        },
    );
    till_card.cut();
    till.kill();
    drop(hands);
    link.delay(Duration::ZERO);
    eprintln!("{:>5.0} s  the checkout's power cut mid-sale", since());
    let sale = hub.until("the hub finishing the sale", Duration::from_secs(120), |_| {
        approved(&web, &id, 990)
    });
    assert_eq!(
        tallybox_e2e::paper::printed(&printer).len(),
        2,
        "nothing printed for the sale before the cut"
    );

    // At its next start the checkout recalls it and prints its slips.
    till_card.power_on();
    let (till, _hands) = checkout("second");
    till.wait_console("recalling the sale in flight", Duration::from_secs(900));
    let printed = wait_printed(&till, &printer, 4);
    for needle in ["持卡人存根 CARDHOLDER COPY", SWIPED, "CNY 9.90"] {
        assert!(printed[3].contains(needle), "{needle:?} missing:\n{}", printed[3]);
    }
    let (_, list) = web.get("/api/v1/transactions?status=approved");
    let nines = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["amount"] == 990)
        .count();
    assert_eq!(nines, 1, "charged once: {list}");
    assert!(
        web.get("/api/v1/transactions?status=pending").1["items"]
            .as_array()
            .is_some_and(|a| a.is_empty()),
        "nothing left pending"
    );
    for (name, vm) in [("hub", &hub), ("checkout", &till)] {
        let failed = failed_units(vm);
        assert!(failed.is_empty(), "{name}: units failed: {failed:#?}");
    }
    eprintln!(
        "{:>5.0} s  {} recalled after the cut and printed; charged once",
        since(),
        sale["request_id"]
    );
}
