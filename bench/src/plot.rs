//! The fan-out plot, drawn with `plotters` into an SVG.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use crate::fanout::SENDERS;
use crate::report::Results;
use crate::Result;

const SIZE: (u32, u32) = (820, 460);
const TITLE: &str = "Fan-out through @connections: time until the last client received";
/// One colour per sender, in the order of [`SENDERS`].
const COLOURS: [RGBColor; 3] = [
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
];
/// Dash and gap, in pixels, of the series whose `@connections` answers were delayed.
const DASH: (u32, u32) = (6, 4);

/// One line of the plot: a sender at one emulated `@connections` round trip.
struct Series {
    label: String,
    colour: RGBColor,
    dashed: bool,
    /// (N, milliseconds until the last client received), by N.
    points: Vec<(f64, f64)>,
}

/// The fan-out plot: time until the last client received vs N, log-log, one line per
/// sender and emulated latency (dashed when the `@connections` answers were delayed).
pub fn svg(results: &Results) -> Result<String> {
    let series = series(results);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        draw(&root, &series).map_err(|e| format!("drawing the fan-out plot: {e}"))?;
    }
    Ok(out)
}

fn series(results: &Results) -> Vec<Series> {
    let mut latencies: Vec<u64> = results.fanout.iter().map(|f| f.latency_ms).collect();
    latencies.sort_unstable();
    latencies.dedup();
    let mut all = Vec::new();
    for latency in latencies {
        for (index, sender) in SENDERS.iter().enumerate() {
            let mut points: Vec<(f64, f64)> = results
                .fanout
                .iter()
                // At full CPU only: the CPU-share rows are a table of their own.
                .filter(|f| f.sender == *sender && f.latency_ms == latency && f.share.is_none())
                .map(|f| (f.connections as f64, f.last_received_s * 1e3))
                .filter(|(n, ms)| *n > 0.0 && ms.is_finite() && *ms > 0.0)
                .collect();
            if points.is_empty() {
                continue;
            }
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            let label = if latency == 0 {
                (*sender).to_owned()
            } else {
                format!("{sender} (+{latency} ms)")
            };
            all.push(Series {
                label,
                colour: COLOURS[index % COLOURS.len()],
                dashed: latency > 0,
                points,
            });
        }
    }
    all
}

/// The decades around `values`, so a log axis starts and ends on a power of ten.
fn decades(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (low, high) = values.fold((f64::MAX, f64::MIN), |(low, high), v| {
        (low.min(v), high.max(v))
    });
    if low > high {
        return 1.0..10.0;
    }
    let low = 10f64.powf(low.log10().floor());
    let high = 10f64.powf(high.log10().ceil()).max(low * 10.0);
    low..high
}

type Drawn<'a> =
    std::result::Result<(), DrawingAreaErrorKind<<SVGBackend<'a> as DrawingBackend>::ErrorType>>;

fn draw<'a>(root: &DrawingArea<SVGBackend<'a>, Shift>, series: &[Series]) -> Drawn<'a> {
    root.fill(&WHITE)?;
    let points = || series.iter().flat_map(|s| s.points.iter());
    let x_range = decades(points().map(|p| p.0));
    // Room either side, so the points at N = 100 and 10,000 are not on the frame.
    let x_range = x_range.start / 1.6..x_range.end * 1.6;
    let y_range = decades(points().map(|p| p.1));
    let mut chart = ChartBuilder::on(root)
        .caption(TITLE, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range.log_scale(), y_range.log_scale())?;
    chart
        .configure_mesh()
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .x_desc("live connections N (log scale)")
        .y_desc("until the last client received (ms, log scale)")
        .x_label_formatter(&|n| format!("{n:.0}"))
        .y_label_formatter(&|ms| format!("{ms}"))
        .draw()?;
    for line in series {
        let style = ShapeStyle::from(line.colour).stroke_width(2);
        let colour = line.colour;
        if line.dashed {
            chart
                .draw_series(DashedLineSeries::new(
                    line.points.clone(),
                    DASH.0,
                    DASH.1,
                    style,
                ))?
                .label(&line.label)
                .legend(move |(x, y)| {
                    DashedPathElement::new(vec![(x, y), (x + 24, y)], DASH.0, DASH.1, style)
                });
        } else {
            chart
                .draw_series(LineSeries::new(line.points.clone(), style))?
                .label(&line.label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
        }
        chart.draw_series(
            line.points
                .iter()
                .map(move |point| Circle::new(*point, 4, colour.filled())),
        )?;
    }
    if !series.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font(("sans-serif", 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::{NODE, PYTHON, WSGW};
    use crate::report::Fanout;

    fn row(sender: &'static str, connections: usize, latency_ms: u64, ms: f64) -> Fanout {
        Fanout {
            sender,
            connections,
            latency_ms,
            share: None,
            last_received_s: ms / 1e3,
            sender_s: ms / 1e3,
            delivered: connections,
            failed_posts: 0,
            repetitions: 1,
            cpu_s: [0.0; 3],
            sender_cpu_us_per_post: 0.0,
        }
    }

    /// What the `<text>` elements say, trimmed.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|element| {
                let (_, rest) = element.split_once('>')?;
                let (text, _) = rest.split_once("</text>")?;
                Some(text.trim().to_owned())
            })
            .collect()
    }

    #[test]
    fn every_sender_and_latency_is_a_labelled_series_and_delayed_ones_are_dashed() {
        let mut results = Results::default();
        for (sender, base) in [(WSGW, 20.0), (NODE, 130.0), (PYTHON, 220.0)] {
            results.fanout.push(row(sender, 1000, 0, base));
            results.fanout.push(row(sender, 10000, 0, base * 8.0));
            results.fanout.push(row(sender, 100, 5, base / 2.0));
            results.fanout.push(row(sender, 1000, 5, base * 4.0));
        }
        let svg = svg(&results).expect("draws");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        let texts = texts(&svg);
        assert!(texts.iter().any(|t| t == TITLE), "{texts:?}");
        for sender in [WSGW, NODE, PYTHON] {
            assert!(texts.iter().any(|t| t == sender), "{sender} in the legend");
            let delayed = format!("{sender} (+5 ms)");
            assert!(texts.contains(&delayed), "{delayed} in the legend");
        }
        // Solid series are one polyline each (plot and legend); a dashed one is many
        // short segments.
        let polylines = svg.matches("<polyline").count();
        assert!(polylines > 6 * 2, "{polylines} polylines");
        for tick in ["100", "1000", "10000"] {
            assert!(texts.iter().any(|t| t == tick), "x tick {tick}: {texts:?}");
        }
    }

    #[test]
    fn no_fanout_rows_still_make_an_svg_with_the_title() {
        let svg = svg(&Results::default()).expect("draws");
        assert!(svg.starts_with("<svg"));
        assert_eq!(texts(&svg).first().map(String::as_str), Some(TITLE));
    }

    #[test]
    fn a_log_axis_spans_whole_decades() {
        assert_eq!(decades([150.0, 2200.0].into_iter()), 100.0..10000.0);
        assert_eq!(decades([1000.0].into_iter()), 1000.0..10000.0);
        assert_eq!(decades(std::iter::empty()), 1.0..10.0);
    }
}
