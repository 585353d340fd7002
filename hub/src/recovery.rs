//! The hub with a damaged database: instead of failing at every start (and
//! systemd starting it again, for ever), it keeps a copy of the damaged
//! files, finds the newest backup that proves whole, and serves one page
//! on its web address that says so, in Chinese and English, with what the
//! damaged file still holds of its transactions (read page by page,
//! [`crate::store::salvage`]) against that backup, and one button: put
//! that backup back. Nothing is overwritten before the copy is
//! kept. After the restore the process ends, and systemd starts the hub
//! again on the restored database, where the history's witness names what
//! the backup lacks until the owner accepts it.
//!
//! With no backup on the card that proves whole (the card lost them too) and
//! an off-site bucket in the settings, the page brings the newest off-site
//! copy into `backups/` and offers that one.
//!
//! The page needs no sign-in: the accounts are in the damaged database. It
//! shows no sales, and its one action can only bring back the hub's own
//! newest proven backup (on the card, or off site), the damaged copy kept.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;
use warp::http::StatusCode;
use warp::Filter;

use crate::store::backups;
use crate::store::lock::DataLock;
use crate::store::restore::{self, Restored};
use crate::store::salvage;
use crate::store::StoreError;

/// What the page shows.
struct Damage {
    why: String,
    kept: Option<PathBuf>,
    /// The newest backup that proved whole, and its audit records.
    backup: Option<(PathBuf, u64)>,
    /// What the damaged copy still holds; `None` while it is read.
    salvage: Option<Result<Salvaged, String>>,
    restored: Option<Result<Restored, String>>,
    /// The newest off-site copy, when no backup on the card proved whole:
    /// being brought (`None`), brought (its object's name), or why not.
    offsite: Option<Option<Result<String, String>>>,
}

/// The transactions read from the damaged copy, and those the backup lacks.
struct Salvaged {
    found: i64,
    newest: Option<String>,
    /// How many the backup lacks, and the newest 50 of them: time,
    /// checkout, trace, kind, status, amount.
    not_in_backup: i64,
    newest_lacking: Vec<(String, String, i64, String, String, String)>,
    /// Where all of them are written out, for support.
    csv: PathBuf,
}

/// Reads the damaged copy in `kept` into `kept/salvaged.db` and compares it
/// with `backup`.
fn salvage_against(kept: &Path, backup: Option<&Path>) -> Result<Salvaged, String> {
    let out = kept.join("salvaged.db");
    let found = salvage::salvage(&kept.join("tallybox.db"), &out)?;
    let conn = rusqlite::Connection::open(&out).map_err(|e| e.to_string())?;
    let e = |e: rusqlite::Error| e.to_string();
    let newest = conn
        .query_row("SELECT max(local_time) FROM transactions", [], |r| r.get(0))
        .map_err(e)?;
    // Those the backup holds are marked; none when there is no backup.
    conn.execute_batch("ALTER TABLE transactions ADD COLUMN in_backup INTEGER NOT NULL DEFAULT 0")
        .map_err(e)?;
    if let Some(backup) = backup {
        conn.execute("ATTACH ?1 AS backup", [backup.display().to_string()])
            .map_err(e)?;
        conn.execute_batch(
            "UPDATE transactions SET in_backup = 1 WHERE request_id IN (SELECT request_id FROM backup.transactions); \
             DETACH backup;",
        )
        .map_err(e)?;
    }
    let not_in_backup = conn
        .query_row("SELECT count(*) FROM transactions WHERE in_backup = 0", [], |r| {
            r.get(0)
        })
        .map_err(e)?;
    let newest_lacking = conn
        .prepare(
            "SELECT local_time, terminal_id, trace_no, kind, status, amount, currency FROM transactions \
             WHERE in_backup = 0 ORDER BY local_time DESC LIMIT 50",
        )
        .and_then(|mut stmt| {
            stmt.query_map([], |r| {
                let (minor, currency): (i64, String) = (r.get(5)?, r.get(6)?);
                let amount = tallybox_core::money::Currency::from_code(&currency)
                    .and_then(|c| Some(c.format_minor(u64::try_from(minor).ok()?)))
                    .unwrap_or_else(|| format!("{currency} {minor}"));
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, amount))
            })?
            .collect()
        })
        .map_err(e)?;
    let csv = kept.join("salvaged-transactions.csv");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&csv).map_err(|e| e.to_string())?);
    let mut stmt = conn
        .prepare(
            "SELECT request_id, terminal_id, kind, status, amount, currency, batch_no, trace_no, local_time, in_backup \
             FROM transactions ORDER BY rowid",
        )
        .map_err(e)?;
    let mut rows = stmt.query([]).map_err(e)?;
    let write = |file: &mut std::io::BufWriter<std::fs::File>, line: String| {
        std::io::Write::write_all(file, line.as_bytes()).map_err(|e| e.to_string())
    };
    write(
        &mut file,
        "request_id,checkout,kind,status,amount_minor,currency,batch_no,trace_no,local_time,in_backup\n"
            .into(),
    )?;
    while let Some(r) = rows.next().map_err(e)? {
        let text = |i| r.get::<_, Option<String>>(i).map(Option::unwrap_or_default);
        let int = |i| r.get::<_, Option<i64>>(i).map(Option::unwrap_or_default);
        let line = format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            text(0).map_err(e)?,
            text(1).map_err(e)?,
            text(2).map_err(e)?,
            text(3).map_err(e)?,
            int(4).map_err(e)?,
            text(5).map_err(e)?,
            int(6).map_err(e)?,
            int(7).map_err(e)?,
            text(8).map_err(e)?,
            int(9).map_err(e)?,
        );
        write(&mut file, line)?;
    }
    std::io::Write::flush(&mut file).map_err(|e| e.to_string())?;
    Ok(Salvaged {
        found,
        newest,
        not_in_backup,
        newest_lacking,
        csv,
    })
}

/// Serves the recovery page on `http` until a restore is done or `stop`.
/// `offsite`: the settings' bucket, if any.
pub async fn serve(
    data_dir: &Path,
    http: SocketAddr,
    why: &StoreError,
    offsite: Option<Arc<crate::offsite::Bucket>>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let lock = DataLock::take(data_dir)?;
    let kept = keep_damaged(data_dir)?;
    let backup = newest_proven(&data_dir.join("backups"));
    let offsite = offsite.filter(|_| backup.is_none());
    tracing::error!(
        error = %why, kept = ?kept, backup = ?backup.as_ref().map(|(p, _)| p),
        "the database is damaged: the hub serves its recovery page instead of selling"
    );
    let state = Arc::new(Mutex::new(Damage {
        why: why.to_string(),
        kept: kept.clone(),
        backup: backup.clone(),
        salvage: None,
        restored: None,
        offsite: offsite.as_ref().map(|_| None),
    }));
    {
        let (state, dir) = (Arc::clone(&state), data_dir.to_path_buf());
        tokio::spawn(async move {
            let mut backup = backup;
            if let Some(bucket) = offsite {
                let brought = bring_offsite(&dir, &bucket).await;
                let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
                match brought {
                    Ok((object, path, records)) => {
                        backup = Some((path, records));
                        s.backup = backup.clone();
                        s.offsite = Some(Some(Ok(object)));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the newest off-site copy could not be brought");
                        s.offsite = Some(Some(Err(e)));
                    }
                }
            }
            let Some(kept) = kept else { return };
            let found = tokio::task::spawn_blocking(move || {
                salvage_against(&kept, backup.as_ref().map(|(p, _)| p.as_path()))
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            match &found {
                Ok(s) => tracing::warn!(
                    found = s.found, not_in_backup = s.not_in_backup, csv = %s.csv.display(),
                    "transactions read from the damaged database file"
                ),
                Err(e) => tracing::error!(error = %e, "the damaged database file could not be read"),
            }
            state.lock().unwrap_or_else(|e| e.into_inner()).salvage = Some(found);
        });
    }
    let (dir, done) = (data_dir.to_path_buf(), stop.child_token());
    let lock = Arc::new(lock);
    let page = {
        let state = Arc::clone(&state);
        warp::get().map(move || warp::reply::html(render(&state.lock().unwrap_or_else(|e| e.into_inner()))))
    };
    let health = {
        let state = Arc::clone(&state);
        warp::path!("healthz").and(warp::get()).map(move || {
            let s = state.lock().unwrap_or_else(|e| e.into_inner());
            let body = serde_json::json!({
                "status": "recovery",
                "database": "damaged",
                "error": s.why,
                "backup": s.backup.as_ref().map(|(p, _)| p.display().to_string()),
            });
            warp::reply::with_status(warp::reply::json(&body), StatusCode::SERVICE_UNAVAILABLE)
        })
    };
    let restore_it = {
        let (state, done) = (Arc::clone(&state), done.clone());
        warp::path!("recovery" / "restore")
            .and(warp::post())
            .and(warp::body::content_length_limit(1024))
            .and(warp::body::form::<std::collections::HashMap<String, String>>())
            .and_then(move |form: std::collections::HashMap<String, String>| {
                let (state, dir, lock, done) =
                    (Arc::clone(&state), dir.clone(), Arc::clone(&lock), done.clone());
                async move {
                    let confirmed = form.get("understood").is_some_and(|v| v == "yes");
                    let from = state
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .backup
                        .as_ref()
                        .map(|(p, _)| p.clone());
                    let result = match (confirmed, from) {
                        (false, _) => {
                            Err("tick the box first: sales after the backup must then be accepted"
                                .to_string())
                        }
                        (true, None) => Err("there is no backup that proves whole".to_string()),
                        (true, Some(from)) => tokio::task::spawn_blocking(move || {
                            restore::restore_held(&dir, &from, "the recovery page", &lock)
                        })
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|r| r.map_err(|e| e.to_string())),
                    };
                    let ok = result.is_ok();
                    match &result {
                        Ok(r) => tracing::warn!(
                            transactions = r.transactions,
                            "the newest backup was put back from the recovery page; the hub starts again"
                        ),
                        Err(e) => tracing::error!(error = %e, "restore from the recovery page refused"),
                    }
                    let page = {
                        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
                        s.restored = Some(result);
                        render(&s)
                    };
                    if ok {
                        // Let the answer leave, then end: systemd starts the hub again.
                        tokio::spawn(async move {
                            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                            done.cancel();
                        });
                    }
                    Ok::<_, warp::Rejection>(warp::reply::html(page))
                }
            })
    };
    let routes = health.or(restore_it).or(page).with(warp::reply::with::header(
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    ));
    let listener = tokio::net::TcpListener::bind(http)
        .await
        .map_err(|e| anyhow::anyhow!("cannot serve the recovery page on {http}: {e}"))?;
    let server = crate::web::serve::serve(listener, warp::service(routes), done);
    tallybox_platform::service::started(|| async { true });
    server.await;
    Ok(())
}

/// Brings the newest off-site copy into `backups/` and proves it: the
/// object's name, the file and its audit records.
async fn bring_offsite(
    dir: &Path,
    bucket: &crate::offsite::Bucket,
) -> Result<(String, PathBuf, u64), String> {
    let (object, path, bytes) = crate::offsite::fetch(dir, bucket, "latest").await?;
    let proving = path.clone();
    let records = tokio::task::spawn_blocking(move || backups::prove(&proving))
        .await
        .map_err(|e| e.to_string())?;
    match records {
        Ok(records) => {
            tracing::warn!(object, bytes, "the newest off-site copy is here and proves whole");
            Ok((object, path, records))
        }
        Err(why) => {
            let _ = std::fs::remove_file(&path);
            Err(format!("{object} does not prove whole: {why}"))
        }
    }
}

/// Copies the damaged files into `backups/damaged-TIME/` before anything
/// else touches them.
fn keep_damaged(dir: &Path) -> std::io::Result<Option<PathBuf>> {
    if !dir.join("tallybox.db").exists() {
        return Ok(None);
    }
    let stamp = tallybox_platform::clock::now().format("%Y%m%d-%H%M%S");
    let kept = dir.join("backups").join(format!("damaged-{stamp}"));
    std::fs::create_dir_all(&kept)?;
    for name in ["tallybox.db", "tallybox.db-wal"] {
        if dir.join(name).exists() {
            std::fs::copy(dir.join(name), kept.join(name))?;
        }
    }
    Ok(Some(kept))
}

/// The newest backup in `backups/` (automatic or taken before a change)
/// that proves whole, and its audit records.
fn newest_proven(backups_dir: &Path) -> Option<(PathBuf, u64)> {
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(backups_dir)
        .ok()?
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "db"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    found.sort();
    found
        .into_iter()
        .rev()
        .find_map(|(_, path)| backups::prove(&path).ok().map(|records| (path, records)))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn render(s: &Damage) -> String {
    let mut body = format!(
        "<h1>数据库已损坏 · The hub's database is damaged</h1>\
         <p>主机暂停交易。The hub is not selling.</p><p><code>{}</code></p>",
        escape(&s.why)
    );
    if let Some(kept) = &s.kept {
        body += &format!(
            "<p>损坏的文件已另存 · A copy of the damaged files is kept: <code>{}</code></p>",
            escape(&kept.display().to_string())
        );
    }
    match (&s.restored, &s.backup) {
        (Some(Ok(r)), _) => {
            body += &format!(
                "<h2>已恢复 · Restored</h2><p>{} 笔交易 · {} transactions. 主机正在重新启动 · The hub starts again now.</p>",
                r.transactions, r.transactions
            );
            if let Some(lost) = &r.lost {
                body += &format!(
                    "<p>备份之后的记录缺失 · Missing after the backup: {}. 登录后在“故障排查”中处理 · Sign in and deal with it on Troubleshooting.</p>",
                    escape(&lost.to_string())
                );
            }
            return page(&body);
        }
        (Some(Err(e)), _) => body += &format!("<p><strong>{}</strong></p>", escape(e)),
        _ => {}
    }
    body += &salvage_section(s);
    match &s.offsite {
        Some(None) => {
            body += "<h2>异地备份 · Off-site copy</h2>\
                     <p>卡上没有完好的备份，正在取回最新的异地副本… · No backup on the card proves whole: \
                     bringing the newest off-site copy… (reload in a moment)</p>"
        }
        Some(Some(Err(e))) => {
            body += &format!(
                "<h2>异地备份 · Off-site copy</h2><p>取回失败 · It could not be brought: {}</p>",
                escape(e)
            )
        }
        Some(Some(Ok(object))) => {
            body += &format!(
                "<h2>异地备份 · Off-site copy</h2><p>卡上没有完好的备份；已取回最新的异地副本 · \
                 No backup on the card proves whole; the newest off-site copy is here: <code>{}</code></p>",
                escape(object)
            )
        }
        None => {}
    }
    match &s.backup {
        Some((path, records)) => {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            body += &format!(
                "<h2>最新的完好备份 · Newest whole backup</h2><p><code>{}</code> ({records} audit records)</p>\
                 <form method=\"post\" action=\"/recovery/restore\">\
                 <label><input type=\"checkbox\" name=\"understood\" value=\"yes\" required> \
                 我明白：备份之后的交易需要核对后接受 · I understand: sales after the backup must be checked and accepted</label>\
                 <p><button type=\"submit\">恢复此备份 · Put this backup back</button></p></form>",
                escape(&name)
            );
        }
        None if s.offsite == Some(None) => {}
        None => {
            body += "<h2>没有完好的备份 · No whole backup</h2>\
                     <p>请联系技术支持，并保留此 SD 卡 · Call support and keep this SD card as it is.</p>"
        }
    }
    page(&body)
}

/// What the damaged file still holds, against the backup.
fn salvage_section(s: &Damage) -> String {
    let mut out = String::from("<h2>损坏的文件中还能读出的交易 · What the damaged file still holds</h2>");
    let found = match &s.salvage {
        None => return out + "<p>正在读取… · Reading it… (reload in a moment)</p>",
        Some(Err(e)) => return out + &format!("<p>无法读取 · It cannot be read: {}</p>", escape(e)),
        Some(Ok(found)) => found,
    };
    out += &format!(
        "<p>{} 笔交易，最新的在 {} · {} transactions, the newest at {}.</p>",
        found.found,
        escape(found.newest.as_deref().unwrap_or("-")),
        found.found,
        escape(found.newest.as_deref().unwrap_or("-")),
    );
    if s.backup.is_none() {
        return out;
    }
    if found.not_in_backup == 0 {
        return out + "<p>备份中都有 · The backup holds every one of them.</p>";
    }
    out += &format!(
        "<p>其中 {n} 笔不在备份中：恢复后请与小票核对（已配对的收银台会自动找回它们打印过的成功交易）· \
         {n} of them are not in the backup: check them against the slips after the restore (paired checkouts bring back the approvals they printed).</p>\
         <table><tr><th>时间 Time</th><th>收银台 Checkout</th><th>凭证号 Trace</th><th>类型 Kind</th><th>状态 Status</th><th>金额 Amount</th></tr>",
        n = found.not_in_backup
    );
    for (time, checkout, trace, kind, status, amount) in &found.newest_lacking {
        out += &format!(
            "<tr><td>{}</td><td>{}</td><td>{trace}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(time),
            escape(checkout),
            escape(kind),
            escape(status),
            escape(amount)
        );
    }
    out + &format!(
        "</table><p>全部已写入 · All of them are written to <code>{}</code></p>",
        escape(&found.csv.display().to_string())
    )
}

fn page(body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Tallybox · 恢复 Recovery</title>\
         <style>body{{font-family:sans-serif;max-width:36rem;margin:1rem auto;padding:0 1rem}}\
         code{{word-break:break-all}}button{{font-size:1.1rem;padding:.6rem 1rem}}\
         table{{border-collapse:collapse}}td,th{{padding:.2rem .4rem;text-align:left;border-bottom:1px solid #ccc}}</style>\
         </head><body>{body}</body></html>"
    )
}
