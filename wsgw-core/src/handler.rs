//! Route handlers and authorizers.

use std::future::Future;

use async_trait::async_trait;

use crate::{Context, IntoReply, Reply, Request, Result};

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
