//! Checks that say what is wrong and what to do: sans-IO rules over facts
//! gathered from the store and the machine. Each check has an id, a status
//! (ok / warn / fail), its evidence in numbers, and fix steps in English and
//! Chinese. `tallybox doctor` prints them; more signals and the web page's
//! troubleshooting view build on the same rules.

use serde::Serialize;
use tallybox_terminal::devices::PrinterProblem;

use crate::store::terminals::TerminalRow;
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `terminal.T1.online`, `store.disk`, …
    pub id: String,
    pub status: Status,
    /// What was measured, with its numbers.
    pub evidence: String,
    pub fix_en: &'static str,
    #[serde(rename = "fix_zh-CN")]
    pub fix_zh: &'static str,
}

/// What the rules look at.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub terminals: Vec<TerminalRow>,
    /// Free and total bytes where the database lives.
    pub disk_free: u64,
    pub disk_total: u64,
    /// `PRAGMA quick_check`'s answer: `ok` when the database is sound.
    pub integrity: String,
    /// Sales written `pending` more than a minute ago: reversals waiting on the acquirer.
    pub stale_pending: u32,
    /// Whether the running hub is connected to its broker; `None` when the
    /// checks run outside the hub (`tallybox doctor`), which cannot know.
    pub broker_connected: Option<bool>,
}

/// Swipes before a reader's error rate means anything.
const MIN_SWIPES: u32 = 20;
/// Share of unreadable swipes (percent) that says "clean the reader".
const SWIPE_ERROR_PERCENT: u32 = 20;

fn check(id: String, status: Status, evidence: String, fix: (&'static str, &'static str)) -> Check {
    Check {
        id,
        status,
        evidence,
        fix_en: fix.0,
        fix_zh: fix.1,
    }
}

const NOTHING: (&str, &str) = ("Nothing to do.", "无需处理。");

fn printer_fix(problem: PrinterProblem) -> (&'static str, &'static str) {
    match problem {
        PrinterProblem::PaperOut => (
            "Put in a new paper roll, close the cover; waiting slips then print once. Meanwhile customers can scan the e-receipt QR.",
            "装入新纸卷并合上盖子，未打印的签购单随后各打印一次。期间顾客可扫描电子签购单二维码。",
        ),
        PrinterProblem::CoverOpen => ("Close the printer cover firmly.", "请合紧打印机盖。"),
        PrinterProblem::HeadHot => (
            "Let the printer cool for a few minutes; keep it out of the sun and away from heaters.",
            "让打印机冷却几分钟，避免阳光直射和靠近热源。",
        ),
        PrinterProblem::CutterJammed => (
            "Open the cover, remove the jammed paper at the cutter, close the cover.",
            "打开盖子，取出切刀处卡住的纸，再合上盖子。",
        ),
        PrinterProblem::Offline | PrinterProblem::NotResponding => (
            "Check the printer's power and cable (or Bluetooth pairing); switch it off and on.",
            "检查打印机电源和连线（或蓝牙配对），关机再开机。",
        ),
        PrinterProblem::Broken => (
            "The printer reports a fault it cannot clear: replace it; reprint slips from the web page.",
            "打印机报告无法排除的故障：请更换打印机，并在网页上重打印签购单。",
        ),
    }
}

/// Every check over `facts`, worst first.
pub fn checks(facts: &Facts) -> Vec<Check> {
    let mut out = Vec::new();
    for t in &facts.terminals {
        let id = |what: &str| format!("terminal.{}.{what}", t.id);
        out.push(if t.online {
            check(id("online"), Status::Ok, format!("{} is online", t.id), NOTHING)
        } else {
            check(
                id("online"),
                Status::Fail,
                format!("{} is offline, last heard from at {} UTC", t.id, t.last_seen),
                (
                    "Check the checkout's power adapter and cable and its network; hold its power button 10 s to restart it.",
                    "检查收银台的电源适配器、电源线和网络；长按电源键 10 秒重启。",
                ),
            )
        });
        let Some(d) = &t.devices else { continue };
        out.push(match d.printer {
            Some(problem) => check(
                id("printer"),
                Status::Fail,
                format!(
                    "{}'s printer: {}; {} slips waiting",
                    t.id,
                    problem.short().0,
                    d.slips_waiting
                ),
                printer_fix(problem),
            ),
            None => check(
                id("printer"),
                Status::Ok,
                format!("{}'s printer prints", t.id),
                NOTHING,
            ),
        });
        let rate = d.swipe_errors * 100 / d.swipes.max(1);
        out.push(if d.swipes >= MIN_SWIPES && rate >= SWIPE_ERROR_PERCENT {
            check(
                id("reader"),
                Status::Warn,
                format!("{}'s magnetic reader: {} of {} swipes unreadable ({rate}%)", t.id, d.swipe_errors, d.swipes),
                (
                    "Clean the reader with a cleaning card; keep magnets and phones away from it; ask customers to swipe steadily.",
                    "用清洁卡清洁读卡器；让磁铁和手机远离读卡器；请顾客匀速刷卡。",
                ),
            )
        } else if d.cards_stuck > 0 {
            check(
                id("reader"),
                Status::Warn,
                format!("{}: a card stayed in the reader {} times", t.id, d.cards_stuck),
                (
                    "Pull a stuck card out gently; check the slot for dirt or a bent card.",
                    "轻轻取出卡住的卡；检查卡槽是否有污物或弯曲的卡片。",
                ),
            )
        } else {
            check(
                id("reader"),
                Status::Ok,
                format!("{}: {} of {} swipes unreadable", t.id, d.swipe_errors, d.swipes),
                NOTHING,
            )
        });
    }
    let free_pct = facts.disk_free * 100 / facts.disk_total.max(1);
    let free_mib = facts.disk_free >> 20;
    let disk = format!("{free_mib} MiB free ({free_pct}%) where the database lives");
    let disk_fix = (
        "Free space: download a backup and the evidence packs you need, remove old files; or move the data to a larger SD card.",
        "释放空间：先下载备份和所需证据包，再删除旧文件；或换用更大的 SD 卡。",
    );
    out.push(match (free_mib, free_pct) {
        (m, p) if m < 100 || p < 5 => check("store.disk".into(), Status::Fail, disk, disk_fix),
        (_, p) if p < 15 => check("store.disk".into(), Status::Warn, disk, disk_fix),
        _ => check("store.disk".into(), Status::Ok, disk, NOTHING),
    });
    out.push(if facts.integrity == "ok" {
        check("store.integrity".into(), Status::Ok, "database integrity check: ok".into(), NOTHING)
    } else {
        check(
            "store.integrity".into(),
            Status::Fail,
            format!("database integrity check: {}", facts.integrity),
            (
                "Stop selling, download a backup, and restore the last good backup; call support with the evidence pack.",
                "停止交易，下载备份并恢复最近一次完好的备份；带上证据包联系技术支持。",
            ),
        )
    });
    out.push(if facts.stale_pending == 0 {
        check("payments.reversals".into(), Status::Ok, "no sale waits for a reversal".into(), NOTHING)
    } else {
        check(
            "payments.reversals".into(),
            Status::Warn,
            format!("{} sales wait for the acquirer to acknowledge a reversal", facts.stale_pending),
            (
                "The bank link is down or slow: those customers were told \"not charged\" only if it was true; check the network and the acquirer; the hub keeps retrying.",
                "与银行的连接中断或缓慢：哪些顾客未扣款已如实告知；请检查网络和收单机构，主机会持续重试。",
            ),
        )
    });
    match facts.broker_connected {
        Some(true) => out.push(check(
            "hub.broker".into(),
            Status::Ok,
            "the hub is connected to the MQTT broker".into(),
            NOTHING,
        )),
        Some(false) => out.push(check(
            "hub.broker".into(),
            Status::Fail,
            "the hub is not connected to the MQTT broker: no checkout can reach it".into(),
            (
                "Restart the hub (unplug it for 10 s); with an external broker, check that it runs.",
                "重启主机（断电 10 秒）；如使用外部消息服务器，请确认其正在运行。",
            ),
        )),
        None => {}
    }
    out.sort_by(|a, b| b.status.cmp(&a.status).then(a.id.cmp(&b.id)));
    out
}

/// The worst status: what `tallybox doctor` exits with (0 ok, 1 warn, 2 fail).
pub fn worst(checks: &[Check]) -> Status {
    checks.iter().map(|c| c.status).max().unwrap_or(Status::Ok)
}

/// The facts from the store and the file system it lives on.
pub fn gather(store: &Store, data_dir: &std::path::Path) -> Result<Facts, StoreError> {
    let conn = store.connection();
    let integrity: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    let minute_ago = (chrono::Utc::now() - chrono::Duration::minutes(1))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let stale_pending: u32 = conn.query_row(
        "SELECT count(*) FROM transactions WHERE status = 'pending' AND created_at < ?1",
        [minute_ago],
        |r| r.get(0),
    )?;
    let (disk_free, disk_total) = disk_space(data_dir);
    Ok(Facts {
        terminals: store.terminals()?,
        disk_free,
        disk_total,
        integrity,
        stale_pending,
        broker_connected: None,
    })
}

fn disk_space(dir: &std::path::Path) -> (u64, u64) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return (0, 0);
    };
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `stat` is a valid out-pointer.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return (0, 0);
    }
    let unit = stat.f_frsize as u64;
    (stat.f_bavail as u64 * unit, stat.f_blocks as u64 * unit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tallybox_terminal::protocol::DeviceHealth;

    fn terminal(id: &str, online: bool, devices: Option<DeviceHealth>) -> TerminalRow {
        TerminalRow {
            id: id.into(),
            name: id.into(),
            online,
            version: "0.1.0".into(),
            last_seen: "2026-11-26T03:00:00".into(),
            devices,
            frozen: None,
            cashier: None,
        }
    }

    fn healthy() -> Facts {
        Facts {
            terminals: vec![terminal("T1", true, Some(DeviceHealth::default()))],
            disk_free: 8 << 30,
            disk_total: 16 << 30,
            integrity: "ok".into(),
            stale_pending: 0,
            broker_connected: Some(true),
        }
    }

    fn status_of(checks: &[Check], id: &str) -> Status {
        checks
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("no {id}"))
            .status
    }

    #[test]
    fn a_healthy_store_is_all_green() {
        let all = checks(&healthy());
        assert_eq!(worst(&all), Status::Ok, "{all:#?}");
        assert_eq!(all.len(), 7);
    }

    #[test]
    fn each_fault_turns_its_own_check_and_says_what_to_do() {
        let mut f = healthy();
        f.terminals = vec![
            terminal("T1", false, None),
            terminal(
                "T2",
                true,
                Some(DeviceHealth {
                    swipes: 40,
                    swipe_errors: 12,
                    printer: Some(PrinterProblem::PaperOut),
                    slips_waiting: 2,
                    ..Default::default()
                }),
            ),
        ];
        f.disk_free = 50 << 20;
        f.integrity = "*** in database main ***\nPage 5: btreeInitPage() returns error code 11".into();
        f.stale_pending = 3;
        f.broker_connected = Some(false);
        let all = checks(&f);
        assert_eq!(status_of(&all, "terminal.T1.online"), Status::Fail);
        assert_eq!(status_of(&all, "terminal.T2.printer"), Status::Fail);
        assert_eq!(status_of(&all, "terminal.T2.reader"), Status::Warn);
        assert_eq!(status_of(&all, "store.disk"), Status::Fail);
        assert_eq!(status_of(&all, "store.integrity"), Status::Fail);
        assert_eq!(status_of(&all, "payments.reversals"), Status::Warn);
        assert_eq!(status_of(&all, "hub.broker"), Status::Fail);
        let paper = all.iter().find(|c| c.id == "terminal.T2.printer").unwrap();
        assert!(
            paper.fix_en.contains("paper roll") && paper.fix_zh.contains("纸卷"),
            "{paper:?}"
        );
        assert!(all
            .iter()
            .find(|c| c.id == "terminal.T2.reader")
            .unwrap()
            .evidence
            .contains("12 of 40"));
        assert_eq!(all[0].status, Status::Fail, "worst first");
        assert_eq!(worst(&all), Status::Fail);
        // A few errors in few swipes are not a dirty reader yet.
        f.terminals[1].devices.as_mut().unwrap().swipes = 10;
        assert_eq!(status_of(&checks(&f), "terminal.T2.reader"), Status::Ok);
    }
}
