//! What the router, the context and broadcast count, reported to [`Metrics`] observers.
//!
//! One mechanism feeds every output: the [`Router`](crate::Router) reports each event it
//! handles (connects, refusals, disconnects, messages and REST requests by route, handler
//! errors, handler latency) and the [`Context`](crate::Context) of a route reports what
//! the handler's sends did (broadcast deliveries, Gone prunes, throttled sends) to the
//! observers added with [`Router::observe`](crate::Router::observe). Without an observer
//! nothing is counted and nothing is wrapped.
//!
//! [`Counters`] is the cumulative observer: the LocalGateway renders it as Prometheus
//! text at `GET /metrics`. `wsgw-aws` observes each Lambda invocation on its own and
//! writes one CloudWatch Embedded Metric Format line for it.
//!
//! ```
//! # use std::sync::Arc;
//! # use wsgw_core::*;
//! # use wsgw_core::metrics::{Counter, Counters};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<()> {
//! # let backends = Backends::new(Arc::new(MockConnectionStore::new()), Arc::new(MockMessageSink::new()));
//! let counters = Arc::new(Counters::new());
//! let router = Router::new()
//!     .two_way_route("ping", |_ctx: Context, _req: Request| async { Ok("pong") })
//!     .observe(counters.clone());
//!
//! router.handle(&backends, Request::message(ConnectionId::new("a="), r#"{"action":"ping"}"#)).await?;
//! assert_eq!(counters.get(Counter::Messages, "ping"), 1);
//! assert_eq!(counters.snapshot().latencies[0].histogram.count(), 1);
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use crate::{ConnectionId, ConnectionInfo, MessageSink, Payload, Result};

/// The name of the handler latency histogram (seconds, label `route`), in Prometheus
/// text at the LocalGateway's `GET /metrics` and in the [`metrics` facade](MetricsFacade).
pub const LATENCY_METRIC: &str = "wsgw_handler_latency_seconds";

/// The label every wsgw series carries: the route (see [`Metrics::count`]).
pub const ROUTE_LABEL: &str = "route";

/// The route label of counts made outside any route (a background task sending through
/// a [`Router::context`](crate::Router::context)).
pub const NO_ROUTE: &str = "(none)";

/// A count the router, the context or broadcast keeps, always per route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Counter {
    /// `$connect` events, accepted or not.
    Connects,
    /// `$connect` events that refused the handshake: a denying authorizer, a non-2xx
    /// reply, a failing handler, or (on the LocalGateway) the connection limit reached
    /// before any handler ran.
    ConnectsRefused,
    /// `$disconnect` events.
    Disconnects,
    /// Messages, by the route whose handler ran (`$default` for unmatched ones).
    Messages,
    /// REST requests, by route (`GET /history/{device}`).
    HttpRequests,
    /// Handlers (or authorizers) that returned an error, panicked or timed out.
    HandlerErrors,
    /// Connections a broadcast reached.
    BroadcastDeliveries,
    /// Connections a broadcast found gone and deleted from the store.
    GonePrunes,
    /// Sends the Management API (or the local sink) refused as throttled, each retry
    /// included.
    Throttles,
}

impl Counter {
    /// Every counter, in a stable order.
    pub const ALL: [Counter; 9] = [
        Counter::Connects,
        Counter::ConnectsRefused,
        Counter::Disconnects,
        Counter::Messages,
        Counter::HttpRequests,
        Counter::HandlerErrors,
        Counter::BroadcastDeliveries,
        Counter::GonePrunes,
        Counter::Throttles,
    ];

    /// The CloudWatch-style name: `Connects`, `GonePrunes` ...
    pub fn name(self) -> &'static str {
        match self {
            Counter::Connects => "Connects",
            Counter::ConnectsRefused => "ConnectsRefused",
            Counter::Disconnects => "Disconnects",
            Counter::Messages => "Messages",
            Counter::HttpRequests => "HttpRequests",
            Counter::HandlerErrors => "HandlerErrors",
            Counter::BroadcastDeliveries => "BroadcastDeliveries",
            Counter::GonePrunes => "GonePrunes",
            Counter::Throttles => "Throttles",
        }
    }

    /// The snake-case name: `connects`, `gone_prunes` ... (Prometheus:
    /// `wsgw_<name>_total`).
    pub fn snake_name(self) -> &'static str {
        match self {
            Counter::Connects => "connects",
            Counter::ConnectsRefused => "connects_refused",
            Counter::Disconnects => "disconnects",
            Counter::Messages => "messages",
            Counter::HttpRequests => "http_requests",
            Counter::HandlerErrors => "handler_errors",
            Counter::BroadcastDeliveries => "broadcast_deliveries",
            Counter::GonePrunes => "gone_prunes",
            Counter::Throttles => "throttles",
        }
    }

    /// The series name outside CloudWatch: `wsgw_<snake name>_total` (`wsgw_messages_total`),
    /// at the LocalGateway's `GET /metrics` and in the [`metrics` facade](MetricsFacade).
    pub fn metric_name(self) -> &'static str {
        match self {
            Counter::Connects => "wsgw_connects_total",
            Counter::ConnectsRefused => "wsgw_connects_refused_total",
            Counter::Disconnects => "wsgw_disconnects_total",
            Counter::Messages => "wsgw_messages_total",
            Counter::HttpRequests => "wsgw_http_requests_total",
            Counter::HandlerErrors => "wsgw_handler_errors_total",
            Counter::BroadcastDeliveries => "wsgw_broadcast_deliveries_total",
            Counter::GonePrunes => "wsgw_gone_prunes_total",
            Counter::Throttles => "wsgw_throttles_total",
        }
    }

    /// One line saying what is counted.
    pub fn help(self) -> &'static str {
        match self {
            Counter::Connects => "$connect events, accepted or not",
            Counter::ConnectsRefused => {
                "$connect events that refused the handshake (authorizer denial, non-2xx reply, handler failure)"
            }
            Counter::Disconnects => "$disconnect events",
            Counter::Messages => "messages, by the route whose handler ran",
            Counter::HttpRequests => "REST requests, by route",
            Counter::HandlerErrors => "handlers that failed, panicked or timed out",
            Counter::BroadcastDeliveries => "connections a broadcast reached",
            Counter::GonePrunes => "gone connections a broadcast deleted from the store",
            Counter::Throttles => "sends refused as throttled, each retry included",
        }
    }
}

impl fmt::Display for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Receives what the router, the context and broadcast count.
///
/// Called inline on the hot path: implementations should only add to counters.
pub trait Metrics: Send + Sync + 'static {
    /// Adds `value` to `counter` for `route` (a route key such as `sendmessage` or
    /// `$connect`, a REST route such as `GET /history/{device}`, or [`NO_ROUTE`]).
    fn count(&self, counter: Counter, route: &str, value: u64);

    /// Records how long a handler for `route` ran (for `$connect`, the authorizer
    /// included when the router ran it).
    fn latency(&self, route: &str, elapsed: Duration);
}

impl<T: Metrics + ?Sized> Metrics for Arc<T> {
    fn count(&self, counter: Counter, route: &str, value: u64) {
        (**self).count(counter, route, value);
    }
    fn latency(&self, route: &str, elapsed: Duration) {
        (**self).latency(route, elapsed);
    }
}

/// An observer that hands every count to the [`metrics`](https://docs.rs/metrics) facade
/// (feature `metrics`), so the recorder the application installed (a Prometheus
/// exporter, a CloudWatch EMF exporter, OpenTelemetry) receives wsgw's series beside its
/// own, with the names and labels of the LocalGateway's `GET /metrics`: a counter
/// [`Counter::metric_name`] (`wsgw_messages_total`) and the histogram
/// [`LATENCY_METRIC`] (seconds), each labelled [`ROUTE_LABEL`].
///
/// ```
/// use wsgw_core::metrics::MetricsFacade;
/// use wsgw_core::{Context, Request, Router};
///
/// // Once, in `main`, the app installs its recorder (e.g. metrics-exporter-prometheus);
/// // then every router it serves reports to it:
/// let router = Router::new()
///     .two_way_route("ping", |_ctx: Context, _req: Request| async { Ok("pong") })
///     .observe(MetricsFacade);
/// # let _ = router;
/// ```
#[cfg(feature = "metrics")]
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsFacade;

#[cfg(feature = "metrics")]
impl Metrics for MetricsFacade {
    fn count(&self, counter: Counter, route: &str, value: u64) {
        ::metrics::counter!(counter.metric_name(), ROUTE_LABEL => route.to_owned())
            .increment(value);
    }

    fn latency(&self, route: &str, elapsed: Duration) {
        ::metrics::histogram!(LATENCY_METRIC, ROUTE_LABEL => route.to_owned())
            .record(elapsed.as_secs_f64());
    }
}

/// Every observer of a router, as one.
#[derive(Clone, Default)]
pub(crate) struct Observers(Vec<Arc<dyn Metrics>>);

impl Observers {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn with(&self, observer: Arc<dyn Metrics>) -> Observers {
        let mut all = self.0.clone();
        all.push(observer);
        Observers(all)
    }
}

impl Metrics for Observers {
    fn count(&self, counter: Counter, route: &str, value: u64) {
        if value == 0 {
            return;
        }
        for observer in &self.0 {
            observer.count(counter, route, value);
        }
    }
    fn latency(&self, route: &str, elapsed: Duration) {
        for observer in &self.0 {
            observer.latency(route, elapsed);
        }
    }
}

/// A sink that reports throttled sends of one route, wrapped around a context's sink
/// when the router has observers.
#[derive(Clone)]
pub(crate) struct MeteredSink {
    pub(crate) inner: Arc<dyn MessageSink>,
    pub(crate) observers: Arc<Observers>,
    pub(crate) route: Arc<str>,
}

impl MeteredSink {
    fn seen<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(error) = &result {
            if error.is_throttled() {
                self.observers.count(Counter::Throttles, &self.route, 1);
            }
        }
        result
    }
}

#[async_trait]
impl MessageSink for MeteredSink {
    async fn send(&self, id: &ConnectionId, payload: Payload) -> Result<()> {
        self.seen(self.inner.send(id, payload).await)
    }
    async fn connection_info(&self, id: &ConnectionId) -> Result<ConnectionInfo> {
        self.seen(self.inner.connection_info(id).await)
    }
    async fn disconnect(&self, id: &ConnectionId) -> Result<()> {
        self.seen(self.inner.disconnect(id).await)
    }
}

/// Upper bounds, in seconds, of the latency histogram's buckets: 1 ms to API Gateway's
/// 29 s integration timeout and beyond.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A latency histogram over [`LATENCY_BUCKETS`].
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Observations per bucket, not cumulative; the last entry counts those above the
    /// largest bound.
    buckets: [u64; LATENCY_BUCKETS.len() + 1],
    count: u64,
    sum: f64,
    max: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: [0; LATENCY_BUCKETS.len() + 1],
            count: 0,
            sum: 0.0,
            max: 0.0,
        }
    }
}

impl Histogram {
    /// Adds one observation.
    pub fn observe(&mut self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[bucket] += 1;
        self.count += 1;
        self.sum += seconds;
        self.max = self.max.max(seconds);
    }

    /// How many observations.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Their sum, in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum
    }

    /// The largest, in seconds.
    pub fn max_seconds(&self) -> f64 {
        self.max
    }

    /// `(upper bound in seconds, observations at or below it)` per bucket, cumulative as
    /// Prometheus expects, ending with `(f64::INFINITY, count)`.
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut running = 0;
        LATENCY_BUCKETS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.buckets)
            .map(|(bound, in_bucket)| {
                running += in_bucket;
                (bound, running)
            })
            .collect()
    }
}

/// One counter's value for one route.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CounterSample {
    /// Which counter.
    pub counter: Counter,
    /// The route label.
    pub route: String,
    /// The cumulative value.
    pub value: u64,
}

/// One route's latency histogram.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LatencySample {
    /// The route label.
    pub route: String,
    /// Its handler latencies.
    pub histogram: Histogram,
}

/// Everything [`Counters`] holds at one moment, sorted by counter then route.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Counter values, only those that were counted.
    pub counts: Vec<CounterSample>,
    /// Latency histograms, by route.
    pub latencies: Vec<LatencySample>,
}

impl MetricsSnapshot {
    /// A counter's value for a route (0 when never counted).
    pub fn get(&self, counter: Counter, route: &str) -> u64 {
        self.counts
            .iter()
            .find(|sample| sample.counter == counter && sample.route == route)
            .map_or(0, |sample| sample.value)
    }

    /// A counter's value summed over every route.
    pub fn total(&self, counter: Counter) -> u64 {
        self.counts
            .iter()
            .filter(|sample| sample.counter == counter)
            .map(|sample| sample.value)
            .sum()
    }
}

#[derive(Default)]
struct Totals {
    /// Per counter, then per route: looked up by `&str`, so counting allocates only the
    /// first time a route is seen.
    counts: BTreeMap<Counter, BTreeMap<String, u64>>,
    latencies: BTreeMap<String, Histogram>,
}

/// The cumulative observer: counters and latency histograms per route, since it was
/// created. Thread-safe; share it with an `Arc`.
#[derive(Default)]
pub struct Counters {
    totals: Mutex<Totals>,
}

impl fmt::Debug for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Counters")
            .field("snapshot", &self.snapshot())
            .finish()
    }
}

impl Counters {
    /// Empty counters.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Totals> {
        self.totals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A counter's value for a route (0 when never counted).
    pub fn get(&self, counter: Counter, route: &str) -> u64 {
        self.lock()
            .counts
            .get(&counter)
            .and_then(|routes| routes.get(route))
            .copied()
            .unwrap_or(0)
    }

    /// Everything counted so far.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let totals = self.lock();
        MetricsSnapshot {
            counts: totals
                .counts
                .iter()
                .flat_map(|(counter, routes)| {
                    routes.iter().map(|(route, value)| CounterSample {
                        counter: *counter,
                        route: route.clone(),
                        value: *value,
                    })
                })
                .collect(),
            latencies: totals
                .latencies
                .iter()
                .map(|(route, histogram)| LatencySample {
                    route: route.clone(),
                    histogram: histogram.clone(),
                })
                .collect(),
        }
    }
}

impl Metrics for Counters {
    fn count(&self, counter: Counter, route: &str, value: u64) {
        let mut totals = self.lock();
        let routes = totals.counts.entry(counter).or_default();
        match routes.get_mut(route) {
            Some(total) => *total = total.saturating_add(value),
            None => {
                routes.insert(route.to_owned(), value);
            }
        }
    }

    fn latency(&self, route: &str, elapsed: Duration) {
        let mut totals = self.lock();
        match totals.latencies.get_mut(route) {
            Some(histogram) => histogram.observe(elapsed),
            None => {
                let mut histogram = Histogram::default();
                histogram.observe(elapsed);
                totals.latencies.insert(route.to_owned(), histogram);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_infinity() {
        let mut histogram = Histogram::default();
        histogram.observe(Duration::from_micros(500));
        histogram.observe(Duration::from_millis(3));
        histogram.observe(Duration::from_secs(40));

        let cumulative = histogram.cumulative();
        assert_eq!(cumulative[0], (0.001, 1));
        assert_eq!(cumulative[2], (0.005, 2));
        assert_eq!(cumulative[LATENCY_BUCKETS.len() - 1], (30.0, 2));
        assert_eq!(*cumulative.last().unwrap(), (f64::INFINITY, 3));
        assert_eq!(histogram.count(), 3);
        assert!((histogram.sum_seconds() - 40.0035).abs() < 1e-9);
        assert_eq!(histogram.max_seconds(), 40.0);
    }

    #[test]
    fn counters_add_per_counter_and_route() {
        let counters = Counters::new();
        counters.count(Counter::Messages, "a", 1);
        counters.count(Counter::Messages, "a", 2);
        counters.count(Counter::Messages, "b", 1);
        counters.count(Counter::Connects, "$connect", 1);

        let snapshot = counters.snapshot();
        assert_eq!(snapshot.get(Counter::Messages, "a"), 3);
        assert_eq!(snapshot.total(Counter::Messages), 4);
        assert_eq!(snapshot.get(Counter::Throttles, "a"), 0);
        assert_eq!(counters.get(Counter::Connects, "$connect"), 1);
    }

    #[test]
    fn every_counters_metric_name_is_wsgw_its_snake_name_total() {
        for counter in Counter::ALL {
            assert_eq!(
                counter.metric_name(),
                format!("wsgw_{}_total", counter.snake_name())
            );
        }
    }

    #[test]
    fn every_counter_has_distinct_names() {
        let mut names: Vec<&str> = Counter::ALL.iter().map(|c| c.name()).collect();
        let mut snake: Vec<&str> = Counter::ALL.iter().map(|c| c.snake_name()).collect();
        names.sort_unstable();
        names.dedup();
        snake.sort_unstable();
        snake.dedup();
        assert_eq!(names.len(), Counter::ALL.len());
        assert_eq!(snake.len(), Counter::ALL.len());
    }
}
