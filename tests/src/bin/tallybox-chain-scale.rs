//! `tallybox-chain-scale`, run by `scripts/chain-scale`: a chain's busy day
//! at head office. PostgreSQL from Debian's packages, mosquitto, two
//! `tallybox-hq` instances; a real hub's outbox of one busy day recorded,
//! then replayed by simulated stores (100 by default) while three real
//! hubs each sell the same day through their own uplink. Checks that head
//! office holds every entry once; prints and writes
//! `target/bench/chain-scale.json`.

use std::time::{Duration, Instant};

use tallybox_e2e::bench::chain::{ingest_rate, record_outbox};
use tallybox_e2e::chain::{Hq, Postgres};
use tallybox_e2e::procs::{Hub, Mosquitto, STORE};
use tallybox_e2e::wait_for;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let (stores, sales) = (arg("--stores", 100) as usize, arg("--sales", 2_000));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    eprintln!("chain-scale: recording a real hub's day of {sales} sales");
    let day = record_outbox(&runtime, sales);
    let pg = Postgres::start();
    let broker = Mosquitto::start();
    let hq = Hq::start(&pg, broker.port, &["hq-a", "hq-b"]);
    let hubs: Vec<(String, Hub)> = (1..=3)
        .map(|i| {
            let store = format!("REAL{i}");
            let hub = Hub::start_in_chain(&hq.enrol(&store, broker.port), "");
            (store, hub)
        })
        .collect();
    eprintln!(
        "chain-scale: {stores} simulated stores replay {} entries each while 3 hubs sell {sales} sales each",
        day.len()
    );
    let started = Instant::now();
    let selling: Vec<_> = hubs
        .iter()
        .map(|(_, hub)| runtime.spawn(tallybox_e2e::bench::load::sales(hub.mqtt, STORE, 2, sales)))
        .collect();
    let simulated = ingest_rate(&runtime, &pg, broker.port, &hq, &day, stores, "SIM")?;
    for s in selling {
        runtime.block_on(s)?;
    }
    let mut real_entries = 0;
    for (store, hub) in &hubs {
        let at_hub = tallybox_e2e::chain::recorded_outbox(&hub.data_dir())
            .last()
            .map_or(0, |e| e.seq);
        let held = wait_for(Duration::from_secs(120), || {
            let held = pg.number(&format!(
                "SELECT count(*) FROM entries WHERE store_id = '{store}'"
            ));
            (held as u64 == at_hub).then_some(held)
        });
        anyhow::ensure!(
            held.is_some(),
            "store {store}: head office does not hold all {at_hub} entries"
        );
        real_entries += at_hub;
    }
    let elapsed = started.elapsed();
    let total = pg.number("SELECT count(*) FROM entries");
    let expected = (day.len() * stores) as i64 + real_entries as i64;
    anyhow::ensure!(
        total == expected,
        "head office holds {total} entries, expected {expected}"
    );
    let lag = pg.query(
        "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY lag)::numeric, 1),
                round(percentile_cont(0.99) WITHIN GROUP (ORDER BY lag)::numeric, 1)
         FROM (SELECT extract(epoch FROM received_at - at::timestamptz) * 1000 AS lag FROM entries
               WHERE store_id LIKE 'REAL%') l",
    );
    let size = pg.query("SELECT pg_size_pretty(pg_database_size('tallybox_hq'))");
    let alerts = pg.number("SELECT count(*) FROM alerts");
    let result = serde_json::json!({
        "simulated_stores": stores, "real_hubs": 3, "sales_per_store": sales,
        "entries_per_store_day": day.len(), "entries_total": total,
        "simulated_ingest_entries_per_s": simulated.round(),
        "whole_run_s": elapsed.as_secs_f64(),
        "real_hubs_lag_ms_p50_p99": lag, "database_size": size, "alerts": alerts,
    });
    println!("{}", serde_json::to_string_pretty(&result)?);
    anyhow::ensure!(
        alerts == 0,
        "head office raised alerts: {}",
        pg.query("SELECT what FROM alerts")
    );
    std::fs::create_dir_all("target/bench")?;
    std::fs::write(
        "target/bench/chain-scale.json",
        serde_json::to_vec_pretty(&result)?,
    )?;
    Ok(())
}
