//! What handlers may return: anything that converts into a [`Reply`].

use serde::Serialize;

use crate::{Payload, Reply, Result};

/// Converts a handler's return value into the [`Reply`] for the gateway, as axum's
/// `IntoResponse` does: a handler is `async fn(Context<S>, Request) -> Result<impl
/// IntoReply>`.
///
/// | returned | reply |
/// | --- | --- |
/// | `()` | 200, no body (one-way routes answer through the context: [`Context::reply`](crate::Context::reply)) |
/// | [`Json`]`(value)` | 200 with `value` as JSON (sent back on a two-way route) |
/// | [`Payload`], `String`, `&'static str` | 200 with that body (on a two-way route) |
/// | [`Reply`] | itself: a status (on `$connect`, a non-2xx refuses the handshake), headers, a body |
///
/// A client's bad input is not a reply but an `Err` holding a
/// [`Rejection`](crate::Rejection); a serialisation failure here is a server-side
/// [`Error`](crate::Error).
///
/// ```
/// use wsgw_core::{IntoReply, Json, Reply};
///
/// assert_eq!(().into_reply()?, Reply::ok());
/// let reply = Json(serde_json::json!({"type": "pong"})).into_reply()?;
/// assert_eq!(reply.body.unwrap().as_text(), Some(r#"{"type":"pong"}"#));
/// # Ok::<(), wsgw_core::Error>(())
/// ```
pub trait IntoReply {
    /// The reply; `Err` for a server-side failure (a value that does not serialise).
    fn into_reply(self) -> Result<Reply>;
}

impl IntoReply for Reply {
    fn into_reply(self) -> Result<Reply> {
        Ok(self)
    }
}

impl IntoReply for () {
    fn into_reply(self) -> Result<Reply> {
        Ok(Reply::ok())
    }
}

impl IntoReply for Payload {
    fn into_reply(self) -> Result<Reply> {
        Ok(Reply::with_body(self))
    }
}

impl IntoReply for String {
    fn into_reply(self) -> Result<Reply> {
        Ok(Reply::with_body(self))
    }
}

impl IntoReply for &'static str {
    fn into_reply(self) -> Result<Reply> {
        Ok(Reply::with_body(self))
    }
}

/// A value sent as JSON: a reply body ([`IntoReply`]) on a two-way route.
///
/// ```
/// use wsgw_core::{Context, Json, Request, Result};
///
/// #[derive(serde::Serialize)]
/// struct Pong { r#type: &'static str }
///
/// // Registered with `Router::two_way_route`, the caller receives `{"type":"pong"}`.
/// async fn ping(_ctx: Context, _request: Request) -> Result<Json<Pong>> {
///     Ok(Json(Pong { r#type: "pong" }))
/// }
/// # let _ = ping;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoReply for Json<T> {
    fn into_reply(self) -> Result<Reply> {
        Reply::json(&self.0)
    }
}
