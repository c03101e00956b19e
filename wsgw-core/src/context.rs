//! What a handler runs with: the request's backends, the application state, and the
//! one metered way to fan out.

use std::future::{Future, IntoFuture};
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt};
use serde::Serialize;

use crate::broadcast::{fan_out, BroadcastOptions, BroadcastReport, Filter};
use crate::metrics::{Counter, MeteredSink, Metrics, Observers, NO_ROUTE};
use crate::{
    Backends, ConnectionId, ConnectionStore, ConnectionStoreExt, Error, HistoryStore, MessageSink,
    Payload, Result,
};

/// What every handler gets besides the request: the request's backends (store, sink
/// bound to the request's own endpoint, history), the application state, and who called.
///
/// Made by the router for each request from the [`Backends`] the request is served
/// with; [`Router::context`](crate::Router::context) makes one for work outside a
/// handler. Cheap to clone (a few `Arc`s).
///
/// ```
/// use wsgw_core::{Connection, ConnectionStoreExt, Context, Request, Result};
///
/// /// `$connect`: remember the caller's name, answer nothing yet (a client inside
/// /// `$connect` cannot be reached).
/// async fn hello(ctx: Context<&'static str>, request: Request) -> Result<()> {
///     let name = request.query_param("name").unwrap_or(ctx.state());
///     ctx.store().put(Connection::from_request(&request).with_attribute("name", name)).await
/// }
///
/// /// `whoami`: the caller's name, from the store, to the caller.
/// async fn whoami(ctx: Context<&'static str>, request: Request) -> Result<()> {
///     let name: Option<String> = ctx.store().attribute(&request.connection_id, "name").await?;
///     ctx.reply(&serde_json::json!({ "name": name })).await
/// }
/// # let _ = wsgw_core::Router::with_state("anonymous").on_connect(hello).route("whoami", whoami);
/// ```
pub struct Context<S = ()> {
    backends: Backends,
    /// The sink handlers use: the backends' sink, counting throttled sends when there
    /// are observers.
    metered: Option<MeteredSink>,
    state: Arc<S>,
    broadcast_options: Arc<BroadcastOptions>,
    observers: Arc<Observers>,
    route: Option<Arc<str>>,
    caller: Option<ConnectionId>,
}

impl<S> Clone for Context<S> {
    fn clone(&self) -> Self {
        Context {
            backends: self.backends.clone(),
            metered: self.metered.clone(),
            state: Arc::clone(&self.state),
            broadcast_options: Arc::clone(&self.broadcast_options),
            observers: Arc::clone(&self.observers),
            route: self.route.clone(),
            caller: self.caller.clone(),
        }
    }
}

impl<S> std::fmt::Debug for Context<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("route", &self.route)
            .field("caller", &self.caller)
            .field("broadcast_options", &self.broadcast_options)
            .finish_non_exhaustive()
    }
}

impl<S> Context<S> {
    /// The context of one request (or, with no route, of work outside a handler).
    pub(crate) fn new(
        backends: Backends,
        state: Arc<S>,
        broadcast_options: Arc<BroadcastOptions>,
        observers: Arc<Observers>,
        route: Option<Arc<str>>,
        caller: Option<ConnectionId>,
    ) -> Self {
        let metered = (!observers.is_empty()).then(|| MeteredSink {
            inner: Arc::clone(backends.sink()),
            observers: Arc::clone(&observers),
            route: route.clone().unwrap_or_else(|| Arc::from(NO_ROUTE)),
        });
        Context {
            backends,
            metered,
            state,
            broadcast_options,
            observers,
            route,
            caller,
        }
    }

    /// Everyone observing this context, as one.
    pub(crate) fn observers(&self) -> &Observers {
        &self.observers
    }

    /// The route whose handler runs with this context (`sendmessage`, `$connect`,
    /// `GET /history/{device}`); `None` outside a handler.
    pub fn route(&self) -> Option<&str> {
        self.route.as_deref()
    }

    /// The connection whose event this is; `None` on REST routes and outside a handler.
    pub fn caller(&self) -> Option<&ConnectionId> {
        self.caller.as_ref()
    }

    /// The connection store.
    pub fn store(&self) -> &dyn ConnectionStore {
        &**self.backends.store()
    }

    /// The message sink, bound to the request's own endpoint. With metrics observers on
    /// the router, it reports throttled sends
    /// ([`Counter::Throttles`](crate::metrics::Counter::Throttles)).
    pub fn sink(&self) -> &dyn MessageSink {
        match &self.metered {
            Some(metered) => metered,
            None => &**self.backends.sink(),
        }
    }

    /// The history store (an error naming how to give one when none was given where the
    /// router is served).
    pub fn history(&self) -> &dyn HistoryStore {
        &**self.backends.history()
    }

    /// The connection store, shared.
    pub fn store_arc(&self) -> Arc<dyn ConnectionStore> {
        Arc::clone(self.backends.store())
    }

    /// The message sink, shared (counting throttled sends as [`sink`](Self::sink) does).
    pub fn sink_arc(&self) -> Arc<dyn MessageSink> {
        match &self.metered {
            Some(metered) => Arc::new(metered.clone()),
            None => Arc::clone(self.backends.sink()),
        }
    }

    /// The history store, shared.
    pub fn history_arc(&self) -> Arc<dyn HistoryStore> {
        Arc::clone(self.backends.history())
    }

    /// The backends the request is served with.
    pub fn backends(&self) -> &Backends {
        &self.backends
    }

    /// The same context with other broadcast options.
    pub fn with_broadcast_options(mut self, options: BroadcastOptions) -> Self {
        self.broadcast_options = Arc::new(options);
        self
    }

    /// Reports `value` to the router's metrics observers under this context's route
    /// (see [`metrics`](crate::metrics)). Does nothing when nobody observes.
    pub fn count(&self, counter: Counter, value: u64) {
        let route = self.route.as_deref().unwrap_or(NO_ROUTE);
        self.observers.count(counter, route, value);
    }

    /// The application state.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The application state, shared.
    pub fn state_arc(&self) -> Arc<S> {
        Arc::clone(&self.state)
    }

    /// The options broadcasts use.
    pub fn broadcast_options(&self) -> &BroadcastOptions {
        &self.broadcast_options
    }

    /// Sends `value` as JSON to one connection.
    pub async fn send_json<T: Serialize + ?Sized>(
        &self,
        id: &ConnectionId,
        value: &T,
    ) -> Result<()> {
        self.sink().send(id, Payload::json(value)?).await
    }

    /// Sends `value` as JSON to the caller, on any route, one-way or two-way. A caller
    /// that already left ([`Error::Gone`]) is no failure: the answer is dropped and
    /// `Ok` returned. Other send failures (throttled, too large) are returned, and so is
    /// a context with no caller (a REST route). As on AWS, a client inside `$connect`
    /// cannot be reached yet: answer it from a later route.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> wsgw_core::Result<()> {
    /// use std::sync::Arc;
    /// use serde_json::json;
    /// use wsgw_core::*;
    ///
    /// let mut sink = MockMessageSink::new();
    /// // The caller left before its answer: no failure.
    /// sink.expect_send().returning(|id, _| Err(Error::Gone { connection_id: id.clone() }));
    /// let backends = Backends::new(Arc::new(MockConnectionStore::new()), Arc::new(sink));
    /// let router = Router::new().route("who", |ctx: Context, _req: Request| async move {
    ///     ctx.reply(&json!({"type": "who", "members": 1})).await
    /// });
    /// router.handle(&backends, Request::message(ConnectionId::new("a="), r#"{"action":"who"}"#)).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn reply<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        let Some(caller) = &self.caller else {
            return Err(Error::invalid_input(format!(
                "Context::reply on {}: only WebSocket routes have a caller to reply to; a REST route answers with its HttpResponse",
                self.route().unwrap_or(NO_ROUTE)
            )));
        };
        match self.send_json(caller, value).await {
            Err(error) if error.is_gone() && self.route() == Some(crate::CONNECT) => {
                tracing::warn!(connection_id = %caller, "an answer from $connect is dropped: the client is not connected until $connect returns (on AWS too); answer it from a later route");
                Ok(())
            }
            Err(error) if error.is_gone() => {
                tracing::debug!(connection_id = %caller, "caller left before its answer was sent");
                Ok(())
            }
            sent => sent,
        }
    }
}

impl<S: Send + Sync + 'static> Context<S> {
    /// Starts a broadcast of `value` as JSON: say to whom (groups, connections, a
    /// filter), then `.await` it. See [`Broadcast`].
    pub fn broadcast<T: Serialize + ?Sized>(&self, value: &T) -> Broadcast<'_, S> {
        Broadcast::new(self, Payload::json(value))
    }

    /// Starts a broadcast of a payload already made (sent as it is to everyone).
    pub fn broadcast_payload(&self, payload: Payload) -> Broadcast<'_, S> {
        Broadcast::new(self, Ok(payload))
    }
}

impl<S> Context<S> {
    fn count_broadcast(&self, report: &BroadcastReport) {
        let route = self.route.as_deref().unwrap_or(NO_ROUTE);
        let observers = &self.observers;
        observers.count(
            Counter::BroadcastDeliveries,
            route,
            report.delivered.len() as u64,
        );
        observers.count(Counter::GonePrunes, route, report.pruned.len() as u64);
    }
}

/// One message to many connections: the members of groups, connections named by id,
/// or both, each at most once, optionally filtered. Made by [`Context::broadcast`];
/// `.await` it (or [`send`](Self::send)) for the [`BroadcastReport`].
///
/// The one way wsgw fans out: at most
/// [`BroadcastOptions::concurrency`] sends in flight, groups listed page by page as
/// they are sent to (a keyed query, never a scan), `Gone` connections deleted from the
/// store and reported as pruned while the rest still get the message, throttled and
/// timed-out sends retried with backoff and jitter; deliveries and prunes are counted
/// for the router's metrics observers under the handler's route. It fails only when a
/// group cannot be listed or the message does not serialise; delivery problems are in
/// the report.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> wsgw_core::Result<()> {
/// use std::sync::Arc;
/// use serde_json::json;
/// use wsgw_core::*;
///
/// let mut store = MockConnectionStore::new();
/// store.expect_list_group().returning(|_, _| Ok(Page { items: vec![ConnectionId::new("a="), ConnectionId::new("gone=")], next: None }));
/// store.expect_delete().times(1).returning(|_| Ok(None));
/// let mut sink = MockMessageSink::new();
/// sink.expect_send().returning(|id, _| match id.as_str() {
///     "gone=" => Err(Error::Gone { connection_id: id.clone() }),
///     _ => Ok(()),
/// });
/// let backends = Backends::new(Arc::new(store), Arc::new(sink));
/// let ctx = Router::new().context(&backends);
///
/// let report = ctx.broadcast(&json!({"type": "said", "text": "hi"})).to_group("room:lobby").await?;
/// assert_eq!(report.delivered, [ConnectionId::new("a=")]);
/// assert_eq!(report.pruned, [ConnectionId::new("gone=")]);
/// # Ok(())
/// # }
/// ```
#[must_use = "a broadcast does nothing until it is awaited"]
pub struct Broadcast<'a, S> {
    ctx: &'a Context<S>,
    payload: Result<Payload>,
    groups: Vec<String>,
    ids: Vec<ConnectionId>,
    filter: Option<Filter<'a>>,
}

impl<S> std::fmt::Debug for Broadcast<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broadcast")
            .field("groups", &self.groups)
            .field("ids", &self.ids)
            .field("filtered", &self.filter.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a, S: Send + Sync + 'static> Broadcast<'a, S> {
    fn new(ctx: &'a Context<S>, payload: Result<Payload>) -> Self {
        Broadcast {
            ctx,
            payload,
            groups: Vec::new(),
            ids: Vec::new(),
            filter: None,
        }
    }

    /// Sends to every member of `group`.
    pub fn to_group(mut self, group: impl Into<String>) -> Self {
        self.groups.push(group.into());
        self
    }

    /// Sends to every member of each of these groups (a connection in several, once).
    pub fn to_groups<G: Into<String>>(mut self, groups: impl IntoIterator<Item = G>) -> Self {
        self.groups.extend(groups.into_iter().map(Into::into));
        self
    }

    /// Sends to these connections (also those in a group, once).
    pub fn to(mut self, ids: impl IntoIterator<Item = ConnectionId>) -> Self {
        self.ids.extend(ids);
        self
    }

    /// Sends only to the targets `keep` lets through (`Ok(true)`), asked for each target
    /// just before its send, within the broadcast's concurrency: for checks that need
    /// the store, such as a per-connection rate (a conditional attribute update). A
    /// target left out is reported in [`BroadcastReport::skipped`], a failed check in
    /// [`BroadcastReport::failed`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> wsgw_core::Result<()> {
    /// # use std::sync::Arc;
    /// # use wsgw_core::*;
    /// # let mut sink = MockMessageSink::new();
    /// # sink.expect_send().times(1).returning(|_, _| Ok(()));
    /// # let backends = Backends::new(Arc::new(MockConnectionStore::new()), Arc::new(sink));
    /// # let ctx = Router::new().context(&backends);
    /// let ids = [ConnectionId::new("a="), ConnectionId::new("b=")];
    /// let report = ctx
    ///     .broadcast(&"tick")
    ///     .to(ids)
    ///     .filter(|id| async move { Ok(id.as_str() == "a=") })
    ///     .await?;
    /// assert_eq!(report.skipped, [ConnectionId::new("b=")]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn filter<F, Fut>(mut self, keep: F) -> Self
    where
        F: Fn(ConnectionId) -> Fut + Send + Sync + 'a,
        Fut: Future<Output = Result<bool>> + Send + 'a,
    {
        self.filter = Some(Box::new(move |id| Box::pin(keep(id))));
        self
    }

    /// Sends, and reports what happened to each target.
    pub async fn send(self) -> Result<BroadcastReport> {
        let Broadcast {
            ctx,
            payload,
            groups,
            ids,
            filter,
        } = self;
        let payload = payload?;
        let options = ctx.broadcast_options();
        let store = ctx.store();
        let sources = groups.len() + usize::from(!ids.is_empty());
        let listed = stream::iter(groups)
            .map(move |group| store.members_paged(group, options.page_size))
            .flatten();
        let mut targets: BoxStream<'_, Result<ConnectionId>> =
            stream::iter(ids.into_iter().map(Ok)).chain(listed).boxed();
        if sources > 1 {
            // The same connection through two groups (or a group and its id) gets the
            // message once.
            let mut seen = std::collections::HashSet::new();
            targets = targets
                .filter(move |target| {
                    let first = match target {
                        Ok(id) => seen.insert(id.clone()),
                        Err(_) => true,
                    };
                    std::future::ready(first)
                })
                .boxed();
        }
        let report = fan_out(
            store,
            ctx.sink(),
            targets,
            &payload,
            options,
            filter.as_ref(),
        )
        .await?;
        ctx.count_broadcast(&report);
        Ok(report)
    }
}

impl<'a, S: Send + Sync + 'static> IntoFuture for Broadcast<'a, S> {
    type Output = Result<BroadcastReport>;
    type IntoFuture = BoxFuture<'a, Result<BroadcastReport>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}
