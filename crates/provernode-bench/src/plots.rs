//! The plots of docs/backends.md, as SVG: prove time against cycles per
//! backend and kind, and an aggregate's cost against N.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use crate::batch::with_projections;
use crate::render::{Machines, SettingsLegend};
use crate::{BatchRow, BenchError, Row};

const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn plot_error(path: &Path, e: impl std::fmt::Display) -> BenchError {
    BenchError::Results {
        path: path.display().to_string(),
        reason: format!("cannot draw the plot: {e}"),
    }
}

/// Log-log ranges that hold every point with some room.
fn log_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| *v > 0.0)
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return 0.001..1.0;
    }
    (lo / 2.0)..(hi * 2.0)
}

fn series_chart(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &BTreeMap<String, Vec<(f64, f64)>>,
    dashed: &BTreeMap<String, Vec<(f64, f64)>>,
) -> Result<(), BenchError> {
    let root = SVGBackend::new(path, (800, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
    let points = || series.values().chain(dashed.values()).flatten();
    let xs = log_range(points().map(|p| p.0));
    let ys = log_range(points().map(|p| p.1));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(xs.log_scale(), ys.log_scale())
        .map_err(|e| plot_error(path, e))?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()
        .map_err(|e| plot_error(path, e))?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))
            .map_err(|e| plot_error(path, e))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
        chart
            .draw_series(pts.iter().map(|p| Circle::new(*p, 3, colour.filled())))
            .map_err(|e| plot_error(path, e))?;
        if let Some(projected) = dashed.get(name) {
            // Projections: hollow points on a thin line, never a measurement.
            chart
                .draw_series(LineSeries::new(projected.iter().copied(), colour.stroke_width(1)))
                .map_err(|e| plot_error(path, e))?;
            chart
                .draw_series(
                    projected
                        .iter()
                        .map(|p| Circle::new(*p, 4, colour.stroke_width(1))),
                )
                .map_err(|e| plot_error(path, e))?;
        }
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| plot_error(path, e))?;
    root.present().map_err(|e| plot_error(path, e))
}

/// Prove time against cycles, one line per backend and kind (default
/// settings, one machine: machine 1 of the table, the host of most rows).
pub fn plot_prove_time(rows: &[Row], path: &Path) -> Result<(), BenchError> {
    let host = Machines::of(rows.iter().map(|r| r.host.as_str()))
        .first()
        .unwrap_or_default();
    let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.settings.is_empty() && r.host == host) {
        series
            .entry(format!("{} {}", r.backend, r.proof_kind))
            .or_default()
            .push((r.cycles as f64, r.prove_seconds));
    }
    for pts in series.values_mut() {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    series_chart(
        path,
        &format!("Prove time against guest cycles ({host})"),
        "guest cycles",
        "prove time (s)",
        &series,
        &BTreeMap::new(),
    )
}

/// Points of one plot: series name to (x, y), measured and projected.
type Series = BTreeMap<String, Vec<(f64, f64)>>;

/// The aggregate plot's lines: one per backend, kind, settings and machine,
/// named as the batch table names them (`sp1 compressed (settings A),
/// machine 2`), so that a line never joins two machines' points (it would
/// draw a growth no machine has) and every row of the table is on it.
fn aggregate_series(rows: &[BatchRow]) -> (Series, Series) {
    let machines = Machines::of(rows.iter().map(|r| r.host.as_str()));
    let legend = SettingsLegend::of(rows.iter().map(|r| &r.settings));
    let mut measured = Series::new();
    let mut projected = Series::new();
    for (r, is_measured) in with_projections(rows) {
        let mut name = format!("{} {}", r.backend, legend.kind(&r.proof_kind, &r.settings));
        if machines.several() {
            name.push_str(&format!(
                ", machine {}",
                machines.index(&r.host).saturating_add(1)
            ));
        }
        let point = (f64::from(r.n), r.aggregate_prove_seconds);
        if is_measured {
            measured.entry(name).or_default().push(point);
        } else {
            projected.entry(name).or_default().push(point);
        }
    }
    for pts in measured.values_mut().chain(projected.values_mut()) {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    // A projection line starts at the last measured point.
    for (name, pts) in projected.iter_mut() {
        if let Some(last) = measured.get(name).and_then(|m| m.last()) {
            pts.insert(0, *last);
        }
    }
    (measured, projected)
}

/// An aggregate's prove time against N, measured (filled) and projected
/// (hollow), one line per backend, kind, settings and machine.
pub fn plot_aggregate_cost(rows: &[BatchRow], path: &Path) -> Result<(), BenchError> {
    let machines = Machines::of(rows.iter().map(|r| r.host.as_str()));
    let (measured, projected) = aggregate_series(rows);
    let title = match (machines.several(), machines.first()) {
        (false, Some(host)) => format!("Aggregate prove time against N ({host}; hollow: projection)"),
        _ => "Aggregate prove time against N (machines as in the batch table; hollow: projection)".to_owned(),
    };
    series_chart(
        path,
        &title,
        "claims in the aggregate (N)",
        "aggregate prove time (s)",
        &measured,
        &projected,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: u32, prove: f64, host: &str) -> BatchRow {
        BatchRow {
            backend: "risc0".into(),
            backend_version: "3".into(),
            proof_kind: "succinct".into(),
            inner: "fibonacci n=10+i".into(),
            n,
            inner_prove_seconds: 60.0 * f64::from(n),
            inner_verify_seconds: 0.02 * f64::from(n),
            inner_proof_bytes: 250_000 * u64::from(n),
            aggregate_prove_seconds: prove,
            aggregate_verify_seconds: 0.021,
            aggregate_proof_bytes: 260_000,
            aggregate_cycles: 10_000 * u64::from(n),
            aggregate_peak_rss_bytes: Some(1 << 30),
            host: host.into(),
            settings: BTreeMap::new(),
        }
    }

    fn svg(rows: &[BatchRow], name: &str) -> String {
        let path = std::env::temp_dir().join(format!("provernode-plot-{}-{name}.svg", std::process::id()));
        plot_aggregate_cost(rows, &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        text
    }

    #[test]
    fn each_machine_and_setting_gets_its_own_line_named_as_in_the_table() {
        let mut rows = vec![
            batch(4, 200.0, "2 × CPU, 23 GiB"),
            batch(8, 400.0, "2 × CPU, 23 GiB"),
            batch(8, 900.0, "2 × Other CPU, 24 GiB"),
        ];
        let mut pooled = batch(2, 500.0, "2 × Other CPU, 24 GiB");
        pooled.backend = "sp1".into();
        pooled.proof_kind = "compressed".into();
        pooled.settings = BTreeMap::from([("SP1_WORKER_NUM_CORE_WORKERS".to_owned(), "1".to_owned())]);
        rows.push(pooled.clone());
        pooled.n = 4;
        pooled.aggregate_prove_seconds = 700.0;
        rows.push(pooled);
        let (measured, projected) = aggregate_series(&rows);
        let names: Vec<&str> = measured.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "risc0 succinct, machine 1",
                "risc0 succinct, machine 2",
                "sp1 compressed (settings A), machine 1"
            ]
        );
        // Machines are numbered by their rows, as in the table: the other
        // CPU has 3, so it is machine 1. Its lone risc0 point does not bend
        // machine 2's line.
        assert_eq!(
            measured["risc0 succinct, machine 2"],
            [(4.0, 200.0), (8.0, 400.0)]
        );
        assert_eq!(measured["risc0 succinct, machine 1"], [(8.0, 900.0)]);
        // Projections continue their own line from its last measured point:
        // sp1 at 100 s a claim from N = 4, never from another machine's row.
        let sp1 = &projected["sp1 compressed (settings A), machine 1"];
        assert_eq!(sp1[0], (4.0, 700.0));
        assert!(sp1.contains(&(8.0, 1100.0)), "{sp1:?}");
        assert!(
            !projected.contains_key("risc0 succinct, machine 1"),
            "one point has no slope"
        );
        assert_eq!(projected["risc0 succinct, machine 2"][0], (8.0, 400.0));
    }

    #[test]
    fn one_machines_plot_names_it_and_draws() {
        let rows = [
            batch(4, 200.0, "2 × CPU, 23 GiB"),
            batch(8, 400.0, "2 × CPU, 23 GiB"),
        ];
        let (measured, _) = aggregate_series(&rows);
        assert_eq!(measured.keys().collect::<Vec<_>>(), ["risc0 succinct"]);
        assert!(
            svg(&rows, "alone").contains("2 × CPU, 23 GiB"),
            "the title names the machine"
        );
    }
}
