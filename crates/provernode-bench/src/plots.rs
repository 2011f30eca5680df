//! The plots of docs/backends.md, as SVG: prove time against cycles per
//! backend and kind, and an aggregate's cost against N.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use crate::batch::with_projections;
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
/// settings, one machine: the first host of the rows).
pub fn plot_prove_time(rows: &[Row], path: &Path) -> Result<(), BenchError> {
    let host = rows.first().map(|r| r.host.clone()).unwrap_or_default();
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

/// An aggregate's prove time against N, measured (filled) and projected
/// (hollow), one line per backend and kind.
pub fn plot_aggregate_cost(rows: &[BatchRow], path: &Path) -> Result<(), BenchError> {
    let mut measured: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut projected: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for (r, is_measured) in with_projections(rows) {
        let name = format!("{} {}", r.backend, r.proof_kind);
        let point = (f64::from(r.n), r.aggregate_prove_seconds);
        if is_measured {
            measured.entry(name).or_default().push(point);
        } else {
            projected.entry(name).or_default().push(point);
        }
    }
    // A projection line starts at the last measured point.
    for (name, pts) in projected.iter_mut() {
        if let Some(last) = measured.get(name).and_then(|m| m.last()) {
            pts.insert(0, *last);
        }
    }
    series_chart(
        path,
        "Aggregate prove time against N (hollow: projection)",
        "claims in the aggregate (N)",
        "aggregate prove time (s)",
        &measured,
        &projected,
    )
}
