//! `DynamoHistory`: time-ordered records in a DynamoDB table.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use wsgw_core::{Error, HistoryQuery, HistoryRecord, HistoryStore, Order, Page, Result};

use super::config::{non_empty_env, ClientSettings, HISTORY_TABLE_ENV};
use super::errors::{self, Target, BACKEND};
use super::item::{self, n, s, Fetched, Item, Listing};
use super::schema::{history_sk, parse_time_key, time_key, DATA, EXPIRES_AT, PK, SK, TTL};
use super::tables;
use super::token;

const KEY_ATTRIBUTES: [&str; 2] = [PK, SK];

/// A [`HistoryStore`] on a DynamoDB table.
///
/// Items are keyed by the record's partition (`pk`) and `<time>#<id>` (`sk`, the time as
/// zero-padded epoch milliseconds, so the key order is time order, then id); a query is a
/// `Query` with a key condition on `sk` and `ScanIndexForward` for the direction. A
/// record's expiry is kept in `expires_at` (milliseconds) and in `ttl` (seconds, for
/// DynamoDB's TTL, which deletes lazily): expired records are filtered out of every query.
/// Reads are strongly consistent.
///
/// ```no_run
/// # async fn run() -> wsgw_core::Result<()> {
/// use chrono::Utc;
/// use wsgw_aws::dynamo::DynamoHistoryBuilder;
/// use wsgw_core::{HistoryQuery, HistoryRecord, HistoryStore, Order};
///
/// // WSGW_HISTORY_TABLE names the table; AWS_ENDPOINT_URL_DYNAMODB may point at an emulator.
/// let history = DynamoHistoryBuilder::from_env().build().await?;
/// history
///     .append(HistoryRecord::new("room:1", Utc::now(), "m1", serde_json::json!({"text": "hi"})))
///     .await?;
/// let latest = history
///     .query(HistoryQuery::new("room:1").order(Order::NewestFirst).limit(50))
///     .await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct DynamoHistory {
    client: Client,
    table: String,
}

/// Configures a [`DynamoHistory`]: [`DynamoHistory::builder`] or
/// [`DynamoHistoryBuilder::from_env`], then `with_*`, then [`build`](Self::build).
#[derive(Debug, Clone, Default)]
pub struct DynamoHistoryBuilder {
    settings: ClientSettings,
    table: Option<String>,
}

impl DynamoHistoryBuilder {
    /// A builder with nothing set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder reading `WSGW_HISTORY_TABLE` (the table) and `AWS_ENDPOINT_URL_DYNAMODB` (an
    /// endpoint override, for a local emulator). Unset variables leave the setting empty;
    /// the AWS SDK reads region and credentials from the environment as usual.
    pub fn from_env() -> Self {
        DynamoHistoryBuilder {
            settings: ClientSettings::from_env(),
            table: non_empty_env(HISTORY_TABLE_ENV),
        }
    }

    /// Uses this client as it is (its endpoint, region, credentials and retry settings);
    /// [`with_endpoint`](Self::with_endpoint) and [`with_region`](Self::with_region) are
    /// then ignored.
    pub fn with_client(mut self, client: Client) -> Self {
        self.settings.client = Some(client);
        self
    }

    /// The table name.
    pub fn with_table(mut self, table: impl Into<String>) -> Self {
        self.table = Some(table.into());
        self
    }

    /// Sends requests to this endpoint (`http://127.0.0.1:PORT` for an emulator). Without
    /// AWS credentials in the environment, dummy credentials are used, and `us-east-1`
    /// without a configured region.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.settings.endpoint = Some(endpoint.into());
        self
    }

    /// The AWS region (otherwise the SDK's usual sources: `AWS_REGION`, the profile ...).
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.settings.region = Some(region.into());
        self
    }

    /// The history. Fails with [`Error::InvalidInput`] when no table is named.
    pub async fn build(self) -> Result<DynamoHistory> {
        let table = self.table.ok_or_else(|| {
            Error::invalid_input(format!(
                "DynamoHistory needs a table: set {HISTORY_TABLE_ENV} or call with_table"
            ))
        })?;
        Ok(DynamoHistory {
            client: self.settings.client().await,
            table,
        })
    }
}

fn order_kind(order: Order) -> &'static str {
    match order {
        Order::OldestFirst => "history-oldest-first",
        Order::NewestFirst => "history-newest-first",
    }
}

fn describe_key(pk: &str, sk: &str) -> String {
    format!("{PK}={pk}, {SK}={sk}")
}

impl DynamoHistory {
    /// A builder with nothing set.
    pub fn builder() -> DynamoHistoryBuilder {
        DynamoHistoryBuilder::new()
    }

    /// The table this history uses.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The DynamoDB client (cheap to clone).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Creates the table with TTL enabled on `ttl`, unless it exists; waits until it is
    /// active. For local runs and tests: deployed tables come from the SAM template.
    /// Idempotent.
    pub async fn create_table(&self) -> Result<()> {
        tables::create_table(&self.client, &self.table, false).await
    }

    fn parse_record(&self, item: &Item) -> Result<HistoryRecord> {
        let pk = item::string(item, PK).ok().flatten().unwrap_or("?");
        let sk = item::string(item, SK).ok().flatten().unwrap_or("?");
        let parsed = (|| -> Result<HistoryRecord, String> {
            let (time, id) = sk
                .split_once('#')
                .ok_or_else(|| format!("`{SK}` is not `<time>#<id>`"))?;
            let time = parse_time_key(time)
                .and_then(DateTime::from_timestamp_millis)
                .ok_or_else(|| format!("`{SK}` does not start with a time"))?;
            let data =
                item::json(item, DATA)?.ok_or_else(|| format!("attribute `{DATA}` is missing"))?;
            let mut record = HistoryRecord::new(pk, time, id, data);
            record.expires_at = item::millis(item, EXPIRES_AT)?;
            Ok(record)
        })();
        parsed.map_err(|what| errors::malformed(&self.table, &describe_key(pk, sk), what))
    }
}

#[async_trait]
impl HistoryStore for DynamoHistory {
    /// A `PutItem` (replacing an item with the same key). Times are kept to the
    /// millisecond.
    async fn append(&self, record: HistoryRecord) -> Result<()> {
        if record.partition.is_empty() {
            return Err(Error::invalid_input(
                "a history record's partition must not be empty",
            ));
        }
        let sk = history_sk(record.time.timestamp_millis(), &record.id);
        let target = Target::new("append", &self.table, describe_key(&record.partition, &sk));
        let data = serde_json::to_string(&record.data).map_err(|error| {
            Error::backend(
                BACKEND,
                format!("{target}: serialising the data: {error}"),
                Some(error.into()),
            )
        })?;
        let mut item = HashMap::from([
            (PK.to_owned(), s(record.partition.clone())),
            (SK.to_owned(), s(sk)),
            (DATA.to_owned(), s(data)),
        ]);
        if let Some(expires_at) = record.expires_at {
            item.insert(EXPIRES_AT.to_owned(), n(expires_at.timestamp_millis()));
            item.insert(TTL.to_owned(), n(expires_at.timestamp()));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|error| errors::sdk(&target, error))?;
        Ok(())
    }

    /// A `Query` on the partition with the time range as a key condition on `sk`
    /// (`BETWEEN`, `>=` or `<`), in the query's direction, dropping expired records with a
    /// filter. A filtered page can come back short while more records remain, so this
    /// keeps reading until the page is full or the range ends.
    async fn query(&self, query: HistoryQuery) -> Result<Page<HistoryRecord>> {
        let kind = order_kind(query.order);
        let start = query
            .token
            .as_ref()
            .map(|token| token::decode(token, kind, &query.partition, &KEY_ATTRIBUTES))
            .transpose()?;
        let partition_key = s(query.partition.clone());
        if start
            .as_ref()
            .is_some_and(|key| key.get(PK) != Some(&partition_key))
        {
            return Err(Error::InvalidToken {
                message: format!(
                    "the token does not continue a query of partition `{}`",
                    query.partition
                ),
            });
        }
        let empty = Page {
            items: Vec::new(),
            next: None,
        };
        if query.partition.is_empty() {
            return Ok(empty);
        }
        let (condition, bounds) = match (query.from, query.until) {
            (Some(from), Some(until)) => {
                if from.timestamp_millis() >= until.timestamp_millis() {
                    return Ok(empty);
                }
                (
                    "#pk = :pk AND #sk BETWEEN :from AND :until",
                    vec![
                        (":from", time_key(from.timestamp_millis())),
                        // No sort key is a bare time, so BETWEEN excludes `until` itself.
                        (":until", time_key(until.timestamp_millis())),
                    ],
                )
            }
            (Some(from), None) => (
                "#pk = :pk AND #sk >= :from",
                vec![(":from", time_key(from.timestamp_millis()))],
            ),
            (None, Some(until)) => (
                "#pk = :pk AND #sk < :until",
                vec![(":until", time_key(until.timestamp_millis()))],
            ),
            (None, None) => ("#pk = :pk", Vec::new()),
        };
        let target = Target::new("query", &self.table, format!("{PK}={}", query.partition));
        let now = Utc::now();
        let limit = query.limit.max(1);
        let mut items = item::collect(limit, 0, start, |start, request_limit| {
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(condition)
                .filter_expression("attribute_not_exists(#expires_at) OR #expires_at > :now")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#expires_at", EXPIRES_AT)
                .expression_attribute_values(":pk", s(query.partition.clone()))
                .expression_attribute_values(":now", n(now.timestamp_millis()))
                .scan_index_forward(query.order == Order::OldestFirst)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .limit(request_limit);
            if !bounds.is_empty() {
                request = request.expression_attribute_names("#sk", SK);
            }
            for (name, value) in &bounds {
                request = request.expression_attribute_values(*name, s(value.clone()));
            }
            let target = &target;
            async move {
                let output = request
                    .send()
                    .await
                    .map_err(|error| errors::sdk(target, error))?;
                Ok(Fetched::from_response(
                    output.items,
                    output.last_evaluated_key,
                ))
            }
        })
        .await?;
        let listing = Listing {
            kind,
            scope: &query.partition,
            key_attributes: &KEY_ATTRIBUTES,
            what: "a history",
        };
        let next = listing.next_page(&mut items, limit, &target)?;
        let mut records = Vec::with_capacity(items.len());
        for item in &items {
            let record = self.parse_record(item)?;
            // The filter already dropped expired records; this only guards against an
            // emulator that ignores filters.
            if record.expires_at.is_none_or(|at| at > now) {
                records.push(record);
            }
        }
        Ok(Page {
            items: records,
            next,
        })
    }
}
