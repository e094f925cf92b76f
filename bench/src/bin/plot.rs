// SPDX-License-Identifier: GPL-2.0
//! yasmin-bench-plot: SVG charts and a ratio table from yasmin-bench JSON Lines records.
//! Which records go into which chart is decided in `yasmin_bench::report`.

use anyhow::{Context, Result};
use clap::Parser;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use yasmin_bench::record::{self, Record};
use yasmin_bench::report::{self, Points};
use yasmin_bench::size::format_size;

#[derive(Parser)]
#[command(
    name = "yasmin-bench-plot",
    about = "Draw yasmin-bench results: throughput.svg, latency.svg, latency-cdf.svg, \
             ring-size.svg, connections.svg, ratios.md and costs.md"
)]
struct Cli {
    /// JSON Lines file written by `yasmin-bench ... --json`.
    #[arg(long)]
    input: PathBuf,
    /// Directory for the output files (created if missing).
    #[arg(long)]
    out_dir: PathBuf,
}

struct Curve {
    label: String,
    points: Vec<(f64, f64)>,
    color: RGBAColor,
    dashed: bool,
    /// Spread bars: (x, lowest, highest) over the rounds of each point.
    bars: Vec<(f64, f64, f64)>,
}

/// Stable colours: each transport keeps its colour in every chart.
struct Colors(BTreeMap<String, usize>);

impl Colors {
    fn new(records: &[Record]) -> Colors {
        let mut names: Vec<&str> = records.iter().map(|r| r.transport.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        Colors(
            names
                .into_iter()
                .enumerate()
                .map(|(i, n)| (n.to_string(), i))
                .collect(),
        )
    }

    fn of(&self, name: &str) -> RGBAColor {
        color(self.0.get(name).copied().unwrap_or(0))
    }
}

/// A palette that stays readable on white (matplotlib's tab10).
fn color(i: usize) -> RGBAColor {
    const TAB10: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    let (r, g, b) = TAB10[i % TAB10.len()];
    RGBColor(r, g, b).to_rgba()
}

fn pts(p: &Points) -> Vec<(f64, f64)> {
    p.iter().map(|&(x, y)| (x as f64, y)).collect()
}

/// Sizes are drawn at log2(x) on a linear axis so that ticks land on powers of two.
fn log2_pts(p: &Points) -> Vec<(f64, f64)> {
    p.iter()
        .filter(|(x, _)| *x > 0)
        .map(|&(x, y)| ((x as f64).log2(), y))
        .collect()
}

/// Axis range over all curves: log axes get a factor of margin and ignore values <= 0.
fn range(curves: &[Curve], axis: impl Fn(&(f64, f64)) -> f64, log: bool) -> (f64, f64) {
    let vals = curves
        .iter()
        .flat_map(|c| c.points.iter().map(&axis))
        .filter(|v| v.is_finite() && (!log || *v > 0.0));
    let (lo, hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    match (lo.is_finite(), log) {
        (false, true) => (1.0, 10.0),
        (false, false) => (0.0, 1.0),
        // The top margin leaves room for the legend in the upper left.
        (true, true) => (lo / 1.5, hi * 6.0),
        (true, false) => {
            let pad = ((hi - lo) * 0.05).max(hi.abs() * 0.05).max(1e-9);
            (lo - pad, hi + 5.0 * pad)
        }
    }
}

fn num_label(v: &f64) -> String {
    let a = v.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// Labels a log2 tick with its size (1, 4, 16, ..., 1K, 4M); none between powers.
fn log2_size_label(v: &f64) -> String {
    if *v >= 0.0 && *v < 63.0 && (v.round() - v).abs() < 1e-6 {
        format_size(1u64 << v.round() as u32)
    } else {
        String::new()
    }
}

#[allow(clippy::too_many_arguments)]
fn draw<X, Y>(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    x: X,
    y: Y,
    x_fmt: &dyn Fn(&f64) -> String,
    curves: &[Curve],
) -> Result<()>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let root = SVGBackend::new(path, (960, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let caption = if curves.is_empty() {
        format!("{title} (no data)")
    } else {
        title.to_string()
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(x_fmt)
        .y_label_formatter(&num_label)
        .draw()?;
    for c in curves {
        let style = c.color.stroke_width(2);
        let series = if c.dashed {
            chart.draw_series(DashedLineSeries::new(c.points.clone(), 8, 5, style))?
        } else {
            chart.draw_series(LineSeries::new(c.points.clone(), style))?
        };
        let legend_style = style;
        series
            .label(&c.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], legend_style));
        // Spread bars (lowest to highest round), with short caps.
        for &(x, lo, hi) in &c.bars {
            let cap = 0.08;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x, lo), (x, hi)],
                c.color.stroke_width(1),
            )))?;
            for y in [lo, hi] {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(x - cap, y), (x + cap, y)],
                    c.color.stroke_width(1),
                )))?;
            }
        }
        // Markers, so that a one-point curve still shows.
        chart.draw_series(
            c.points
                .iter()
                .map(|&p| Circle::new(p, 3, c.color.filled())),
        )?;
    }
    if !curves.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Sizes (as log2, see [`log2_pts`]) on x, a log scale on y.
fn draw_sizes(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    curves: &[Curve],
) -> Result<()> {
    let xs = curves.iter().flat_map(|c| c.points.iter().map(|p| p.0));
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let (x0, x1) = if x0.is_finite() {
        (x0 - 0.5, x1 + 0.5)
    } else {
        (0.0, 10.0)
    };
    let (y0, y1) = range(curves, |p| p.1, true);
    // Room for the spread bars below the lowest point.
    let y0 = curves
        .iter()
        .flat_map(|c| c.bars.iter())
        .filter(|b| b.1 > 0.0)
        .fold(y0, |lo, b| lo.min(b.1 / 1.5));
    draw(
        path,
        title,
        x_desc,
        y_desc,
        x0..x1,
        (y0..y1).log_scale(),
        &log2_size_label,
        curves,
    )
}

fn plot_all(records: &[Record], out: &Path) -> Result<Vec<PathBuf>> {
    let colors = Colors::new(records);
    let ring = report::default_ring(records).map_or_else(
        || "default ring".to_string(),
        |r| format!("yasmin ring {}", format_size(r)),
    );
    let mut written = Vec::new();

    let spreads = report::throughput_spread(records);
    let curves: Vec<Curve> = report::throughput_series(records)
        .iter()
        .map(|(t, p)| Curve {
            label: t.clone(),
            points: log2_pts(p),
            color: colors.of(t),
            dashed: false,
            // Only points measured more than once have a spread to show.
            bars: spreads
                .get(t)
                .into_iter()
                .flatten()
                .filter(|(x, s)| **x > 0 && s.n > 1)
                .map(|(x, s)| ((*x as f64).log2(), s.min, s.max))
                .collect(),
        })
        .collect();
    let path = out.join("throughput.svg");
    draw_sizes(
        &path,
        &format!("Stream throughput, 1 connection, send ({ring}; bars: range over rounds)"),
        "message size (bytes)",
        "throughput (MB/s, 1 MB = 1e6 B)",
        &curves,
    )?;
    written.push(path);

    let (p50, p99) = report::latency_series(records);
    let mut curves = Vec::new();
    for (series, name, dashed) in [(&p50, "p50", false), (&p99, "p99", true)] {
        for (t, p) in series {
            curves.push(Curve {
                label: format!("{t} {name}"),
                points: log2_pts(p),
                color: colors.of(t),
                dashed,
                bars: Vec::new(),
            });
        }
    }
    let path = out.join("latency.svg");
    draw_sizes(
        &path,
        "Ping-pong round trip, 1 connection (solid p50, dashed p99)",
        "message size (bytes)",
        "round-trip time (us)",
        &curves,
    )?;
    written.push(path);

    let curves: Vec<Curve> = report::cdf_series(records, 1)
        .iter()
        .map(|(t, ladder)| Curve {
            label: t.clone(),
            points: ladder
                .iter()
                .map(|&[p, us]| (us, p))
                .filter(|p| p.0 > 0.0)
                .collect(),
            color: colors.of(t),
            dashed: false,
            bars: Vec::new(),
        })
        .collect();
    let (x0, x1) = range(&curves, |p| p.0, true);
    let path = out.join("latency-cdf.svg");
    draw(
        &path,
        "Round-trip time distribution, 1-byte messages, 1 connection",
        "round-trip time (us)",
        "percentile",
        (x0..x1).log_scale(),
        0.0..100.0,
        &num_label,
        &curves,
    )?;
    written.push(path);

    let curves: Vec<Curve> = report::ring_series(records)
        .iter()
        .enumerate()
        .map(|(i, (size, p))| Curve {
            label: format!("{} B messages", format_size(*size)),
            points: log2_pts(p),
            color: color(i),
            dashed: false,
            bars: Vec::new(),
        })
        .collect();
    let path = out.join("ring-size.svg");
    draw_sizes(
        &path,
        "yasmin stream throughput vs ring size, 1 connection, send",
        "ring size (bytes)",
        "throughput (MB/s)",
        &curves,
    )?;
    written.push(path);

    let (title, curves) = match report::connections_series(records) {
        Some((size, series)) => (
            format!(
                "Throughput vs connections, {} B messages, send ({ring})",
                format_size(size)
            ),
            series
                .iter()
                .map(|(t, p)| Curve {
                    label: t.clone(),
                    points: pts(p),
                    color: colors.of(t),
                    dashed: false,
                    bars: Vec::new(),
                })
                .collect(),
        ),
        None => ("Throughput vs connections".to_string(), Vec::new()),
    };
    let x1 = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.0))
        .fold(2.0, f64::max);
    let (_, y1) = range(&curves, |p| p.1, false);
    let path = out.join("connections.svg");
    draw(
        &path,
        &title,
        "parallel connections",
        "total throughput (MB/s)",
        0.5..x1 + 0.5,
        0.0..y1.max(1e-3),
        &|v: &f64| {
            if (v.round() - v).abs() < 1e-6 {
                format!("{v:.0}")
            } else {
                String::new()
            }
        },
        &curves,
    )?;
    written.push(path);

    let path = out.join("ratios.md");
    std::fs::write(&path, report::ratio_markdown(records))
        .with_context(|| format!("writing {}", path.display()))?;
    written.push(path);

    let path = out.join("costs.md");
    std::fs::write(&path, report::cost_markdown(records))
        .with_context(|| format!("writing {}", path.display()))?;
    written.push(path);
    Ok(written)
}

fn run(cli: &Cli) -> Result<()> {
    let records = record::load(&cli.input)?;
    std::fs::create_dir_all(&cli.out_dir)
        .with_context(|| format!("creating {}", cli.out_dir.display()))?;
    for p in plot_all(&records, &cli.out_dir)? {
        println!("{}", p.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(&Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("yasmin-bench-plot: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
