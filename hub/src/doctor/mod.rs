//! Checks that say what is wrong and what to do: sans-IO rules over facts
//! gathered from the store, the machine and the running hub. Each check has
//! an id, a status (ok / warn / fail), its evidence in numbers, and fix steps
//! in English and Chinese. `tallybox doctor` prints them; the web page's
//! troubleshooting view shows them live and keeps their history.
//!
//! - `terminal.rs`: each checkout — online, restarts, version, printer and
//!   paper, reader (dirt, interference, stuck cards, cleaning reminder), its
//!   link to the hub;
//! - `machine.rs`: temperature, power and Bluetooth of the hub and each checkout;
//! - `payments.rs`: the bank link, cards that fail everywhere, reversals;
//! - `people.rs`: password guessing, locked cashiers, fraud hits, freezes;
//! - here: the store (disk, integrity) and the hub's broker link.

mod machine;
mod payments;
mod people;
mod terminal;
#[cfg(test)]
mod tests;

use serde::Serialize;
use tallybox_core::code::ResponseCode;
use tallybox_platform::machine::MachineHealth;

use crate::acquirer::LinkHealth;
use crate::store::terminals::TerminalRow;
use crate::store::wear::Wear;
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `terminal.T1.online`, `store.disk`, …
    pub id: String,
    pub status: Status,
    /// What was measured, with its numbers, in English and in Chinese.
    pub evidence: String,
    #[serde(rename = "evidence_zh-CN")]
    pub evidence_zh: String,
    pub fix_en: &'static str,
    #[serde(rename = "fix_zh-CN")]
    pub fix_zh: &'static str,
}

/// A recent transaction, as the payment rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recent {
    pub terminal_id: String,
    pub status: String,
    /// None while pending (or a code the store could not read).
    pub response_code: Option<ResponseCode>,
    /// The card's keyed hash (never the number) and its last four digits.
    pub pan_hash: String,
    pub last4: String,
    /// Local time, `YYYY-MM-DD HH:MM:SS`.
    pub local_time: String,
}

/// What the rules look at.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub terminals: Vec<TerminalRow>,
    /// Each checkout's odometers and restarts.
    pub wear: Vec<Wear>,
    /// The hub's own version: checkouts should run the same.
    pub hub_version: String,
    /// The hub's own machine, when it could be read.
    pub hub_machine: Option<MachineHealth>,
    /// Free and total bytes where the database lives.
    pub disk_free: u64,
    pub disk_total: u64,
    /// `PRAGMA quick_check`'s answer: `ok` when the database is sound.
    pub integrity: String,
    /// How far the clock is behind the last transaction, when beyond the
    /// slack the hub allows before it stops selling.
    pub clock_behind: Option<chrono::Duration>,
    /// What the database lost against its history's witness, if anything.
    pub history_lost: Option<String>,
    /// Approvals brought back from the checkouts' own records in the last
    /// day (since the owner last accepted a loss).
    pub recovered: i64,
    /// The automatic backups: the newest's local time, how many, their bytes.
    pub backups: Option<(chrono::NaiveDateTime, usize, u64)>,
    /// The last copy to a USB stick (or why it failed), and whether that
    /// stick is plugged in now; `None`: no stick was ever used.
    pub stick: Option<(crate::store::stick::Copied, bool)>,
    /// The last off-site copy (or why it failed); `None`: none was tried.
    pub offsite: Option<crate::offsite::Copied>,
    /// The oldest transaction's local time, if any.
    pub first_sale: Option<chrono::NaiveDateTime>,
    /// Card sales written `pending` more than a minute ago: reversals waiting on the acquirer.
    pub stale_pending: u32,
    /// Payment codes of the last day.
    pub codes: CodeFacts,
    /// The latest day's checks of the providers' bills.
    pub bills: Vec<crate::store::bills::BillCheck>,
    /// The last hour's transactions, newest first.
    pub recent: Vec<Recent>,
    /// Requests each checkout asked about that never reached the hub, last 15 minutes.
    pub lost: Vec<(String, u32)>,
    /// Web accounts: wrong passwords in a row since their last good one, and when the last was.
    pub login_failures: Vec<(String, u32, Option<String>)>,
    /// Cashiers locked by wrong PINs: number, name, since when.
    pub locked_cashiers: Vec<(String, String, String)>,
    /// Fraud rules that fired in the last 24 hours, and how often.
    pub fraud_hits: Vec<(String, u32)>,
    /// Whether the running hub is connected to its broker; `None` when the
    /// checks run outside the hub (`tallybox doctor`), which cannot know.
    pub broker_connected: Option<bool>,
    /// The install's versions and update history; `None` when the hub is not
    /// run from an install (the demo, tests).
    pub updates: Option<Updates>,
    /// The logins the embedded broker refused in the last hour; `None` with
    /// an external broker or outside the hub.
    pub broker_refused: Option<Vec<crate::broker::RefusedLogin>>,
    /// The ISO 8583 link, when the hub runs one (not the simulator, not the CLI).
    pub acquirer: Option<LinkHealth>,
    /// The pairing the owner has open, if any (inside the hub only).
    pub pairing: Option<crate::keys::PairingStatus>,
    /// When the facts were gathered (local time).
    pub now: chrono::NaiveDateTime,
}

/// Payment codes (付款码) of the last day.
#[derive(Debug, Clone, Default)]
pub struct CodeFacts {
    /// Code sales of the last day, whatever became of them.
    pub sales: u32,
    /// Written `pending` more than a minute ago: the provider has not said.
    pub undecided: u32,
    /// The last hour: paid, and cancelled because the buyer did not confirm.
    pub paid_hour: u32,
    pub not_confirmed_hour: u32,
    /// The last hour: payments and refunds the provider refused as calls,
    /// for the shop's app id, merchant id or key (`QK`), or for the hub's
    /// clock (`QT`).
    pub key_refused_hour: u32,
    pub clock_refused_hour: u32,
}

type Fix = (&'static str, &'static str);

const NOTHING: Fix = ("Nothing to do.", "无需处理。");

/// What a check measured, said in English and in Chinese.
struct Said {
    en: String,
    zh: String,
}

fn said(en: impl Into<String>, zh: impl Into<String>) -> Said {
    Said {
        en: en.into(),
        zh: zh.into(),
    }
}

fn check(id: impl Into<String>, status: Status, evidence: Said, fix: Fix) -> Check {
    Check {
        id: id.into(),
        status,
        evidence: evidence.en,
        evidence_zh: evidence.zh,
        fix_en: fix.0,
        fix_zh: fix.1,
    }
}

fn ok(id: impl Into<String>, evidence: Said) -> Check {
    check(id, Status::Ok, evidence, NOTHING)
}

/// Every check over `facts`, worst first.
pub fn checks(facts: &Facts) -> Vec<Check> {
    let mut out = Vec::new();
    for t in &facts.terminals {
        let wear = facts.wear.iter().find(|w| w.terminal_id == t.id);
        let lost = facts
            .lost
            .iter()
            .find(|(id, _)| *id == t.id)
            .map_or(0, |(_, n)| *n);
        out.extend(terminal::checks(
            t,
            wear,
            lost,
            &facts.hub_version,
            &facts.terminals,
        ));
    }
    if let Some(m) = &facts.hub_machine {
        out.extend(machine::checks("hub", ("The hub", "主机"), m));
    }
    out.extend(store_checks(facts));
    out.extend(payments::checks(facts));
    out.extend(people::checks(facts));
    match facts.broker_connected {
        Some(true) => out.push(ok(
            "hub.broker",
            said("the hub is connected to the MQTT broker", "主机已连接消息服务器"),
        )),
        Some(false) => out.push(check(
            "hub.broker",
            Status::Fail,
            said(
                "the hub is not connected to the MQTT broker: no checkout can reach it",
                "主机没有连接消息服务器：所有收银台都连不上它",
            ),
            (
                "Restart the hub (unplug it for 10 s); with an external broker, check that it runs.",
                "重启主机（断电 10 秒）；如使用外部消息服务器，请确认其正在运行。",
            ),
        )),
        None => {}
    }
    out.extend(facts.broker_refused.as_deref().map(broker_logins));
    out.extend(facts.pairing.as_ref().and_then(pairing_jammed));
    out.extend(facts.updates.as_ref().and_then(|u| updates(u, facts.now)));
    out.sort_by(|a, b| b.status.cmp(&a.status).then(a.id.cmp(&b.id)));
    out
}

/// What the install root says about versions and updates.
#[derive(Debug, Clone, Default)]
pub struct Updates {
    /// The version `current` points at.
    pub installed: Option<String>,
    /// A new version on trial: `(new, old, starts)`.
    pub trying: Option<(String, String, u32)>,
    /// `updates.log`, oldest first.
    pub history: Vec<tallybox_platform::update::Event>,
}

impl Updates {
    pub fn read(root: &std::path::Path) -> Updates {
        use tallybox_platform::update;
        Updates {
            installed: update::installed(root),
            trying: update::trying(root),
            history: update::history(root),
        }
    }
}

/// How long a failed update stays red on the page.
const UPDATE_FAILURE_SHOWN_DAYS: i64 = 7;

/// `hub.update`: the version running, and an update that failed and was
/// undone, or was cut off.
fn updates(u: &Updates, now: chrono::NaiveDateTime) -> Option<Check> {
    let installed = u.installed.as_deref()?;
    if let Some((new, old, starts)) = &u.trying {
        return Some(check(
            "hub.update",
            Status::Warn,
            said(
                format!("{new} is on trial (start {starts}; {old} comes back if it does not prove healthy)"),
                format!("{new} 正在试运行（第 {starts} 次启动；如不正常，自动恢复 {old}）"),
            ),
            (
                "Wait a minute; if the hub keeps restarting, it goes back to the previous version by itself.",
                "请等待一分钟；如果主机反复重启，它会自动恢复到上一个版本。",
            ),
        ));
    }
    let last = u.history.last();
    let recent = |e: &tallybox_platform::update::Event| {
        chrono::NaiveDateTime::parse_from_str(&e.at, "%Y-%m-%d %H:%M:%S")
            .is_ok_and(|at| now - at < chrono::Duration::days(UPDATE_FAILURE_SHOWN_DAYS))
    };
    match last {
        Some(e) if e.event == "rolled_back" && recent(e) => Some(check(
            "hub.update",
            Status::Fail,
            said(
                format!(
                    "the update to {} failed and was undone at {}: {}. The hub runs {installed}",
                    e.version, e.at, e.detail
                ),
                format!(
                    "更新到 {} 失败，已于 {} 撤回。主机正在运行 {installed}",
                    e.version, e.at
                ),
            ),
            (
                "Nothing is lost: the previous version runs, and the database was backed up before the update (backups folder). Do not install that version again; tell your supplier which version failed and download the support bundle for them.",
                "没有丢失任何数据：上一个版本正在运行，更新前已备份数据库（backups 文件夹）。请不要再次安装该版本；告诉供应商失败的版本号，并为他们下载支持包。",
            ),
        )),
        Some(e) if e.event == "interrupted" && recent(e) => Some(check(
            "hub.update",
            Status::Warn,
            said(
                format!("the update to {} was cut off at {} (power?); the hub runs {installed}", e.version, e.at),
                format!("更新到 {} 于 {} 中断（断电？）；主机正在运行 {installed}", e.version, e.at),
            ),
            (
                "Install the update again, with the hub on steady power.",
                "请在主机供电稳定时重新安装该更新。",
            ),
        )),
        _ => Some(ok(
            "hub.update",
            match u.history.iter().rev().find(|e| e.event == "confirmed" && e.version == installed) {
                Some(e) => said(
                    format!("version {installed}, updated {}", e.at),
                    format!("版本 {installed}，更新于 {}", e.at),
                ),
                None => said(format!("version {installed}"), format!("版本 {installed}")),
            },
        )),
    }
}

/// Attempts with the open pairing code in the names of checkouts it is not
/// for: a checkout keyed with the wrong id, or someone trying to use up the
/// code. Said only while the pairing is open, and only when there were some.
fn pairing_jammed(pairing: &crate::keys::PairingStatus) -> Option<Check> {
    if pairing.others == 0 {
        return None;
    }
    Some(check(
        "hub.pairing",
        Status::Warn,
        said(
            format!(
                "the pairing code for {} was tried {} time(s) in the names of other checkouts (last: {}); those tries were refused and cost none of its {} left",
                pairing.terminal.as_deref().unwrap_or("any checkout"),
                pairing.others,
                pairing.last_other.as_deref().unwrap_or("?"),
                pairing.tries_left,
            ),
            format!(
                "{}的配对码被以其他收银台的名义试用了 {} 次（最近一次：{}）；这些尝试都被拒绝，不占用剩下的 {} 次机会",
                pairing.terminal.as_deref().unwrap_or("任意收银台"),
                pairing.others,
                pairing.last_other.as_deref().unwrap_or("?"),
                pairing.tries_left,
            ),
        ),
        (
            "If a checkout of yours shows another id than the one you named, open the code for that id. If not, something on the shop network is trying to pair: pairing still works for the checkout you named; afterwards change the Wi-Fi password.",
            "如果您的收银台显示的编号与您填写的不同，请为那个编号生成配对码。否则说明店内网络中有设备在尝试配对：您指定的收银台仍可正常配对；完成后请更改 Wi-Fi 密码。",
        ),
    ))
}

/// Refused logins on the embedded broker: a checkout that lost its key, or
/// something on the shop network posing as a checkout or the hub.
fn broker_logins(refused: &[crate::broker::RefusedLogin]) -> Check {
    if refused.is_empty() {
        return ok(
            "hub.broker_logins",
            said(
                "no login refused by the broker in the last hour",
                "最近一小时消息服务器没有拒绝过登录",
            ),
        );
    }
    let mut by_client: Vec<(&str, u32, &crate::broker::RefusedLogin)> = Vec::new();
    for r in refused {
        match by_client.iter_mut().find(|(c, ..)| *c == r.client_id) {
            Some(seen) => (seen.1, seen.2) = (seen.1 + 1, r),
            None => by_client.push((&r.client_id, 1, r)),
        }
    }
    let who: Vec<String> = by_client
        .iter()
        .map(|(client, n, last)| format!("{client} ×{n} (last {}: {})", last.at, last.why))
        .collect();
    let who_zh: Vec<String> = by_client
        .iter()
        .map(|(client, n, last)| format!("{client} ×{n}（最近 {}）", last.at))
        .collect();
    check(
        "hub.broker_logins",
        Status::Warn,
        said(
            format!(
                "the broker refused {} login(s) in the last hour: {}",
                refused.len(),
                who.join("; ")
            ),
            format!(
                "最近一小时消息服务器拒绝了 {} 次登录：{}",
                refused.len(),
                who_zh.join("；")
            ),
        ),
        (
            "A checkout that lost its key (new SD card, reset) is refused until paired again: on the Terminals page press Revoke key, then pair it. If no checkout was changed, a device on the shop network is posing as a checkout or the hub: change the Wi-Fi password.",
            "丢失密钥的收银台（换了 SD 卡或被重置）在重新配对前会被拒绝：请在“终端”页面点“吊销密钥”，然后重新配对。如果没有更换过收银台，说明店内网络中有设备冒充收银台或主机：请更改 Wi-Fi 密码。",
        ),
    )
}

fn store_checks(facts: &Facts) -> Vec<Check> {
    let free_pct = facts.disk_free * 100 / facts.disk_total.max(1);
    let free_mib = facts.disk_free >> 20;
    let disk = || {
        said(
            format!("{free_mib} MiB free ({free_pct}%) where the database lives"),
            format!("数据库所在磁盘剩余 {free_mib} MiB（{free_pct}%）"),
        )
    };
    let disk_fix = (
        "Free space: download a backup and the evidence packs you need, remove old files; or move the data to a larger SD card.",
        "释放空间：先下载备份和所需证据包，再删除旧文件；或换用更大的 SD 卡。",
    );
    let space = match (free_mib, free_pct) {
        _ if facts.disk_total > 0 && facts.disk_free < crate::store::SALES_RESERVE_BYTES => check(
            "store.disk",
            Status::Fail,
            said(
                format!(
                    "{}: the hub refuses new sales (code XD) until there is more room",
                    disk().en
                ),
                format!("{}：空间不足，主机拒绝新交易（代码 XD）", disk().zh),
            ),
            disk_fix,
        ),
        // A share alone speaks for a small SD card; on a large one, 15 % is
        // tens of GiB (years of sales): little must be left either way.
        (m, p) if m < 100 || (p < 5 && m < 1024) => check("store.disk", Status::Fail, disk(), disk_fix),
        (m, p) if p < 15 && m < 4096 => check("store.disk", Status::Warn, disk(), disk_fix),
        _ => ok("store.disk", disk()),
    };
    let integrity = if facts.integrity == "ok" {
        ok(
            "store.integrity",
            said("database integrity check: ok", "数据库完整性检查：正常"),
        )
    } else {
        check(
            "store.integrity",
            Status::Fail,
            said(
                format!("database integrity check: {}", facts.integrity),
                format!("数据库完整性检查发现损坏：{}", facts.integrity),
            ),
            (
                "Stop selling, download a backup, and restore the last good backup; call support with the evidence pack.",
                "停止交易，下载备份并恢复最近一次完好的备份；带上证据包联系技术支持。",
            ),
        )
    };
    let clock = match facts.clock_behind {
        None => ok(
            "store.clock",
            said(
                "the clock is not behind the last transaction",
                "时钟没有落后于最近一笔交易",
            ),
        ),
        Some(by) => check(
            "store.clock",
            Status::Fail,
            said(
                format!(
                    "the clock is {} min behind the last transaction recorded: the hub refuses new sales (code XT) until the time is right",
                    by.num_minutes().max(1)
                ),
                format!(
                    "时钟比最近记录的交易慢 {} 分钟：时间正确之前，主机拒绝新交易（代码 XT）",
                    by.num_minutes().max(1)
                ),
            ),
            (
                "The hub has no clock battery and takes the time from the internet: check its network cable or Wi-Fi; sales resume by themselves once the time is right.",
                "主机没有时钟电池，需从互联网获取时间：请检查主机的网线或 Wi-Fi；时间正确后自动恢复交易。",
            ),
        ),
    };
    let brought_back = match facts.recovered {
        0 => (String::new(), String::new()),
        n => (
            format!("; {n} approvals it lacked were brought back from the checkouts' own records"),
            format!("；已从收银台自身的记录中找回 {n} 笔缺失的成功交易"),
        ),
    };
    let history = match &facts.history_lost {
        None if facts.recovered > 0 => check(
            "store.history",
            Status::Warn,
            said(
                format!("the database lacked approvals the checkouts had printed{}", brought_back.0),
                format!("数据库缺少收银台已打印的成功交易{}", brought_back.1),
            ),
            (
                "Records the hub had saved were lost (an old backup put back, or the SD card). The checkouts' own records brought the approvals back; compare today's receipts with the slips, and replace the SD card if it was not a restore.",
                "主机已保存的记录曾丢失（恢复了旧备份，或 SD 卡故障）。已根据收银台自身的记录找回成功交易；请将今天的交易记录与小票核对，如非恢复备份所致，请更换 SD 卡。",
            ),
        ),
        None => ok(
            "store.history",
            said(
                "the database holds all the history its witness has seen",
                "数据库保留了全部历史记录",
            ),
        ),
        Some(lost) => check(
            "store.history",
            Status::Fail,
            said(
                format!(
                    "history lost below the database: {lost}{}; the hub refuses new sales (code XW)",
                    brought_back.0
                ),
                format!("数据库下层丢失了记录：{lost}{}；主机拒绝新交易（代码 XW）", brought_back.1),
            ),
            (
                "The SD card or a power cut lost records the hub had saved. Keep the card as it is (download the evidence pack and a backup first). Find the missing transactions on the checkouts' slips and the bank's statement, then press \"Accept the loss\" here: it is recorded, trace numbers move past the lost ones, and sales resume. Replace the SD card soon.",
                "SD 卡或断电丢失了主机已保存的记录。请保持卡的现状（先下载证据包和备份）。请根据收银台的小票和银行对账单找出缺失的交易，然后在此点击“接受丢失”：此操作会被记录，凭证号会跳过丢失的号码，交易随即恢复。请尽快更换 SD 卡。",
            ),
        ),
    };
    let mut found = vec![space, integrity, clock, history, backup(facts)];
    found.extend(facts.offsite.as_ref().map(offsite));
    found
}

/// An RFC 3339 time as the store's local `YYYY-MM-DD HH:MM` (as written
/// when it does not parse).
fn store_time(at: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(at)
        .map(|at| {
            tallybox_platform::clock::to_local(at.with_timezone(&chrono::Utc))
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| at.to_string())
}

/// The copy in the owner's bucket, once the hub was set to make one.
fn offsite(copied: &crate::offsite::Copied) -> Check {
    let when = store_time(&copied.at);
    match (&copied.error, &copied.object) {
        (Some(error), _) => check(
            "store.offsite",
            Status::Warn,
            said(
                format!("the off-site copy failed at {when}: {error}"),
                format!("{when} 异地备份失败：{error}"),
            ),
            (
                "Check the hub's internet connection, then the bucket, the access key and its secret: under Settings, Backup, Off-site copy on this page (enter them again), or in the [offsite] part of the hub's settings file. The hub tries again every ten minutes; the backups on the hub are not affected.",
                "请检查主机的网络连接，再检查存储桶、访问密钥及其密码：在本页“设置 → 备份 → 异地备份”中重新填写，或在主机设置文件的 [offsite] 部分修改。主机每十分钟重试一次；主机上的备份不受影响。",
            ),
        ),
        (None, object) => {
            let object = object.as_deref().unwrap_or_default();
            ok(
                "store.offsite",
                said(
                    format!("a proven copy is off-site, from {when}: {object}"),
                    format!("异地有一份 {when} 的完整副本：{object}"),
                ),
            )
        }
    }
}

/// The automatic backups in the data directory: the newest's time, how
/// many, their bytes.
fn backups(data_dir: &std::path::Path) -> Option<(chrono::NaiveDateTime, usize, u64)> {
    let found = crate::store::backups::automatic(&data_dir.join("backups")).ok()?;
    let (newest, _) = found.first()?;
    let stamp = newest.file_stem()?.to_string_lossy().get(5..20)?.to_string();
    let at = chrono::NaiveDateTime::parse_from_str(&stamp, "%Y%m%d-%H%M%S").ok()?;
    Some((at, found.len(), found.iter().map(|(_, b)| b).sum()))
}

/// A proven backup less than a day and a half old, once there is anything to keep.
fn backup(facts: &Facts) -> Check {
    let found = backup_on_hub(facts);
    let (en, zh) = match &facts.stick {
        None => (
            "no USB stick: plug one into the hub and it keeps a copy of the backups off the SD card"
                .to_string(),
            "未插 U 盘：在主机上插入 U 盘，主机会在 SD 卡之外另存一份备份".to_string(),
        ),
        Some((copied, plugged)) => {
            let when = store_time(&copied.at);
            match (&copied.error, plugged) {
                (Some(error), true) => {
                    return check(
                        "store.backup",
                        Status::Warn,
                        said(
                            format!("{}; the copy on the USB stick failed at {when}: {error}", found.evidence),
                            format!("{}；{when} 复制到 U 盘失败：{error}", found.evidence_zh),
                        ),
                        (
                            "The USB stick may be full, read-only or failing: free some room on it or plug in another (FAT32 or exFAT). The hub tries again every ten minutes.",
                            "U 盘可能已满、只读或损坏：请清理空间或换一个（FAT32 或 exFAT 格式）。主机每十分钟重试一次。",
                        ),
                    )
                }
                (Some(_), false) => (
                    format!("the last copy on a USB stick failed ({when}); no stick is plugged in now"),
                    format!("上次复制到 U 盘失败（{when}）；现在未插 U 盘"),
                ),
                (None, true) => (
                    format!("a copy is on the USB stick, from {when}"),
                    format!("U 盘上有一份 {when} 的副本"),
                ),
                (None, false) => (
                    format!("the last copy went onto a USB stick at {when}; it is not plugged in now"),
                    format!("最近一次于 {when} 复制到 U 盘；U 盘现在未插"),
                ),
            }
        }
    };
    Check {
        evidence: format!("{}; {en}", found.evidence),
        evidence_zh: format!("{}；{zh}", found.evidence_zh),
        ..found
    }
}

/// The automatic backups on the hub's own disk.
fn backup_on_hub(facts: &Facts) -> Check {
    let stale = chrono::Duration::hours(36);
    let fix = (
        "The hub backs up after each settlement and every night: keep it switched on at night, settle daily, and check that its disk has room (store.disk). Download a backup from Settings now.",
        "主机会在每次结算后和每天夜里自动备份：请夜间保持主机开机、每天结算，并检查磁盘空间（store.disk）。现在请在“设置”中下载一份备份。",
    );
    match (facts.backups, facts.first_sale) {
        (Some((at, count, bytes)), _) => {
            let (when, mib) = (at.format("%Y-%m-%d %H:%M"), bytes.div_ceil(1 << 20));
            let evidence = said(
                format!("last automatic backup {when} (checked whole), {count} kept, {mib} MiB in all"),
                format!("最近一次自动备份 {when}（已完整校验），共保留 {count} 份，{mib} MiB"),
            );
            if facts.now - at > stale {
                check(
                    "store.backup",
                    Status::Warn,
                    said(
                        format!("{}: over a day and a half old", evidence.en),
                        format!("{}：已超过一天半", evidence.zh),
                    ),
                    fix,
                )
            } else {
                ok("store.backup", evidence)
            }
        }
        (None, Some(first)) if facts.now - first > stale => check(
            "store.backup",
            Status::Warn,
            said(
                "no automatic backup yet, and the first sale was over a day and a half ago",
                "还没有自动备份，而第一笔交易已是一天半以前",
            ),
            fix,
        ),
        (None, _) => ok(
            "store.backup",
            said(
                "no automatic backup yet: the first is taken after the first settlement or tonight",
                "还没有自动备份：第一份会在首次结算后或今晚生成",
            ),
        ),
    }
}

/// The worst status: what `tallybox doctor` exits with (0 ok, 1 warn, 2 fail).
pub fn worst(checks: &[Check]) -> Status {
    checks.iter().map(|c| c.status).max().unwrap_or(Status::Ok)
}

/// `PRAGMA quick_check`: reads the whole database (seconds on a Pi with a
/// year of sales), so the running hub does it at most hourly.
pub fn integrity(store: &Store) -> Result<String, StoreError> {
    Ok(store
        .connection()
        .query_row("PRAGMA quick_check", [], |r| r.get(0))?)
}

/// The facts from the store and the file system it lives on; `integrity` is
/// [`integrity`]'s answer (run now when `None`).
pub fn gather(store: &Store, integrity: Option<String>) -> Result<Facts, StoreError> {
    let conn = store.connection();
    let integrity = match integrity {
        Some(known) => known,
        None => self::integrity(store)?,
    };
    let now = tallybox_platform::clock::now().naive_local();
    let ago = |d: chrono::Duration| (chrono::Utc::now() - d).format("%Y-%m-%dT%H:%M:%S").to_string();
    let stale_pending: u32 = conn.query_row(
        "SELECT count(*) FROM transactions WHERE status = 'pending' AND created_at < ?1 AND tender != 'code'",
        [ago(chrono::Duration::minutes(1))],
        |r| r.get(0),
    )?;
    let codes = conn.query_row(
        "SELECT coalesce(sum(kind = 'sale'), 0), \
         coalesce(sum(kind = 'sale' AND status = 'pending' AND created_at < ?1), 0), \
         coalesce(sum(kind = 'sale' AND status = 'approved' AND created_at >= ?3), 0), \
         coalesce(sum(kind = 'sale' AND response_code = 'QC' AND created_at >= ?3), 0), \
         coalesce(sum(response_code = 'QK' AND created_at >= ?3), 0), \
         coalesce(sum(response_code = 'QT' AND created_at >= ?3), 0) \
         FROM transactions WHERE tender = 'code' AND created_at >= ?2",
        [
            ago(chrono::Duration::minutes(1)),
            ago(chrono::Duration::hours(24)),
            ago(chrono::Duration::hours(1)),
        ],
        |r| {
            Ok(CodeFacts {
                sales: r.get(0)?,
                undecided: r.get(1)?,
                paid_hour: r.get(2)?,
                not_confirmed_hour: r.get(3)?,
                key_refused_hour: r.get(4)?,
                clock_refused_hour: r.get(5)?,
            })
        },
    )?;
    // By local time: the transactions' time index.
    let hour_ago = (now - chrono::Duration::hours(1))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let mut stmt = conn.prepare_cached(
        "SELECT terminal_id, status, response_code, pan_hash, last4, local_time FROM transactions \
         WHERE local_time >= ?1 ORDER BY local_time DESC, id DESC LIMIT 1000",
    )?;
    let recent = stmt
        .query_map([hour_ago], |r| {
            Ok(Recent {
                terminal_id: r.get(0)?,
                status: r.get(1)?,
                response_code: ResponseCode::parse(&r.get::<_, String>(2)?),
                pan_hash: r.get(3)?,
                last4: r.get(4)?,
                local_time: r.get(5)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT terminal_id, count(*) FROM lost_requests WHERE at >= ?1 GROUP BY terminal_id",
    )?;
    let lost = stmt
        .query_map([ago(chrono::Duration::minutes(15))], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut login_failures = Vec::new();
    for account in store.accounts()? {
        let (failures, last) = store.failures_since_success(&account.name)?;
        login_failures.push((account.name, failures, last));
    }
    let locked_cashiers = store
        .cashiers()?
        .into_iter()
        .filter_map(|c| Some((c.no, c.name, c.locked_at?)))
        .collect();
    let mut stmt = conn
        .prepare_cached("SELECT rule, count(*) FROM fraud_hits WHERE at >= ?1 GROUP BY rule ORDER BY rule")?;
    let fraud_hits = stmt
        .query_map([ago(chrono::Duration::hours(24))], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let (disk_free, disk_total) = crate::store::disk_space(&store.data_dir());
    Ok(Facts {
        login_failures,
        locked_cashiers,
        fraud_hits,
        terminals: store.terminals()?,
        wear: store.wear()?,
        hub_version: env!("CARGO_PKG_VERSION").to_string(),
        hub_machine: None,
        disk_free,
        disk_total,
        integrity,
        clock_behind: store.clock_behind()?,
        history_lost: store.history_lost()?.map(|lost| lost.to_string()),
        recovered: store.recently_recovered()?,
        backups: backups(&store.data_dir()),
        stick: crate::store::stick::last(&store.data_dir()).map(|copied| {
            let plugged = crate::store::stick::plugged(&copied.stick);
            (copied, plugged)
        }),
        offsite: crate::offsite::last(&store.data_dir()),
        first_sale: conn
            .query_row("SELECT min(local_time) FROM transactions", [], |r| {
                r.get::<_, Option<String>>(0)
            })?
            .and_then(|t| chrono::NaiveDateTime::parse_from_str(&t, "%Y-%m-%d %H:%M:%S").ok()),
        stale_pending,
        codes,
        bills: store.bill_checks(None)?,
        recent,
        lost,
        broker_connected: None,
        broker_refused: None,
        pairing: None,
        updates: None,
        acquirer: None,
        now,
    })
}
