//! Where connections are kept between invocations.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{AttributeUpdate, Connection, ConnectionId, Page, PageRequest, Result};

/// Keeps the open connections, their attributes and their group memberships.
///
/// Implementations: `wsgw_memory::MemoryStore` (one process) and
/// `wsgw_aws::DynamoStore` (DynamoDB, shared by every Lambda invocation). Every
/// implementation passes the suite in [`conformance`](crate::conformance).
///
/// Groups (a session, a room, a role) are indexed so that [`list_group`] is a keyed,
/// paginated lookup, never a scan of every connection.
///
/// [`list_group`]: ConnectionStore::list_group
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait ConnectionStore: Send + Sync + 'static {
    /// Stores a connection, replacing any record with the same id, and makes it a member
    /// of exactly the groups in `connection.groups`.
    async fn put(&self, connection: Connection) -> Result<()>;

    /// The connection with this id, if it is stored.
    async fn get(&self, id: &ConnectionId) -> Result<Option<Connection>>;

    /// Removes the connection and all its group memberships; returns what was stored.
    /// Deleting an unknown id is not an error.
    async fn delete(&self, id: &ConnectionId) -> Result<Option<Connection>>;

    /// Changes attributes atomically, if the update's conditions hold; returns the
    /// connection as stored afterwards. [`Error::NotFound`](crate::Error::NotFound) for an
    /// unknown id, [`Error::Precondition`](crate::Error::Precondition) when a condition
    /// fails (nothing is changed then).
    async fn update_attributes(
        &self,
        id: &ConnectionId,
        update: AttributeUpdate,
    ) -> Result<Connection>;

    /// Adds the connection to a group ([`Error::NotFound`](crate::Error::NotFound) for an
    /// unknown id). Adding twice is not an error.
    async fn add_to_group(&self, id: &ConnectionId, group: &str) -> Result<()>;

    /// Removes the connection from a group. Removing a non-member is not an error.
    async fn remove_from_group(&self, id: &ConnectionId, group: &str) -> Result<()>;

    /// One page of the group's members.
    async fn list_group(&self, group: &str, page: PageRequest) -> Result<Page<ConnectionId>>;

    /// One page of every stored connection. On DynamoDB this is a scan: prefer groups.
    async fn list_all(&self, page: PageRequest) -> Result<Page<Connection>>;
}

#[async_trait]
impl<T: ConnectionStore + ?Sized> ConnectionStore for Arc<T> {
    async fn put(&self, connection: Connection) -> Result<()> {
        (**self).put(connection).await
    }
    async fn get(&self, id: &ConnectionId) -> Result<Option<Connection>> {
        (**self).get(id).await
    }
    async fn delete(&self, id: &ConnectionId) -> Result<Option<Connection>> {
        (**self).delete(id).await
    }
    async fn update_attributes(
        &self,
        id: &ConnectionId,
        update: AttributeUpdate,
    ) -> Result<Connection> {
        (**self).update_attributes(id, update).await
    }
    async fn add_to_group(&self, id: &ConnectionId, group: &str) -> Result<()> {
        (**self).add_to_group(id, group).await
    }
    async fn remove_from_group(&self, id: &ConnectionId, group: &str) -> Result<()> {
        (**self).remove_from_group(id, group).await
    }
    async fn list_group(&self, group: &str, page: PageRequest) -> Result<Page<ConnectionId>> {
        (**self).list_group(group, page).await
    }
    async fn list_all(&self, page: PageRequest) -> Result<Page<Connection>> {
        (**self).list_all(page).await
    }
}
