//! `scripts/bench`: speed and footprint against targets, each next to a
//! baseline measured in the same run on the same machine. The pieces:
//! [`load`] speaks the real protocol from many MQTT clients, [`data`] fills a
//! store with a million transactions, and [`Report`] prints the table and
//! writes `target/bench/latest.json`.

pub mod chain;
pub mod data;
pub mod load;

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// One row of the table.
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    /// The same-run baseline, when the figure has one.
    pub baseline: Option<f64>,
    /// Human-readable target, e.g. "<= 2x baseline".
    pub target: String,
    pub met: bool,
}

impl Figure {
    pub fn ratio(&self) -> Option<f64> {
        self.baseline.filter(|b| *b > 0.0).map(|b| self.value / b)
    }
}

pub struct Report {
    pub machine: String,
    pub figures: Vec<Figure>,
    /// Measurements that explain the figures (baseline parts, load latency):
    /// name, value, unit. Printed under the table; no target of their own.
    pub notes: Vec<(String, f64, &'static str)>,
}

impl Report {
    pub fn table(&self) -> String {
        let mut out = format!("machine: {}\n\n", self.machine);
        out.push_str(&format!(
            "{:<58} {:>12} {:<6} {:>12} {:>7}  {:<26} {}\n",
            "figure", "value", "unit", "baseline", "ratio", "target", "met"
        ));
        for f in &self.figures {
            let baseline = f
                .baseline
                .map(|b| format!("{b:.2}"))
                .unwrap_or_else(|| "-".into());
            let ratio = f
                .ratio()
                .map(|r| format!("{r:.2}x"))
                .unwrap_or_else(|| "-".into());
            out.push_str(&format!(
                "{:<58} {:>12.2} {:<6} {:>12} {:>7}  {:<26} {}\n",
                f.name,
                f.value,
                f.unit,
                baseline,
                ratio,
                f.target,
                if f.met { "yes" } else { "NO" }
            ));
        }
        out.push_str("\nfor reference:\n");
        for (name, value, unit) in &self.notes {
            out.push_str(&format!("  {name:<56} {value:>12.3} {unit}\n"));
        }
        out
    }

    pub fn json(&self) -> Value {
        let figures: Vec<Value> = self
            .figures
            .iter()
            .map(|f| {
                json!({
                    "name": f.name, "value": f.value, "unit": f.unit, "baseline": f.baseline,
                    "ratio": f.ratio(), "target": f.target, "met": f.met,
                })
            })
            .collect();
        let notes: Vec<Value> = self
            .notes
            .iter()
            .map(|(name, value, unit)| json!({"name": name, "value": value, "unit": unit}))
            .collect();
        json!({"machine": self.machine, "figures": figures, "reference": notes})
    }
}

/// A latency histogram in microseconds, 1 µs to 60 s.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let _ = h.record((d.as_micros() as u64).max(1));
}

/// Milliseconds at percentile `p` (0–100).
pub fn ms(h: &Histogram<u64>, p: f64) -> f64 {
    h.value_at_percentile(p) as f64 / 1000.0
}

/// CPU model, cores and memory, from /proc.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    format!(
        "{cpu}, {cores} cores, {} GiB, {}",
        mem_kb / (1024 * 1024),
        std::env::consts::ARCH
    )
}

/// A process's resident memory in MiB: `VmRSS` now, or `VmHWM` (the peak).
pub fn rss_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}
