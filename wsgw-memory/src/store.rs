//! `MemoryStore`: connections in a map, groups in an index.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use wsgw_core::{
    AttributeUpdate, Connection, ConnectionId, ConnectionStore, Error, Page, PageRequest,
    PageToken, Result,
};

use crate::token;

#[derive(Default)]
struct Tables {
    connections: BTreeMap<ConnectionId, Connection>,
    groups: BTreeMap<String, BTreeSet<ConnectionId>>,
}

impl Tables {
    fn join(&mut self, id: &ConnectionId, group: &str) {
        self.groups
            .entry(group.to_owned())
            .or_default()
            .insert(id.clone());
    }

    fn leave(&mut self, id: &ConnectionId, group: &str) {
        if let Some(members) = self.groups.get_mut(group) {
            members.remove(id);
            if members.is_empty() {
                self.groups.remove(group);
            }
        }
    }
}

/// A [`ConnectionStore`] in process memory: for local runs and tests.
///
/// Groups are indexed (`group → members`), so listing a group costs its size, not the
/// number of connections. Pages are ordered by connection id.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> wsgw_core::Result<()> {
/// use wsgw_core::{Connection, ConnectionId, ConnectionStore, PageRequest};
/// use wsgw_memory::MemoryStore;
///
/// let store = MemoryStore::new();
/// store.put(Connection::new(ConnectionId::new("a=")).with_group("room:1")).await?;
/// let page = store.list_group("room:1", PageRequest::first(10)).await?;
/// assert_eq!(page.items, vec![ConnectionId::new("a=")]);
/// # Ok(())
/// # }
/// ```
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tables = self.lock();
        f.debug_struct("MemoryStore")
            .field("connections", &tables.connections.len())
            .field("groups", &tables.groups.len())
            .finish()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many connections are stored.
    pub fn len(&self) -> usize {
        self.lock().connections.len()
    }

    /// Whether no connection is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // A panic while holding the lock cannot leave the maps half-updated in a way
        // that matters more than losing every connection, so keep serving.
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn after_bound(token: Option<&PageToken>) -> Result<Bound<ConnectionId>> {
    match token {
        None => Ok(Bound::Unbounded),
        Some(token) => Ok(Bound::Excluded(ConnectionId::new(token::decode(token)?))),
    }
}

fn page_of<T>(mut items: Vec<T>, limit: usize, last_key: impl Fn(&T) -> &ConnectionId) -> Page<T> {
    let limit = limit.max(1);
    let next = if items.len() > limit {
        items.truncate(limit);
        items
            .last()
            .map(|item| token::encode(last_key(item).as_str()))
    } else {
        None
    };
    Page { items, next }
}

#[async_trait]
impl ConnectionStore for MemoryStore {
    async fn put(&self, connection: Connection) -> Result<()> {
        let mut tables = self.lock();
        let id = connection.id.clone();
        if let Some(old) = tables.connections.remove(&id) {
            for group in old
                .groups
                .iter()
                .filter(|g| !connection.groups.contains(*g))
            {
                tables.leave(&id, group);
            }
        }
        for group in &connection.groups {
            tables.join(&id, group);
        }
        tables.connections.insert(id, connection);
        Ok(())
    }

    async fn get(&self, id: &ConnectionId) -> Result<Option<Connection>> {
        Ok(self.lock().connections.get(id).cloned())
    }

    async fn delete(&self, id: &ConnectionId) -> Result<Option<Connection>> {
        let mut tables = self.lock();
        let removed = tables.connections.remove(id);
        if let Some(connection) = &removed {
            for group in &connection.groups {
                tables.leave(id, group);
            }
        }
        Ok(removed)
    }

    async fn update_attributes(
        &self,
        id: &ConnectionId,
        update: AttributeUpdate,
    ) -> Result<Connection> {
        let mut tables = self.lock();
        let connection = tables
            .connections
            .get_mut(id)
            .ok_or_else(|| Error::not_found(format!("connection {id}")))?;
        update
            .check(&connection.attributes)
            .map_err(|message| Error::Precondition {
                message: format!("connection {id}: {message}"),
            })?;
        update.apply(&mut connection.attributes);
        Ok(connection.clone())
    }

    async fn add_to_group(&self, id: &ConnectionId, group: &str) -> Result<()> {
        let mut tables = self.lock();
        let connection = tables
            .connections
            .get_mut(id)
            .ok_or_else(|| Error::not_found(format!("connection {id}")))?;
        connection.groups.insert(group.to_owned());
        tables.join(id, group);
        Ok(())
    }

    async fn remove_from_group(&self, id: &ConnectionId, group: &str) -> Result<()> {
        let mut tables = self.lock();
        if let Some(connection) = tables.connections.get_mut(id) {
            connection.groups.remove(group);
        }
        tables.leave(id, group);
        Ok(())
    }

    async fn list_group(&self, group: &str, page: PageRequest) -> Result<Page<ConnectionId>> {
        let start = after_bound(page.token.as_ref())?;
        let tables = self.lock();
        let items: Vec<ConnectionId> = match tables.groups.get(group) {
            Some(members) => members
                .range((start, Bound::Unbounded))
                .take(page.limit.max(1) + 1)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        Ok(page_of(items, page.limit, |id| id))
    }

    async fn list_all(&self, page: PageRequest) -> Result<Page<Connection>> {
        let start = after_bound(page.token.as_ref())?;
        let tables = self.lock();
        let items: Vec<Connection> = tables
            .connections
            .range((start, Bound::Unbounded))
            .take(page.limit.max(1) + 1)
            .map(|(_, connection)| connection.clone())
            .collect();
        Ok(page_of(items, page.limit, |connection| &connection.id))
    }
}
