//! Draws drain latency against the number of idle connections, from the CSV
//! that `benches/drain.sh` writes, as an SVG (log-log axes):
//!
//! ```text
//! plot_drain target/drain/drain.csv BENCHMARKS-drain.svg
//! ```
//!
//! Two panels, one per client kind (the lean client, grpc-go's grpccli); in
//! each, one colour per server (winddown on smol, on tokio, on the minimal
//! runtime of `src/bin/epoll_echo`, grpc-go, and in the lean client's panel
//! the floor server of `src/bin/floor_server.rs`; winddown on tokio with one
//! thread is in `drain.sh`'s tables only, to keep the lines apart): a solid
//! line for the time until the client saw every connection end, a dashed one
//! for the server's own figure (the stop returning). Medians over the
//! repetitions whose `ok` column is 1.

use std::collections::BTreeMap;
use std::process::ExitCode;

use plotters::prelude::*;

const SERVERS: [(&str, &str, RGBColor); 5] = [
    ("smol", "winddown (smol)", RGBColor(0x1f, 0x77, 0xb4)),
    ("tokio", "winddown (tokio)", RGBColor(0x2c, 0xa0, 0x2c)),
    (
        "grpc-go",
        "grpc-go GracefulStop",
        RGBColor(0xd6, 0x27, 0x28),
    ),
    // winddown's server on a runtime of one thread and one edge-triggered
    // epoll (`src/bin/epoll_echo`): what tokio's and async-io's reactors add.
    ("epoll", "winddown on raw epoll", RGBColor(0x94, 0x67, 0xbd)),
    // The lean client only: it serves no gRPC call.
    (
        "floor",
        "floor (raw epoll, 5 calls)",
        RGBColor(0x7f, 0x7f, 0x7f),
    ),
];
const CLIENTS: [(&str, &str); 2] = [
    ("lean", "lean client (raw frames, one thread)"),
    ("grpccli", "grpc-go client (grpccli)"),
];

/// (server, client, metric) -> K -> values in ms.
type Series = BTreeMap<(String, String, &'static str), BTreeMap<u64, Vec<f64>>>;

fn read(path: &str) -> Result<Series, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().ok_or("empty CSV")?.split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or(format!("no column {name} in {path}"))
    };
    let (server, client, k, ok) = (col("server")?, col("client")?, col("k")?, col("ok")?);
    let metrics = [
        ("client_ms", col("client_ms")?),
        ("stop_ms", col("stop_ms")?),
    ];
    let mut series = Series::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != header.len() || f[ok] != "1" {
            continue;
        }
        let Ok(k) = f[k].parse::<u64>() else { continue };
        for (metric, i) in metrics {
            if let Ok(ms) = f[i].parse::<f64>() {
                series
                    .entry((f[server].to_string(), f[client].to_string(), metric))
                    .or_default()
                    .entry(k)
                    .or_default()
                    .push(ms);
            }
        }
    }
    Ok(series)
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn draw(series: &Series, out: &str) -> Result<(), Box<dyn std::error::Error>> {
    let medians: BTreeMap<_, Vec<(f64, f64)>> = series
        .iter()
        .map(|(key, by_k)| {
            let points = by_k
                .iter()
                .map(|(k, v)| (*k as f64, median(v).max(1e-3)))
                .collect();
            (key.clone(), points)
        })
        .collect();
    let all = medians.values().flatten();
    let (k_max, y_min, y_max) = all.fold((10.0f64, f64::MAX, 0.0f64), |(k, lo, hi), p| {
        (k.max(p.0), lo.min(p.1), hi.max(p.1))
    });
    if y_max == 0.0 {
        return Err("no complete run in the CSV".into());
    }
    let (y_lo, y_hi) = (y_min / 2.0, y_max * 2.0);

    let root = SVGBackend::new(out, (1200, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(40);
    title.titled(
        "Drain latency vs idle connections (median; solid: client saw every connection end, dashed: server's stop returned)",
        ("sans-serif", 16),
    )?;
    for ((client, caption), area) in CLIENTS.iter().zip(body.split_evenly((1, 2))) {
        let mut chart = ChartBuilder::on(&area)
            .caption(*caption, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((0.8f64..k_max * 1.25).log_scale(), (y_lo..y_hi).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("idle connections K")
            .y_desc("ms since SIGTERM")
            .x_label_formatter(&|k| format!("{k:.0}"))
            .y_label_formatter(&|ms| {
                if *ms >= 1.0 {
                    format!("{ms:.0}")
                } else {
                    format!("{ms:.2}")
                }
            })
            .draw()?;
        for (server, label, color) in SERVERS {
            let key = |metric| (server.to_string(), client.to_string(), metric);
            if let Some(points) = medians.get(&key("client_ms")) {
                chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                    .label(label)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                chart.draw_series(PointSeries::of_element(
                    points.clone(),
                    4,
                    color.filled(),
                    &|c, s, st| Circle::new(c, s, st),
                ))?;
            }
            if let Some(points) = medians.get(&key("stop_ms")) {
                chart.draw_series(DashedLineSeries::new(
                    points.clone(),
                    6,
                    4,
                    color.stroke_width(1),
                ))?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [csv, out] = args.as_slice() else {
        eprintln!("usage: plot_drain DRAIN_CSV OUT_SVG");
        return ExitCode::from(2);
    };
    let drawn = read(csv).map_err(|e| e.into()).and_then(|s| draw(&s, out));
    match drawn {
        Ok(()) => {
            println!("plot: {out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("plot_drain: {e}");
            ExitCode::FAILURE
        }
    }
}
