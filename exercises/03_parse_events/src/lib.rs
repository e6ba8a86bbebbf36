//! Step 03: every line is parsed into an event and answered with one JSON reply.
//!
//! Module map:
//! - [`run`]: the accept loop. It spawns one task per connection.
//! - `refuse`: turns away a connection past `--max-connections` with one error line.
//! - `handle_connection`: the per-connection loop: take lines out of the buffer, answer them,
//!   flush, read more.
//! - [`framing`]: [`LineReader`], which splits the byte stream into lines and enforces the 64 KiB
//!   line limit.
//! - [`protocol`]: parsing a line into an [`Event`](protocol::Event), and the [`Reply`] lines.

// The TODOs leave some code unused until you write them. Once every TODO is done, delete
// the next line: the compiler then checks again that nothing is left over.
#![allow(unused)]

pub mod framing;
pub mod protocol;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time;

use crate::framing::{Frame, LineReader};
use crate::protocol::{Reason, Reply};

/// How long to pause after a failed `accept`, so that a persistent error (such as running out of
/// file descriptors) does not turn the accept loop into a busy loop that floods the log.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How long a refused client has to read its `too_many_connections` line and close, before we
/// close anyway.
const REFUSE_LINGER: Duration = Duration::from_secs(1);

/// How the server runs, as set on the command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// How many connections may be served at once; the next one is refused. Must be at least 1.
    pub max_connections: usize,
}

/// Accepts connections forever, serving each one in its own task.
///
/// An error on one connection is logged by that connection's task and ends that connection
/// only: the accept loop never sees it.
pub async fn run(listener: TcpListener, config: Config) {
    // One permit for each connection we may serve at once; a connection holds its permit until
    // it ends.
    let places = Arc::new(Semaphore::new(config.max_connections));
    loop {
        match listener.accept().await {
            Ok((socket, peer)) => {
                // A place among the `max_connections`, taken without waiting: at the limit, the
                // newcomer is turned away at once instead of waiting unanswered.
                let Ok(place) = Arc::clone(&places).try_acquire_owned() else {
                    tokio::spawn(refuse(socket));
                    continue;
                };
                // `spawn` returns at once: the accept loop is back to `accept` while the new
                // task serves this client. The task owns the socket (`async move`).
                tokio::spawn(async move {
                    if let Err(err) = handle_connection(socket).await {
                        eprintln!("connection {peer}: {err}");
                    }
                    // The connection is over: its place goes to the next client.
                    drop(place);
                });
            }
            Err(err) => {
                eprintln!("accept failed: {err}");
                time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Turns away a connection that arrived while `max_connections` others were being served: one
/// `too_many_connections` line, then close. It runs in a task of its own, so the accept loop
/// never waits for a client it is refusing.
async fn refuse(mut socket: TcpStream) {
    let mut line = Vec::new();
    Reply::Error {
        reason: Reason::TooManyConnections,
    }
    .write_to(&mut line);
    // A new connection's send buffer is empty, so this write does not wait for the client to
    // read. Our end-of-file follows the line.
    if socket.write_all(&line).await.is_err() || socket.shutdown().await.is_err() {
        return;
    }
    // Closing a socket with unread input resets the connection, and the reset can destroy the
    // line before the client reads it. So read and discard what the client sends until it
    // closes its side, or `REFUSE_LINGER` has passed.
    let mut discard = [0; 1024];
    let _ = time::timeout(REFUSE_LINGER, async {
        while matches!(socket.read(&mut discard).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Answers every complete line the client sends, until it closes its side of the connection.
async fn handle_connection(mut socket: TcpStream) -> io::Result<()> {
    // We batch replies ourselves (below), so Nagle's algorithm, which holds small writes back
    // hoping to batch them, would only add delay.
    socket.set_nodelay(true)?;
    let (mut reader, mut writer) = socket.split();
    let mut lines = LineReader::new();
    // Replies owed to the client, not yet written to the socket.
    let mut out = Vec::new();

    loop {
        // Answer every complete line already buffered. This does no I/O, so a client that
        // pipelines gets all its replies in one write below.
        while let Some(frame) = lines.next_line() {
            respond(frame).write_to(&mut out);
        }
        // The buffer has run dry: send what we owe before waiting for the client, who may be
        // waiting for these replies before it sends more.
        if !out.is_empty() {
            writer.write_all(&out).await?;
            out.clear();
        }
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
        let config = Config {
            max_connections: 100,
        };
        tokio::spawn(run(listener, config));
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
    async fn refuses_connections_past_the_limit_until_a_place_is_free() {
        const EVENT: &[u8] = b"{\"user\":\"a\",\"action\":\"buy\",\"amount\":1}\n";
        const ACCEPTED: &str = "{\"status\":\"accepted\"}\n";
        const REFUSED: &str = "{\"status\":\"error\",\"reason\":\"too_many_connections\"}\n";
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(run(listener, Config { max_connections: 2 }));

        // Two connections, each answered once, so each holds a place.
        let mut served = Vec::new();
        for _ in 0..2 {
            let mut client = TcpStream::connect(addr).await.unwrap();
            client.write_all(EVENT).await.unwrap();
            let mut reply = vec![0; ACCEPTED.len()];
            client.read_exact(&mut reply).await.unwrap();
            assert_eq!(reply, ACCEPTED.as_bytes());
            served.push(client);
        }
        // A third is told why without having to ask, then closed.
        let mut third = TcpStream::connect(addr).await.unwrap();
        let mut reply = String::new();
        time::timeout(Duration::from_secs(5), third.read_to_string(&mut reply))
            .await
            .expect("the third connection was neither refused nor closed")
            .unwrap();
        assert_eq!(reply, REFUSED);
        // One that sent a line first gets the same answer, not a reset.
        assert_eq!(exchange(addr, EVENT).await, REFUSED);

        // When a served connection ends, its place is free again. The server learns of the end
        // when it reads the end-of-file, so try again until it has.
        drop(served.pop());
        let deadline = time::Instant::now() + Duration::from_secs(5);
        loop {
            let reply = exchange(addr, EVENT).await;
            if reply == ACCEPTED {
                break;
            }
            assert_eq!(reply, REFUSED);
            assert!(time::Instant::now() < deadline, "the place was never freed");
            time::sleep(Duration::from_millis(10)).await;
        }
    }
}
