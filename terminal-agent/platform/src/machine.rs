//! The Pi's own health, read from sysfs: CPU temperature, under-voltage and
//! throttling, and whether Bluetooth is switched on. Everything is read below
//! a root directory (`/` on a Pi), so tests and the demo feed a fake tree of
//! the same files and the checks that use it turn red and green for real.
//!
//! | what | file (below the root) |
//! |---|---|
//! | CPU temperature, m°C | `sys/class/thermal/thermal_zone0/temp` |
//! | under-voltage now (mainline kernel, `raspberrypi-hwmon`) | `sys/class/hwmon/*/in0_lcrit_alarm` where `name` is `rpi_volt` |
//! | firmware throttling bits (Raspberry Pi OS kernel) | `sys/devices/platform/soc/soc:firmware/get_throttled` |
//! | Bluetooth radio switched off | `sys/class/rfkill/*/soft` and `hard` where `type` is `bluetooth` |

use std::path::{Path, PathBuf};

pub use tallybox_core::protocol::{Bluetooth, MachineHealth, Power};

/// Reads the machine's health below `root`.
#[derive(Debug, Clone)]
pub struct Machine {
    root: PathBuf,
}

impl Default for Machine {
    fn default() -> Self {
        Machine::at("/")
    }
}

impl Machine {
    pub fn at(root: impl Into<PathBuf>) -> Machine {
        Machine { root: root.into() }
    }

    fn read(&self, path: impl AsRef<Path>) -> Option<String> {
        std::fs::read_to_string(self.root.join(path))
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// The entries of a sysfs class directory, e.g. every `hwmonN`.
    fn each(&self, class: &str) -> Vec<PathBuf> {
        let dir = Path::new("sys/class").join(class);
        let mut found: Vec<PathBuf> = std::fs::read_dir(self.root.join(&dir))
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| dir.join(e.file_name()))
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found
    }

    pub fn health(&self) -> MachineHealth {
        MachineHealth {
            cpu_temp_c: self.cpu_temp_c(),
            power: self.power(),
            bluetooth: self.bluetooth(),
        }
    }

    fn cpu_temp_c(&self) -> Option<i32> {
        let milli: i64 = self.read("sys/class/thermal/thermal_zone0/temp")?.parse().ok()?;
        Some(((milli + 500).div_euclid(1000)) as i32)
    }

    fn power(&self) -> Option<Power> {
        if let Some(bits) = self.read("sys/devices/platform/soc/soc:firmware/get_throttled") {
            let bits = u32::from_str_radix(bits.trim_start_matches("0x"), 16).ok()?;
            return Some(Power {
                under_voltage: bits & 0x1 != 0,
                under_voltage_before: bits & 0x1_0000 != 0,
                throttled: bits & 0xE_000E != 0,
            });
        }
        let volt = self
            .each("hwmon")
            .into_iter()
            .find(|h| self.read(h.join("name")).as_deref() == Some("rpi_volt"))?;
        let now = self.read(volt.join("in0_lcrit_alarm"))? == "1";
        Some(Power {
            under_voltage: now,
            under_voltage_before: now,
            throttled: false,
        })
    }

    fn bluetooth(&self) -> Option<Bluetooth> {
        let radios: Vec<PathBuf> = self
            .each("rfkill")
            .into_iter()
            .filter(|r| self.read(r.join("type")).as_deref() == Some("bluetooth"))
            .collect();
        if radios.is_empty() {
            return (!self.each("bluetooth").is_empty()).then_some(Bluetooth::On);
        }
        let blocked = radios.iter().any(|r| {
            self.read(r.join("soft")).as_deref() == Some("1")
                || self.read(r.join("hard")).as_deref() == Some("1")
        });
        Some(if blocked {
            Bluetooth::Blocked
        } else {
            Bluetooth::On
        })
    }
}

/// Free and total bytes of the filesystem holding `dir` ((0, 0) if unknown).
pub fn disk_space(dir: &Path) -> (u64, u64) {
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

/// Writes a fake sysfs tree below `root`: what the tests and the demo use in
/// place of a Pi. `None` removes a sensor.
pub mod fake {
    use std::io;
    use std::path::Path;

    fn put(root: &Path, path: &str, value: &str) -> io::Result<()> {
        let file = root.join(path);
        std::fs::create_dir_all(file.parent().expect("a file path"))?;
        std::fs::write(file, format!("{value}\n"))
    }

    pub fn cpu_temp_c(root: &Path, celsius: i32) -> io::Result<()> {
        put(
            root,
            "sys/class/thermal/thermal_zone0/temp",
            &(celsius * 1000).to_string(),
        )
    }

    /// The firmware's throttling bits (`get_throttled`).
    pub fn throttled_bits(root: &Path, bits: u32) -> io::Result<()> {
        put(
            root,
            "sys/devices/platform/soc/soc:firmware/get_throttled",
            &format!("0x{bits:x}"),
        )
    }

    pub fn bluetooth_blocked(root: &Path, blocked: bool) -> io::Result<()> {
        put(root, "sys/class/rfkill/rfkill0/type", "bluetooth")?;
        put(
            root,
            "sys/class/rfkill/rfkill0/soft",
            if blocked { "1" } else { "0" },
        )?;
        put(root, "sys/class/rfkill/rfkill0/hard", "0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_machine_without_sensors_says_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Machine::at(dir.path()).health(), MachineHealth::default());
    }

    #[test]
    fn reads_temperature_throttling_and_bluetooth() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fake::cpu_temp_c(root, 81).unwrap();
        // Under-voltage now and since boot, throttled since boot.
        fake::throttled_bits(root, 0x5_0005).unwrap();
        fake::bluetooth_blocked(root, true).unwrap();
        let h = Machine::at(root).health();
        assert_eq!(h.cpu_temp_c, Some(81));
        assert_eq!(
            h.power,
            Some(Power {
                under_voltage: true,
                under_voltage_before: true,
                throttled: true
            })
        );
        assert_eq!(h.bluetooth, Some(Bluetooth::Blocked));

        // Only the "since boot" bit: it happened, it is over.
        fake::throttled_bits(root, 0x1_0000).unwrap();
        fake::bluetooth_blocked(root, false).unwrap();
        let h = Machine::at(root).health();
        assert_eq!(
            h.power,
            Some(Power {
                under_voltage: false,
                under_voltage_before: true,
                throttled: false
            })
        );
        assert_eq!(h.bluetooth, Some(Bluetooth::On));
    }

    #[test]
    fn the_mainline_kernels_voltage_alarm_counts_too() {
        let dir = tempfile::tempdir().unwrap();
        let hwmon = dir.path().join("sys/class/hwmon");
        for (n, name) in [("hwmon0", "cpu_thermal"), ("hwmon1", "rpi_volt")] {
            std::fs::create_dir_all(hwmon.join(n)).unwrap();
            std::fs::write(hwmon.join(n).join("name"), format!("{name}\n")).unwrap();
        }
        std::fs::write(hwmon.join("hwmon1/in0_lcrit_alarm"), "1\n").unwrap();
        let power = Machine::at(dir.path()).health().power.unwrap();
        assert!(power.under_voltage);
        std::fs::write(hwmon.join("hwmon1/in0_lcrit_alarm"), "0\n").unwrap();
        assert!(!Machine::at(dir.path()).health().power.unwrap().under_voltage);
    }
}
