//! The machine under the hub or a checkout: heat, power and Bluetooth.

use tallybox_platform::machine::{Bluetooth, MachineHealth};

use super::{check, ok, said, Check, Status};

/// The Pi slows itself down at 80 °C; warn well before.
const WARM_C: i32 = 70;
const HOT_C: i32 = 80;

/// `prefix` starts each id (`hub`, `terminal.T1`); `who` starts each
/// sentence, in English and in Chinese.
pub(super) fn checks(prefix: &str, (who, who_zh): (&str, &str), m: &MachineHealth) -> Vec<Check> {
    let id = |what: &str| format!("{prefix}.{what}");
    let mut out = Vec::new();
    if let Some(c) = m.cpu_temp_c {
        let heat = (
            "Move it out of the sun and away from heaters or the fryer; leave air around it; a case with a heat sink or fan helps.",
            "将设备移出阳光直射，远离暖气或油炸设备；四周留出通风空间；可加装散热片或风扇外壳。",
        );
        let evidence = || {
            said(
                format!("{who}'s CPU is at {c} °C"),
                format!("{who_zh} 的处理器温度 {c} °C"),
            )
        };
        out.push(match c {
            c if c >= HOT_C => check(
                id("temperature"),
                Status::Fail,
                said(
                    format!("{}: it is slowing down to cool", evidence().en),
                    format!("{}：正在降速散热", evidence().zh),
                ),
                heat,
            ),
            c if c >= WARM_C => check(
                id("temperature"),
                Status::Warn,
                said(
                    format!("{}: close to slowing down (80 °C)", evidence().en),
                    format!("{}：接近降速温度（80 °C）", evidence().zh),
                ),
                heat,
            ),
            _ => ok(id("temperature"), evidence()),
        });
    }
    if let Some(p) = m.power {
        let supply = (
            "Use the Raspberry Pi power adapter (5 V 3 A for a Pi 4, 5 A for a Pi 5) with its own short cable; not a phone charger or a USB port.",
            "请使用树莓派原装电源（Pi 4 为 5V 3A，Pi 5 为 5A）和配套短线；不要用手机充电器或电脑 USB 口供电。",
        );
        out.push(if p.under_voltage {
            check(
                id("power"),
                Status::Fail,
                said(
                    format!("{who}'s power supply is too weak right now (under-voltage): it may freeze or reboot"),
                    format!("{who_zh} 的电源此刻供电不足（欠压）：可能死机或重启"),
                ),
                supply,
            )
        } else if p.under_voltage_before || p.throttled {
            check(
                id("power"),
                Status::Warn,
                said(
                    format!(
                        "{who}'s supply dipped or it slowed down since it started (under-voltage: {}, throttled: {})",
                        p.under_voltage_before, p.throttled
                    ),
                    format!(
                        "{who_zh} 启动以来{}{}",
                        if p.under_voltage_before { "出现过欠压；" } else { "" },
                        if p.throttled { "因过热或欠压降过速" } else { "" },
                    ),
                ),
                supply,
            )
        } else {
            ok(
                id("power"),
                said(format!("{who}'s power supply is steady"), format!("{who_zh} 的供电稳定")),
            )
        });
    }
    if let Some(b) = m.bluetooth {
        out.push(match b {
            Bluetooth::On => ok(
                id("bluetooth"),
                said(format!("{who}'s Bluetooth is on"), format!("{who_zh} 的蓝牙已开启")),
            ),
            Bluetooth::Blocked => check(
                id("bluetooth"),
                Status::Warn,
                said(
                    format!("{who}'s Bluetooth is switched off: Bluetooth printers and scanners cannot connect"),
                    format!("{who_zh} 的蓝牙已关闭：蓝牙打印机和扫码枪无法连接"),
                ),
                (
                    "Switch Bluetooth on (flight-mode switch, or `rfkill unblock bluetooth`); then keep the device within 5 m and pair it again with its PIN.",
                    "打开蓝牙（飞行模式开关，或执行 `rfkill unblock bluetooth`）；设备保持在 5 米内，并用其 PIN 重新配对。",
                ),
            ),
        });
    }
    out
}
