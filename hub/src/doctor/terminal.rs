//! Each checkout: is it there, does it keep restarting, does it run the
//! hub's version, does its printer print and how much paper is left, is its
//! reader dirty or disturbed, do its requests reach the hub, and its machine.

use tallybox_core::protocol::DeviceHealth;
use tallybox_core::protocol::PrinterProblem;
use tallybox_platform::machine::Bluetooth;

use super::{check, machine, ok, said, Check, Fix, Status};
use crate::store::terminals::TerminalRow;
use crate::store::wear::Wear;

/// Starts within an hour that mean a power or software problem.
const RESTARTS: u32 = 3;
/// Swipes before a reader's error rate means anything.
const MIN_SWIPES: u32 = 20;
/// Share of unreadable swipes (percent) that says "clean the reader".
const SWIPE_ERROR_PERCENT: u32 = 20;
/// Taps before "contactless works" means anything.
const MIN_TAPS: u32 = 5;
/// Clean a magnetic reader after this many swipes.
pub const CLEAN_AFTER_SWIPES: u32 = 1000;
/// A 57 × 40 mm thermal roll holds about 15 m.
pub const ROLL_MM: u64 = 15_000;
/// Warn when this share (percent) of a roll is used.
const ROLL_LOW_PERCENT: u64 = 85;

fn printer_fix(problem: PrinterProblem) -> Fix {
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

/// A UTC time the store keeps (`2026-12-05T08:29:08Z`), as the shop's clock reads it.
pub(super) fn local(utc: &str) -> String {
    let instant = chrono::DateTime::parse_from_rfc3339(utc)
        .map(|t| t.to_utc())
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(utc.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
                .map(|t| t.and_utc())
        });
    match instant {
        Ok(t) => tallybox_platform::clock::to_local(t)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => utc.to_string(),
    }
}

/// A reader failing on many swipes since its checkout started.
fn reader_failing(d: &DeviceHealth) -> bool {
    d.swipes >= MIN_SWIPES && d.swipe_errors * 100 / d.swipes.max(1) >= SWIPE_ERROR_PERCENT
}

pub(super) fn checks(
    t: &TerminalRow,
    wear: Option<&Wear>,
    lost: u32,
    hub_version: &str,
    all: &[TerminalRow],
) -> Vec<Check> {
    let id = |what: &str| format!("terminal.{}.{what}", t.id);
    let mut out = vec![if t.online {
        ok(
            id("online"),
            said(format!("{} is online", t.id), format!("{} 在线", t.id)),
        )
    } else {
        check(
            id("online"),
            Status::Fail,
            said(
                format!("{} is offline, last heard from at {}", t.id, local(&t.last_seen)),
                format!("{} 已离线，最后一次收到它的消息是 {}", t.id, local(&t.last_seen)),
            ),
            (
                "Check the checkout's power adapter and cable and its network; hold its power button 10 s to restart it.",
                "检查收银台的电源适配器、电源线和网络；长按电源键 10 秒重启。",
            ),
        )
    }];
    if let Some(w) = wear {
        out.push(if w.starts_last_hour >= RESTARTS {
            check(
                id("restarts"),
                Status::Fail,
                said(
                    format!("{} started {} times in the last hour", t.id, w.starts_last_hour),
                    format!("{} 最近一小时启动了 {} 次", t.id, w.starts_last_hour),
                ),
                (
                    "A checkout that keeps restarting is short of power or crashing: use its own power adapter and a short cable; if it goes on, download the support bundle and send it to support.",
                    "收银台反复重启，多为供电不足或软件崩溃：请使用其原装电源适配器和短电源线；如仍反复重启，请下载支持包发给技术支持。",
                ),
            )
        } else {
            ok(
                id("restarts"),
                said(
                    format!("{} running since {}", t.id, local(&w.started_at)),
                    format!("{} 自 {} 起一直运行", t.id, local(&w.started_at)),
                ),
            )
        });
    }
    if !t.version.is_empty() && t.version != hub_version {
        out.push(check(
            id("version"),
            Status::Warn,
            said(
                format!("{} runs version {}, the hub {hub_version}", t.id, t.version),
                format!("{} 运行的版本是 {}，主机是 {hub_version}", t.id, t.version),
            ),
            (
                "Update the checkout to the hub's version (Troubleshooting → updates), then restart it.",
                "请将收银台更新到与主机相同的版本（故障排查 → 更新），然后重启。",
            ),
        ));
    }
    if lost > 0 {
        out.push(check(
            id("link"),
            Status::Warn,
            said(
                format!(
                    "{lost} requests from {} in the last 15 minutes never reached the hub (those customers were told \"not charged\")",
                    t.id
                ),
                format!(
                    "最近 15 分钟 {} 有 {lost} 个请求没有到达主机（已告知这些顾客“未扣款”）",
                    t.id
                ),
            ),
            (
                "The checkout's network drops: move it closer to the Wi-Fi router or use a cable; restart the router if several checkouts show this.",
                "收银台网络不稳定：将其移近无线路由器或改用网线；如多台收银台都有此问题，请重启路由器。",
            ),
        ));
    }
    let Some(d) = &t.devices else {
        return out;
    };
    out.push(if d.not_started.is_empty() {
        ok(
            id("parts"),
            said(format!("all of {}'s parts started", t.id), format!("{} 的部件全部启动", t.id)),
        )
    } else {
        check(
            id("parts"),
            Status::Fail,
            said(
                format!("{}'s parts not working (not started, or gone since): {}", t.id, d.not_started.join("; ")),
                format!("{} 不能工作的部件（未启动或已断开）：{}", t.id, d.not_started.join("；")),
            ),
            (
                "Check the wiring of each part named (WIRING.md) and that I2C and the UART are switched on, then restart the checkout. On the checkout (or the hub, for its own) the hw-test command checks each part and says what to fix.",
                "检查所列部件的接线（见 WIRING.md），确认已开启 I2C 和串口，然后重启收银台。在收银台（主机自带收银台则在主机）上运行 hw-test 命令，可逐一检查部件并给出处理方法。",
            ),
        )
    });
    let bluetooth_printer = d.printer_link.as_deref() == Some("rfcomm");
    out.push(match d.printer {
        Some(problem @ (PrinterProblem::Offline | PrinterProblem::NotResponding)) if bluetooth_printer => {
            let radio_off = d.machine.as_ref().and_then(|m| m.bluetooth) == Some(Bluetooth::Blocked);
            check(
                id("printer"),
                Status::Fail,
                said(
                    format!(
                        "{}'s Bluetooth printer: {}{}; {} slips waiting",
                        t.id,
                        problem.short().0,
                        if radio_off { ", and Bluetooth is switched off" } else { "" },
                        d.slips_waiting
                    ),
                    format!(
                        "{} 的蓝牙打印机：{}{}；{} 张签购单待打印",
                        t.id,
                        problem.short().1,
                        if radio_off { "，且蓝牙已关闭" } else { "" },
                        d.slips_waiting
                    ),
                ),
                (
                    "Bluetooth printer: switch it on and keep it within 5 m of the checkout, away from metal and microwaves; if the checkout's Bluetooth is off, switch it on; if it still will not connect, pair it again with its PIN (often 0000 or 1234).",
                    "蓝牙打印机：打开打印机并放在收银台 5 米内，远离金属和微波炉；如收银台蓝牙已关闭，请打开；仍无法连接时，用其 PIN（通常为 0000 或 1234）重新配对。",
                ),
            )
        }
        Some(problem) => check(
            id("printer"),
            Status::Fail,
            said(
                format!(
                    "{}'s printer: {}; {} slips waiting",
                    t.id,
                    problem.short().0,
                    d.slips_waiting
                ),
                format!(
                    "{} 的打印机：{}；{} 张签购单待打印",
                    t.id,
                    problem.short().1,
                    d.slips_waiting
                ),
            ),
            printer_fix(problem),
        ),
        None => ok(
            id("printer"),
            said(format!("{}'s printer prints", t.id), format!("{} 的打印机正常", t.id)),
        ),
    });
    out.push(paper(t, d, wear));
    out.push(reader(t, d, all));
    if let Some(w) = wear {
        let (since, since_zh) = match w.cleaned_at.as_deref() {
            Some(at) => (local(at), format!("{} 清洁以来", local(at))),
            None => ("it was installed".to_string(), "安装以来".to_string()),
        };
        let n = w.swipes_since_clean;
        let evidence = said(
            format!("{n} swipes on {}'s reader since {since}", t.id),
            format!("{} 的读卡器{since_zh}刷卡 {n} 次", t.id),
        );
        out.push(if w.swipes_since_clean >= CLEAN_AFTER_SWIPES {
            check(
                id("reader_cleaning"),
                Status::Warn,
                said(
                    format!("{}: time to clean it (every {CLEAN_AFTER_SWIPES})", evidence.en),
                    format!("{}：该清洁了（每 {CLEAN_AFTER_SWIPES} 次一次）", evidence.zh),
                ),
                (
                    "Run a reader cleaning card through the slot a few times, then press \"Reader cleaned\" here.",
                    "用读卡器清洁卡在卡槽中来回刷几次，然后在此点击“已清洁读卡器”。",
                ),
            )
        } else {
            ok(id("reader_cleaning"), evidence)
        });
    }
    if let Some(m) = &d.machine {
        out.extend(machine::checks(&format!("terminal.{}", t.id), (&t.id, &t.id), m));
    }
    out
}

fn paper(t: &TerminalRow, d: &DeviceHealth, wear: Option<&Wear>) -> Check {
    let id = format!("terminal.{}.paper", t.id);
    let fix = (
        "Have a new roll ready and change it when the coloured stripe shows; after changing it press \"New roll\" here.",
        "请备好新纸卷，出现彩色提示线时更换；换纸后在此点击“已换纸卷”。",
    );
    let used = wear.map_or(0, |w| w.paper_mm_since_roll);
    let metres = format!("{}.{}", used / 1000, used % 1000 / 100);
    if d.paper_low {
        return check(
            id,
            Status::Warn,
            said(
                format!(
                    "{}'s printer says the roll is nearly out ({metres} m printed since it was changed)",
                    t.id
                ),
                format!("{} 的打印机报告纸卷快用完了（换纸后已打印 {metres} 米）", t.id),
            ),
            fix,
        );
    }
    if used * 100 >= ROLL_MM * ROLL_LOW_PERCENT {
        return check(
            id,
            Status::Warn,
            said(
                format!(
                    "about {metres} m printed on {}'s roll since it was changed; a roll holds about {} m",
                    t.id,
                    ROLL_MM / 1000
                ),
                format!(
                    "{} 换纸后已打印约 {metres} 米；一卷纸约 {} 米",
                    t.id,
                    ROLL_MM / 1000
                ),
            ),
            fix,
        );
    }
    ok(
        id,
        said(
            format!(
                "about {metres} m of about {} m of {}'s roll used",
                ROLL_MM / 1000,
                t.id
            ),
            format!("{} 的纸卷约 {} 米，已用约 {metres} 米", t.id, ROLL_MM / 1000),
        ),
    )
}

fn reader(t: &TerminalRow, d: &DeviceHealth, all: &[TerminalRow]) -> Check {
    let id = format!("terminal.{}.reader", t.id);
    let rate = d.swipe_errors * 100 / d.swipes.max(1);
    let evidence = said(
        format!(
            "{}'s magnetic reader: {} of {} swipes unreadable ({rate}%)",
            t.id, d.swipe_errors, d.swipes
        ),
        format!(
            "{} 的磁条读卡器：{} 次刷卡中 {} 次读不出（{rate}%）",
            t.id, d.swipes, d.swipe_errors
        ),
    );
    if reader_failing(d) {
        let others = all
            .iter()
            .filter(|o| o.id != t.id && o.devices.as_ref().is_some_and(reader_failing))
            .count();
        if others > 0 {
            return check(
                id,
                Status::Warn,
                said(
                    format!("{}; {others} other checkouts' readers fail as often: not this reader alone", evidence.en),
                    format!("{}；另有 {others} 台收银台的读卡器同样频繁出错：不只是这台读卡器的问题", evidence.zh),
                ),
                (
                    "Readers fail all over the shop: look for a strong magnet, speaker, motor or induction cooker near the counters; ask customers whether their cards are worn.",
                    "全店读卡器同时出错：检查收银台附近是否有强磁铁、音箱、电机或电磁炉；询问顾客卡片是否磨损。",
                ),
            );
        }
        if d.taps >= MIN_TAPS && d.tap_errors * 10 <= d.taps {
            return check(
                id,
                Status::Warn,
                said(
                    format!(
                        "{}, while taps work ({} of {} failed): magnetic interference or dirt",
                        evidence.en, d.tap_errors, d.taps
                    ),
                    format!(
                        "{}，而挥卡正常（{} 次中失败 {} 次）：磁场干扰或脏污",
                        evidence.zh, d.taps, d.tap_errors
                    ),
                ),
                (
                    "Swipes fail while taps work: keep magnets, phones, speakers and motors away from the reader, then clean it with a cleaning card.",
                    "刷卡失败而挥卡正常：让磁铁、手机、音箱和电机远离读卡器，再用清洁卡清洁读卡器。",
                ),
            );
        }
        return check(
            id,
            Status::Warn,
            evidence,
            (
                "Clean the reader with a cleaning card; keep magnets and phones away from it; ask customers to swipe steadily.",
                "用清洁卡清洁读卡器；让磁铁和手机远离读卡器；请顾客匀速刷卡。",
            ),
        );
    }
    if d.cards_stuck > 0 {
        return check(
            id,
            Status::Warn,
            said(
                format!("{}: a card stayed in the reader {} times", t.id, d.cards_stuck),
                format!("{}：有 {} 次卡片留在了读卡器里", t.id, d.cards_stuck),
            ),
            (
                "Pull a stuck card out gently; check the slot for dirt or a bent card.",
                "轻轻取出卡住的卡；检查卡槽是否有污物或弯曲的卡片。",
            ),
        );
    }
    ok(id, evidence)
}
