//! Conveniences over the backend traits, for every implementation at once (the
//! `object_store` `ObjectStoreExt` pattern): listings as streams, typed attributes.

use std::future::Future;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{
    AttributeUpdate, Connection, ConnectionId, ConnectionStore, HistoryQuery, HistoryRecord,
    HistoryStore, PageRequest, PageToken, Result,
};

/// Members listed per request when no page size is given.
pub const DEFAULT_PAGE_SIZE: usize = 500;

/// Every page of a paginated listing, as one stream of items: `fetch` gets the page
/// after a token (`None` for the first) and returns its items and the next token.
fn paginate<'a, T, F, Fut>(fetch: F) -> BoxStream<'a, Result<T>>
where
    T: Send + 'a,
    F: Fn(Option<PageToken>) -> Fut + Send + 'a,
    Fut: Future<Output = Result<(Vec<T>, Option<PageToken>)>> + Send + 'a,
{
    // `None` once the last page has been read; `Some(token)` before each page.
    stream::try_unfold((fetch, Some(None)), |(fetch, next)| async move {
        let Some(token) = next else {
            return Ok::<_, crate::Error>(None);
        };
        let (items, next) = fetch(token).await?;
        Ok(Some((items, (fetch, next.map(Some)))))
    })
    .map_ok(|items| stream::iter(items.into_iter().map(Ok)))
    .try_flatten()
    .boxed()
}

/// Conveniences for every [`ConnectionStore`]: group members and connections as
/// streams (no page loops), typed attributes. Implemented for every store, `dyn
/// ConnectionStore` included.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> wsgw_core::Result<()> {
/// use futures::TryStreamExt;
/// use wsgw_core::{ConnectionId, ConnectionStoreExt, MockConnectionStore, Page, PageToken};
///
/// let mut store = MockConnectionStore::new();
/// // Two pages: the stream asks for the second with the first's token.
/// store.expect_list_group().returning(|_, page| {
///     Ok(match page.token {
///         None => Page { items: vec![ConnectionId::new("a=")], next: Some(PageToken("2".into())) },
///         Some(_) => Page { items: vec![ConnectionId::new("b=")], next: None },
///     })
/// });
/// let members: Vec<ConnectionId> = store.members("room:lobby").try_collect().await?;
/// assert_eq!(members, [ConnectionId::new("a="), ConnectionId::new("b=")]);
/// # Ok(())
/// # }
/// ```
pub trait ConnectionStoreExt: ConnectionStore {
    /// Every member of `group`, listed page by page ([`DEFAULT_PAGE_SIZE`]) as it is
    /// read: a keyed query, never a scan. An error listing a page ends the stream.
    fn members(&self, group: impl Into<String>) -> BoxStream<'_, Result<ConnectionId>> {
        self.members_paged(group, DEFAULT_PAGE_SIZE)
    }

    /// [`members`](Self::members) in pages of `page_size`.
    fn members_paged(
        &self,
        group: impl Into<String>,
        page_size: usize,
    ) -> BoxStream<'_, Result<ConnectionId>> {
        let group = group.into();
        paginate(move |token| {
            let group = group.clone();
            async move {
                let page = PageRequest::after(page_size.max(1), token);
                let page = self.list_group(&group, page).await?;
                Ok((page.items, page.next))
            }
        })
    }

    /// The stored records of `group`'s members ([`members`](Self::members)), each read
    /// in turn; a member gone since its page was listed (disconnected, pruned, expired)
    /// is left out. An error listing or reading ends the stream.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> wsgw_core::Result<()> {
    /// use futures::TryStreamExt;
    /// use wsgw_core::{Connection, ConnectionId, ConnectionStoreExt, MockConnectionStore, Page};
    ///
    /// let mut store = MockConnectionStore::new();
    /// store.expect_list_group().returning(|_, _| {
    ///     Ok(Page { items: vec![ConnectionId::new("a="), ConnectionId::new("gone=")], next: None })
    /// });
    /// store.expect_get().returning(|id| {
    ///     Ok((id.as_str() == "a=").then(|| Connection::new(id.clone()).with_attribute("room", "lobby")))
    /// });
    /// let members: Vec<Connection> = store.member_connections("room:lobby").try_collect().await?;
    /// assert_eq!(members.len(), 1);
    /// assert_eq!(members[0].id, ConnectionId::new("a="));
    /// # Ok(())
    /// # }
    /// ```
    fn member_connections(&self, group: impl Into<String>) -> BoxStream<'_, Result<Connection>> {
        self.members(group)
            .try_filter_map(move |id| async move { self.get(&id).await })
            .boxed()
    }

    /// Every stored connection, page by page. On DynamoDB this is a scan: prefer groups.
    fn connections(&self) -> BoxStream<'_, Result<Connection>> {
        self.connections_paged(DEFAULT_PAGE_SIZE)
    }

    /// [`connections`](Self::connections) in pages of `page_size`.
    fn connections_paged(&self, page_size: usize) -> BoxStream<'_, Result<Connection>> {
        paginate(move |token| {
            let listed = self.list_all(PageRequest::after(page_size.max(1), token));
            async move {
                let page = listed.await?;
                Ok((page.items, page.next))
            }
        })
    }

    /// An attribute of a stored connection, read as `T`: `None` when the connection or
    /// the attribute is absent. A stored value that is not a `T` is an
    /// [`Error::Json`](crate::Error::Json) (the server wrote it).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> wsgw_core::Result<()> {
    /// use wsgw_core::{Connection, ConnectionId, ConnectionStoreExt, MockConnectionStore};
    ///
    /// let mut store = MockConnectionStore::new();
    /// store.expect_get().returning(|id| Ok(Some(Connection::new(id.clone()).with_attribute("room", "lobby"))));
    /// let room: Option<String> = store.attribute(&ConnectionId::new("a="), "room").await?;
    /// assert_eq!(room.as_deref(), Some("lobby"));
    /// # Ok(())
    /// # }
    /// ```
    fn attribute<'a, T: DeserializeOwned + 'a>(
        &'a self,
        id: &'a ConnectionId,
        name: &'a str,
    ) -> impl Future<Output = Result<Option<T>>> + Send + 'a {
        async move {
            match self.get(id).await? {
                Some(connection) => connection.attribute(name),
                None => Ok(None),
            }
        }
    }

    /// [`update_attributes`](ConnectionStore::update_attributes) on a connection that may
    /// have left meanwhile: `None` when it is no longer stored, instead of
    /// [`Error::NotFound`](crate::Error::NotFound) (a closed connection has nothing left
    /// to update, which is no failure). Other errors, a failed condition included, stay
    /// errors.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> wsgw_core::Result<()> {
    /// use wsgw_core::{AttributeUpdate, Connection, ConnectionId, ConnectionStoreExt, Error, MockConnectionStore};
    ///
    /// let mut store = MockConnectionStore::new();
    /// store.expect_update_attributes().returning(|id, _| match id.as_str() {
    ///     "left=" => Err(Error::not_found("connection left=")),
    ///     _ => Ok(Connection::new(id.clone()).with_attribute("interval_ms", 500)),
    /// });
    /// let update = || AttributeUpdate::new().set("interval_ms", 500);
    /// let here = store.update_if_connected(&ConnectionId::new("here="), update()).await?;
    /// assert_eq!(here.map(|c| c.attributes["interval_ms"].clone()), Some(500.into()));
    /// assert!(store.update_if_connected(&ConnectionId::new("left="), update()).await?.is_none());
    /// # Ok(())
    /// # }
    /// ```
    fn update_if_connected<'a>(
        &'a self,
        id: &'a ConnectionId,
        update: AttributeUpdate,
    ) -> impl Future<Output = Result<Option<Connection>>> + Send + 'a {
        async move {
            match self.update_attributes(id, update).await {
                Ok(connection) => Ok(Some(connection)),
                Err(crate::Error::NotFound { .. }) => Ok(None),
                Err(error) => Err(error),
            }
        }
    }

    /// Sets one attribute of a stored connection to `value` as JSON; returns the
    /// connection as stored afterwards ([`Error::NotFound`](crate::Error::NotFound) for
    /// an unknown id).
    fn set_attribute<'a, T: Serialize + ?Sized + 'a>(
        &'a self,
        id: &'a ConnectionId,
        name: &'a str,
        value: &'a T,
    ) -> impl Future<Output = Result<Connection>> + Send + 'a {
        let value = serde_json::to_value(value);
        async move {
            let update = AttributeUpdate::new().set(name, value?);
            self.update_attributes(id, update).await
        }
    }
}

impl<T: ConnectionStore + ?Sized> ConnectionStoreExt for T {}

/// Conveniences for every [`HistoryStore`]: a query's records as a stream.
pub trait HistoryStoreExt: HistoryStore {
    /// Every record `query` selects, in its order, read page by page (`query.limit`
    /// records per page) as the stream is consumed: take what you need and the rest is
    /// never read.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> wsgw_core::Result<()> {
    /// use futures::TryStreamExt;
    /// use wsgw_core::{HistoryQuery, HistoryStoreExt, MockHistoryStore, Page};
    ///
    /// let mut history = MockHistoryStore::new();
    /// history.expect_query().times(1).returning(|_| Ok(Page { items: Vec::new(), next: None }));
    /// let records: Vec<_> = history.records(HistoryQuery::new("room:lobby")).try_collect().await?;
    /// assert!(records.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    fn records(&self, query: HistoryQuery) -> BoxStream<'_, Result<HistoryRecord>> {
        paginate(move |token| {
            let page = self.query(query.clone().after(token));
            async move {
                let page = page.await?;
                Ok((page.items, page.next))
            }
        })
    }

    /// The record of `partition` keyed `(time, id)`, if there is one (and it has not
    /// expired): how a record written earlier is found again to be completed or
    /// replaced.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> wsgw_core::Result<()> {
    /// use wsgw_core::{HistoryRecord, HistoryStore, HistoryStoreExt};
    /// use wsgw_memory::MemoryHistory;
    ///
    /// let history = MemoryHistory::new();
    /// let at = chrono::Utc::now();
    /// history.append(HistoryRecord::new("sessions", at, "c1", "open".into())).await?;
    /// let found = history.find("sessions", at, "c1").await?;
    /// assert_eq!(found.map(|record| record.data), Some("open".into()));
    /// assert!(history.find("sessions", at, "c2").await?.is_none());
    /// # Ok(())
    /// # }
    /// ```
    fn find<'a>(
        &'a self,
        partition: &str,
        time: DateTime<Utc>,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<HistoryRecord>>> {
        // Records of one millisecond, at most a page of them: ids are unique within
        // `(partition, time)`.
        let query = HistoryQuery::new(partition)
            .since(time)
            .until(time + chrono::Duration::milliseconds(1))
            .limit(100);
        let mut records = self.records(query);
        Box::pin(async move {
            while let Some(record) = records.try_next().await? {
                if record.id == id {
                    return Ok(Some(record));
                }
            }
            Ok(None)
        })
    }
}

impl<T: HistoryStore + ?Sized> HistoryStoreExt for T {}
