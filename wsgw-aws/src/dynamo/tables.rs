//! Creating the tables for local runs and tests (deployed tables come from the SAM
//! template).

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_dynamodb::Client;
use wsgw_core::{Error, Result};

use super::errors::{self, Target, BACKEND};
use super::schema::{GPK, GROUP_INDEX, GSK, PK, SK, TTL};

/// How long `create_table` waits for a new table to become `ACTIVE`.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);

fn key(name: &str, key_type: KeyType, target: &Target<'_>) -> Result<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(|error| errors::build(target, error))
}

fn string_attribute(name: &str, target: &Target<'_>) -> Result<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|error| errors::build(target, error))
}

/// Creates `table` (string `pk` + `sk`, on-demand billing, with the `by-group` index when
/// `group_index`) unless it exists, waits until it is active and enables TTL on `ttl`.
/// Running it again changes nothing.
pub(crate) async fn create_table(client: &Client, table: &str, group_index: bool) -> Result<()> {
    let target = Target::new("create_table", table, "-");
    let mut definitions = vec![
        string_attribute(PK, &target)?,
        string_attribute(SK, &target)?,
    ];
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(PK, KeyType::Hash, &target)?)
        .key_schema(key(SK, KeyType::Range, &target)?);
    if group_index {
        definitions.push(string_attribute(GPK, &target)?);
        definitions.push(string_attribute(GSK, &target)?);
        let index = GlobalSecondaryIndex::builder()
            .index_name(GROUP_INDEX)
            .key_schema(key(GPK, KeyType::Hash, &target)?)
            .key_schema(key(GSK, KeyType::Range, &target)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::KeysOnly)
                    .build(),
            )
            .build()
            .map_err(|error| errors::build(&target, error))?;
        request = request.global_secondary_indexes(index);
    }
    match request
        .set_attribute_definitions(Some(definitions))
        .send()
        .await
    {
        Ok(_) => tracing::info!(table, "created DynamoDB table"),
        Err(error) if errors::has_code(&error, "ResourceInUseException") => {
            tracing::debug!(table, "DynamoDB table exists")
        }
        Err(error) => return Err(errors::sdk(&target, error)),
    }
    wait_until_active(client, table).await?;
    enable_ttl(client, table).await
}

async fn wait_until_active(client: &Client, table: &str) -> Result<()> {
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
            return Ok(());
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

async fn enable_ttl(client: &Client, table: &str) -> Result<()> {
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
        if attribute != Some(TTL) {
            tracing::warn!(
                table,
                ?attribute,
                "TTL is enabled on another attribute than `{TTL}`: records will not expire"
            );
        }
        return Ok(());
    }
    let target = Target::new("update_time_to_live", table, "-");
    let specification = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(TTL)
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
