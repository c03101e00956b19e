//! `GET /metrics`: the router's counters in Prometheus's text exposition format 0.0.4.

use std::fmt::Write;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use wsgw_core::metrics::{Counter, MetricsSnapshot};

/// The `Content-Type` of the text exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Prefix of every metric name.
const PREFIX: &str = "wsgw";

/// A label value with `\`, `"` and newlines escaped.
fn label_value(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// A `# HELP` text with `\` and newlines escaped.
fn help_text(text: &str) -> String {
    text.replace('\\', r"\\").replace('\n', r"\n")
}

/// A sample value: integers without a fraction, `+Inf` for infinity.
fn number(value: f64) -> String {
    if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{value}")
    }
}

/// Renders a snapshot (and the number of open connections) as Prometheus text: one
/// counter family per [`Counter`] (`wsgw_<name>_total{route="…"}`), the handler latency
/// histogram `wsgw_handler_latency_seconds{route="…"}`, and the gauge
/// `wsgw_connections_open`.
pub fn render(snapshot: &MetricsSnapshot, connections_open: usize) -> String {
    let mut out = String::new();
    for counter in Counter::ALL {
        let name = format!("{PREFIX}_{}_total", counter.snake_name());
        let _ = writeln!(out, "# HELP {name} {}.", help_text(counter.help()));
        let _ = writeln!(out, "# TYPE {name} counter");
        for sample in snapshot.counts.iter().filter(|s| s.counter == counter) {
            let _ = writeln!(
                out,
                "{name}{{route=\"{}\"}} {}",
                label_value(&sample.route),
                sample.value
            );
        }
    }
    let name = format!("{PREFIX}_handler_latency_seconds");
    let _ = writeln!(
        out,
        "# HELP {name} How long route handlers ran, by route (seconds)."
    );
    let _ = writeln!(out, "# TYPE {name} histogram");
    for sample in &snapshot.latencies {
        let route = label_value(&sample.route);
        for (bound, count) in sample.histogram.cumulative() {
            let _ = writeln!(
                out,
                "{name}_bucket{{route=\"{route}\",le=\"{}\"}} {count}",
                number(bound)
            );
        }
        let _ = writeln!(
            out,
            "{name}_sum{{route=\"{route}\"}} {}",
            number(sample.histogram.sum_seconds())
        );
        let _ = writeln!(
            out,
            "{name}_count{{route=\"{route}\"}} {}",
            sample.histogram.count()
        );
    }
    let name = format!("{PREFIX}_connections_open");
    let _ = writeln!(
        out,
        "# HELP {name} WebSocket connections open on this gateway."
    );
    let _ = writeln!(out, "# TYPE {name} gauge");
    let _ = writeln!(out, "{name} {connections_open}");
    out
}

/// The `GET /metrics` response.
pub(super) fn respond(snapshot: &MetricsSnapshot, connections_open: usize) -> Response {
    (
        [(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)],
        render(snapshot, connections_open),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use wsgw_core::metrics::{Counters, Metrics};

    use super::*;

    #[test]
    fn counters_and_the_histogram_render_with_help_type_and_escaped_labels() {
        let counters = Counters::new();
        counters.count(Counter::Messages, "say \"hi\"\\", 2);
        counters.latency("whoami", Duration::from_millis(3));

        let text = render(&counters.snapshot(), 1);

        assert!(text.contains("# TYPE wsgw_messages_total counter\n"));
        assert!(text.contains("wsgw_messages_total{route=\"say \\\"hi\\\"\\\\\"} 2\n"));
        assert!(text
            .contains("wsgw_handler_latency_seconds_bucket{route=\"whoami\",le=\"0.0025\"} 0\n"));
        assert!(
            text.contains("wsgw_handler_latency_seconds_bucket{route=\"whoami\",le=\"0.005\"} 1\n")
        );
        assert!(
            text.contains("wsgw_handler_latency_seconds_bucket{route=\"whoami\",le=\"+Inf\"} 1\n")
        );
        assert!(text.contains("wsgw_handler_latency_seconds_count{route=\"whoami\"} 1\n"));
        assert!(text.ends_with("# TYPE wsgw_connections_open gauge\nwsgw_connections_open 1\n"));
    }
}
