//! Head office's PostgreSQL: the schema, and every statement `tallybox-hq`
//! runs. Each store's entries are kept once, keyed by store and number;
//! `stores.next_seq` and `last_hash` say how far each store's chain is held,
//! and are moved only under the store row's lock, so several `tallybox-hq`
//! instances on one database take each entry exactly once.

use tokio_postgres::{Client, NoTls, Transaction};

use tallybox::chain::wire::{Entry, GENESIS};

/// Numbered steps; a step is added, never edited.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE stores (
        store_id    text PRIMARY KEY,
        name        text NOT NULL DEFAULT '',
        public_key  text,
        revoked_at  timestamptz,
        next_seq    bigint NOT NULL DEFAULT 1,
        last_hash   bytea NOT NULL,
        last_heard  timestamptz,
        broken      text
    );
    CREATE TABLE enrolments (
        store_id    text PRIMARY KEY REFERENCES stores,
        secret      bytea NOT NULL,
        expires_at  timestamptz NOT NULL
    );
    CREATE TABLE entries (
        store_id    text   NOT NULL REFERENCES stores,
        seq         bigint NOT NULL,
        kind        text   NOT NULL,
        at          text   NOT NULL,
        body        text   NOT NULL,
        hash        bytea  NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (store_id, seq)
    );
    CREATE TABLE txns (
        store_id      text   NOT NULL REFERENCES stores,
        id            bigint NOT NULL,
        seq           bigint NOT NULL,
        terminal_id   text   NOT NULL,
        kind          text   NOT NULL,
        status        text   NOT NULL,
        amount        bigint NOT NULL,
        currency      text   NOT NULL,
        tender        text   NOT NULL,
        brand         text   NOT NULL DEFAULT '',
        masked_pan    text   NOT NULL DEFAULT '',
        provider      text   NOT NULL DEFAULT '',
        response_code text   NOT NULL DEFAULT '',
        local_time    text   NOT NULL,
        created_at    timestamptz NOT NULL,
        PRIMARY KEY (store_id, id)
    );
    CREATE INDEX txns_time ON txns (created_at);
    CREATE INDEX txns_store_time ON txns (store_id, local_time);
    CREATE TABLE alerts (
        id       bigserial PRIMARY KEY,
        store_id text,
        at       timestamptz NOT NULL DEFAULT now(),
        what     text NOT NULL
    );
    CREATE TABLE accounts (
        name          text PRIMARY KEY,
        password_hash text NOT NULL,
        -- NULL: every store (head office); else the stores this account sees.
        stores        text[]
    );
    CREATE TABLE sessions (
        token_hash  bytea PRIMARY KEY,
        account     text NOT NULL REFERENCES accounts ON DELETE CASCADE,
        expires_at  timestamptz NOT NULL
    );
"#,
    // 2: documents head office publishes to every store, and each store's answer.
    r#"
    CREATE TABLE documents (
        kind         text   NOT NULL,
        version      bigint NOT NULL,
        body         jsonb  NOT NULL,
        published_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (kind, version)
    );
    CREATE TABLE document_acks (
        store_id   text   NOT NULL REFERENCES stores,
        kind       text   NOT NULL,
        version    bigint NOT NULL,
        kept_local text[] NOT NULL,
        refused    text,
        at         timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (store_id, kind, version)
    );
"#,
    // 3: wrong passwords lock an account for a while.
    r#"
    ALTER TABLE accounts ADD COLUMN failures int NOT NULL DEFAULT 0;
    ALTER TABLE accounts ADD COLUMN locked_until timestamptz;
"#,
    // 4: each store's troubleshooting checks, checkouts, freezes and closed days.
    r#"
    CREATE TABLE store_checks (
        store_id    text   NOT NULL REFERENCES stores,
        check_id    text   NOT NULL,
        status      text   NOT NULL,
        evidence    text   NOT NULL,
        evidence_zh text   NOT NULL,
        seq         bigint NOT NULL,
        PRIMARY KEY (store_id, check_id)
    );
    CREATE TABLE store_terminals (
        store_id    text    NOT NULL REFERENCES stores,
        terminal_id text    NOT NULL,
        name        text    NOT NULL,
        online      boolean NOT NULL,
        version     text    NOT NULL,
        last_seen   text    NOT NULL,
        seq         bigint  NOT NULL,
        PRIMARY KEY (store_id, terminal_id)
    );
    CREATE TABLE store_freezes (
        store_id text   NOT NULL REFERENCES stores,
        scope    text   NOT NULL,
        reason   text,
        seq      bigint NOT NULL,
        PRIMARY KEY (store_id, scope)
    );
    CREATE TABLE store_days (
        store_id text    NOT NULL REFERENCES stores,
        day      text    NOT NULL,
        totals   jsonb   NOT NULL,
        -- NULL: not compared (head office holds nothing of the store from before that day).
        agrees   boolean,
        PRIMARY KEY (store_id, day)
    );
"#,
    // 5: update bundles head office serves to the shops' hubs.
    r#"
    CREATE TABLE bundles (
        sha256       text   PRIMARY KEY,
        product      text   NOT NULL,
        version      text   NOT NULL,
        bytes        bytea  NOT NULL,
        published_at timestamptz NOT NULL DEFAULT now()
    );
"#,
];

pub async fn connect(url: &str) -> anyhow::Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach PostgreSQL at the --db address: {e}"))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::error!(error = %e, "the PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// Brings the schema up to date; several instances starting at once take
/// turns on an advisory lock.
pub async fn migrate(client: &mut Client) -> anyhow::Result<()> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock(7263001)", &[]).await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS hq_schema (version int NOT NULL)")
        .await?;
    let version: i64 = tx
        .query_one("SELECT coalesce(max(version), 0)::bigint FROM hq_schema", &[])
        .await?
        .get(0);
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(sql).await?;
        tx.execute("INSERT INTO hq_schema (version) VALUES ($1)", &[&(i as i32 + 1)])
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A store as head office knows it, locked for this transaction.
pub struct StoreRow {
    pub public_key: Option<String>,
    /// Why its intake stopped, if it did.
    pub broken: Option<String>,
    pub next_seq: u64,
    pub last_hash: [u8; 32],
}

pub async fn lock_store(tx: &Transaction<'_>, store: &str) -> anyhow::Result<Option<StoreRow>> {
    let row = tx
        .query_opt(
            "SELECT public_key, next_seq, last_hash, broken FROM stores WHERE store_id = $1 FOR UPDATE",
            &[&store],
        )
        .await?;
    Ok(row.map(|r| StoreRow {
        public_key: r.get(0),
        next_seq: r.get::<_, i64>(1) as u64,
        last_hash: r.get::<_, Vec<u8>>(2).try_into().unwrap_or(GENESIS),
        broken: r.get(3),
    }))
}

/// The first of `entries` (all below the store's next number) whose hash
/// is not the hash head office holds for that number.
pub async fn first_differing(
    tx: &Transaction<'_>,
    store: &str,
    entries: &[&Entry],
) -> anyhow::Result<Option<u64>> {
    if entries.is_empty() {
        return Ok(None);
    }
    let seqs: Vec<i64> = entries.iter().map(|e| e.seq as i64).collect();
    let held: std::collections::HashMap<i64, Vec<u8>> = tx
        .query(
            "SELECT seq, hash FROM entries WHERE store_id = $1 AND seq = ANY($2)",
            &[&store, &seqs],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Ok(entries
        .iter()
        .find(|e| {
            held.get(&(e.seq as i64)).map(Vec::as_slice) != e.hash_bytes().as_ref().map(|h| h.as_slice())
        })
        .map(|e| e.seq))
}

/// What a transaction entry's body says (the hub's `Txn` as JSON).
#[derive(serde::Deserialize)]
struct TxnBody {
    id: i64,
    terminal_id: String,
    kind: String,
    status: String,
    amount: i64,
    currency: String,
    #[serde(default = "card")]
    tender: String,
    #[serde(default)]
    brand: Option<String>,
    #[serde(default)]
    masked_pan: Option<String>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    response_code: String,
    local_time: String,
    created_at: chrono::DateTime<chrono::Utc>,
}

/// A check's status as the store noted it.
#[derive(serde::Deserialize)]
struct CheckBody {
    check: String,
    status: String,
    evidence: String,
    #[serde(default)]
    evidence_zh: String,
}

#[derive(serde::Deserialize)]
struct TerminalBody {
    terminal: String,
    name: String,
    online: bool,
    version: String,
    last_seen: String,
}

#[derive(serde::Deserialize)]
struct FreezeBody {
    scope: String,
    frozen: bool,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(serde::Deserialize)]
struct DayBody {
    day: String,
    totals: DayTotals,
}

/// The hub's totals of a day (its report's `Totals`).
#[derive(serde::Deserialize, serde::Serialize)]
struct DayTotals {
    sales: i64,
    sales_minor: i64,
    voids_minor: i64,
    refunds_minor: i64,
    #[serde(default)]
    net_minor: i64,
    #[serde(default)]
    declined: i64,
}

/// A store's answer to a document.
#[derive(serde::Deserialize)]
struct Applied {
    kind: String,
    version: u64,
    kept_local: Vec<String>,
    refused: Option<String>,
}

/// Records a new version of document `kind`; its number.
pub async fn new_document(client: &mut Client, kind: &str, body: &serde_json::Value) -> anyhow::Result<u64> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock(7263002)", &[]).await?;
    let version: i64 = tx
        .query_one(
            "INSERT INTO documents (kind, version, body)
             SELECT $1, coalesce(max(version), 0) + 1, $2 FROM documents WHERE kind = $1
             RETURNING version",
            &[&kind, body],
        )
        .await?
        .get(0);
    tx.commit().await?;
    Ok(version as u64)
}

/// Keeps an update bundle to serve (once: it is named by its SHA-256).
pub async fn keep_bundle(
    client: &Client,
    sha256: &str,
    product: &str,
    version: &str,
    bytes: &[u8],
) -> anyhow::Result<()> {
    client
        .execute(
            "INSERT INTO bundles (sha256, product, version, bytes) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[&sha256, &product, &version, &bytes],
        )
        .await?;
    Ok(())
}

/// The newest version of every document.
pub async fn newest_documents(client: &Client) -> anyhow::Result<Vec<(String, u64, serde_json::Value)>> {
    let rows = client
        .query(
            "SELECT DISTINCT ON (kind) kind, version, body FROM documents ORDER BY kind, version DESC",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get::<_, i64>(1) as u64, r.get(2)))
        .collect())
}

fn card() -> String {
    "card".into()
}

/// Keeps `entries` (consecutive, already checked against the chain) and
/// moves the store's head past them.
pub async fn keep(tx: &Transaction<'_>, store: &str, entries: &[Entry]) -> anyhow::Result<()> {
    let Some(last) = entries.last() else {
        return Ok(());
    };
    let seqs: Vec<i64> = entries.iter().map(|e| e.seq as i64).collect();
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    let ats: Vec<&str> = entries.iter().map(|e| e.at.as_str()).collect();
    let bodies: Vec<&str> = entries.iter().map(|e| e.body.as_str()).collect();
    let hashes: Vec<Vec<u8>> = entries
        .iter()
        .map(|e| e.hash_bytes().unwrap_or_default().to_vec())
        .collect();
    tx.execute(
        "INSERT INTO entries (store_id, seq, kind, at, body, hash)
         SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::bytea[])
         ON CONFLICT DO NOTHING",
        &[&store, &seqs, &kinds, &ats, &bodies, &hashes],
    )
    .await?;
    // Transactions up to each closed day first, so the store's totals of
    // the day are compared with what head office held when it closed it.
    for part in entries.split_inclusive(|e| e.kind == "day") {
        keep_txns(tx, store, part).await?;
        for entry in part {
            keep_state(tx, store, entry)
                .await
                .map_err(|e| anyhow::anyhow!("store {store} entry {} ({}): {e}", entry.seq, entry.kind))?;
        }
    }
    let hash = last.hash_bytes().unwrap_or_default().to_vec();
    tx.execute(
        "UPDATE stores SET next_seq = $2, last_hash = $3, last_heard = now() WHERE store_id = $1",
        &[&store, &(last.seq as i64 + 1), &hash],
    )
    .await?;
    Ok(())
}

/// Each transaction of `entries` as it stands at its newest entry.
async fn keep_txns(tx: &Transaction<'_>, store: &str, entries: &[Entry]) -> anyhow::Result<()> {
    let mut txns: std::collections::BTreeMap<i64, (i64, TxnBody)> = Default::default();
    for entry in entries.iter().filter(|e| e.kind == "txn") {
        let body: TxnBody = serde_json::from_str(&entry.body)
            .map_err(|e| anyhow::anyhow!("store {store} entry {}: not a transaction: {e}", entry.seq))?;
        txns.insert(body.id, (entry.seq as i64, body));
    }
    let rows: Vec<&(i64, TxnBody)> = txns.values().collect();
    let col = |f: fn(&(i64, TxnBody)) -> String| rows.iter().map(|r| f(r)).collect::<Vec<String>>();
    let ids: Vec<i64> = rows.iter().map(|(_, t)| t.id).collect();
    let seqs: Vec<i64> = rows.iter().map(|(seq, _)| *seq).collect();
    let amounts: Vec<i64> = rows.iter().map(|(_, t)| t.amount).collect();
    let created: Vec<chrono::DateTime<chrono::Utc>> = rows.iter().map(|(_, t)| t.created_at).collect();
    tx.execute(
        "INSERT INTO txns (store_id, id, seq, terminal_id, kind, status, amount, currency, tender,
                           brand, masked_pan, provider, response_code, local_time, created_at)
         SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::bigint[],
                                  $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
                                  $14::text[], $15::timestamptz[])
         ON CONFLICT (store_id, id) DO UPDATE SET
            seq = excluded.seq, status = excluded.status, response_code = excluded.response_code
         WHERE txns.seq < excluded.seq",
        &[
            &store,
            &ids,
            &seqs,
            &col(|(_, t)| t.terminal_id.clone()),
            &col(|(_, t)| t.kind.clone()),
            &col(|(_, t)| t.status.clone()),
            &amounts,
            &col(|(_, t)| t.currency.clone()),
            &col(|(_, t)| t.tender.clone()),
            &col(|(_, t)| t.brand.clone().unwrap_or_default()),
            &col(|(_, t)| t.masked_pan.clone().unwrap_or_default()),
            &col(|(_, t)| t.provider.clone().unwrap_or_default()),
            &col(|(_, t)| t.response_code.clone()),
            &col(|(_, t)| t.local_time.clone()),
            &created,
        ],
    )
    .await?;
    Ok(())
}

/// A check, a checkout, a freeze, an answer to a document or a closed day:
/// kept as the store's newest word on it.
async fn keep_state(tx: &Transaction<'_>, store: &str, entry: &Entry) -> anyhow::Result<()> {
    let seq = entry.seq as i64;
    match entry.kind.as_str() {
        "applied" => {
            let applied: Applied = serde_json::from_str(&entry.body)?;
            tx.execute(
                "INSERT INTO document_acks (store_id, kind, version, kept_local, refused) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT DO NOTHING",
                &[&store, &applied.kind, &(applied.version as i64), &applied.kept_local, &applied.refused],
            )
            .await?;
        }
        "check" => {
            let c: CheckBody = serde_json::from_str(&entry.body)?;
            tx.execute(
                "INSERT INTO store_checks (store_id, check_id, status, evidence, evidence_zh, seq)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (store_id, check_id) DO UPDATE SET status = excluded.status,
                    evidence = excluded.evidence, evidence_zh = excluded.evidence_zh, seq = excluded.seq
                 WHERE store_checks.seq < excluded.seq",
                &[&store, &c.check, &c.status, &c.evidence, &c.evidence_zh, &seq],
            )
            .await?;
        }
        "terminal" => {
            let t: TerminalBody = serde_json::from_str(&entry.body)?;
            tx.execute(
                "INSERT INTO store_terminals (store_id, terminal_id, name, online, version, last_seen, seq)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (store_id, terminal_id) DO UPDATE SET name = excluded.name, online = excluded.online,
                    version = excluded.version, last_seen = excluded.last_seen, seq = excluded.seq
                 WHERE store_terminals.seq < excluded.seq",
                &[&store, &t.terminal, &t.name, &t.online, &t.version, &t.last_seen, &seq],
            )
            .await?;
        }
        "freeze" => {
            let f: FreezeBody = serde_json::from_str(&entry.body)?;
            if f.frozen {
                tx.execute(
                    "INSERT INTO store_freezes (store_id, scope, reason, seq) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (store_id, scope) DO UPDATE SET reason = excluded.reason, seq = excluded.seq
                     WHERE store_freezes.seq < excluded.seq",
                    &[&store, &f.scope, &f.reason, &seq],
                )
                .await?;
            } else {
                tx.execute(
                    "DELETE FROM store_freezes WHERE store_id = $1 AND scope = $2 AND seq < $3",
                    &[&store, &f.scope, &seq],
                )
                .await?;
            }
        }
        "day" => keep_day(tx, store, &serde_json::from_str(&entry.body)?).await?,
        _ => {}
    }
    Ok(())
}

/// A store's totals of a closed day, compared with the transactions head
/// office holds for it; a difference is an alert.
async fn keep_day(tx: &Transaction<'_>, store: &str, day: &DayBody) -> anyhow::Result<()> {
    let held = tx
        .query_one(
            "SELECT count(*) FILTER (WHERE kind = 'sale' AND status = 'approved'),
                    coalesce(sum(amount) FILTER (WHERE kind = 'sale' AND status = 'approved'), 0)::bigint,
                    coalesce(sum(amount) FILTER (WHERE kind IN ('void', 'refund') AND status = 'approved'), 0)::bigint,
                    EXISTS (SELECT 1 FROM txns WHERE store_id = $1 AND local_time < $2)
             FROM txns WHERE store_id = $1 AND left(local_time, 10) = $2",
            &[&store, &day.day],
        )
        .await?;
    let (sales, sales_minor, back_minor, before): (i64, i64, i64, bool) =
        (held.get(0), held.get(1), held.get(2), held.get(3));
    let totals = &day.totals;
    let store_back = totals.voids_minor + totals.refunds_minor;
    // A store that joined the chain that day sent only what it sold since.
    let agrees =
        before.then(|| (sales, sales_minor, back_minor) == (totals.sales, totals.sales_minor, store_back));
    let body = serde_json::to_value(totals)?;
    tx.execute(
        "INSERT INTO store_days (store_id, day, totals, agrees) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        &[&store, &day.day, &body, &agrees],
    )
    .await?;
    if agrees == Some(false) {
        let why = format!(
            "store {store}'s day {}: the hub counts {} sales of {} and {} given back; head office holds {sales} sales of {sales_minor} and {back_minor} given back (minor units)",
            day.day, totals.sales, totals.sales_minor, store_back
        );
        alert(tx, Some(store), &why).await?;
    }
    Ok(())
}

/// Marks a store's chain broken (entries from it stop until someone looks).
pub async fn break_chain(tx: &Transaction<'_>, store: &str, why: &str) -> anyhow::Result<()> {
    tx.execute(
        "UPDATE stores SET broken = $2 WHERE store_id = $1",
        &[&store, &why],
    )
    .await?;
    Ok(())
}

/// Raises an alert, once in ten minutes for the same store and words (a
/// revoked hub that keeps sending is one alert, not thousands).
pub async fn alert(
    client: &impl tokio_postgres::GenericClient,
    store: Option<&str>,
    what: &str,
) -> anyhow::Result<()> {
    let raised = client
        .execute(
            "INSERT INTO alerts (store_id, what) SELECT $1, $2
             WHERE NOT EXISTS (SELECT 1 FROM alerts WHERE store_id IS NOT DISTINCT FROM $1 AND what = $2
                               AND at > now() - interval '10 minutes')",
            &[&store, &what],
        )
        .await?;
    if raised == 1 {
        tracing::warn!(store = store.unwrap_or("-"), "{what}");
    }
    Ok(())
}

/// A new store, or a store that may join again: a one-time secret valid
/// for `valid_hours`.
pub async fn open_enrolment(
    client: &mut Client,
    store: &str,
    name: &str,
    secret: &[u8],
    valid_hours: i64,
) -> anyhow::Result<()> {
    let tx = client.transaction().await?;
    tx.execute(
        "INSERT INTO stores (store_id, name, last_hash) VALUES ($1, $2, $3)
         ON CONFLICT (store_id) DO UPDATE SET name = CASE WHEN $2 = '' THEN stores.name ELSE $2 END",
        &[&store, &name, &GENESIS.to_vec()],
    )
    .await?;
    let key: Option<String> = tx
        .query_one("SELECT public_key FROM stores WHERE store_id = $1", &[&store])
        .await?
        .get(0);
    if key.is_some() {
        anyhow::bail!("store {store} is enrolled; revoke its key first (tallybox-hq revoke {store}) to let another hub join as it");
    }
    tx.execute(
        "INSERT INTO enrolments (store_id, secret, expires_at) VALUES ($1, $2, now() + make_interval(hours => $3::int))
         ON CONFLICT (store_id) DO UPDATE SET secret = excluded.secret, expires_at = excluded.expires_at",
        &[&store, &secret, &(valid_hours as i32)],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The open enrolment's secret of `store`, if it has one not expired.
pub async fn enrolment_secret(tx: &Transaction<'_>, store: &str) -> anyhow::Result<Option<Vec<u8>>> {
    Ok(tx
        .query_opt(
            "SELECT secret FROM enrolments WHERE store_id = $1 AND expires_at > now()",
            &[&store],
        )
        .await?
        .map(|r| r.get(0)))
}

pub async fn bind_key(tx: &Transaction<'_>, store: &str, key: &str) -> anyhow::Result<()> {
    tx.execute(
        "UPDATE stores SET public_key = $2, revoked_at = NULL WHERE store_id = $1",
        &[&store, &key],
    )
    .await?;
    tx.execute("DELETE FROM enrolments WHERE store_id = $1", &[&store])
        .await?;
    Ok(())
}

/// Revokes a store's key: its messages are refused until it joins again.
pub async fn revoke(client: &Client, store: &str) -> anyhow::Result<bool> {
    let n = client
        .execute(
            "UPDATE stores SET public_key = NULL, revoked_at = now() WHERE store_id = $1",
            &[&store],
        )
        .await?;
    client
        .execute("DELETE FROM enrolments WHERE store_id = $1", &[&store])
        .await?;
    Ok(n == 1)
}
