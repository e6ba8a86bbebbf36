//! Step 04: every event is applied to the user's balance, inline in the connection task.
//!
//! Module map:
//! - [`run`]: the accept loop. It spawns one task per connection.
//! - `handle_connection`: the per-connection loop: take lines out of the buffer, answer them,
//!   flush, read more.
//! - `respond`: parses one line and processes the event right there, work included.
//! - [`framing`]: [`LineReader`], which splits the byte stream into lines and enforces the 64 KiB
//!   line limit.
//! - [`protocol`]: parsing a line into an [`Event`](protocol::Event), and the [`Reply`] lines.
//! - [`state`]: [`Balances`], every user's balance behind one lock.
//!
//! This step is deliberately wrong in one way: the work each event takes (`--work-us`) is a
//! blocking sleep inside an async task. A blocked task blocks the runtime thread under it, and
//! every other connection that runtime thread was serving waits with it.

pub mod framing;
pub mod protocol;
pub mod state;

use std::io;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time;

use crate::framing::{Frame, LineReader};
use crate::protocol::{Reason, Reply};
use crate::state::Balances;

/// How long to pause after a failed `accept`, so that a persistent error (such as running out of
/// file descriptors) does not turn the accept loop into a busy loop that floods the log.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How long a refused client has to read its `too_many_connections` line and close, before we
/// close anyway.
const REFUSE_LINGER: Duration = Duration::from_secs(1);

/// How the server processes events, as set on the command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// Simulated CPU work per event, done as a blocking sleep where the event is processed.
    pub work: Duration,
    /// How many connections may be served at once; the next one is refused. Must be at least 1.
    pub max_connections: usize,
}

/// What every connection task needs besides its socket. Each task gets its own clone, which is
/// cheap: the balances themselves are behind an `Arc`, not copied.
#[derive(Debug, Clone)]
struct Shared {
    /// Every user's balance. All connection tasks apply events to the same map.
    balances: Arc<Balances>,
    /// How long processing one event takes.
    work: Duration,
}

/// Accepts connections forever, serving each one in its own task.
///
/// An error on one connection is logged by that connection's task and ends that connection
/// only: the accept loop never sees it.
pub async fn run(listener: TcpListener, config: Config) {
    let shared = Shared {
        balances: Arc::new(Balances::default()),
        work: config.work,
    };
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
                let shared = shared.clone();
                // `spawn` returns at once: the accept loop is back to `accept` while the new
                // task serves this client. The task owns the socket (`async move`).
                tokio::spawn(async move {
                    if let Err(err) = handle_connection(socket, shared).await {
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
async fn handle_connection(mut socket: TcpStream, shared: Shared) -> io::Result<()> {
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
            respond(&shared, frame).write_to(&mut out);
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
fn respond(shared: &Shared, frame: Frame<'_>) -> Reply {
    let line = match frame {
        Frame::Line(line) => line,
        Frame::TooLong => {
            return Reply::Error {
                reason: Reason::LineTooLong,
            }
        }
    };
    match protocol::parse(line) {
        // ANCHOR: process_inline
        Ok(event) => {
            // The work is a blocking sleep, right here in the async task, and `respond` runs on
            // one of the runtime's few worker threads. While it sleeps, that thread runs no other
            // task: every connection it serves waits, even one that only sends invalid lines.
            // Once every runtime thread is asleep in here, the whole server stands still.
            thread::sleep(shared.work);
            let balance = shared.balances.apply(event);
            Reply::Ok { balance }
        }
        // ANCHOR_END: process_inline
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
            work: Duration::ZERO,
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
    async fn replies_with_the_balance_after_each_event() {
        let addr = start().await;
        let input = concat!(
            r#"{"user":"alice","action":"buy","amount":100}"#,
            "\n",
            r#"{"user":"bob","action":"buy","amount":1}"#,
            "\n",
            r#"{"user":"alice","action":"sell","amount":250}"#,
            "\n",
            r#"{"type":"balance","user":"alice"}"#,
            "\n",
        );
        let expected = [
            r#"{"status":"ok","balance":100}"#,
            r#"{"status":"ok","balance":1}"#,
            r#"{"status":"ok","balance":-150}"#,
            r#"{"status":"error","reason":"unknown_type"}"#,
        ];
        assert_eq!(
            exchange(addr, input.as_bytes()).await,
            expected.join("\n") + "\n"
        );
    }
}
