//! Soak: 20 terminals sell back to back against one hub while its resident
//! memory and open file descriptors are sampled every few seconds. After the
//! warm-up, neither may keep growing: the last quarter of the run must sit
//! where the second quarter did (memory within 10% + 4 MiB, descriptors
//! within 4). Every answered sale must be stored.
//!
//! The bank is a process of its own on an ISO 8583 link, as in a shop: the
//! built-in simulated acquirer keeps every approval of the open batch in
//! memory until settlement (as a bank does), which a first 10-minute run
//! showed as the hub "growing" by 25 MiB at each doubling of that table.
//!
//! `TALLYBOX_SOAK_SECS` sets the length (default 60; `scripts/soak` runs 600).

use std::time::{Duration, Instant};

use tallybox_e2e::bench::load::throughput;
use tallybox_e2e::bench::rss_mib;
use tallybox_e2e::procs::{AcquirerSim, Hub, STORE};
use tallybox_e2e::strs;

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len().max(1) as f64
}

#[test]
fn twenty_terminals_for_a_while_and_nothing_grows() {
    let secs: u64 = std::env::var("TALLYBOX_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let bank = AcquirerSim::start();
    let hub = Hub::start_with(None, &strs(&bank.hub_flags(bank.port)));
    let pid = hub.pid().expect("hub pid");
    let run = Duration::from_secs(secs);
    let port = hub.mqtt;
    let load = std::thread::spawn(move || {
        tokio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(throughput(port, STORE, 20, run))
    });

    let every = Duration::from_secs((secs / 20).clamp(1, 15));
    let started = Instant::now();
    let mut samples: Vec<(f64, f64, usize)> = Vec::new();
    while !load.is_finished() {
        std::thread::sleep(every);
        samples.push((
            started.elapsed().as_secs_f64(),
            rss_mib(pid, "VmRSS"),
            open_fds(pid),
        ));
    }
    let done = load.join().expect("load");
    let stored = tallybox::store::Store::open(&hub.data_dir())
        .unwrap()
        .connection()
        .query_row(
            "SELECT count(*) FROM transactions WHERE status = 'approved'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap();

    for (at, rss, fds) in &samples {
        eprintln!("soak t={at:6.1}s rss={rss:6.1} MiB fds={fds}");
    }
    let quarter = samples.len() / 4;
    assert!(quarter >= 2, "too few samples: {}", samples.len());
    let second = &samples[quarter..2 * quarter];
    let last = &samples[samples.len() - quarter..];
    let rss = |s: &[(f64, f64, usize)]| mean(&s.iter().map(|x| x.1).collect::<Vec<_>>());
    let fds = |s: &[(f64, f64, usize)]| s.iter().map(|x| x.2).max().unwrap_or(0);
    eprintln!(
        "soak: {} sales in {:?} ({:.0}/s), {stored} stored; rss {:.1} -> {:.1} MiB, fds {} -> {}",
        done.approved,
        done.elapsed,
        done.approved as f64 / done.elapsed.as_secs_f64(),
        rss(second),
        rss(last),
        fds(second),
        fds(last)
    );
    assert_eq!(done.approved as i64, stored, "every answered sale is stored");
    assert!(done.approved > 1000, "the load hardly ran: {}", done.approved);
    assert!(
        rss(last) <= rss(second) * 1.10 + 4.0,
        "memory grew: {:.1} -> {:.1} MiB",
        rss(second),
        rss(last)
    );
    assert!(
        fds(last) <= fds(second) + 4,
        "file descriptors grew: {} -> {}",
        fds(second),
        fds(last)
    );
}
