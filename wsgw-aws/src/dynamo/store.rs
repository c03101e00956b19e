//! `DynamoStore`: connections and group memberships in one DynamoDB table.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, DeleteRequest, Put, PutRequest, ReturnValue, TransactWriteItem, Update,
    WriteRequest,
};
use aws_sdk_dynamodb::Client;
use chrono::Utc;
use wsgw_core::{
    AttributeUpdate, Attributes, Connection, ConnectionId, ConnectionStore, Error, Page,
    PageRequest, Result,
};

use super::config::{non_empty_env, ClientSettings, CONNECTIONS_TABLE_ENV};
use super::errors::{self, Target, BACKEND};
use super::item::{self, n, s, Fetched, Item, Listing};
use super::schema::{
    connection_pk, group_key, ATTRIBUTES, CONNECTED_AT, CONNECTION_PREFIX, CONNECTION_SK,
    DEFAULT_CONNECTION_TTL, GPK, GROUPS, GROUP_INDEX, GROUP_PREFIX, GSK, LAST_ACTIVE_AT, PK, SK,
    SOURCE_IP, TTL, USER_AGENT,
};
use super::tables;
use super::token::{self, Key};

/// Most actions in one `TransactWriteItems` call.
const MAX_TRANSACTION: usize = 100;
/// Most requests in one `BatchWriteItem` call.
const MAX_BATCH: usize = 25;
/// How often `BatchWriteItem` is repeated for items DynamoDB left unprocessed.
const BATCH_ATTEMPTS: u32 = 8;
/// How often `update_attributes` re-reads and retries when another writer changed the
/// attributes between its read and its conditional write.
const UPDATE_ATTEMPTS: u32 = 10;
/// Items `list_all` asks one `Scan` request to evaluate at least: membership items are
/// read and filtered out too, so asking for exactly the missing count would take many
/// round trips.
const SCAN_BATCH: usize = 100;

const GROUP_KEY_ATTRIBUTES: [&str; 4] = [PK, SK, GPK, GSK];
const TABLE_KEY_ATTRIBUTES: [&str; 2] = [PK, SK];

/// A [`ConnectionStore`] on a DynamoDB table, shared by every Lambda invocation.
///
/// One table holds a connection item per connection and a membership item per
/// `(connection, group)`, with a global secondary index `by-group` over the memberships,
/// so [`list_group`](ConnectionStore::list_group) is a paginated `Query`, never a `Scan`.
/// Every item carries a `ttl` (by default 2 h 10 min after it was written) because
/// `$disconnect` is best effort. The table design is documented in the crate README.
///
/// ```no_run
/// # async fn run() -> wsgw_core::Result<()> {
/// use wsgw_aws::dynamo::DynamoStoreBuilder;
/// use wsgw_core::{Connection, ConnectionId, ConnectionStore, PageRequest};
///
/// // WSGW_CONNECTIONS_TABLE names the table; AWS_ENDPOINT_URL_DYNAMODB may point at an emulator.
/// let store = DynamoStoreBuilder::from_env().build().await?;
/// store.put(Connection::new(ConnectionId::new("a=")).with_group("room:1")).await?;
/// let page = store.list_group("room:1", PageRequest::first(100)).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    connection_ttl: Duration,
}

/// Configures a [`DynamoStore`]: [`DynamoStore::builder`] or
/// [`DynamoStoreBuilder::from_env`], then `with_*`, then [`build`](Self::build).
#[derive(Debug, Clone, Default)]
pub struct DynamoStoreBuilder {
    settings: ClientSettings,
    table: Option<String>,
    connection_ttl: Option<Duration>,
}

impl DynamoStoreBuilder {
    /// A builder with nothing set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder reading `WSGW_CONNECTIONS_TABLE` (the table) and `AWS_ENDPOINT_URL_DYNAMODB`
    /// (an endpoint override, for a local emulator). Unset variables leave the setting
    /// empty; the AWS SDK reads region and credentials from the environment as usual.
    pub fn from_env() -> Self {
        DynamoStoreBuilder {
            settings: ClientSettings::from_env(),
            table: non_empty_env(CONNECTIONS_TABLE_ENV),
            connection_ttl: None,
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

    /// How long after a write a connection item expires (default
    /// [`DEFAULT_CONNECTION_TTL`]: 2 h + 10 min).
    pub fn with_connection_ttl(mut self, ttl: Duration) -> Self {
        self.connection_ttl = Some(ttl);
        self
    }

    /// The store. Fails with [`Error::InvalidInput`] when no table is named.
    pub async fn build(self) -> Result<DynamoStore> {
        let table = self.table.ok_or_else(|| {
            Error::invalid_input(format!(
                "DynamoStore needs a table: set {CONNECTIONS_TABLE_ENV} or call with_table"
            ))
        })?;
        Ok(DynamoStore {
            client: self.settings.client().await,
            table,
            connection_ttl: self.connection_ttl.unwrap_or(DEFAULT_CONNECTION_TTL),
        })
    }
}

/// One write of a multi-item change.
enum Write {
    Put(Item),
    Delete(Key),
}

fn table_key(pk: String, sk: String) -> Key {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

fn describe_key(pk: &str, sk: &str) -> String {
    format!("{PK}={pk}, {SK}={sk}")
}

/// Whether a cancelled transaction failed on the condition of its first action.
fn first_condition_failed<R>(error: &SdkError<TransactWriteItemsError, R>) -> bool {
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
            cancelled
                .cancellation_reasons()
                .first()
                .and_then(|reason| reason.code())
                == Some("ConditionalCheckFailed")
        }
        _ => false,
    }
}

/// Maps a transaction failure: a conflict with another transaction or throttling of one
/// of its items is [`Error::Throttled`] (retrying later succeeds), anything else as
/// [`errors::sdk`].
fn transaction_error<R>(target: &Target<'_>, error: SdkError<TransactWriteItemsError, R>) -> Error
where
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        error.as_service_error()
    {
        let codes: Vec<&str> = cancelled
            .cancellation_reasons()
            .iter()
            .filter_map(|reason| reason.code())
            .filter(|code| *code != "None")
            .collect();
        let retryable = [
            "TransactionConflict",
            "ThrottlingError",
            "ProvisionedThroughputExceeded",
        ];
        if codes.iter().any(|code| retryable.contains(code)) {
            return Error::Throttled {
                backend: BACKEND,
                message: format!("{target}: transaction cancelled: {}", codes.join(", ")),
            };
        }
    }
    errors::sdk(target, error)
}

impl DynamoStore {
    /// A builder with nothing set.
    pub fn builder() -> DynamoStoreBuilder {
        DynamoStoreBuilder::new()
    }

    /// The table this store uses.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The DynamoDB client (cheap to clone), for example to share with a
    /// [`DynamoHistory`](super::DynamoHistory).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// How long after a write a connection item expires.
    pub fn connection_ttl(&self) -> Duration {
        self.connection_ttl
    }

    /// Creates the table with its `by-group` index and TTL enabled on `ttl`, unless it
    /// exists; waits until it is active. For local runs and tests: deployed tables come
    /// from the SAM template. Idempotent.
    pub async fn create_table(&self) -> Result<()> {
        tables::create_table(&self.client, &self.table, true).await
    }

    fn ttl(&self) -> i64 {
        let seconds = i64::try_from(self.connection_ttl.as_secs()).unwrap_or(i64::MAX);
        Utc::now().timestamp().saturating_add(seconds)
    }

    fn connection_item(&self, connection: &Connection, ttl: i64) -> Result<Item> {
        let pk = connection_pk(connection.id.as_str());
        let attributes = serde_json::to_string(&connection.attributes).map_err(|error| {
            Error::backend(
                BACKEND,
                format!(
                    "put on table {} key {}: serialising the attributes: {error}",
                    self.table,
                    describe_key(&pk, CONNECTION_SK)
                ),
                Some(error.into()),
            )
        })?;
        let mut item = Item::from([
            (PK.to_owned(), s(pk)),
            (SK.to_owned(), s(CONNECTION_SK)),
            (
                CONNECTED_AT.to_owned(),
                n(connection.connected_at.timestamp_millis()),
            ),
            (
                LAST_ACTIVE_AT.to_owned(),
                n(connection.last_active_at.timestamp_millis()),
            ),
            (ATTRIBUTES.to_owned(), s(attributes)),
            (TTL.to_owned(), n(ttl)),
        ]);
        if let Some(ip) = &connection.source_ip {
            item.insert(SOURCE_IP.to_owned(), s(ip.clone()));
        }
        if let Some(agent) = &connection.user_agent {
            item.insert(USER_AGENT.to_owned(), s(agent.clone()));
        }
        if !connection.groups.is_empty() {
            item.insert(
                GROUPS.to_owned(),
                AttributeValue::Ss(connection.groups.iter().cloned().collect()),
            );
        }
        Ok(item)
    }

    fn membership_item(id: &ConnectionId, group: &str, ttl: i64) -> Item {
        Item::from([
            (PK.to_owned(), s(connection_pk(id.as_str()))),
            (SK.to_owned(), s(group_key(group))),
            (GPK.to_owned(), s(group_key(group))),
            (GSK.to_owned(), s(id.as_str())),
            (TTL.to_owned(), n(ttl)),
        ])
    }

    /// A connection item read back; a malformed one is an [`Error::Backend`] naming the
    /// table and key.
    fn parse_connection(&self, item: &Item) -> Result<Connection> {
        let pk = item::string(item, PK).ok().flatten().unwrap_or("?");
        let sk = item::string(item, SK).ok().flatten().unwrap_or("?");
        let parsed = (|| -> Result<Connection, String> {
            let id = pk
                .strip_prefix(CONNECTION_PREFIX)
                .ok_or_else(|| format!("`{PK}` does not start with `{CONNECTION_PREFIX}`"))?;
            let mut connection = Connection::new(ConnectionId::new(id));
            connection.connected_at = item::required_millis(item, CONNECTED_AT)?;
            connection.last_active_at = item::required_millis(item, LAST_ACTIVE_AT)?;
            connection.source_ip = item::string(item, SOURCE_IP)?.map(str::to_owned);
            connection.user_agent = item::string(item, USER_AGENT)?.map(str::to_owned);
            connection.groups = item::string_set(item, GROUPS)?;
            connection.attributes = match item::json(item, ATTRIBUTES)? {
                None => Attributes::new(),
                Some(serde_json::Value::Object(map)) => map.into_iter().collect(),
                Some(other) => {
                    return Err(format!(
                        "attribute `{ATTRIBUTES}` is not a JSON object: {other}"
                    ))
                }
            };
            Ok(connection)
        })();
        parsed.map_err(|what| errors::malformed(&self.table, &describe_key(pk, sk), what))
    }

    fn check_id(id: &ConnectionId) -> Result<()> {
        if id.as_str().is_empty() {
            return Err(Error::invalid_input("a connection id must not be empty"));
        }
        Ok(())
    }

    /// Every item under `conn#<id>` (the connection item and its memberships), read
    /// strongly consistent, all pages.
    async fn items_of(&self, pk: &str, operation: &'static str) -> Result<Vec<Item>> {
        let target = Target::new(operation, &self.table, format!("{PK}={pk}"));
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", s(pk))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|error| errors::sdk(&target, error))?;
            items.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    /// Applies writes: in one transaction when they fit, otherwise in batches.
    async fn write_all(&self, writes: Vec<Write>, target: &Target<'_>) -> Result<()> {
        if writes.len() <= MAX_TRANSACTION {
            let actions = writes
                .into_iter()
                .map(|write| -> Result<TransactWriteItem> {
                    Ok(match write {
                        Write::Put(item) => TransactWriteItem::builder()
                            .put(
                                Put::builder()
                                    .table_name(&self.table)
                                    .set_item(Some(item))
                                    .build()
                                    .map_err(|error| errors::build(target, error))?,
                            )
                            .build(),
                        Write::Delete(key) => TransactWriteItem::builder()
                            .delete(
                                Delete::builder()
                                    .table_name(&self.table)
                                    .set_key(Some(key))
                                    .build()
                                    .map_err(|error| errors::build(target, error))?,
                            )
                            .build(),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            self.client
                .transact_write_items()
                .set_transact_items(Some(actions))
                .send()
                .await
                .map_err(|error| transaction_error(target, error))?;
            return Ok(());
        }
        let requests = writes
            .into_iter()
            .map(|write| -> Result<WriteRequest> {
                Ok(match write {
                    Write::Put(item) => WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(item))
                                .build()
                                .map_err(|error| errors::build(target, error))?,
                        )
                        .build(),
                    Write::Delete(key) => WriteRequest::builder()
                        .delete_request(
                            DeleteRequest::builder()
                                .set_key(Some(key))
                                .build()
                                .map_err(|error| errors::build(target, error))?,
                        )
                        .build(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.batch_write(requests, target).await
    }

    /// `BatchWriteItem` in chunks of 25, repeating unprocessed items with backoff.
    async fn batch_write(&self, requests: Vec<WriteRequest>, target: &Target<'_>) -> Result<()> {
        for chunk in requests.chunks(MAX_BATCH) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                if attempt == BATCH_ATTEMPTS {
                    return Err(Error::Throttled {
                        backend: BACKEND,
                        message: format!(
                            "{target}: {} writes still unprocessed after {BATCH_ATTEMPTS} batch attempts",
                            pending.len()
                        ),
                    });
                }
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(25 << attempt.min(6))).await;
                }
                attempt += 1;
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|error| errors::sdk(target, error))?;
                pending = output
                    .unprocessed_items
                    .and_then(|mut unprocessed| unprocessed.remove(&self.table))
                    .unwrap_or_default();
            }
        }
        Ok(())
    }

    /// One conditional write of the attributes, if they still are `expected` (the exact
    /// string read before). `Ok(None)` when another writer got there first.
    async fn write_attributes(
        &self,
        id: &ConnectionId,
        expected: Option<&str>,
        new: String,
        target: &Target<'_>,
    ) -> Result<Option<Connection>> {
        let pk = connection_pk(id.as_str());
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(table_key(pk, CONNECTION_SK.to_owned())))
            .update_expression("SET #attributes = :new")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#attributes", ATTRIBUTES)
            .expression_attribute_values(":new", s(new))
            .return_values(ReturnValue::AllNew);
        request = match expected {
            Some(old) => request
                .condition_expression("attribute_exists(#pk) AND #attributes = :old")
                .expression_attribute_values(":old", s(old)),
            None => request.condition_expression(
                "attribute_exists(#pk) AND attribute_not_exists(#attributes)",
            ),
        };
        match request.send().await {
            Ok(output) => {
                let item = output.attributes.unwrap_or_default();
                self.parse_connection(&item).map(Some)
            }
            Err(error) if errors::has_code(&error, "ConditionalCheckFailedException") => Ok(None),
            Err(error) => Err(errors::sdk(target, error)),
        }
    }

    async fn get_item(&self, id: &ConnectionId, operation: &'static str) -> Result<Option<Item>> {
        let pk = connection_pk(id.as_str());
        let target = Target::new(operation, &self.table, describe_key(&pk, CONNECTION_SK));
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(table_key(pk, CONNECTION_SK.to_owned())))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| errors::sdk(&target, error))?;
        Ok(output.item)
    }
}

#[async_trait]
impl ConnectionStore for DynamoStore {
    /// Writes the connection item and one membership item per group, and deletes the
    /// memberships the previous record had and this one has not, in one transaction
    /// (in batches when there are more than 100 writes).
    async fn put(&self, connection: Connection) -> Result<()> {
        Self::check_id(&connection.id)?;
        let pk = connection_pk(connection.id.as_str());
        let target = Target::new("put", &self.table, describe_key(&pk, CONNECTION_SK));
        let ttl = self.ttl();
        let existing = self.items_of(&pk, "put").await?;
        let mut writes = vec![Write::Put(self.connection_item(&connection, ttl)?)];
        for group in &connection.groups {
            writes.push(Write::Put(Self::membership_item(
                &connection.id,
                group,
                ttl,
            )));
        }
        for item in &existing {
            let Ok(Some(sk)) = item::string(item, SK) else {
                continue;
            };
            let stale = sk
                .strip_prefix(GROUP_PREFIX)
                .is_some_and(|group| !connection.groups.contains(group));
            if stale {
                writes.push(Write::Delete(table_key(pk.clone(), sk.to_owned())));
            }
        }
        self.write_all(writes, &target).await
    }

    async fn get(&self, id: &ConnectionId) -> Result<Option<Connection>> {
        Self::check_id(id)?;
        match self.get_item(id, "get").await? {
            Some(item) => self.parse_connection(&item).map(Some),
            None => Ok(None),
        }
    }

    /// Deletes the connection item and every membership item of the connection.
    async fn delete(&self, id: &ConnectionId) -> Result<Option<Connection>> {
        Self::check_id(id)?;
        let pk = connection_pk(id.as_str());
        let target = Target::new("delete", &self.table, format!("{PK}={pk}"));
        let items = self.items_of(&pk, "delete").await?;
        if items.is_empty() {
            return Ok(None);
        }
        let stored = items
            .iter()
            .find(|item| item::string(item, SK) == Ok(Some(CONNECTION_SK)))
            .map(|item| self.parse_connection(item))
            .transpose();
        let requests = items
            .iter()
            .filter_map(|item| item::key_of(item, &TABLE_KEY_ATTRIBUTES))
            .map(|key| {
                DeleteRequest::builder()
                    .set_key(Some(key))
                    .build()
                    .map(|request| WriteRequest::builder().delete_request(request).build())
                    .map_err(|error| errors::build(&target, error))
            })
            .collect::<Result<Vec<_>>>()?;
        self.batch_write(requests, &target).await?;
        stored.map_err(|error| match error {
            Error::Backend {
                backend,
                message,
                source,
            } => Error::Backend {
                backend,
                message: format!("{message} (its items were deleted)"),
                source,
            },
            other => other,
        })
    }

    /// Reads the attributes, checks the conditions, and writes the new attributes with a
    /// condition that they are still exactly what was read; if another writer changed
    /// them in between, reads again and re-checks (up to 10 times, then
    /// [`Error::Throttled`]).
    async fn update_attributes(
        &self,
        id: &ConnectionId,
        update: AttributeUpdate,
    ) -> Result<Connection> {
        Self::check_id(id)?;
        let pk = connection_pk(id.as_str());
        let target = Target::new(
            "update_attributes",
            &self.table,
            describe_key(&pk, CONNECTION_SK),
        );
        for _ in 0..UPDATE_ATTEMPTS {
            let Some(item) = self.get_item(id, "update_attributes").await? else {
                return Err(Error::not_found(format!(
                    "connection {id} in table {}",
                    self.table
                )));
            };
            let current = self.parse_connection(&item)?;
            update
                .check(&current.attributes)
                .map_err(|message| Error::Precondition {
                    message: format!("connection {id}: {message}"),
                })?;
            let mut attributes = current.attributes;
            update.apply(&mut attributes);
            let new = serde_json::to_string(&attributes).map_err(|error| {
                Error::backend(
                    BACKEND,
                    format!("{target}: serialising the attributes: {error}"),
                    Some(error.into()),
                )
            })?;
            let expected = item::string(&item, ATTRIBUTES)
                .map_err(|what| errors::malformed(&self.table, &target.key, what))?;
            if let Some(updated) = self.write_attributes(id, expected, new, &target).await? {
                return Ok(updated);
            }
            tracing::debug!(%id, table = %self.table, "attributes changed concurrently; retrying");
        }
        Err(Error::Throttled {
            backend: BACKEND,
            message: format!(
                "{target}: the attributes changed under {UPDATE_ATTEMPTS} attempts in a row; try again"
            ),
        })
    }

    /// One transaction: add the group to the connection item's `groups` (on condition the
    /// connection item exists) and write the membership item.
    async fn add_to_group(&self, id: &ConnectionId, group: &str) -> Result<()> {
        Self::check_id(id)?;
        let pk = connection_pk(id.as_str());
        let target = Target::new(
            "add_to_group",
            &self.table,
            describe_key(&pk, &group_key(group)),
        );
        let ttl = self.ttl();
        let add = Update::builder()
            .table_name(&self.table)
            .set_key(Some(table_key(pk.clone(), CONNECTION_SK.to_owned())))
            .update_expression("ADD #groups :group")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#groups", GROUPS)
            .expression_attribute_values(":group", AttributeValue::Ss(vec![group.to_owned()]))
            .build()
            .map_err(|error| errors::build(&target, error))?;
        let member = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::membership_item(id, group, ttl)))
            .build()
            .map_err(|error| errors::build(&target, error))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(add).build())
            .transact_items(TransactWriteItem::builder().put(member).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if first_condition_failed(&error) => Err(Error::not_found(format!(
                "connection {id} in table {}",
                self.table
            ))),
            Err(error) => Err(transaction_error(&target, error)),
        }
    }

    /// One transaction: remove the group from the connection item's `groups` and delete
    /// the membership item; for an unknown connection, only the membership item (if any)
    /// is deleted.
    async fn remove_from_group(&self, id: &ConnectionId, group: &str) -> Result<()> {
        Self::check_id(id)?;
        let pk = connection_pk(id.as_str());
        let member_key = table_key(pk.clone(), group_key(group));
        let target = Target::new(
            "remove_from_group",
            &self.table,
            describe_key(&pk, &group_key(group)),
        );
        let remove = Update::builder()
            .table_name(&self.table)
            .set_key(Some(table_key(pk.clone(), CONNECTION_SK.to_owned())))
            .update_expression("DELETE #groups :group")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#groups", GROUPS)
            .expression_attribute_values(":group", AttributeValue::Ss(vec![group.to_owned()]))
            .build()
            .map_err(|error| errors::build(&target, error))?;
        let member = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(member_key.clone()))
            .build()
            .map_err(|error| errors::build(&target, error))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(remove).build())
            .transact_items(TransactWriteItem::builder().delete(member).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if first_condition_failed(&error) => {
                // No connection item: drop a membership left behind, if there is one.
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(member_key))
                    .send()
                    .await
                    .map_err(|error| errors::sdk(&target, error))?;
                Ok(())
            }
            Err(error) => Err(transaction_error(&target, error)),
        }
    }

    /// A `Query` of the `by-group` index (eventually consistent, as every GSI read),
    /// ordered by connection id.
    async fn list_group(&self, group: &str, page: PageRequest) -> Result<Page<ConnectionId>> {
        let start = page
            .token
            .as_ref()
            .map(|token| token::decode(token, "group", group, &GROUP_KEY_ATTRIBUTES))
            .transpose()?;
        let gpk = group_key(group);
        if start
            .as_ref()
            .is_some_and(|key| key.get(GPK) != Some(&s(gpk.clone())))
        {
            return Err(Error::InvalidToken {
                message: format!("the token does not continue a listing of group `{group}`"),
            });
        }
        let target = Target::new(
            "list_group",
            &self.table,
            format!("{GROUP_INDEX} {GPK}={gpk}"),
        );
        let limit = page.limit.max(1);
        let mut items = item::collect(limit, 0, start, |start, request_limit| {
            let request = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GROUP_INDEX)
                .key_condition_expression("#gpk = :gpk")
                .expression_attribute_names("#gpk", GPK)
                .expression_attribute_values(":gpk", s(gpk.clone()))
                .set_exclusive_start_key(start)
                .limit(request_limit);
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
            kind: "group",
            scope: group,
            key_attributes: &GROUP_KEY_ATTRIBUTES,
            what: "a membership",
        };
        let next = listing.next_page(&mut items, limit, &target)?;
        let ids = items
            .iter()
            .map(|item| {
                item::required_string(item, GSK)
                    .map(ConnectionId::new)
                    .map_err(|what| {
                        let pk = item::string(item, PK).ok().flatten().unwrap_or("?");
                        let sk = item::string(item, SK).ok().flatten().unwrap_or("?");
                        errors::malformed(&self.table, &describe_key(pk, sk), what)
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Page { items: ids, next })
    }

    /// A `Scan` of the whole table keeping connection items (`sk = "conn"`): its cost
    /// grows with the table, so prefer groups.
    async fn list_all(&self, page: PageRequest) -> Result<Page<Connection>> {
        let start = page
            .token
            .as_ref()
            .map(|token| token::decode(token, "all", "", &TABLE_KEY_ATTRIBUTES))
            .transpose()?;
        let target = Target::new("list_all", &self.table, format!("{SK}={CONNECTION_SK}"));
        let limit = page.limit.max(1);
        let mut items = item::collect(limit, SCAN_BATCH, start, |start, request_limit| {
            let request = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("#sk = :conn")
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":conn", s(CONNECTION_SK))
                .set_exclusive_start_key(start)
                .limit(request_limit);
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
            kind: "all",
            scope: "",
            key_attributes: &TABLE_KEY_ATTRIBUTES,
            what: "a connection",
        };
        let next = listing.next_page(&mut items, limit, &target)?;
        let connections = items
            .iter()
            .map(|item| self.parse_connection(item))
            .collect::<Result<Vec<_>>>()?;
        Ok(Page {
            items: connections,
            next,
        })
    }
}
