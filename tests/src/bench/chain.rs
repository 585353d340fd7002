//! A chain's figures: head office's ingest into PostgreSQL against
//! PostgreSQL's own bare insert rate in the same run, and the lag from a
//! shop's commit to head office's row. Used by `tallybox-bench` and by the
//! scale run (`tallybox-chain-scale`).

use std::time::{Duration, Instant};

use tallybox::chain::wire::{EnrolCode, Entry, BATCH_MAX};

use crate::chain::{recorded_outbox, replay_store, Hq, Postgres};
use crate::procs::{Hub, STORE};
use crate::{free_port, wait_for};

/// A real hub's outbox after `sales` sales: joined to a chain whose broker
/// is nowhere, so nothing was acknowledged or pruned.
pub fn record_outbox(runtime: &tokio::runtime::Runtime, sales: u64) -> Vec<Entry> {
    let code = EnrolCode {
        broker: format!("mqtt://127.0.0.1:{}", free_port()),
        store: "REC".into(),
        hq: hex::encode(
            ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>())
                .verifying_key()
                .to_bytes(),
        ),
        secret: hex::encode(rand::random::<[u8; 16]>()),
    }
    .encode();
    let hub = Hub::start_in_chain(&code, "");
    runtime.block_on(super::load::sales(hub.mqtt, STORE, 4, sales));
    recorded_outbox(&hub.data_dir())
}

/// PostgreSQL's own rate for `entries` as `stores` stores, in head office's
/// batches, one transaction each, into a table shaped like head office's
/// (no signature, chain or transaction rows): entries a second.
pub async fn bare_insert_rate(pg: &Postgres, entries: &[Entry], stores: usize) -> anyhow::Result<f64> {
    let (client, connection) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute(
            "CREATE TABLE bare (store_id text, seq bigint, kind text, at text, body text, hash bytea,
                                received_at timestamptz DEFAULT now(), PRIMARY KEY (store_id, seq))",
        )
        .await?;
    let started = Instant::now();
    for store in 0..stores {
        let store = format!("B{store:03}");
        for batch in entries.chunks(BATCH_MAX) {
            let seqs: Vec<i64> = batch.iter().map(|e| e.seq as i64).collect();
            let kinds: Vec<&str> = batch.iter().map(|e| e.kind.as_str()).collect();
            let ats: Vec<&str> = batch.iter().map(|e| e.at.as_str()).collect();
            let bodies: Vec<&str> = batch.iter().map(|e| e.body.as_str()).collect();
            let hashes: Vec<Vec<u8>> = batch
                .iter()
                .map(|e| hex::decode(&e.hash).unwrap_or_default())
                .collect();
            client
                .execute(
                    "INSERT INTO bare (store_id, seq, kind, at, body, hash)
                     SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::bytea[])",
                    &[&store, &seqs, &kinds, &ats, &bodies, &hashes],
                )
                .await?;
        }
    }
    Ok((entries.len() * stores) as f64 / started.elapsed().as_secs_f64())
}

/// `stores` simulated stores replaying `entries` at once into head office;
/// entries a second, once head office holds them all.
pub fn ingest_rate(
    runtime: &tokio::runtime::Runtime,
    pg: &Postgres,
    broker: u16,
    hq: &Hq,
    entries: &[Entry],
    stores: usize,
    prefix: &str,
) -> anyhow::Result<f64> {
    let codes: Vec<String> = (0..stores)
        .map(|i| hq.enrol(&format!("{prefix}{i:03}"), broker))
        .collect();
    let started = Instant::now();
    runtime.block_on(async {
        let replays: Vec<_> = codes
            .iter()
            .map(|code| {
                let (code, entries) = (code.clone(), entries.to_vec());
                tokio::spawn(async move { replay_store(broker, &code, &entries).await })
            })
            .collect();
        for replay in replays {
            replay.await??;
        }
        anyhow::Ok(())
    })?;
    let elapsed = started.elapsed();
    let held = pg.number(&format!(
        "SELECT count(*) FROM entries WHERE store_id LIKE '{prefix}%'"
    ));
    anyhow::ensure!(
        held as usize == entries.len() * stores,
        "head office holds {held} of {} entries",
        entries.len() * stores
    );
    Ok(held as f64 / elapsed.as_secs_f64())
}

/// A real hub selling `sales` sales from two checkouts while head office
/// takes its outbox: the lag from each entry's commit at the shop to its
/// row at head office, p50 and p99 in ms.
pub fn lag(
    runtime: &tokio::runtime::Runtime,
    pg: &Postgres,
    broker: u16,
    hq: &Hq,
    store: &str,
    sales: u64,
) -> anyhow::Result<(f64, f64)> {
    let hub = Hub::start_in_chain(&hq.enrol(store, broker), "");
    runtime.block_on(super::load::sales(hub.mqtt, STORE, 2, sales));
    let last = wait_for(Duration::from_secs(60), || {
        let held = pg.number(&format!(
            "SELECT count(*) FROM entries WHERE store_id = '{store}'"
        ));
        (held >= 2 * sales as i64).then_some(held)
    });
    anyhow::ensure!(last.is_some(), "head office did not get store {store}'s entries");
    let row = pg.query(&format!(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lag), percentile_cont(0.99) WITHIN GROUP (ORDER BY lag)
         FROM (SELECT extract(epoch FROM received_at - at::timestamptz) * 1000 AS lag FROM entries
               WHERE store_id = '{store}') l"
    ));
    let (p50, p99) = row
        .split_once('|')
        .ok_or_else(|| anyhow::anyhow!("no lag figures: {row}"))?;
    Ok((p50.parse()?, p99.parse()?))
}
