//! Step 04: every event is applied to the user's balance, inline in the connection task.
//!
//! Module map:
//! - [`run`]: the accept loop. It spawns one task per connection.
//! - `handle_connection`: the per-connection loop: take lines out of the buffer and answer each
//!   one, then read more.
//! - `respond`: the reply to one line; an event is processed right there, work included.
//! - [`framing`]: [`LineReader`], which splits the byte stream into lines and enforces the 64 KiB
//!   line limit.
//! - [`protocol`]: parsing a line into an [`Event`](protocol::Event), and the [`Reply`] lines.
//! - [`state`]: [`Balances`], every user's balance behind one lock.
//! - [`sync`]: where the types that threads share come from (the standard library's, or loom's
//!   for the model checks).
//!
//! This step is deliberately wrong in one way: the work each event takes (`--work-us`) is a
//! blocking sleep inside an async task. A blocked task blocks the runtime thread under it, and
//! every other connection that runtime thread was serving waits with it.

// The TODOs leave some code unused until you write them. Once every TODO is done, delete
// these three lines: the compiler then checks again that nothing is left over.
#![allow(unused)]

pub mod framing;
pub mod protocol;
pub mod state;
pub mod sync;

use std::io;
use std::thread;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time;

use crate::framing::{Frame, LineReader};
use crate::protocol::{Reason, Reply};
use crate::state::Balances;
use crate::sync::Arc;

/// How long to pause after a failed `accept`, so that a persistent error (such as running out of
/// file descriptors) does not turn the accept loop into a busy loop that floods the log.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How the server processes events, as set on the command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// Simulated CPU work per event, done as a blocking sleep where the event is processed.
    pub work: Duration,
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
    loop {
        match listener.accept().await {
            Ok((socket, peer)) => {
                let shared = shared.clone();
                // `spawn` returns at once: the accept loop is back to `accept` while the new
                // task serves this client. The task owns the socket (`async move`).
                tokio::spawn(async move {
                    if let Err(err) = handle_connection(socket, shared).await {
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
async fn handle_connection(mut socket: TcpStream, shared: Shared) -> io::Result<()> {
    let (mut reader, mut writer) = socket.split();
    let mut lines = LineReader::new();
    // One reply line at a time, in a buffer kept for the whole connection.
    let mut reply = Vec::new();

    loop {
        // Answer every complete line already buffered, in order. A garbage line gets an error
        // reply like any other: it never ends the connection.
        while let Some(frame) = lines.next_line() {
            reply.clear();
            respond(&shared, frame).write_to(&mut reply);
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
        Ok(event) => {
            // TODO: Process the event right here, in this connection: the simulated work of the
            //       configuration, then the balance, then the reply this step's contract gives.
            //       Then run the step's demo and ask: which thread runs that work, and what else
            //       was it running? That is the pain the next step cures.
            todo!()
        }
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn balances_are_shared_by_every_connection() {
        let addr = start().await;
        let buy = "{\"user\":\"shared\",\"action\":\"buy\",\"amount\":1}\n".repeat(100);
        let clients: Vec<_> = (0..8)
            .map(|_| {
                let buy = buy.clone();
                tokio::spawn(async move { exchange(addr, buy.as_bytes()).await })
            })
            .collect();
        for client in clients {
            client.await.unwrap();
        }
        let last = exchange(
            addr,
            b"{\"user\":\"shared\",\"action\":\"buy\",\"amount\":1}\n",
        )
        .await;
        assert_eq!(last, "{\"status\":\"ok\",\"balance\":801}\n");
    }
}
