//! A WebSocket client over any `embedded-io-async` stream (plain TCP or TLS), built on
//! `embedded-websocket`'s frame codec.
//!
//! Reads are cancel-safe as long as the stream's reads are (embassy-net's `TcpReader`
//! and mbedtls-rs's `SessionRead` are): bytes are only taken out of the stream into
//! this client's own buffer, and frames are decoded from that buffer without awaiting.
//! The main loop can therefore race a read against a timer.

use embedded_io_async::{Read, Write};
use embedded_websocket::{
    Error as CodecError, WebSocketClient, WebSocketCloseStatusCode, WebSocketOptions,
    WebSocketReceiveMessageType, WebSocketSendMessageType, WebSocketState,
};
use esp_hal::rng::Rng;
use telemetry_device::http;
use telemetry_protocol::MAX_MESSAGE_LEN;

/// Bytes read from the stream and not yet decoded (the handshake response, frames).
const RX_LEN: usize = 4_096;
/// The largest message the device accepts from the cloud.
const FRAME_LEN: usize = 2_048;
/// An encoded outgoing frame: the largest protocol message plus a 14-byte header.
const TX_LEN: usize = MAX_MESSAGE_LEN + 16;

/// Why the connection is unusable (logged with `{:?}`).
#[derive(Debug)]
#[allow(dead_code, reason = "the fields are read by Debug, in the logs")]
pub enum WsError<E> {
    /// The stream failed.
    Io(E),
    /// The peer closed the stream.
    Eof,
    /// The server answered the upgrade with this HTTP status instead of 101.
    Rejected(Option<u16>),
    /// The handshake response did not fit in the receive buffer.
    ResponseTooLarge,
    /// A frame was malformed or too large.
    Codec(CodecError),
    /// A message larger than the device accepts.
    MessageTooLarge,
}

/// Something the server sent.
pub enum Event<'a> {
    /// A complete text message.
    Text(&'a [u8]),
    /// The server closed the connection (the close reply is already sent).
    Closed(Option<u16>),
}

/// One WebSocket connection's client state and buffers (~9 KB: keep it in a static).
pub struct WsClient {
    codec: WebSocketClient<Rng>,
    rx: [u8; RX_LEN],
    rx_len: usize,
    frame: [u8; FRAME_LEN],
    frame_len: usize,
    tx: [u8; TX_LEN],
}

impl WsClient {
    /// A client for a new connection.
    pub fn new() -> Self {
        WsClient {
            codec: WebSocketClient::new_client(Rng::new()),
            rx: [0; RX_LEN],
            rx_len: 0,
            frame: [0; FRAME_LEN],
            frame_len: 0,
            tx: [0; TX_LEN],
        }
    }

    /// Forgets the previous connection.
    pub fn reset(&mut self) {
        self.codec = WebSocketClient::new_client(Rng::new());
        self.rx_len = 0;
        self.frame_len = 0;
    }

    /// Sends the upgrade request for `target` on `host` and reads the 101 answer.
    /// Returns the server's Unix time from its `Date` header, if it sent one.
    pub async fn handshake<R: Read, W: Write<Error = R::Error>>(
        &mut self,
        reader: &mut R,
        writer: &mut W,
        host: &str,
        origin: &str,
        target: &str,
    ) -> Result<Option<u64>, WsError<R::Error>> {
        self.reset();
        let options = WebSocketOptions {
            path: target,
            host,
            origin,
            sub_protocols: None,
            additional_headers: Some(&["User-Agent: wsgw-telemetry-esp32c3/0.1"]),
        };
        let (len, key) = self
            .codec
            .client_connect(&options, &mut self.tx)
            .map_err(WsError::Codec)?;
        writer
            .write_all(&self.tx[..len])
            .await
            .map_err(WsError::Io)?;
        writer.flush().await.map_err(WsError::Io)?;

        // Read until the end of the response head.
        let head_len = loop {
            if let Some(end) = find(&self.rx[..self.rx_len], b"\r\n\r\n") {
                break end + 4;
            }
            if self.rx_len == self.rx.len() {
                return Err(WsError::ResponseTooLarge);
            }
            let n = reader
                .read(&mut self.rx[self.rx_len..])
                .await
                .map_err(WsError::Io)?;
            if n == 0 {
                return Err(WsError::Eof);
            }
            self.rx_len += n;
        };
        let head = core::str::from_utf8(&self.rx[..head_len]).unwrap_or("");
        let status = http::status_code(head);
        if status != Some(101) {
            return Err(WsError::Rejected(status));
        }
        let server_time = http::server_time_ms(head);
        self.codec
            .client_accept(&key, &self.rx[..head_len])
            .map_err(WsError::Codec)?;
        self.consume(head_len);
        Ok(server_time)
    }

    /// Sends one text message and waits until the stream has taken it (for TCP:
    /// until the peer acknowledged it).
    pub async fn send_text<W: Write>(
        &mut self,
        writer: &mut W,
        text: &[u8],
    ) -> Result<(), WsError<W::Error>> {
        self.send(writer, WebSocketSendMessageType::Text, text)
            .await
    }

    async fn send<W: Write>(
        &mut self,
        writer: &mut W,
        kind: WebSocketSendMessageType,
        payload: &[u8],
    ) -> Result<(), WsError<W::Error>> {
        let len = self
            .codec
            .write(kind, true, payload, &mut self.tx)
            .map_err(WsError::Codec)?;
        writer
            .write_all(&self.tx[..len])
            .await
            .map_err(WsError::Io)?;
        writer.flush().await.map_err(WsError::Io)
    }

    /// Starts the close handshake (1000, `reason`).
    pub async fn close<W: Write>(
        &mut self,
        writer: &mut W,
        reason: &str,
    ) -> Result<(), WsError<W::Error>> {
        if self.codec.state != WebSocketState::Open {
            return Ok(());
        }
        let len = self
            .codec
            .close(
                WebSocketCloseStatusCode::NormalClosure,
                Some(reason),
                &mut self.tx,
            )
            .map_err(WsError::Codec)?;
        writer
            .write_all(&self.tx[..len])
            .await
            .map_err(WsError::Io)?;
        writer.flush().await.map_err(WsError::Io)
    }

    /// Waits for the next text message or the close of the connection, answering
    /// pings on the way. Cancel-safe when `reader.read` is.
    pub async fn next_event<R: Read, W: Write<Error = R::Error>>(
        &mut self,
        reader: &mut R,
        writer: &mut W,
    ) -> Result<Event<'_>, WsError<R::Error>> {
        loop {
            if let Some(done) = self.decode()? {
                match done {
                    Decoded::Text(len) => return Ok(Event::Text(&self.frame[..len])),
                    Decoded::Ping(len) => {
                        let mut payload = [0u8; 125];
                        let len = len.min(payload.len());
                        payload[..len].copy_from_slice(&self.frame[..len]);
                        self.send(writer, WebSocketSendMessageType::Pong, &payload[..len])
                            .await?;
                    }
                    Decoded::Close(code, reply_len) => {
                        // Best effort: the server is going away anyway.
                        if reply_len > 0 {
                            let _ = writer.write_all(&self.tx[..reply_len]).await;
                            let _ = writer.flush().await;
                        }
                        return Ok(Event::Closed(code));
                    }
                    Decoded::Skip => {}
                }
                continue;
            }
            if self.rx_len == self.rx.len() {
                return Err(WsError::MessageTooLarge);
            }
            let n = reader
                .read(&mut self.rx[self.rx_len..])
                .await
                .map_err(WsError::Io)?;
            if n == 0 {
                return Err(WsError::Eof);
            }
            self.rx_len += n;
        }
    }

    /// Decodes what the receive buffer holds, without awaiting.
    fn decode<E>(&mut self) -> Result<Option<Decoded>, WsError<E>> {
        if self.rx_len == 0 {
            return Ok(None);
        }
        if self.frame_len == self.frame.len() {
            return Err(WsError::MessageTooLarge);
        }
        let result = match self
            .codec
            .read(&self.rx[..self.rx_len], &mut self.frame[self.frame_len..])
        {
            Ok(result) => result,
            Err(CodecError::ReadFrameIncomplete) => return Ok(None),
            Err(error) => return Err(WsError::Codec(error)),
        };
        self.consume(result.len_from);
        self.frame_len += result.len_to;
        if !result.end_of_message {
            return Ok(if result.len_from == 0 {
                None
            } else {
                Some(Decoded::Skip)
            });
        }
        let len = core::mem::take(&mut self.frame_len);
        Ok(Some(match result.message_type {
            WebSocketReceiveMessageType::Text => Decoded::Text(len),
            WebSocketReceiveMessageType::Ping => Decoded::Ping(len),
            WebSocketReceiveMessageType::CloseMustReply => {
                let code = result.close_status.map(close_code);
                let mut payload = [0u8; 125];
                let plen = len.min(payload.len());
                payload[..plen].copy_from_slice(&self.frame[..plen]);
                let reply_len = self
                    .codec
                    .write(
                        WebSocketSendMessageType::CloseReply,
                        true,
                        &payload[..plen],
                        &mut self.tx,
                    )
                    .unwrap_or(0);
                Decoded::Close(code, reply_len)
            }
            WebSocketReceiveMessageType::CloseCompleted => {
                Decoded::Close(result.close_status.map(close_code), 0)
            }
            WebSocketReceiveMessageType::Binary | WebSocketReceiveMessageType::Pong => {
                Decoded::Skip
            }
        }))
    }

    fn consume(&mut self, n: usize) {
        self.rx.copy_within(n..self.rx_len, 0);
        self.rx_len -= n;
    }
}

enum Decoded {
    Text(usize),
    Ping(usize),
    Close(Option<u16>, usize),
    Skip,
}

fn close_code(status: WebSocketCloseStatusCode) -> u16 {
    use WebSocketCloseStatusCode::*;
    match status {
        NormalClosure => 1000,
        EndpointUnavailable => 1001,
        ProtocolError => 1002,
        InvalidMessageType => 1003,
        Reserved => 1004,
        Empty => 1005,
        InvalidPayloadData => 1007,
        PolicyViolation => 1008,
        MessageTooBig => 1009,
        MandatoryExtension => 1010,
        InternalServerError => 1011,
        TlsHandshake => 1015,
        Custom(code) => code,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
