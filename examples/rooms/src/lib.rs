use futures::TryStreamExt;
use serde_json::json;
use wsgw_core::{Connection, ConnectionStoreExt, Context, Rejection, Request, Result, Router};

#[derive(serde::Deserialize)]
struct Say {
    text: String,
}

/// `$connect`: `?room=NAME` joins that room; without one the handshake is refused (400).
async fn join(ctx: Context, request: Request) -> Result<()> {
    let room = request
        .query_param("room")
        .ok_or(Rejection::new("no_room"))?;
    let joined = Connection::from_request(&request).with_group(room);
    ctx.store().put(joined.with_attribute("room", room)).await
}

/// The caller's room, as `join` stored it.
async fn room_of(ctx: &Context, request: &Request) -> Result<String> {
    let room = ctx.store().attribute(&request.connection_id, "room");
    Ok(room.await?.unwrap_or_default())
}

/// `{"action":"say","text":…}`: the whole room gets `{"type":"said","text":…}`.
async fn say(ctx: Context, request: Request) -> Result<()> {
    let Say { text } = request.json()?; // bad input: the caller gets an error frame
    let room = room_of(&ctx, &request).await?;
    let said = ctx.broadcast(&json!({ "type": "said", "text": text }));
    said.to_group(room).await.map(drop)
}

/// `{"action":"who"}`: the caller gets its room and how many are in it.
async fn who(ctx: Context, request: Request) -> Result<()> {
    let room = room_of(&ctx, &request).await?;
    let members: Vec<_> = ctx.store().members(room.as_str()).try_collect().await?;
    let who = json!({ "type": "who", "room": room, "members": members.len() });
    ctx.reply(&who).await
}

/// `$disconnect`: the connection leaves its room.
async fn leave(ctx: Context, request: Request) -> Result<()> {
    ctx.store().delete(&request.connection_id).await.map(drop)
}

/// The room chat's routes.
pub fn router() -> Router {
    Router::new()
        .on_connect(join)
        .route("say", say)
        .route("who", who)
        .on_disconnect(leave)
}
