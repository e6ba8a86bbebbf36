//! Step 03: every line is parsed into an event and answered with one JSON reply.
//!
//! Module map:
//! - [`run`]: the accept loop. It spawns one task per connection.
//! - `handle_connection`: the per-connection loop: take lines out of the buffer and answer each
//!   one, then read more.
//! - `respond`: the reply to one line.
//! - [`framing`]: [`LineReader`], which splits the byte stream into lines and enforces the 64 KiB
//!   line limit.
//! - [`protocol`]: parsing a line into an [`Event`](protocol::Event), and the [`Reply`] lines.

// The TODOs leave some code unused until you write them. Once every TODO is done, delete
// these three lines: the compiler then checks again that nothing is left over.
#![allow(unused)]

pub mod framing;
pub mod protocol;

use std::io;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time;

use crate::framing::{Frame, LineReader};
use crate::protocol::{Reason, Reply};

/// How long to pause after a failed `accept`, so that a persistent error (such as running out of
/// file descriptors) does not turn the accept loop into a busy loop that floods the log.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts connections forever, serving each one in its own task.
///
/// An error on one connection is logged by that connection's task and ends that connection
/// only: the accept loop never sees it.
pub async fn run(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((socket, peer)) => {
                // `spawn` returns at once: the accept loop is back to `accept` while the new
                // task serves this client. The task owns the socket (`async move`).
                tokio::spawn(async move {
                    if let Err(err) = handle_connection(socket).await {
                        eprintln!("connection {peer}: {err}");
                    }
                });
            }
            Err(err) => {
                eprintln!("accept failed: {err}");
                time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Answers every complete line the client sends, until it closes its side of the connection.
async fn handle_connection(mut socket: TcpStream) -> io::Result<()> {
    let (mut reader, mut writer) = socket.split();
    let mut lines = LineReader::new();
    // One reply line at a time, in a buffer kept for the whole connection.
    let mut reply = Vec::new();

    loop {
        // Answer every complete line already buffered, in order. A garbage line gets an error
        // reply like any other: it never ends the connection.
        while let Some(frame) = lines.next_line() {
            reply.clear();
            respond(frame).write_to(&mut reply);
            writer.write_all(&reply).await?;
        }
        // The buffer holds no complete line: wait for more bytes.
        if lines.fill(&mut reader).await? == 0 {
            // The client closed its side, and every complete line has been answered. Bytes
            // still buffered are a fragment, not a request: they get no reply.
            return Ok(());
        }
    }
}

/// The reply to one frame.
fn respond(frame: Frame<'_>) -> Reply {
    let line = match frame {
        Frame::Line(line) => line,
        Frame::TooLong => {
            return Reply::Error {
                reason: Reason::LineTooLong,
            }
        }
    };
    match protocol::parse(line) {
        Ok(_event) => Reply::Accepted,
        Err(reason) => Reply::Error { reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::io::AsyncReadExt;

    /// Starts a server on a free port in a background task and returns its address.
    async fn start() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(run(listener));
        addr
    }

    /// Sends `input`, half-closes, and returns everything the server sent back.
    async fn exchange(addr: SocketAddr, input: &[u8]) -> String {
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(input).await.unwrap();
        client.shutdown().await.unwrap();
        let mut reply = String::new();
        client.read_to_string(&mut reply).await.unwrap();
        reply
    }

    #[tokio::test]
    async fn answers_each_line_in_order() {
        let addr = start().await;
        let mut input = b"{\"user\":\"a\",\"action\":\"buy\",\"amount\":5}\r\nnope\n".to_vec();
        input.extend(vec![b'x'; 70_000]);
        input.extend(b"\n{\"type\":\"x\"}\n{\"user\":\"a\"");
        let expected = [
            r#"{"status":"accepted"}"#,
            r#"{"status":"error","reason":"invalid_json"}"#,
            r#"{"status":"error","reason":"line_too_long"}"#,
            r#"{"status":"error","reason":"unknown_type"}"#,
        ];
        assert_eq!(exchange(addr, &input).await, expected.join("\n") + "\n");
    }

    #[tokio::test]
    async fn a_line_too_long_is_answered_before_its_end_arrives() {
        let addr = start().await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        // One byte past the limit, and no newline: the reply must not wait for one.
        client
            .write_all(&vec![b'x'; framing::MAX_LINE + 1])
            .await
            .unwrap();
        let mut reply = vec![0; r#"{"status":"error","reason":"line_too_long"}"#.len() + 1];
        client.read_exact(&mut reply).await.unwrap();
        assert_eq!(
            reply,
            b"{\"status\":\"error\",\"reason\":\"line_too_long\"}\n"
        );
    }
}
