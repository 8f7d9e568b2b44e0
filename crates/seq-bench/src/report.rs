//! `seq-bench report`: markdown tables and the SVG chart, as pure functions
//! of the measured data.

use std::fmt::Write as _;

use crate::model::{BackendReport, Row};
use crate::run::{PAYLOADS, PRODUCERS};

/// How to read the ratio column (printed under the tables and stored in the
/// combined JSON).
pub(crate) const RATIO_NOTE: &str = "ratio = the row's figure ÷ its baseline's, measured in the same run and \
     process (higher is better for throughput; latency rows divide their p50 by the baseline's \
     p50 or mean time per operation, lower is better). A produce row's baseline writes the same \
     records straight to storage in synced batches of one record per producer, the best \
     grouping the writer could reach; its last baseline serves the same waiting callers through \
     the least a group commit does (a channel and one thread writing what has queued as one \
     synced batch), so that ratio is what seq costs beyond serving callers at all. The \
     workloads alternate chunk by chunk. per sync = operations \
     per synced storage write (group commit). Synced figures follow the disk, which can drift \
     a lot between runs on shared machines: compare ratios, not runs.";

/// A count with an SI suffix: `950`, `12.3 k`, `4.56 M`, `1.20 G`.
pub(crate) fn si(value: f64) -> String {
    let abs = value.abs();
    let (scaled, suffix) = if abs >= 1e9 {
        (value / 1e9, " G")
    } else if abs >= 1e6 {
        (value / 1e6, " M")
    } else if abs >= 1e3 {
        (value / 1e3, " k")
    } else {
        (value, "")
    };
    let digits = if suffix.is_empty() || scaled.abs() >= 100.0 {
        0
    } else if scaled.abs() >= 10.0 {
        1
    } else {
        2
    };
    format!("{scaled:.digits$}{suffix}")
}

/// A latency given in microseconds: `850 µs`, `2.10 ms`, `1.50 s`.
pub(crate) fn micros(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.2} s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{us:.0} µs")
    }
}

/// A ratio: `0.98×`, `12.5×`, `3400×`, `0.0012×`.
pub(crate) fn ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}×")
    } else if r >= 10.0 {
        format!("{r:.1}×")
    } else if r >= 0.01 {
        format!("{r:.2}×")
    } else {
        format!("{r:.2e}×")
    }
}

fn result_cell(row: &Row) -> String {
    if let Some(lat) = row.latency {
        return format!("p50 {} / p99 {}", micros(lat.p50_us), micros(lat.p99_us));
    }
    let mut cell = format!("{} {}/s", si(row.per_sec), row.unit);
    if row.bytes > 0 && row.unit != "syncs" {
        let mib = row.bytes as f64 / f64::from(1u32 << 20) / row.elapsed_s.max(f64::MIN_POSITIVE);
        let _ = write!(cell, " ({mib:.1} MiB/s)");
    }
    if let Some(cpu) = row.cpu_per_op() {
        let _ = write!(cell, "; {cpu}");
    }
    if let Some(memory) = row.memory {
        let _ = write!(
            cell,
            "; peak RSS {:.1} MiB{} (goal ≤ {:.0} MiB{}; {:.1} MiB before the consume)",
            memory.peak_rss_mib,
            if memory.hwm_reset {
                ""
            } else {
                " incl. opening"
            },
            memory.goal_mib,
            if memory.peak_rss_mib <= memory.goal_mib {
                ", met"
            } else {
                ", missed"
            },
            memory.start_rss_mib
        );
    }
    cell
}

/// The markdown table of one backend's run.
pub(crate) fn markdown(report: &BackendReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### {} ({} run, {:.0} s, fdatasync {}/s{})\n",
        report.backend,
        if report.quick { "quick" } else { "full" },
        report.total_seconds,
        si(report.fdatasync_per_sec),
        report
            .load
            .map(|(start, end)| format!(", load {start:.1} → {end:.1}"))
            .unwrap_or_default()
    );
    out.push_str("| workload | result | baseline | ratio | per sync |\n");
    out.push_str("|---|---|---|---|---|\n");
    for row in &report.rows {
        let baselines: Vec<&str> = row
            .ratios
            .iter()
            .map(|r| r.baseline_name.as_str())
            .collect();
        let ratios: Vec<String> = row.ratios.iter().map(|r| ratio(r.ratio)).collect();
        let per_sync = row.per_sync.map_or_else(String::new, |p| format!("{p:.1}"));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            escape(&row.name),
            result_cell(row),
            if baselines.is_empty() {
                "—".to_owned()
            } else {
                escape(&baselines.join("; "))
            },
            if ratios.is_empty() {
                "—".to_owned()
            } else {
                ratios.join("; ")
            },
            per_sync
        );
    }
    out
}

fn escape(cell: &str) -> String {
    cell.replace('|', "\\|")
}

/// One line of the chart: a backend at one payload size.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    /// Legend text.
    pub(crate) label: String,
    /// Stroke colour.
    pub(crate) color: &'static str,
    /// Dashed line (the 1 KiB payload).
    pub(crate) dashed: bool,
    /// Records per second at each of [`PRODUCERS`] (`None` = not measured).
    pub(crate) points: Vec<Option<f64>>,
}

const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// The chart's series: every backend × payload with its produce rows.
pub(crate) fn produce_series(reports: &[BackendReport]) -> Vec<Series> {
    let mut out = Vec::new();
    for (b, report) in reports.iter().enumerate() {
        for (p, payload) in PAYLOADS.into_iter().enumerate() {
            let points: Vec<Option<f64>> = PRODUCERS
                .iter()
                .map(|producers| {
                    let id = format!("produce_{producers}p_{payload}b");
                    report.rows.iter().find(|r| r.id == id).map(|r| r.per_sec)
                })
                .collect();
            if points.iter().any(Option::is_some) {
                out.push(Series {
                    label: format!(
                        "{}, {}",
                        report.backend,
                        if payload >= 1024 {
                            format!("{} KiB", payload / 1024)
                        } else {
                            format!("{payload} B")
                        }
                    ),
                    color: COLORS[b % COLORS.len()],
                    dashed: p > 0,
                    points,
                });
            }
        }
    }
    out
}

/// A "nice" upper bound for an axis and its tick step: 1, 2 or 5 × 10^k.
pub(crate) fn nice_axis(max: f64) -> (f64, f64) {
    if max.is_nan() || max <= 0.0 {
        return (1.0, 0.2);
    }
    let raw_step = max / 5.0;
    let magnitude = 10f64.powf(raw_step.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw_step)
        .unwrap_or(10.0 * magnitude);
    ((max / step).ceil() * step, step)
}

/// The SVG line chart of produce throughput (records/s, synced) against the
/// number of concurrent producers, one line per backend and payload.
pub(crate) fn svg(series: &[Series], title: &str) -> String {
    const W: f64 = 720.0;
    const H: f64 = 440.0;
    const LEFT: f64 = 80.0;
    const RIGHT: f64 = 190.0;
    const TOP: f64 = 50.0;
    const BOTTOM: f64 = 60.0;
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let max = series
        .iter()
        .flat_map(|s| s.points.iter().flatten())
        .copied()
        .fold(0.0, f64::max);
    let (top, step) = nice_axis(max);
    let x_at = |i: usize| LEFT + plot_w * i as f64 / (PRODUCERS.len() - 1) as f64;
    let y_at = |v: f64| TOP + plot_h * (1.0 - v / top);

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#,
        LEFT + plot_w / 2.0,
        xml(title)
    );
    // Horizontal grid and y labels.
    let mut v = 0.0;
    while v <= top + step / 2.0 {
        let y = y_at(v);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 8.0,
            y + 4.0,
            axis_label(v)
        );
        v += step;
    }
    // X axis ticks.
    for (i, producers) in PRODUCERS.iter().enumerate() {
        let x = x_at(i);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{producers}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 18.0
        );
    }
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#444"/>"##
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">concurrent producers (synced, one record per produce)</text>"#,
        LEFT + plot_w / 2.0,
        H - 16.0
    );
    let _ = writeln!(
        out,
        r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">records / s</text>"#,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    );
    // Lines, markers and the legend.
    for (n, s) in series.iter().enumerate() {
        let points: Vec<String> = s
            .points
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.map(|v| format!("{:.1},{:.1}", x_at(i), y_at(v))))
            .collect();
        let dash = if s.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
            points.join(" "),
            s.color
        );
        for (i, p) in s.points.iter().enumerate() {
            if let Some(v) = p {
                let _ = writeln!(
                    out,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{}"><title>{}: {} producers, {} records/s</title></circle>"#,
                    x_at(i),
                    y_at(*v),
                    s.color,
                    xml(&s.label),
                    PRODUCERS[i],
                    si(*v)
                );
            }
        }
        let ly = TOP + 10.0 + 22.0 * n as f64;
        let lx = LEFT + plot_w + 16.0;
        let _ = writeln!(
            out,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 28.0,
            s.color,
            lx + 34.0,
            ly + 4.0,
            xml(&s.label)
        );
    }
    if series.is_empty() {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">no produce measurements</text>"#,
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0
        );
    }
    out.push_str("</svg>\n");
    out
}

/// An axis label: [`si`] without trailing zeros (`5 k`, `2.5 k`).
fn axis_label(v: f64) -> String {
    let text = si(v);
    let (number, suffix) = text.split_once(' ').unwrap_or((&text, ""));
    let number = if number.contains('.') {
        number.trim_end_matches('0').trim_end_matches('.')
    } else {
        number
    };
    if suffix.is_empty() {
        number.to_owned()
    } else {
        format!("{number} {suffix}")
    }
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Latency, Ratio};

    fn row(id: &str, per_sec: f64) -> Row {
        Row {
            id: id.into(),
            name: id.replace('_', " "),
            unit: "records".into(),
            ops: 1000,
            bytes: 0,
            elapsed_s: 1000.0 / per_sec,
            per_sec,
            syncs: None,
            per_sync: None,
            concurrency: None,
            payload: None,
            latency: None,
            memory: None,
            cpu_s: None,
            ratios: Vec::new(),
        }
    }

    fn report(backend: &str, rows: Vec<Row>) -> BackendReport {
        BackendReport {
            backend: backend.into(),
            quick: true,
            fdatasync_per_sec: 512.0,
            total_seconds: 42.4,
            load: None,
            rows,
        }
    }

    #[test]
    fn numbers_are_formatted_for_people() {
        assert_eq!(si(950.0), "950");
        assert_eq!(si(12_345.0), "12.3 k");
        assert_eq!(si(4_560_000.0), "4.56 M");
        assert_eq!(si(123_456_789.0), "123 M");
        assert_eq!(micros(850.2), "850 µs");
        assert_eq!(micros(2_104.0), "2.10 ms");
        assert_eq!(ratio(0.981), "0.98×");
        assert_eq!(ratio(3_400.4), "3400×");
        assert_eq!(ratio(0.0012), "1.20e-3×");
    }

    #[test]
    fn markdown_table_shows_figures_ratios_and_per_sync() {
        let mut produce = row("produce_64p_100b", 20_000.0);
        produce.name = "seq: produce | 64".into();
        produce.per_sync = Some(48.04);
        produce.ratios.push(Ratio {
            baseline: "raw_write_64p_100b".into(),
            baseline_name: "raw batches".into(),
            ratio: 0.8,
        });
        let mut follow = row("follow_latency", 400.0);
        follow.latency = Some(Latency {
            samples: 200,
            p50_us: 2_100.0,
            p99_us: 4_567.0,
            mean_us: 2_300.0,
        });
        let table = markdown(&report(
            "redb",
            vec![row("fdatasync", 512.0), produce, follow],
        ));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "### redb (quick run, 42 s, fdatasync 512/s)");
        assert_eq!(
            lines[2],
            "| workload | result | baseline | ratio | per sync |"
        );
        assert_eq!(lines[4], "| fdatasync | 512 records/s | — | — |  |");
        assert_eq!(
            lines[5],
            "| seq: produce \\| 64 | 20.0 k records/s | raw batches | 0.80× | 48.0 |"
        );
        assert_eq!(
            lines[6],
            "| follow latency | p50 2.10 ms / p99 4.57 ms | — | — |  |"
        );
    }

    #[test]
    fn cpu_time_is_given_per_operation_in_the_row_unit() {
        let mut produce = row("produce_64p_100b", 100_000.0);
        assert_eq!(produce.cpu_per_op(), None);
        produce.cpu_s = Some(0.002_5); // 1000 records: 2.5 µs each
        assert_eq!(produce.cpu_per_op().as_deref(), Some("CPU 2500 ns/record"));
        produce.unit = "entries".into();
        assert_eq!(produce.cpu_per_op().as_deref(), Some("CPU 2500 ns/entry"));
        produce.ops = 0;
        assert_eq!(produce.cpu_per_op(), None);
    }

    #[test]
    fn markdown_shows_load_cpu_time_and_peak_memory() {
        let mut consume = row("consume_segment", 2_000_000.0);
        consume.unit = "entries".into();
        consume.cpu_s = Some(0.000_4); // 1000 entries: 400 ns each
        let mut memory = row("consume_memory", 100_000.0);
        memory.unit = "entries".into();
        memory.memory = Some(crate::model::Memory {
            segment_mib: 1024.0,
            start_rss_mib: 5.5,
            peak_rss_mib: 51.25,
            hwm_reset: true,
            max_held_entries: 1018,
            goal_mib: 64.0,
        });
        let mut report = report("redb", vec![consume, memory]);
        report.load = Some((0.5, 1.25));
        let table = markdown(&report);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "### redb (quick run, 42 s, fdatasync 512/s, load 0.5 → 1.2)"
        );
        assert!(lines[4].contains("2.00 M entries/s; CPU 400 ns/entry |"));
        assert!(
            lines[5]
                .contains("; peak RSS 51.2 MiB (goal ≤ 64 MiB, met; 5.5 MiB before the consume)")
        );
    }

    #[test]
    fn nice_axes_round_up_to_1_2_5_steps() {
        assert_eq!(nice_axis(0.0), (1.0, 0.2));
        assert_eq!(nice_axis(9_300.0), (10_000.0, 2_000.0));
        assert_eq!(nice_axis(41_000.0), (50_000.0, 10_000.0));
        assert_eq!(nice_axis(100.0), (100.0, 20.0));
    }

    #[test]
    fn svg_has_one_line_per_backend_and_payload() {
        let rows = |scale: f64| {
            PAYLOADS
                .iter()
                .flat_map(|payload| {
                    PRODUCERS
                        .iter()
                        .map(move |p| row(&format!("produce_{p}p_{payload}b"), scale * *p as f64))
                })
                .collect::<Vec<_>>()
        };
        let reports = [report("redb", rows(100.0)), report("rocksdb", rows(300.0))];
        let series = produce_series(&reports);
        let labels: Vec<&str> = series.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "redb, 100 B",
                "redb, 1 KiB",
                "rocksdb, 100 B",
                "rocksdb, 1 KiB"
            ]
        );
        assert_eq!(series[3].points[3], Some(19_200.0));
        let chart = svg(&series, "produce <throughput>");
        assert!(chart.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(chart.trim_end().ends_with("</svg>"));
        assert_eq!(chart.matches("<polyline").count(), 4);
        assert_eq!(chart.matches("<circle").count(), 16);
        assert!(chart.contains("produce &lt;throughput&gt;"));
        // The top gridline is the nice bound above the largest point.
        assert!(chart.contains(">20 k</text>"));
        assert_eq!(axis_label(2_500.0), "2.5 k");
        assert_eq!(axis_label(0.0), "0");
        assert!(svg(&[], "empty").contains("no produce measurements"));
    }
}
