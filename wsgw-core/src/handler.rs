//! Route handlers and authorizers.

use std::future::Future;

use async_trait::async_trait;

use crate::{Context, IntoReply, Rejection, Reply, Request, Result};

/// Handles one route.
///
/// Any `async fn(Context<S>, Request) -> Result<impl IntoReply>` or closure returning
/// such a future is a handler, so most code never implements this trait by hand:
///
/// ```
/// use wsgw_core::{Context, Json, Rejection, Request, Result, RouteHandler};
///
/// #[derive(serde::Deserialize)]
/// struct Say { text: String }
///
/// // `()` is a plain 200: a one-way route answers through the context.
/// async fn say(ctx: Context, request: Request) -> Result<()> {
///     let Say { text } = request.json()?; // bad input: the caller gets an error frame
///     if text.is_empty() {
///         return Err(Rejection::new("empty_text").with_detail("say something").into());
///     }
///     ctx.reply(&serde_json::json!({ "type": "said", "text": text })).await
/// }
///
/// // Its body reaches the caller when registered with `Router::two_way_route`.
/// async fn ping(_ctx: Context, _request: Request) -> Result<Json<&'static str>> {
///     Ok(Json("pong"))
/// }
///
/// fn assert_handler<H: RouteHandler<()>>(_: H) {}
/// assert_handler(say);
/// assert_handler(ping);
/// assert_handler(|_ctx: Context, _req: Request| async { Ok(()) });
/// ```
///
/// Handlers must not panic on outside input: return a
/// [`Rejection`](crate::Rejection) for the client's mistakes and an
/// [`Error`](crate::Error) for the server's.
#[async_trait]
pub trait RouteHandler<S = ()>: Send + Sync + 'static {
    /// Handles one request.
    async fn call(&self, ctx: Context<S>, request: Request) -> Result<Reply>;
}

#[async_trait]
impl<S, F, Fut, R> RouteHandler<S> for F
where
    S: Send + Sync + 'static,
    F: Fn(Context<S>, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R>> + Send + 'static,
    R: IntoReply,
{
    async fn call(&self, ctx: Context<S>, request: Request) -> Result<Reply> {
        (self)(ctx, request).await?.into_reply()
    }
}

/// Sees every [`Rejection`] a WebSocket route handler returns (`$connect`, `$disconnect`,
/// `$default` and custom routes alike), with the request the handler was given, before
/// the router answers the client: one place for an audit log of refused requests, or a
/// count per error code, however many handlers refuse. Set with
/// [`Router::on_rejection`](crate::Router::on_rejection).
///
/// Any `async fn(Context<S>, Request, Rejection)` or closure returning such a future is
/// one. It cannot change the answer: the client gets the rejection as it was returned.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> wsgw_core::Result<()> {
/// use std::sync::{Arc, Mutex};
/// use wsgw_core::{Context, Rejection, Request, Router};
/// use wsgw_memory::Harness;
///
/// let refused = Arc::new(Mutex::new(Vec::new()));
/// let seen = Arc::clone(&refused);
/// let router = Router::new()
///     .route("say", |_ctx: Context, _request: Request| async {
///         Err::<(), _>(Rejection::new("empty_text").with_detail("say something").into())
///     })
///     .on_rejection(move |_ctx: Context, request: Request, rejection: Rejection| {
///         let seen = Arc::clone(&seen);
///         async move {
///             let code = rejection.code().unwrap_or_default().to_owned();
///             seen.lock().unwrap().push((request.route_key, code));
///         }
///     });
/// let harness = Harness::new(router);
/// let client = harness.connect().await.expect("connects");
/// client.send_json(&serde_json::json!({"action": "say"})).await?;
/// assert_eq!(client.received_json()[0]["error"], "empty_text", "the client is answered");
/// assert_eq!(*refused.lock().unwrap(), [("say".to_owned(), "empty_text".to_owned())]);
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait RejectionHandler<S = ()>: Send + Sync + 'static {
    /// `ctx` is the handler's context, `request` what it was given (the route key set),
    /// `rejection` what it returned.
    async fn rejected(&self, ctx: Context<S>, request: Request, rejection: Rejection);
}

#[async_trait]
impl<S, F, Fut> RejectionHandler<S> for F
where
    S: Send + Sync + 'static,
    F: Fn(Context<S>, Request, Rejection) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    async fn rejected(&self, ctx: Context<S>, request: Request, rejection: Rejection) {
        (self)(ctx, request, rejection).await
    }
}

/// The decision of a `$connect` authorizer.
#[derive(Debug, Clone, PartialEq)]
pub enum Authorization {
    /// Let the client in; the context (principal, roles, claims) is handed to every later
    /// route in [`Request::authorizer`]. Give it a `principalId`
    /// ([`Principal::context`](crate::auth::Principal::context)), as API Gateway does: a
    /// `$connect` whose context carries no principal runs the router's authorizer again.
    Allow(serde_json::Value),
    /// Refuse the handshake with this HTTP status (401 or 403).
    Deny(u16),
}

/// Decides on `$connect` whether a client may connect, as an API Gateway Lambda
/// authorizer does. Closures `Fn(Context<S>, Request) -> impl Future<Output =
/// Result<Authorization>>` are authorizers.
#[async_trait]
pub trait Authorizer<S = ()>: Send + Sync + 'static {
    /// Inspects the `$connect` request (query string, headers, subprotocols).
    async fn authorize(&self, ctx: Context<S>, request: Request) -> Result<Authorization>;

    /// The subprotocol marker this authorizer reads a token after (see
    /// [`auth`](crate::auth)), if any: the router answers an allowed `$connect` that
    /// offered it with `Sec-WebSocket-Protocol: <marker>`, as browsers require. `None`
    /// by default.
    fn subprotocol(&self) -> Option<&str> {
        None
    }
}

#[async_trait]
impl<S, F, Fut> Authorizer<S> for F
where
    S: Send + Sync + 'static,
    F: Fn(Context<S>, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Authorization>> + Send + 'static,
{
    async fn authorize(&self, ctx: Context<S>, request: Request) -> Result<Authorization> {
        (self)(ctx, request).await
    }
}
