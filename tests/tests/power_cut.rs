//! The power-cut harness. The hub runs in a qemu machine on Debian's
//! kernel with its data on ext4 (mounted as the SD image mounts its root:
//! checked at boot, `noatime,commit=5`), on a card with a volatile write
//! cache (`tallybox_e2e::card`). Three paired checkouts on this machine sell
//! through it without pause; the acquirer (`tallybox acquirer-sim`, on a real
//! ISO 8583 link into the machine) charges. The power is cut at random
//! moments: qemu is killed and the card keeps a random half of what its
//! cache still held. The machine boots again, the checkouts find out what
//! became of their sales, and selling goes on. At the end the three books
//! are compared as in the crash harness (`tallybox_e2e::books`).
//!
//! With a card that honours flushes nothing may be lost: every sale a
//! cashier saw approved is in the database and charged once, and the file
//! system and the audit chain are whole. With a card that lies about
//! flushes, answered sales can vanish: the harness counts them and checks
//! that every loss was told to the owner (`store.history` red) rather than
//! passing unnoticed.
//!
//! Slow (software emulation): not part of `cargo test`. Run by
//! `scripts/power-cut`, which builds the kernel and initramfs and sets:
//! `TALLYBOX_POWER_CUT_KERNEL`, `_INITRD`, `_ROUNDS` (cuts) and `_CACHE`
//! (`honest` or `lying`).

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tallybox_e2e::books::{self, Book, Cashiers};
use tallybox_e2e::card::{Cache, Card};
use tallybox_e2e::cuts::{self, Back, Cuts};
use tallybox_e2e::free_port;
use tallybox_e2e::procs::{AcquirerSim, Terminal};
use tallybox_e2e::vm::{tail, user_net, Vm};
use tallybox_e2e::web::{WebClient, OWNER_PASSWORD};

const CARD_MIB: u64 = 256;
/// Where the machine finds the acquirer (forwarded to acquirer-sim).
const ACQUIRER_IN_GUEST: &str = "10.0.2.100:8583";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name}: scripts/power-cut sets it"))
}

fn run(command: &mut Command) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// A fresh card: an ext4 file system holding the hub's settings, the
/// acquirer's terminal keys and the script the machine runs.
fn make_card(dir: &Path, acquirer: &AcquirerSim) -> std::path::PathBuf {
    let files = dir.join("card-files");
    std::fs::create_dir_all(files.join("hub")).unwrap();
    std::fs::copy(acquirer.master_keys_path(), files.join("master.keys")).unwrap();
    std::fs::write(
        files.join("tallybox.toml"),
        format!(
            "store_name = \"Corner Shop\"\nacquirer = \"iso8583://{ACQUIRER_IN_GUEST}\"\n\
             acquirer_master_keys = \"/data/master.keys\"\nacquirer_timeout_ms = 4000\n\
             reversal_retry_secs = 2\nsupervisor_pin = \"8888\"\n"
        ),
    )
    .unwrap();
    std::fs::write(
        files.join("run-hub"),
        format!(
            "export NO_COLOR=1\nexec /usr/bin/tallybox serve --config /data/tallybox.toml \
             --data-dir /data/hub --http 0.0.0.0:8080 --mqtt 0.0.0.0:1883 --no-mdns \
             --devices none --owner-password {OWNER_PASSWORD}\n"
        ),
    )
    .unwrap();
    let card = dir.join("card.img");
    let out = run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "tallybox-data", "-d"])
        .arg(&files)
        .arg(&card)
        .arg(format!("{CARD_MIB}M")));
    assert!(card.exists(), "mkfs.ext4: {out}");
    card
}

fn boot(card: &Card, dir: &Path, round: usize, ports: (u16, u16), acquirer: u16) -> Vm {
    let (guest_ip, guest_port) = ACQUIRER_IN_GUEST.split_once(':').unwrap();
    // Each connection the hub opens to the acquirer runs a netcat to it.
    let acquirer_link = format!(",guestfwd=tcp:{guest_ip}:{guest_port}-cmd:busybox nc 127.0.0.1 {acquirer}");
    let mut qemu = Command::new("qemu-system-x86_64");
    qemu.args([
        "-accel",
        "tcg,thread=multi",
        "-smp",
        "2",
        "-m",
        "768",
        "-no-reboot",
    ])
    .args(["-kernel", &env("TALLYBOX_POWER_CUT_KERNEL")])
    .args(["-initrd", &env("TALLYBOX_POWER_CUT_INITRD")])
    .args(["-append", "console=ttyS0 quiet panic=-1"])
    .args([
        "-netdev",
        &user_net((ports.0, 8080), (ports.1, 1883), &acquirer_link),
    ])
    .args(["-device", "virtio-net-pci,netdev=net,romfile="])
    .args(["-drive", &card.qemu_drive()]);
    Vm::start(qemu, dir.join(format!("console-{round}.log")), ports.0, ports.1)
}

/// The exit code of the boot's `e2fsck -p` (0 clean, 1 mended, more: not).
fn boot_check(vm: &Vm) -> i32 {
    let console = vm.console();
    let line = console
        .lines()
        .find_map(|l| l.strip_prefix("power-cut: e2fsck "))
        .expect("the boot's e2fsck line");
    line.trim().parse().expect("an exit code")
}

#[test]
fn power_cuts_lose_no_answered_sale() {
    let rounds: usize = env("TALLYBOX_POWER_CUT_ROUNDS")
        .parse()
        .expect("a number of cuts");
    let cache = match env("TALLYBOX_POWER_CUT_CACHE").as_str() {
        "honest" => Cache::Honest,
        "lying" => Cache::Lying,
        other => panic!("TALLYBOX_POWER_CUT_CACHE: honest or lying, not {other}"),
    };
    let dir = tempfile::tempdir().unwrap();
    let acquirer = AcquirerSim::start();
    let card_file = make_card(dir.path(), &acquirer);
    let card = Card::serve(&card_file, cache);
    let ports = (free_port(), free_port());
    let started = Instant::now();
    let vm = boot(&card, dir.path(), 0, ports, acquirer.port);
    let back = cuts::came_back(&vm, OWNER_PASSWORD, "power-cut: mount failed");
    assert_eq!(back, Back::Whole, "the first boot:\n{}", tail(&vm.console()));
    eprintln!("{:>5.0} s  the hub is up", started.elapsed().as_secs_f64());

    // Three checkouts, paired as a shop's are.
    let owner = WebClient::login(ports.0, None, OWNER_PASSWORD).expect("the owner signs in");
    let terminals: Vec<Terminal> = (1..=3)
        .map(|i| {
            let t = Terminal::start_with(&format!("T{i}"), ports.1, &["--heartbeat-secs", "5"]);
            t.wait_screen("NOT PAIRED", Duration::from_secs(60));
            t.keys("C");
            t.pair_through(&owner);
            t
        })
        .collect();
    let (_, settings) = owner.get("/api/v1/settings");
    assert_eq!(settings["pairing_required"], true, "{settings}");
    let book = Arc::new(Mutex::new(Book::default()));
    let cashiers = Cashiers::start(terminals, cuts::PACE, &book);

    let mut boot_checks = Vec::new();
    let (vm, cuts) = cuts::cut_rounds(
        &card,
        vm,
        rounds,
        (OWNER_PASSWORD, "power-cut: mount failed"),
        started,
        |round| boot(&card, dir.path(), round, ports, acquirer.port),
        |vm| boot_checks.push(boot_check(vm)),
    );
    let Cuts {
        backs,
        kept,
        lost,
        told,
    } = cuts;
    let terminals = cashiers.stop();
    let took = started.elapsed();

    // The last sales settle, then the machine is shut down cleanly and its
    // card read here: the file system checked, the database copied out.
    assert!(
        cuts::nothing_pending(ports.0, OWNER_PASSWORD),
        "sales still pending two minutes after the last cut"
    );
    card.power_off_cleanly();
    vm.kill();
    // As the machine's next boot would: the journal replayed, then checked.
    let fsck = Command::new("e2fsck")
        .args(["-f", "-p"])
        .arg(&card_file)
        .output()
        .unwrap();
    let copied = dir.path().join("copied");
    run(Command::new("debugfs")
        .args(["-R", &format!("rdump /hub {}", dir.path().display())])
        .arg(&card_file));
    std::fs::rename(dir.path().join("hub"), &copied).unwrap();
    let conn = rusqlite::Connection::open(copied.join("tallybox.db")).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap_or_else(|e| e.to_string());
    let book = book.lock().unwrap();
    let books = books::compare(&book, &conn, &acquirer);
    let (flushes, written_back) = card.counts();
    eprintln!(
        "power-cut harness ({cache:?} card): {took:?}, {rounds} cuts planned, came back {backs:?}; \
         at the cuts the cache kept {kept} blocks and lost {lost}; {flushes} flushes, {written_back} blocks written back; \
         boot e2fsck codes {boot_checks:?}; e2fsck at the end {:?}; the database's integrity check: {integrity}; \
         {books}; losses told: {told:?}",
        fsck.status.code(),
    );
    // What the hub said of the checkouts' records it could not take.
    let not_taken: Vec<String> = (0..=rounds)
        .filter_map(|round| std::fs::read_to_string(dir.path().join(format!("console-{round}.log"))).ok())
        .flat_map(|console| {
            console
                .lines()
                .filter(|l| l.contains("was not taken") || l.contains("could not be compared"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    if !books.problems.is_empty() || !not_taken.is_empty() {
        eprintln!(
            "where the books disagree:\n{}\nentries of the checkouts' records the hub did not take:\n{}",
            books.problems.join("\n"),
            not_taken.join("\n")
        );
    }
    match cache {
        Cache::Honest => {
            // 0: clean; 1: corrected (orphaned files of killed processes).
            assert!(
                fsck.status.code().is_some_and(|c| c <= 1),
                "e2fsck: {:?} {}",
                fsck.status,
                String::from_utf8_lossy(&fsck.stdout)
            );
            assert!(
                boot_checks.iter().all(|&c| c <= 1),
                "the boot's e2fsck found what it could not mend: {boot_checks:?}"
            );
            assert_eq!(backs.keys().collect::<Vec<_>>(), [&Back::Whole], "{backs:?}");
            assert_eq!(integrity, "ok", "the database after the last cut");
            books.assert_agree(&terminals);
            assert!(book.sales.len() > rounds, "only {} sales", book.sales.len());
        }
        Cache::Lying => {
            // Losses may happen; none may pass unnoticed.
            assert!(
                books.lost_approvals == 0 || !told.is_empty() || backs.contains_key(&Back::Recovery),
                "{} answered approvals vanished and the owner was never told:\n{}",
                books.lost_approvals,
                books.problems.join("\n")
            );
        }
    }
}
