//! Creating tables for local runs and tests: wsgw's own two tables, and any table a
//! [`TableSpec`] describes (the tables of a SAM template, for `wsgw local`).

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ScalarAttributeType, TableDescription,
    TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_dynamodb::Client;
use wsgw_core::{Error, Result};

use super::errors::{self, Target, BACKEND};
use super::schema::{GPK, GROUP_INDEX, GSK, PK, SK, TTL};

/// How long creating a table waits for it to become `ACTIVE`.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);

/// A table's primary key, or an index's: the partition (hash) key and the optional sort
/// (range) key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeySpec {
    /// The partition key's attribute.
    pub partition: String,
    /// The sort key's attribute.
    pub sort: Option<String>,
}

impl KeySpec {
    /// A key of a partition attribute and an optional sort attribute.
    pub fn new(partition: impl Into<String>, sort: Option<String>) -> Self {
        KeySpec {
            partition: partition.into(),
            sort,
        }
    }
}

/// A secondary index: its name, key and projection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexSpec {
    /// The index's name.
    pub name: String,
    /// Its key.
    pub key: KeySpec,
    /// `KEYS_ONLY`, `INCLUDE` or `ALL`.
    pub projection: ProjectionType,
    /// With `INCLUDE`, the attributes projected besides the keys.
    pub non_key_attributes: Vec<String>,
}

impl IndexSpec {
    /// An index projecting `projection`.
    pub fn new(name: impl Into<String>, key: KeySpec, projection: ProjectionType) -> Self {
        IndexSpec {
            name: name.into(),
            key,
            projection,
            non_key_attributes: Vec::new(),
        }
    }
}

/// A table to create: what an `AWS::DynamoDB::Table` declares that decides how items are
/// stored and found (key schema, attribute types, indexes, TTL). Billing is on demand.
///
/// ```
/// use wsgw_aws::dynamo::{KeySpec, TableSpec};
///
/// let spec = TableSpec::new("chat-HistoryTable", KeySpec::new("pk", Some("sk".to_owned())))
///     .with_ttl("ttl");
/// assert_eq!(spec.attribute_type("pk"), None); // attributes default to strings when created
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableSpec {
    /// The table's name.
    pub name: String,
    /// Its primary key.
    pub key: KeySpec,
    /// `AttributeDefinitions`: the type of each key attribute (of the table and its
    /// indexes); a key attribute not listed is a string.
    pub attributes: Vec<(String, ScalarAttributeType)>,
    /// Global secondary indexes.
    pub global_indexes: Vec<IndexSpec>,
    /// Local secondary indexes.
    pub local_indexes: Vec<IndexSpec>,
    /// The TTL attribute, when TTL is enabled.
    pub ttl_attribute: Option<String>,
}

/// What [`ensure_table`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableOutcome {
    /// The table did not exist and was created.
    Created,
    /// A table of that name and shape existed and is used as it is.
    Reused,
}

impl TableSpec {
    /// A table of this name and primary key, no index, no TTL.
    pub fn new(name: impl Into<String>, key: KeySpec) -> Self {
        TableSpec {
            name: name.into(),
            key,
            attributes: Vec::new(),
            global_indexes: Vec::new(),
            local_indexes: Vec::new(),
            ttl_attribute: None,
        }
    }

    /// Declares an attribute's type.
    pub fn with_attribute(mut self, name: impl Into<String>, kind: ScalarAttributeType) -> Self {
        self.attributes.push((name.into(), kind));
        self
    }

    /// Adds a global secondary index.
    pub fn with_global_index(mut self, index: IndexSpec) -> Self {
        self.global_indexes.push(index);
        self
    }

    /// Enables TTL on an attribute.
    pub fn with_ttl(mut self, attribute: impl Into<String>) -> Self {
        self.ttl_attribute = Some(attribute.into());
        self
    }

    /// The declared type of an attribute.
    pub fn attribute_type(&self, name: &str) -> Option<&ScalarAttributeType> {
        self.attributes
            .iter()
            .find(|(declared, _)| declared == name)
            .map(|(_, kind)| kind)
    }

    /// Every key attribute of the table and its indexes, each once, in order.
    fn key_attributes(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        let keys = std::iter::once(&self.key).chain(
            self.global_indexes
                .iter()
                .chain(&self.local_indexes)
                .map(|index| &index.key),
        );
        for key in keys {
            for name in std::iter::once(key.partition.as_str()).chain(key.sort.as_deref()) {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names
    }

    /// The spec of wsgw's own tables: string `pk` + `sk`, TTL on `ttl`, and the
    /// `by-group` index (keys only) when `group_index`.
    pub fn wsgw_table(name: impl Into<String>, group_index: bool) -> Self {
        let mut spec = TableSpec::new(name, KeySpec::new(PK, Some(SK.to_owned()))).with_ttl(TTL);
        if group_index {
            spec = spec.with_global_index(IndexSpec::new(
                GROUP_INDEX,
                KeySpec::new(GPK, Some(GSK.to_owned())),
                ProjectionType::KeysOnly,
            ));
        }
        spec
    }
}

fn key_schema(key: &KeySpec, target: &Target<'_>) -> Result<Vec<KeySchemaElement>> {
    std::iter::once((key.partition.as_str(), KeyType::Hash))
        .chain(key.sort.as_deref().map(|sort| (sort, KeyType::Range)))
        .map(|(name, key_type)| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .map_err(|error| errors::build(target, error))
        })
        .collect()
}

fn projection(index: &IndexSpec) -> Projection {
    let mut projection = Projection::builder().projection_type(index.projection.clone());
    for attribute in &index.non_key_attributes {
        projection = projection.non_key_attributes(attribute);
    }
    projection.build()
}

/// Creates `table` (string `pk` + `sk`, on-demand billing, with the `by-group` index when
/// `group_index`) unless it exists with that shape, waits until it is active and enables
/// TTL on `ttl`. Running it again changes nothing.
pub(crate) async fn create_table(client: &Client, table: &str, group_index: bool) -> Result<()> {
    ensure_table(client, &TableSpec::wsgw_table(table, group_index))
        .await
        .map(|_| ())
}

/// Creates the table `spec` describes (on-demand billing) unless a table of that name
/// exists, waits until it is active and enables its TTL. An existing table is used when
/// its key schema and indexes are the spec's; otherwise the error says what differs and
/// nothing is changed. Running it again changes nothing.
pub async fn ensure_table(client: &Client, spec: &TableSpec) -> Result<TableOutcome> {
    let table = spec.name.as_str();
    let target = Target::new("create_table", table, "-");
    let definitions = spec
        .key_attributes()
        .into_iter()
        .map(|name| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(
                    spec.attribute_type(name)
                        .cloned()
                        .unwrap_or(ScalarAttributeType::S),
                )
                .build()
                .map_err(|error| errors::build(&target, error))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(&spec.key, &target)?))
        .set_attribute_definitions(Some(definitions));
    for index in &spec.global_indexes {
        let index = GlobalSecondaryIndex::builder()
            .index_name(&index.name)
            .set_key_schema(Some(key_schema(&index.key, &target)?))
            .projection(projection(index))
            .build()
            .map_err(|error| errors::build(&target, error))?;
        request = request.global_secondary_indexes(index);
    }
    for index in &spec.local_indexes {
        let index = LocalSecondaryIndex::builder()
            .index_name(&index.name)
            .set_key_schema(Some(key_schema(&index.key, &target)?))
            .projection(projection(index))
            .build()
            .map_err(|error| errors::build(&target, error))?;
        request = request.local_secondary_indexes(index);
    }
    let outcome = match request.send().await {
        Ok(_) => {
            tracing::info!(table, "created DynamoDB table");
            TableOutcome::Created
        }
        Err(error) if errors::has_code(&error, "ResourceInUseException") => {
            tracing::debug!(table, "DynamoDB table exists");
            TableOutcome::Reused
        }
        Err(error) => return Err(errors::sdk(&target, error)),
    };
    let described = wait_until_active(client, table).await?;
    if outcome == TableOutcome::Reused {
        check_shape(spec, &described)?;
    }
    if let Some(attribute) = &spec.ttl_attribute {
        enable_ttl(client, table, attribute).await?;
    }
    Ok(outcome)
}

/// The existing table's key schema and global indexes must be the spec's.
fn check_shape(spec: &TableSpec, described: &TableDescription) -> Result<()> {
    fn key_of(elements: &[KeySchemaElement]) -> KeySpec {
        let find = |wanted: KeyType| {
            elements
                .iter()
                .find(|element| element.key_type() == &wanted)
                .map(|element| element.attribute_name().to_owned())
        };
        KeySpec::new(
            find(KeyType::Hash).unwrap_or_default(),
            find(KeyType::Range),
        )
    }
    let describe = |key: &KeySpec| match &key.sort {
        Some(sort) => format!("{} + {sort}", key.partition),
        None => key.partition.clone(),
    };
    let table = &spec.name;
    let existing = key_of(described.key_schema());
    if existing != spec.key {
        return Err(Error::backend(
            BACKEND,
            format!(
                "table {table} exists with key {} but the template declares {}: delete the table or give the template's another name",
                describe(&existing),
                describe(&spec.key)
            ),
            None,
        ));
    }
    for index in &spec.global_indexes {
        let found = described
            .global_secondary_indexes()
            .iter()
            .find(|existing| existing.index_name() == Some(index.name.as_str()));
        match found {
            None => {
                return Err(Error::backend(
                    BACKEND,
                    format!(
                        "table {table} exists without the global secondary index {} the template declares: delete the table to have it created",
                        index.name
                    ),
                    None,
                ))
            }
            Some(found) if key_of(found.key_schema()) != index.key => {
                return Err(Error::backend(
                    BACKEND,
                    format!(
                        "table {table}'s index {} has key {} but the template declares {}: delete the table to have it created",
                        index.name,
                        describe(&key_of(found.key_schema())),
                        describe(&index.key)
                    ),
                    None,
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

async fn wait_until_active(client: &Client, table: &str) -> Result<TableDescription> {
    let target = Target::new("describe_table", table, "-");
    let deadline = tokio::time::Instant::now() + ACTIVE_TIMEOUT;
    loop {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|error| errors::sdk(&target, error))?;
        let status = described.table().and_then(|table| table.table_status());
        if status == Some(&TableStatus::Active) {
            if let Some(description) = described.table {
                return Ok(description);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::backend(
                BACKEND,
                format!("table {table} is still {status:?} after {ACTIVE_TIMEOUT:?}"),
                None,
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn enable_ttl(client: &Client, table: &str, wanted: &str) -> Result<()> {
    let target = Target::new("describe_time_to_live", table, "-");
    let described = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|error| errors::sdk(&target, error))?;
    let current = described.time_to_live_description();
    let status = current.and_then(|description| description.time_to_live_status());
    let attribute = current.and_then(|description| description.attribute_name());
    if matches!(
        status,
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    ) {
        if attribute != Some(wanted) {
            tracing::warn!(
                table,
                ?attribute,
                "TTL is enabled on another attribute than `{wanted}`: records will not expire"
            );
        }
        return Ok(());
    }
    let target = Target::new("update_time_to_live", table, "-");
    let specification = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(wanted)
        .build()
        .map_err(|error| errors::build(&target, error))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(specification)
        .send()
        .await
        .map_err(|error| errors::sdk(&target, error))?;
    Ok(())
}
