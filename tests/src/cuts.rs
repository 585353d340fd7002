//! Power cuts on a machine running a hub, shared by the power-cut harness
//! and the SD image's boot test: while the cashiers sell, the power is cut
//! at random moments (qemu killed, the card model keeping what its cache
//! kept), the machine boots again, and how the hub came back is counted.
//! A loss the hub tells the owner of is accepted on the page, as she would.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{json, Value};

use crate::books::Pace;
use crate::card::Card;
use crate::vm::Vm;
use crate::wait_for;
use crate::web::WebClient;

/// How the cashiers sell through cuts: a sale may wait out a whole boot.
pub const PACE: Pace = Pace {
    kill_one_in: None,
    outcome_within: Duration::from_secs(600),
};

/// How the hub came back after a cut.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Back {
    /// Serving, its history whole.
    Whole,
    /// Serving, refusing sales: `store.history` red until the owner accepts.
    HistoryLost,
    /// The database is damaged: the recovery page.
    Recovery,
    /// The file system did not mount.
    NoFileSystem,
}

/// Waits for the hub to answer after a boot and says how it came back;
/// `mount_failed` is what the console says when the data's file system
/// does not mount.
pub fn came_back(vm: &Vm, password: &str, mount_failed: &str) -> Back {
    vm.until("the hub after the boot", Duration::from_secs(600), |vm| {
        if vm.console().contains(mount_failed) {
            return Some(Back::NoFileSystem);
        }
        let (status, body) = vm.get("/healthz");
        match (status, body["status"].as_str()) {
            (503, Some("recovery")) => Some(Back::Recovery),
            (200, _) => {
                let owner = WebClient::login(vm.http, None, password).ok()?;
                let (_, checks) = owner.get("/api/v1/checks");
                let history = history_check(&checks)?;
                Some(if history["status"] == "fail" {
                    Back::HistoryLost
                } else {
                    Back::Whole
                })
            }
            _ => None,
        }
    })
}

/// The troubleshooting page's `store.history` check.
pub fn history_check(checks: &Value) -> Option<Value> {
    checks["checks"]
        .as_array()?
        .iter()
        .find(|c| c["id"] == "store.history")
        .cloned()
}

/// What the cuts did.
#[derive(Debug, Default)]
pub struct Cuts {
    /// How the hub came back, counted.
    pub backs: BTreeMap<Back, usize>,
    /// Blocks the card's cache kept and lost at the cuts.
    pub kept: usize,
    pub lost: usize,
    /// What the page said of each loss it told.
    pub told: Vec<String>,
}

/// Cuts the power `rounds` times, 2–12 s apart, on the machine `vm` runs
/// from `card`; `boot(round)` starts it again and `booted(&vm)` looks at
/// each boot. Stops early when the hub cannot serve. The machine running
/// after the last cut.
pub fn cut_rounds(
    card: &Card,
    mut vm: Vm,
    rounds: usize,
    (password, mount_failed): (&str, &str),
    started: Instant,
    mut boot: impl FnMut(usize) -> Vm,
    mut booted: impl FnMut(&Vm),
) -> (Vm, Cuts) {
    let mut rng = rand::thread_rng();
    let mut cuts = Cuts::default();
    for round in 1..=rounds {
        std::thread::sleep(Duration::from_millis(rng.gen_range(2_000..12_000)));
        let cut = card.cut();
        vm.kill();
        (cuts.kept, cuts.lost) = (cuts.kept + cut.kept, cuts.lost + cut.lost);
        card.power_on();
        vm = boot(round);
        let back = came_back(&vm, password, mount_failed);
        booted(&vm);
        eprintln!(
            "{:>5.0} s  cut {round}: the cache kept {} blocks and lost {}; {back:?}",
            started.elapsed().as_secs_f64(),
            cut.kept,
            cut.lost
        );
        *cuts.backs.entry(back.clone()).or_default() += 1;
        match back {
            Back::Whole => {}
            Back::HistoryLost => {
                let owner = WebClient::login(vm.http, None, password).expect("the owner signs in");
                let (_, checks) = owner.get("/api/v1/checks");
                cuts.told
                    .push(history_check(&checks).unwrap()["evidence"].to_string());
                let (status, body) = owner.send("POST", "/api/v1/history/accept-loss", json!({}));
                assert_eq!(status, 204, "accept the loss: {body}");
            }
            Back::Recovery | Back::NoFileSystem => break,
        }
    }
    (vm, cuts)
}

/// Waits until no sale is pending on the hub at `http` (the last sales
/// settled with the acquirer); false after two minutes.
pub fn nothing_pending(http: u16, password: &str) -> bool {
    let owner = WebClient::login(http, None, password).expect("the owner signs in");
    wait_for(Duration::from_secs(120), || {
        let (_, list) = owner.get("/api/v1/transactions?status=pending&limit=1");
        list["items"]
            .as_array()
            .is_some_and(|i| i.is_empty())
            .then_some(())
    })
    .is_some()
}
