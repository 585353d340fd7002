//! Head office's page and its API, read from PostgreSQL (so every
//! `tallybox-hq` instance serves the same): sign-in (argon2 hashes, five
//! wrong passwords lock the account for a growing while, a
//! session cookie whose hash is kept in the database, HttpOnly and
//! SameSite=Strict, 12 hours), then per account only its stores:
//! `/api/stores` (each store today, whether its uplink is silent or its
//! chain broken, its checks not passing, what is frozen, its checkouts
//! online, closed days whose totals disagree with head office's), `/api/receipts` (search across stores), `/api/report`
//! (by store, day or tender), `/api/receipts.csv`, `/api/alerts`,
//! `/api/documents` (what head office published, and each store's answer).

use std::net::SocketAddr;
use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

const COOKIE: &str = "tallybox_hq_session";
const PAGE: &str = include_str!("page.html");
/// A store not heard from for this long is shown as silent.
const SILENT_MINUTES: i32 = 10;

type Db = Arc<Client>;

/// Sets (or replaces) an account's password and stores.
pub async fn set_account(
    client: &Client,
    name: &str,
    password: &str,
    stores: Option<&[String]>,
) -> anyhow::Result<()> {
    if !(8..=128).contains(&password.chars().count()) {
        anyhow::bail!("a password has 8 to 128 characters");
    }
    let hash = tallybox::passwords::hash(password).map_err(anyhow::Error::msg)?;
    let stores: Option<Vec<String>> = stores.map(<[String]>::to_vec);
    client
        .execute(
            "INSERT INTO accounts (name, password_hash, stores) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash, stores = excluded.stores",
            &[&name, &hash, &stores],
        )
        .await?;
    client
        .execute("DELETE FROM sessions WHERE account = $1", &[&name])
        .await?;
    Ok(())
}

/// Starts the page on `listen`; the address it took.
pub async fn serve(
    listen: SocketAddr,
    client: Client,
    stop: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let db: Db = Arc::new(client);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot serve head office's page on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    let server = warp::serve(routes(db))
        .incoming(listener)
        .graceful(async move { stop.cancelled().await });
    tokio::spawn(server.run());
    Ok(addr)
}

#[derive(Debug)]
struct Refused(StatusCode, String);
impl warp::reject::Reject for Refused {}

fn refuse(status: StatusCode, why: impl Into<String>) -> Rejection {
    warp::reject::custom(Refused(status, why.into()))
}

fn internal(e: impl std::fmt::Display) -> Rejection {
    tracing::error!(error = %e, "head office's page failed a request");
    refuse(
        StatusCode::INTERNAL_SERVER_ERROR,
        "head office's database failed; see its log",
    )
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Who asks: the account, and the stores it may see (`None`: all).
#[derive(Clone)]
struct Viewer {
    stores: Option<Vec<String>>,
}

fn with_db(db: Db) -> impl Filter<Extract = (Db,), Error = std::convert::Infallible> + Clone {
    warp::any().map(move || Arc::clone(&db))
}

fn viewer(db: Db) -> impl Filter<Extract = (Viewer,), Error = Rejection> + Clone {
    warp::cookie::optional(COOKIE)
        .and(with_db(db))
        .and_then(|token: Option<String>, db: Db| async move {
            let Some(token) = token else {
                return Err(refuse(StatusCode::UNAUTHORIZED, "sign in first"));
            };
            let row = db
                .query_opt(
                    "SELECT a.stores FROM sessions s JOIN accounts a ON a.name = s.account
                     WHERE s.token_hash = $1 AND s.expires_at > now()",
                    &[&token_hash(&token)],
                )
                .await
                .map_err(internal)?;
            match row {
                Some(row) => Ok(Viewer { stores: row.get(0) }),
                None => Err(refuse(StatusCode::UNAUTHORIZED, "sign in first")),
            }
        })
}

#[derive(Deserialize)]
struct Login {
    name: String,
    password: String,
}

/// Signs in: five wrong passwords in a row lock the account for 30 s,
/// doubling with each further one (at most an hour), as on a shop's page.
async fn login(login: Login, db: Db) -> Result<warp::reply::Response, Rejection> {
    let row = db
        .query_opt(
            "SELECT password_hash, failures, greatest(0, ceil(extract(epoch FROM locked_until - now())))::bigint
             FROM accounts WHERE name = $1",
            &[&login.name],
        )
        .await
        .map_err(internal)?;
    if let Some(wait) = row
        .as_ref()
        .and_then(|r| r.get::<_, Option<i64>>(2))
        .filter(|w| *w > 0)
    {
        return Err(refuse(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many wrong passwords: try again in {wait} s"),
        ));
    }
    // A missing account costs the same hash as a wrong password.
    let known = row
        .as_ref()
        .map(|r| r.get::<_, String>(0))
        .unwrap_or_else(|| tallybox::passwords::hash("not an account").unwrap_or_default());
    if !tallybox::passwords::verify(&login.password, &known) {
        if let Some(failures) = row.as_ref().map(|r| r.get::<_, i32>(1) as u32 + 1) {
            let lock = tallybox::web::auth::lock_for(failures).map_or(0.0, |d| d.as_secs_f64());
            db.execute(
                "UPDATE accounts SET failures = $2, locked_until = now() + make_interval(secs => $3) WHERE name = $1",
                &[&login.name, &(failures as i32), &lock],
            )
            .await
            .map_err(internal)?;
        }
        return Err(refuse(StatusCode::UNAUTHORIZED, "wrong name or password"));
    }
    db.execute(
        "UPDATE accounts SET failures = 0, locked_until = NULL WHERE name = $1",
        &[&login.name],
    )
    .await
    .map_err(internal)?;
    let token = hex::encode(rand::random::<[u8; 32]>());
    db.execute(
        "INSERT INTO sessions (token_hash, account, expires_at) VALUES ($1, $2, now() + interval '12 hours')",
        &[&token_hash(&token), &login.name],
    )
    .await
    .map_err(internal)?;
    let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200");
    Ok(warp::reply::with_header(
        warp::reply::json(&serde_json::json!({"ok": true})),
        "set-cookie",
        cookie,
    )
    .into_response())
}

#[derive(Deserialize)]
struct Search {
    store: Option<String>,
    /// The stores' local day, `YYYY-MM-DD`.
    day: Option<String>,
    status: Option<String>,
    tender: Option<String>,
    #[serde(default = "hundred")]
    limit: i64,
}

fn hundred() -> i64 {
    100
}

fn today() -> String {
    chrono::Local::now().format("%Y-%m-%d").to_string()
}

async fn stores(viewer: Viewer, day: Option<String>, db: Db) -> Result<impl Reply, Rejection> {
    let day = day.unwrap_or_else(today);
    let rows = db
        .query(
            "SELECT s.store_id, s.name, s.public_key IS NOT NULL, s.broken, s.next_seq - 1,
                    to_char(s.last_heard AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                    s.last_heard IS NULL OR s.last_heard < now() - make_interval(mins => $3),
                    count(t.*) FILTER (WHERE t.kind = 'sale' AND t.status = 'approved'),
                    coalesce(sum(t.amount) FILTER (WHERE t.kind = 'sale' AND t.status = 'approved'), 0)::bigint,
                    coalesce(sum(t.amount) FILTER (WHERE t.kind IN ('refund', 'void') AND t.status = 'approved'), 0)::bigint,
                    count(t.*) FILTER (WHERE t.status = 'pending'),
                    min(t.currency)
             FROM stores s LEFT JOIN txns t ON t.store_id = s.store_id AND left(t.local_time, 10) = $1
             WHERE $2::text[] IS NULL OR s.store_id = ANY($2)
             GROUP BY s.store_id ORDER BY s.store_id",
            &[&day, &viewer.stores, &SILENT_MINUTES],
        )
        .await
        .map_err(internal)?;
    let mut problems = problems(&viewer, &db).await?;
    let stores: Vec<_> = rows
        .iter()
        .map(|r| {
            let store: String = r.get(0);
            let mut row = serde_json::json!({
                "store": store, "name": r.get::<_, String>(1),
                "enrolled": r.get::<_, bool>(2), "broken": r.get::<_, Option<String>>(3),
                "entries": r.get::<_, i64>(4), "last_heard": r.get::<_, Option<String>>(5),
                "silent": r.get::<_, bool>(6), "sales": r.get::<_, i64>(7),
                "takings": r.get::<_, i64>(8), "refunded": r.get::<_, i64>(9),
                "pending": r.get::<_, i64>(10), "currency": r.get::<_, Option<String>>(11),
                "checks": [], "frozen": [], "days_disagree": [], "checkouts": null,
            });
            if let Some(found) = problems.remove(&store) {
                for (key, value) in found {
                    row[key] = value;
                }
            }
            row
        })
        .collect();
    Ok(warp::reply::json(
        &serde_json::json!({"day": day, "stores": stores}),
    ))
}

/// What each store said is wrong: its checks not passing, what is
/// frozen, its checkouts online, the closed days whose totals disagree.
async fn problems(
    viewer: &Viewer,
    db: &Client,
) -> Result<std::collections::HashMap<String, Vec<(&'static str, serde_json::Value)>>, Rejection> {
    let queries: [(&str, &str); 4] = [
        (
            "checks",
            "SELECT store_id, json_agg(json_build_object('check', check_id, 'status', status,
                    'evidence', evidence, 'evidence_zh', evidence_zh) ORDER BY status DESC, check_id)
             FROM store_checks WHERE status <> 'ok' AND ($1::text[] IS NULL OR store_id = ANY($1)) GROUP BY store_id",
        ),
        (
            "frozen",
            "SELECT store_id, json_agg(json_build_object('scope', scope, 'reason', reason) ORDER BY scope)
             FROM store_freezes WHERE $1::text[] IS NULL OR store_id = ANY($1) GROUP BY store_id",
        ),
        (
            "checkouts",
            "SELECT store_id, json_build_object('online', count(*) FILTER (WHERE online), 'total', count(*),
                    'offline', coalesce(json_agg(name ORDER BY terminal_id) FILTER (WHERE NOT online), '[]'))
             FROM store_terminals WHERE $1::text[] IS NULL OR store_id = ANY($1) GROUP BY store_id",
        ),
        (
            "days_disagree",
            "SELECT store_id, json_agg(day ORDER BY day DESC)
             FROM store_days WHERE agrees = false AND ($1::text[] IS NULL OR store_id = ANY($1)) GROUP BY store_id",
        ),
    ];
    let mut found: std::collections::HashMap<String, Vec<(&'static str, serde_json::Value)>> =
        Default::default();
    for (key, sql) in queries {
        for row in db.query(sql, &[&viewer.stores]).await.map_err(internal)? {
            found.entry(row.get(0)).or_default().push((key, row.get(1)));
        }
    }
    Ok(found)
}

async fn receipt_rows(
    viewer: &Viewer,
    q: &Search,
    db: &Client,
) -> Result<Vec<tokio_postgres::Row>, Rejection> {
    db.query(
        "SELECT store_id, id, terminal_id, kind, status, amount, currency, tender, brand, masked_pan,
                provider, response_code, local_time
         FROM txns
         WHERE ($1::text[] IS NULL OR store_id = ANY($1))
           AND ($2::text IS NULL OR store_id = $2)
           AND ($3::text IS NULL OR left(local_time, 10) = $3)
           AND ($4::text IS NULL OR status = $4)
           AND ($5::text IS NULL OR tender = $5)
         ORDER BY local_time DESC, store_id, id DESC
         LIMIT $6",
        &[
            &viewer.stores,
            &q.store,
            &q.day,
            &q.status,
            &q.tender,
            &q.limit.clamp(1, 100_000),
        ],
    )
    .await
    .map_err(internal)
}

fn receipt_json(r: &tokio_postgres::Row) -> serde_json::Value {
    serde_json::json!({
        "store": r.get::<_, String>(0), "id": r.get::<_, i64>(1), "terminal": r.get::<_, String>(2),
        "kind": r.get::<_, String>(3), "status": r.get::<_, String>(4), "amount": r.get::<_, i64>(5),
        "currency": r.get::<_, String>(6), "tender": r.get::<_, String>(7), "brand": r.get::<_, String>(8),
        "masked_pan": r.get::<_, String>(9), "provider": r.get::<_, String>(10),
        "response_code": r.get::<_, String>(11), "local_time": r.get::<_, String>(12),
    })
}

async fn receipts(viewer: Viewer, q: Search, db: Db) -> Result<impl Reply, Rejection> {
    let rows = receipt_rows(&viewer, &q, &db).await?;
    let list: Vec<_> = rows.iter().map(receipt_json).collect();
    Ok(warp::reply::json(
        &serde_json::json!({"count": list.len(), "receipts": list}),
    ))
}

/// A CSV field, quoted when it must be; a leading `=+-@` is defused so a
/// spreadsheet does not run it.
fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

async fn receipts_csv(viewer: Viewer, q: Search, db: Db) -> Result<impl Reply, Rejection> {
    let rows = receipt_rows(&viewer, &q, &db).await?;
    let mut csv = String::from("store,id,terminal,kind,status,amount_minor,currency,tender,brand,card,provider,response_code,local_time\n");
    for r in &rows {
        let fields = [
            r.get::<_, String>(0),
            r.get::<_, i64>(1).to_string(),
            r.get(2),
            r.get(3),
            r.get(4),
            r.get::<_, i64>(5).to_string(),
            r.get(6),
            r.get(7),
            r.get(8),
            r.get(9),
            r.get(10),
            r.get(11),
            r.get(12),
        ];
        csv.push_str(&fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
        csv.push('\n');
    }
    Ok(warp::reply::with_header(
        csv,
        "content-type",
        "text/csv; charset=utf-8",
    ))
}

#[derive(Deserialize)]
struct ReportQuery {
    by: String,
    from: Option<String>,
    to: Option<String>,
}

async fn report(viewer: Viewer, q: ReportQuery, db: Db) -> Result<impl Reply, Rejection> {
    let key = match q.by.as_str() {
        "store" => "store_id",
        "day" => "left(local_time, 10)",
        "tender" => "tender",
        _ => return Err(refuse(StatusCode::BAD_REQUEST, "report by store, day or tender")),
    };
    let sql = format!(
        "SELECT {key}, currency, count(*) FILTER (WHERE kind = 'sale'),
                coalesce(sum(amount) FILTER (WHERE kind = 'sale'), 0)::bigint,
                coalesce(sum(amount) FILTER (WHERE kind IN ('refund', 'void')), 0)::bigint
         FROM txns
         WHERE status = 'approved' AND ($1::text[] IS NULL OR store_id = ANY($1))
           AND ($2::text IS NULL OR left(local_time, 10) >= $2)
           AND ($3::text IS NULL OR left(local_time, 10) <= $3)
         GROUP BY 1, 2 ORDER BY 1, 2"
    );
    let rows = db
        .query(&sql, &[&viewer.stores, &q.from, &q.to])
        .await
        .map_err(internal)?;
    let rows: Vec<_> = rows
        .iter()
        .map(|r| {
            let (takings, refunded) = (r.get::<_, i64>(3), r.get::<_, i64>(4));
            serde_json::json!({
                "key": r.get::<_, String>(0), "currency": r.get::<_, String>(1),
                "sales": r.get::<_, i64>(2), "takings": takings, "refunded": refunded,
                "net": takings - refunded,
            })
        })
        .collect();
    Ok(warp::reply::json(&serde_json::json!({"by": q.by, "rows": rows})))
}

async fn alerts(viewer: Viewer, db: Db) -> Result<impl Reply, Rejection> {
    let rows = db
        .query(
            "SELECT store_id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), what FROM alerts
             WHERE $1::text[] IS NULL OR store_id = ANY($1)
             ORDER BY id DESC LIMIT 100",
            &[&viewer.stores],
        )
        .await
        .map_err(internal)?;
    let list: Vec<_> = rows
        .iter()
        .map(|r| serde_json::json!({"store": r.get::<_, Option<String>>(0), "at": r.get::<_, String>(1), "what": r.get::<_, String>(2)}))
        .collect();
    Ok(warp::reply::json(&serde_json::json!({"alerts": list})))
}

/// Each document's newest version and what each store answered.
async fn documents(viewer: Viewer, db: Db) -> Result<impl Reply, Rejection> {
    let rows = db
        .query(
            "SELECT d.kind, d.version, d.body::text,
                    to_char(d.published_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                    s.store_id, a.version, a.kept_local, a.refused
             FROM (SELECT DISTINCT ON (kind) * FROM documents ORDER BY kind, version DESC) d
             CROSS JOIN stores s
             LEFT JOIN LATERAL (SELECT * FROM document_acks a WHERE a.store_id = s.store_id AND a.kind = d.kind
                                ORDER BY version DESC LIMIT 1) a ON true
             WHERE s.public_key IS NOT NULL AND ($1::text[] IS NULL OR s.store_id = ANY($1))
             ORDER BY d.kind, s.store_id",
            &[&viewer.stores],
        )
        .await
        .map_err(internal)?;
    let mut documents: Vec<serde_json::Value> = Vec::new();
    for r in &rows {
        let kind: String = r.get(0);
        if documents.last().is_none_or(|d| d["kind"] != kind.as_str()) {
            documents.push(serde_json::json!({
                "kind": kind, "version": r.get::<_, i64>(1),
                "body": serde_json::from_str::<serde_json::Value>(r.get(2)).unwrap_or_default(),
                "published_at": r.get::<_, String>(3), "stores": [],
            }));
        }
        let store = serde_json::json!({
            "store": r.get::<_, String>(4), "applied": r.get::<_, Option<i64>>(5),
            "kept_local": r.get::<_, Option<Vec<String>>>(6).unwrap_or_default(),
            "refused": r.get::<_, Option<String>>(7),
        });
        if let Some(stores) = documents.last_mut().and_then(|d| d["stores"].as_array_mut()) {
            stores.push(store);
        }
    }
    Ok(warp::reply::json(&serde_json::json!({"documents": documents})))
}

async fn bundle(sha256: String, db: Db) -> Result<impl Reply, Rejection> {
    let plain = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
    let row = match plain {
        true => db
            .query_opt(
                "SELECT bytes FROM bundles WHERE sha256 = $1",
                &[&sha256.to_ascii_lowercase()],
            )
            .await
            .map_err(internal)?,
        false => None,
    };
    let Some(row) = row else {
        return Err(warp::reject::custom(Refused(
            StatusCode::NOT_FOUND,
            "no such bundle".into(),
        )));
    };
    let bytes: Vec<u8> = row.get(0);
    warp::http::Response::builder()
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .map_err(internal)
}

#[derive(Deserialize)]
struct Day {
    day: Option<String>,
}

fn routes(db: Db) -> impl Filter<Extract = (impl Reply,), Error = std::convert::Infallible> + Clone {
    let page = warp::path::end().and(warp::get()).map(|| warp::reply::html(PAGE));
    let login = warp::path!("api" / "login")
        .and(warp::post())
        .and(warp::body::content_length_limit(4096))
        .and(warp::body::json())
        .and(with_db(db.clone()))
        .and_then(login);
    let stores = warp::path!("api" / "stores")
        .and(warp::get())
        .and(viewer(db.clone()))
        .and(warp::query::<Day>())
        .and(with_db(db.clone()))
        .and_then(|v, d: Day, db| stores(v, d.day, db));
    let receipts_json = warp::path!("api" / "receipts")
        .and(warp::get())
        .and(viewer(db.clone()))
        .and(warp::query::<Search>())
        .and(with_db(db.clone()))
        .and_then(receipts);
    let csv = warp::path!("api" / "receipts.csv")
        .and(warp::get())
        .and(viewer(db.clone()))
        .and(warp::query::<Search>())
        .and(with_db(db.clone()))
        .and_then(receipts_csv);
    let report = warp::path!("api" / "report")
        .and(warp::get())
        .and(viewer(db.clone()))
        .and(warp::query::<ReportQuery>())
        .and(with_db(db.clone()))
        .and_then(report);
    let alerts = warp::path!("api" / "alerts")
        .and(warp::get())
        .and(viewer(db.clone()))
        .and(with_db(db.clone()))
        .and_then(alerts);
    let documents = warp::path!("api" / "documents")
        .and(warp::get())
        .and(viewer(db.clone()))
        .and(with_db(db.clone()))
        .and_then(documents);
    // Update bundles for the shops' hubs: no sign-in (a hub has none here);
    // each is signed by the vendor and named by its SHA-256.
    let bundles = warp::path!("bundles" / String)
        .and(warp::get())
        .and(with_db(db))
        .and_then(bundle);
    page.or(login)
        .or(stores)
        .or(receipts_json)
        .or(csv)
        .or(report)
        .or(alerts)
        .or(documents)
        .or(bundles)
        .recover(answer_refusal)
        .with(warp::reply::with::header("x-content-type-options", "nosniff"))
        .with(warp::reply::with::header("cache-control", "no-store"))
}

async fn answer_refusal(r: Rejection) -> Result<impl Reply, std::convert::Infallible> {
    let (status, why) = if let Some(Refused(status, why)) = r.find::<Refused>() {
        (*status, why.clone())
    } else if r.is_not_found() {
        (StatusCode::NOT_FOUND, "no such page".to_string())
    } else {
        (StatusCode::BAD_REQUEST, format!("{r:?}"))
    };
    Ok(warp::reply::with_status(
        warp::reply::json(&serde_json::json!({"error": why})),
        status,
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_csv_field_is_quoted_and_a_formula_is_defused() {
        use super::csv_field;
        assert_eq!(csv_field("T1"), "T1");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    }
}
