//! `GET /metrics`: the router's counters in Prometheus's text exposition format 0.0.4.

use std::fmt::Write;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use wsgw_core::metrics::{Counter, MetricsSnapshot, LATENCY_METRIC};

use super::ResourceUsage;

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

/// Renders a snapshot and the gateway's resources as Prometheus text: one counter family
/// per [`Counter`] (`wsgw_<name>_total{route="…"}`), the handler latency histogram
/// `wsgw_handler_latency_seconds{route="…"}`, and one gauge per [`ResourceUsage`] field
/// (`wsgw_connections_open`, `wsgw_connections`, `wsgw_http_connections`,
/// `wsgw_inbound_queued_bytes`, `wsgw_outbound_queued_bytes`).
pub fn render(snapshot: &MetricsSnapshot, resources: &ResourceUsage) -> String {
    let mut out = String::new();
    for counter in Counter::ALL {
        let name = counter.metric_name();
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
    let name = LATENCY_METRIC;
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
    let gauges = [
        (
            "connections",
            "WebSocket connections counted against the connection limit, from the upgrade request until their last message and $disconnect were handled.",
            resources.connections,
        ),
        (
            "http_connections",
            "TCP connections speaking HTTP: requests being read or answered, upgrade requests included, and idle keep-alive connections.",
            resources.http_connections,
        ),
        (
            "inbound_queued_bytes",
            "Bytes of client messages read and being handled.",
            resources.inbound_bytes,
        ),
        (
            "outbound_queued_bytes",
            "Bytes posted to connections and not yet taken by their sockets.",
            resources.outbound_bytes,
        ),
        (
            "connections_open",
            "WebSocket connections open on this gateway.",
            resources.connections_open,
        ),
    ];
    for (name, help, value) in gauges {
        let name = format!("{PREFIX}_{name}");
        let _ = writeln!(out, "# HELP {name} {}", help_text(help));
        let _ = writeln!(out, "# TYPE {name} gauge");
        let _ = writeln!(out, "{name} {value}");
    }
    out
}

/// The `GET /metrics` response.
pub(super) fn respond(snapshot: &MetricsSnapshot, resources: &ResourceUsage) -> Response {
    (
        [(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)],
        render(snapshot, resources),
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

        let resources = ResourceUsage {
            connections: 2,
            connections_open: 1,
            http_connections: 3,
            inbound_bytes: 4,
            outbound_bytes: 5,
        };
        let text = render(&counters.snapshot(), &resources);

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
        for (gauge, value) in [
            ("wsgw_connections", 2),
            ("wsgw_http_connections", 3),
            ("wsgw_inbound_queued_bytes", 4),
            ("wsgw_outbound_queued_bytes", 5),
        ] {
            assert!(
                text.contains(&format!("# TYPE {gauge} gauge\n{gauge} {value}\n")),
                "{gauge} in {text}"
            );
        }
        assert!(text.ends_with("# TYPE wsgw_connections_open gauge\nwsgw_connections_open 1\n"));
    }
}
