//! CloudWatch metrics in Embedded Metric Format (EMF): one JSON log line per Lambda
//! invocation, written to stdout, which CloudWatch Logs turns into metrics. No API call,
//! no agent, no extra latency.
//!
//! [`LambdaApp`](crate::lambda::LambdaApp) observes each invocation with an
//! [`InvocationMetrics`] (through `wsgw_core`'s [`Metrics`] observer, the same
//! mechanism the LocalGateway's `GET /metrics` uses) and [`Emf`] writes what it counted:
//!
//! ```json
//! {"_aws":{"Timestamp":1795336801234,"CloudWatchMetrics":[{"Namespace":"wsgw",
//!   "Dimensions":[["FunctionName","Route"],["FunctionName"]],
//!   "Metrics":[{"Name":"Messages","Unit":"Count"},{"Name":"BroadcastDeliveries","Unit":"Count"},
//!              {"Name":"HandlerErrors","Unit":"Count"},{"Name":"HandlerLatency","Unit":"Milliseconds"}]}]},
//!  "FunctionName":"chat-ChatFunction-1x2y3z","Route":"sendmessage",
//!  "Messages":1,"BroadcastDeliveries":12,"HandlerErrors":0,"HandlerLatency":8.41,
//!  "EventType":"MESSAGE","Stage":"production","ConnectionId":"GXLKAfX1FiACHqQ=","RequestId":"…"}
//! ```
//!
//! Counters appear when they are not zero ([`Counter`]: `Connects`, `ConnectsRefused`,
//! `Disconnects`, `Messages`, `HttpRequests`, `BroadcastDeliveries`, `GonePrunes`,
//! `Throttles`), `HandlerErrors` and `HandlerLatency` always, so error rates and
//! latency percentiles can be graphed and alarmed on per route and per function.
//!
//! Configuration (environment, read by [`Emf::from_env`]):
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `WSGW_METRICS` | on in Lambda, off elsewhere | `emf` (or `on`) writes the lines anywhere, `off` never |
//! | `WSGW_METRICS_NAMESPACE` | `wsgw` | the CloudWatch namespace |
//! | `WSGW_METRICS_DIMENSIONS` | `FunctionName,Route;FunctionName` | dimension sets, `;` between sets, `,` between names, from `FunctionName`, `Route`, `Stage`, `EventType` |

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use wsgw_core::metrics::{Counter, Metrics};

use crate::config::non_empty_env;

/// `emf`/`on` or `off`; unset: on only inside Lambda.
pub const METRICS_ENV: &str = "WSGW_METRICS";
/// The CloudWatch namespace.
pub const NAMESPACE_ENV: &str = "WSGW_METRICS_NAMESPACE";
/// The dimension sets, e.g. `FunctionName,Route;FunctionName`.
pub const DIMENSIONS_ENV: &str = "WSGW_METRICS_DIMENSIONS";
/// The namespace unless configured.
pub const DEFAULT_NAMESPACE: &str = "wsgw";
/// The function's name, set by Lambda in every function.
pub const FUNCTION_NAME_ENV: &str = "AWS_LAMBDA_FUNCTION_NAME";

/// Dimension: the Lambda function's name.
pub const FUNCTION_NAME: &str = "FunctionName";
/// Dimension: the route whose handler ran (`$connect`, `sendmessage`, `GET /history`).
pub const ROUTE: &str = "Route";
/// Dimension: the API stage.
pub const STAGE: &str = "Stage";
/// Dimension: `CONNECT`, `MESSAGE`, `DISCONNECT` or `REST`.
pub const EVENT_TYPE: &str = "EventType";
/// The dimensions wsgw fills in for every invocation.
pub const BUILT_IN_DIMENSIONS: [&str; 4] = [FUNCTION_NAME, ROUTE, STAGE, EVENT_TYPE];

/// The handler latency metric's name.
pub const HANDLER_LATENCY: &str = "HandlerLatency";

/// Why the metrics configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsConfigError {
    /// `WSGW_METRICS` is neither on nor off.
    #[error("{METRICS_ENV}={0:?}: expected `emf` (or `on`) or `off`")]
    Switch(String),
    /// The namespace is not one CloudWatch accepts.
    #[error("{NAMESPACE_ENV}={0:?}: a namespace has 1 to 255 printable ASCII characters and does not start with `AWS/`")]
    Namespace(String),
    /// A dimension set names an unknown dimension, or has none or too many.
    #[error("{DIMENSIONS_ENV}={value:?}: {problem}")]
    Dimensions {
        /// The variable's value.
        value: String,
        /// What is wrong with it.
        problem: String,
    },
}

fn check_namespace(namespace: &str) -> Result<(), MetricsConfigError> {
    let printable = namespace
        .chars()
        .all(|c| c.is_ascii() && !c.is_ascii_control());
    if namespace.is_empty() || namespace.len() > 255 || !printable || namespace.starts_with("AWS/")
    {
        return Err(MetricsConfigError::Namespace(namespace.to_owned()));
    }
    Ok(())
}

/// Parses `FunctionName,Route;FunctionName` into dimension sets of built-in names.
fn parse_dimension_sets(value: &str) -> Result<Vec<Vec<String>>, MetricsConfigError> {
    let problem = |problem: String| MetricsConfigError::Dimensions {
        value: value.to_owned(),
        problem,
    };
    let mut sets = Vec::new();
    for set in value.split(';') {
        let names: Vec<String> = set
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect();
        if names.is_empty() {
            return Err(problem("a dimension set is empty".to_owned()));
        }
        if let Some(unknown) = names
            .iter()
            .find(|name| !BUILT_IN_DIMENSIONS.contains(&name.as_str()))
        {
            return Err(problem(format!(
                "unknown dimension `{unknown}` (known: {})",
                BUILT_IN_DIMENSIONS.join(", ")
            )));
        }
        if names.iter().collect::<BTreeSet<_>>().len() != names.len() {
            return Err(problem(
                "a dimension set names a dimension twice".to_owned(),
            ));
        }
        sets.push(names);
    }
    Ok(sets)
}

type Writer = Arc<Mutex<Box<dyn Write + Send>>>;

/// Writes one EMF document per invocation; see the [module docs](self).
#[derive(Clone)]
pub struct Emf {
    namespace: String,
    dimension_sets: Vec<Vec<String>>,
    function_name: Option<String>,
    fixed: BTreeMap<String, String>,
    writer: Writer,
}

impl fmt::Debug for Emf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emf")
            .field("namespace", &self.namespace)
            .field("dimension_sets", &self.dimension_sets)
            .field("function_name", &self.function_name)
            .field("fixed", &self.fixed)
            .finish_non_exhaustive()
    }
}

impl Default for Emf {
    fn default() -> Self {
        Emf::new()
    }
}

impl Emf {
    /// Namespace `wsgw`, dimension sets `[FunctionName, Route]` and `[FunctionName]`,
    /// the function name from `AWS_LAMBDA_FUNCTION_NAME`, lines to stdout.
    pub fn new() -> Self {
        Emf {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            dimension_sets: vec![
                vec![FUNCTION_NAME.to_owned(), ROUTE.to_owned()],
                vec![FUNCTION_NAME.to_owned()],
            ],
            function_name: non_empty_env(FUNCTION_NAME_ENV),
            fixed: BTreeMap::new(),
            writer: Arc::new(Mutex::new(Box::new(std::io::stdout()))),
        }
    }

    /// The configuration from the environment (`WSGW_METRICS_NAMESPACE`,
    /// `WSGW_METRICS_DIMENSIONS`), whatever `WSGW_METRICS` says.
    pub fn configured() -> Result<Self, MetricsConfigError> {
        let mut emf = Emf::new();
        if let Some(namespace) = non_empty_env(NAMESPACE_ENV) {
            check_namespace(&namespace)?;
            emf.namespace = namespace;
        }
        if let Some(sets) = non_empty_env(DIMENSIONS_ENV) {
            emf.dimension_sets = parse_dimension_sets(&sets)?;
        }
        Ok(emf)
    }

    /// [`configured`](Self::configured) when metrics are on: `WSGW_METRICS=emf` (or
    /// `on`), or unset inside Lambda. `None` when off.
    pub fn from_env() -> Result<Option<Self>, MetricsConfigError> {
        let on = match non_empty_env(METRICS_ENV) {
            None => crate::lambda::is_lambda(),
            Some(value) => match value.trim().to_ascii_lowercase().as_str() {
                "emf" | "on" | "true" | "1" => true,
                "off" | "false" | "0" | "none" => false,
                _ => return Err(MetricsConfigError::Switch(value)),
            },
        };
        if on {
            Emf::configured().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Sets the namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Result<Self, MetricsConfigError> {
        let namespace = namespace.into();
        check_namespace(&namespace)?;
        self.namespace = namespace;
        Ok(self)
    }

    /// Replaces the dimension sets. Names are the built-in ones ([`BUILT_IN_DIMENSIONS`])
    /// or those given a value with [`dimension`](Self::dimension). A dimension with no
    /// value in an invocation (`FunctionName` outside Lambda) is left out of its set, and
    /// a set left empty is dropped.
    pub fn dimension_sets<I, J, N>(mut self, sets: I) -> Self
    where
        I: IntoIterator<Item = J>,
        J: IntoIterator<Item = N>,
        N: Into<String>,
    {
        self.dimension_sets = sets
            .into_iter()
            .map(|set| set.into_iter().map(Into::into).collect())
            .collect();
        self
    }

    /// A dimension with a fixed value (`Service` = `chat`) written in every document;
    /// name it in a dimension set to aggregate by it.
    pub fn dimension(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.fixed.insert(name.into(), value.into());
        self
    }

    /// Sets the `FunctionName` dimension's value (Lambda's own name by default).
    pub fn function_name(mut self, name: impl Into<String>) -> Self {
        self.function_name = Some(name.into());
        self
    }

    /// Writes the lines to `writer` instead of stdout.
    pub fn writer(mut self, writer: impl Write + Send + 'static) -> Self {
        self.writer = Arc::new(Mutex::new(Box::new(writer)));
        self
    }

    /// The namespace in use.
    pub fn namespace_name(&self) -> &str {
        &self.namespace
    }

    /// The EMF documents for what one invocation counted: one per route it reported
    /// (one in practice), with the built-in dimensions from `invocation` and its
    /// `properties` (connection id, request id ...) as plain members for Logs Insights.
    pub fn documents(
        &self,
        recorded: &InvocationMetrics,
        invocation: &InvocationInfo,
        timestamp: DateTime<Utc>,
    ) -> Vec<Value> {
        let recorded = recorded.lock();
        let routes: BTreeSet<&String> = recorded
            .counts
            .keys()
            .map(|(route, _)| route)
            .chain(recorded.latencies.keys())
            .collect();
        routes
            .into_iter()
            .map(|route| {
                let mut root = Map::new();
                let mut dimension_values: BTreeMap<&str, String> = BTreeMap::new();
                if let Some(name) = &self.function_name {
                    dimension_values.insert(FUNCTION_NAME, name.clone());
                }
                dimension_values.insert(ROUTE, route.clone());
                if let Some(stage) = invocation.stage.as_ref().filter(|s| !s.is_empty()) {
                    dimension_values.insert(STAGE, stage.clone());
                }
                dimension_values.insert(EVENT_TYPE, invocation.event_type.clone());
                for (name, value) in &self.fixed {
                    dimension_values.insert(name, value.clone());
                }
                let dimension_sets: Vec<Vec<&str>> = self
                    .dimension_sets
                    .iter()
                    .map(|set| {
                        set.iter()
                            .map(String::as_str)
                            .filter(|name| dimension_values.contains_key(name))
                            .collect::<Vec<_>>()
                    })
                    .filter(|set| !set.is_empty())
                    .collect();
                let mut definitions = Vec::new();
                for counter in Counter::ALL {
                    let value = recorded
                        .counts
                        .get(&(route.clone(), counter))
                        .copied()
                        .unwrap_or(0);
                    if value > 0 || counter == Counter::HandlerErrors {
                        definitions.push(json!({ "Name": counter.name(), "Unit": "Count" }));
                        root.insert(counter.name().to_owned(), json!(value));
                    }
                }
                if let Some(latencies) = recorded.latencies.get(route) {
                    definitions.push(json!({ "Name": HANDLER_LATENCY, "Unit": "Milliseconds" }));
                    let values: Vec<Value> = latencies.iter().map(|ms| json!(ms)).collect();
                    root.insert(
                        HANDLER_LATENCY.to_owned(),
                        match values.as_slice() {
                            [one] => one.clone(),
                            _ => Value::Array(values),
                        },
                    );
                }
                for (name, value) in &dimension_values {
                    root.insert((*name).to_owned(), json!(value));
                }
                for (name, value) in &invocation.properties {
                    root.entry(name.clone()).or_insert_with(|| json!(value));
                }
                let metadata = json!({
                    "Timestamp": timestamp.timestamp_millis(),
                    "CloudWatchMetrics": [{
                        "Namespace": self.namespace,
                        "Dimensions": dimension_sets,
                        "Metrics": definitions,
                    }],
                });
                let mut document = Map::new();
                document.insert("_aws".to_owned(), metadata);
                document.extend(root);
                Value::Object(document)
            })
            .collect()
    }

    /// Writes each document as one line, at once, and flushes.
    pub fn write(&self, documents: &[Value]) -> std::io::Result<()> {
        if documents.is_empty() {
            return Ok(());
        }
        let mut lines = String::new();
        for document in documents {
            lines.push_str(&document.to_string());
            lines.push('\n');
        }
        let mut writer = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        writer.write_all(lines.as_bytes())?;
        writer.flush()
    }
}

/// What is known about one invocation besides its counts: the built-in dimensions'
/// values and the plain properties written with the metrics.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct InvocationInfo {
    /// `CONNECT`, `MESSAGE`, `DISCONNECT` or `REST`.
    pub event_type: String,
    /// The API stage, when the event names one.
    pub stage: Option<String>,
    /// Plain members (`ConnectionId`, `RequestId`, `MessageId` ...): searchable in Logs
    /// Insights, never dimensions.
    pub properties: BTreeMap<String, String>,
}

#[derive(Default)]
struct Recorded {
    counts: BTreeMap<(String, Counter), u64>,
    latencies: BTreeMap<String, Vec<f64>>,
}

/// Counts one invocation: a [`Metrics`] observer passed to
/// [`Router::handle_observed`](wsgw_core::Router::handle_observed).
#[derive(Default)]
pub struct InvocationMetrics {
    recorded: Mutex<Recorded>,
}

impl fmt::Debug for InvocationMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let recorded = self.lock();
        f.debug_struct("InvocationMetrics")
            .field("counts", &recorded.counts)
            .field("latencies", &recorded.latencies)
            .finish()
    }
}

impl InvocationMetrics {
    /// Nothing counted yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Recorded> {
        self.recorded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A counter's value for a route.
    pub fn get(&self, counter: Counter, route: &str) -> u64 {
        self.lock()
            .counts
            .get(&(route.to_owned(), counter))
            .copied()
            .unwrap_or(0)
    }
}

impl Metrics for InvocationMetrics {
    fn count(&self, counter: Counter, route: &str, value: u64) {
        let mut recorded = self.lock();
        let total = recorded
            .counts
            .entry((route.to_owned(), counter))
            .or_insert(0);
        *total = total.saturating_add(value);
    }

    fn latency(&self, route: &str, elapsed: Duration) {
        // Milliseconds with microsecond precision.
        let ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3;
        self.lock()
            .latencies
            .entry(route.to_owned())
            .or_default()
            .push(ms);
    }
}

/// The units CloudWatch accepts in a metric definition.
pub const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Checks one log line against the structure the CloudWatch Embedded Metric Format
/// specification requires, and says what is wrong:
///
/// - the line is one JSON object of at most 256 KB;
/// - `_aws` is an object with only `Timestamp` (a non-negative integer, milliseconds
///   since the epoch), `CloudWatchMetrics` (an array of metric directives) and
///   optionally `LogGroupName`;
/// - a metric directive has exactly `Namespace` (1–255 characters), `Dimensions` (an
///   array of dimension sets, each an array of at most 30 strings) and `Metrics` (an
///   array of at most 100 metric definitions);
/// - a metric definition has `Name` (1–1024 characters) and optionally `Unit` (one of
///   [`UNITS`]) and `StorageResolution` (1 or 60), nothing else;
/// - every dimension a set names is a root member holding a string of 1–1024
///   characters, and every metric a definition names is a root member holding a number
///   or an array of at most 100 numbers.
pub fn check_emf_line(line: &str) -> Result<Value, String> {
    if line.len() > 256 * 1024 {
        return Err(format!("the line has {} bytes, over 256 KB", line.len()));
    }
    if line.contains('\n') {
        return Err("the document spans more than one line".to_owned());
    }
    let document: Value =
        serde_json::from_str(line).map_err(|error| format!("not JSON: {error}"))?;
    let root = document.as_object().ok_or("the root is not an object")?;
    let aws = root
        .get("_aws")
        .and_then(Value::as_object)
        .ok_or("no `_aws` object")?;
    if let Some(extra) = aws
        .keys()
        .find(|key| !["Timestamp", "CloudWatchMetrics", "LogGroupName"].contains(&key.as_str()))
    {
        return Err(format!("`_aws` has an unknown member `{extra}`"));
    }
    if !aws.get("Timestamp").is_some_and(Value::is_u64) {
        return Err("`_aws.Timestamp` is not a non-negative integer (epoch milliseconds)".into());
    }
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .ok_or("`_aws.CloudWatchMetrics` is not an array")?;
    for (index, directive) in directives.iter().enumerate() {
        let at = format!("`_aws.CloudWatchMetrics[{index}]`");
        let directive = directive
            .as_object()
            .ok_or(format!("{at} is not an object"))?;
        if let Some(extra) = directive
            .keys()
            .find(|key| !["Namespace", "Dimensions", "Metrics"].contains(&key.as_str()))
        {
            return Err(format!("{at} has an unknown member `{extra}`"));
        }
        let namespace = directive
            .get("Namespace")
            .and_then(Value::as_str)
            .ok_or(format!("{at}.Namespace is not a string"))?;
        if namespace.is_empty() || namespace.chars().count() > 255 {
            return Err(format!("{at}.Namespace has not 1 to 255 characters"));
        }
        let sets = directive
            .get("Dimensions")
            .and_then(Value::as_array)
            .ok_or(format!("{at}.Dimensions is not an array"))?;
        for set in sets {
            let set = set
                .as_array()
                .ok_or(format!("{at}.Dimensions holds something else than arrays"))?;
            if set.len() > 30 {
                return Err(format!(
                    "{at}.Dimensions has a set of more than 30 dimensions"
                ));
            }
            for name in set {
                let name = name.as_str().ok_or(format!(
                    "{at}.Dimensions has a dimension name that is not a string"
                ))?;
                let value = root
                    .get(name)
                    .ok_or(format!("dimension `{name}` is not a root member"))?
                    .as_str()
                    .ok_or(format!("dimension `{name}` is not a string"))?;
                if value.is_empty() || value.chars().count() > 1024 {
                    return Err(format!("dimension `{name}` has not 1 to 1024 characters"));
                }
            }
        }
        let definitions = directive
            .get("Metrics")
            .and_then(Value::as_array)
            .ok_or(format!("{at}.Metrics is not an array"))?;
        if definitions.len() > 100 {
            return Err(format!("{at}.Metrics has more than 100 metrics"));
        }
        for definition in definitions {
            let definition = definition
                .as_object()
                .ok_or(format!("{at}.Metrics holds something else than objects"))?;
            if let Some(extra) = definition
                .keys()
                .find(|key| !["Name", "Unit", "StorageResolution"].contains(&key.as_str()))
            {
                return Err(format!("{at}.Metrics has an unknown member `{extra}`"));
            }
            let name = definition
                .get("Name")
                .and_then(Value::as_str)
                .ok_or(format!("{at}.Metrics has a metric without a string Name"))?;
            if name.is_empty() || name.chars().count() > 1024 {
                return Err(format!("metric name `{name}` has not 1 to 1024 characters"));
            }
            if let Some(unit) = definition.get("Unit") {
                if !unit.as_str().is_some_and(|unit| UNITS.contains(&unit)) {
                    return Err(format!("metric `{name}` has an invalid Unit {unit}"));
                }
            }
            if let Some(resolution) = definition.get("StorageResolution") {
                if !matches!(resolution.as_u64(), Some(1 | 60)) {
                    return Err(format!(
                        "metric `{name}` has a StorageResolution other than 1 or 60"
                    ));
                }
            }
            match root.get(name) {
                Some(Value::Number(_)) => {}
                Some(Value::Array(values))
                    if values.len() <= 100 && values.iter().all(Value::is_number) => {}
                Some(_) => {
                    return Err(format!(
                        "metric `{name}` is not a number or an array of at most 100 numbers"
                    ))
                }
                None => return Err(format!("metric `{name}` is not a root member")),
            }
        }
    }
    Ok(document)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checker_refuses_what_the_specification_forbids() {
        let good = r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["Route"]],"Metrics":[{"Name":"Messages","Unit":"Count"}]}]},"Route":"r","Messages":1}"#;
        assert!(check_emf_line(good).is_ok());
        for (bad, why) in [
            (
                good.replace(r#""Timestamp":1"#, r#""Timestamp":"1""#),
                "Timestamp",
            ),
            (
                good.replace(r#""Route":"r""#, r#""Route":1"#),
                "dimension `Route` is not a string",
            ),
            (
                good.replace(r#","Messages":1"#, ""),
                "metric `Messages` is not a root member",
            ),
            (
                good.replace(r#""Messages":1"#, r#""Messages":"1""#),
                "not a number",
            ),
            (good.replace(r#""Count""#, r#""Things""#), "invalid Unit"),
            (
                good.replace(r#""Dimensions":[["Route"]]"#, r#""Dimensions":["Route"]"#),
                "something else than arrays",
            ),
            (
                good.replace(r#""Namespace":"n","#, r#""Namespace":"n","Extra":1,"#),
                "unknown member `Extra`",
            ),
            (
                good.replace(r#""Namespace":"n""#, r#""Namespace":"""#),
                "Namespace",
            ),
        ] {
            let error = check_emf_line(&bad).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    #[test]
    fn dimension_sets_parse_and_unknown_names_are_refused_with_the_known_ones() {
        assert_eq!(
            parse_dimension_sets("FunctionName, Route; Stage").unwrap(),
            vec![vec!["FunctionName", "Route"], vec!["Stage"]]
        );
        let error = parse_dimension_sets("FunctionName,Room").unwrap_err();
        assert_eq!(
            error.to_string(),
            "WSGW_METRICS_DIMENSIONS=\"FunctionName,Room\": unknown dimension `Room` (known: FunctionName, Route, Stage, EventType)"
        );
        assert!(parse_dimension_sets("Route;").is_err());
        assert!(parse_dimension_sets("Route,Route").is_err());
    }

    #[test]
    fn namespaces_follow_cloudwatch_rules() {
        assert!(check_namespace("wsgw/chat").is_ok());
        assert!(check_namespace("").is_err());
        assert!(check_namespace("AWS/Lambda").is_err());
        assert!(check_namespace(&"n".repeat(256)).is_err());
        assert!(check_namespace("tab\there").is_err());
    }
}
