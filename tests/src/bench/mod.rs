//! `scripts/bench`: speed and footprint against targets, each next to a
//! baseline measured in the same run on the same machine. The pieces:
//! [`load`] speaks the real protocol from many MQTT clients, [`data`] fills a
//! store with a million transactions, and [`Report`] prints the table and
//! writes `target/bench/latest.json`.

pub mod chain;
pub mod data;
pub mod load;
pub mod wal;

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

/// `series` (name, one value per x) over `xs` as an SVG line chart with
/// labelled axes and a legend, for BENCHMARKS.md to link.
pub fn svg_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    xs: &[f64],
    series: &[(&str, Vec<f64>)],
) -> String {
    const W: f64 = 640.0;
    const H: f64 = 400.0;
    const PAD: f64 = 60.0;
    const COLOURS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];
    let finite = |v: &f64| v.is_finite();
    let x_max = xs.iter().copied().filter(finite).fold(0.0, f64::max).max(1e-9);
    let y_max = series
        .iter()
        .flat_map(|(_, ys)| ys.iter().copied().filter(finite))
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.1;
    let at = |x: f64, y: f64| {
        (
            PAD + x / x_max * (W - 2.0 * PAD),
            H - PAD - y / y_max * (H - 2.0 * PAD),
        )
    };
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">{title}</text>\n\
         <line x1=\"{PAD}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n\
         <line x1=\"{PAD}\" y1=\"{PAD}\" x2=\"{PAD}\" y2=\"{}\" stroke=\"black\"/>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{x_label}</text>\n\
         <text x=\"15\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 15 {})\">{y_label}</text>\n",
        W / 2.0,
        H - PAD,
        W - PAD,
        H - PAD,
        H - PAD,
        W / 2.0,
        H - 15.0,
        H / 2.0,
        H / 2.0
    );
    for i in 0..=4 {
        let (x, y) = (x_max * f64::from(i) / 4.0, y_max * f64::from(i) / 4.0);
        let (px, _) = at(x, 0.0);
        let (_, py) = at(0.0, y);
        svg.push_str(&format!(
            "<text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{x:.0}</text>\n\
             <text x=\"{:.1}\" y=\"{py:.1}\" text-anchor=\"end\">{y:.1}</text>\n",
            H - PAD + 16.0,
            PAD - 6.0
        ));
    }
    for (n, (name, ys)) in series.iter().enumerate() {
        let colour = COLOURS[n % COLOURS.len()];
        let points: Vec<String> = xs
            .iter()
            .zip(ys)
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|(x, y)| {
                let (px, py) = at(*x, *y);
                format!("{px:.1},{py:.1}")
            })
            .collect();
        svg.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\n",
            points.join(" ")
        ));
        for p in &points {
            let (px, py) = p.split_once(',').unwrap_or_default();
            svg.push_str(&format!(
                "<circle cx=\"{px}\" cy=\"{py}\" r=\"3\" fill=\"{colour}\"/>\n"
            ));
        }
        let ly = PAD + 16.0 * n as f64;
        svg.push_str(&format!(
            "<line x1=\"{}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{colour}\" stroke-width=\"2\"/>\n\
             <text x=\"{}\" y=\"{}\">{name}</text>\n",
            PAD + 10.0,
            PAD + 30.0,
            PAD + 36.0,
            ly + 4.0
        ));
    }
    svg.push_str("</svg>\n");
    svg
}
