//! Step 06: a pool of worker threads processes the queue, and clients can ask for a balance.
//!
//! Module map:
//! - [`run`]: the accept loop. It spawns one task per connection.
//! - `handle_connection`: the per-connection loop: take lines out of the buffer and answer each
//!   one, then read more.
//! - `respond`: the reply to one line; an event is offered to the queue, without ever waiting,
//!   and a balance query is answered from the shared balances.
//! - [`framing`]: [`LineReader`], which splits the byte stream into lines and enforces the 64 KiB
//!   line limit.
//! - [`protocol`]: parsing a line into a [`Request`], and the [`Reply`] lines.
//! - [`state`]: [`Balances`], every user's balance behind one lock, shared by the workers and the
//!   connections.
//! - [`worker`]: the worker threads that take events off the queue and process them.
//! - [`sync`]: where the types that threads share come from (the standard library's, or loom's
//!   for the model checks), the queue included.
//!
//! One worker was a bottleneck: N workers (`--workers`) process N events at once, all taking
//! from the one queue. The balances moved out of the worker and behind a lock, since every
//! worker applies events to them and every connection may read them. Nothing stops a sell from
//! taking a balance below zero yet.

// The TODOs leave some code unused until you write them. Once every TODO is done, delete
// these three lines: the compiler then checks again that nothing is left over.
#![allow(unused)]

pub mod framing;
pub mod protocol;
pub mod state;
pub mod sync;
pub mod worker;

use std::io;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time;

use crate::framing::{Frame, LineReader};
use crate::protocol::{Event, Reason, Reply, Request};
use crate::state::Balances;
use crate::sync::queue::{self, Sender};
use crate::sync::Arc;

/// How long to pause after a failed `accept`, so that a persistent error (such as running out of
/// file descriptors) does not turn the accept loop into a busy loop that floods the log.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How the server processes events, as set on the command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// Simulated CPU work per event, done as a blocking sleep where the event is processed.
    pub work: Duration,
    /// How many events may wait in the queue for a worker. Must be at least 1.
    pub queue_capacity: usize,
    /// How many worker threads process events. Must be at least 1.
    pub workers: usize,
}

/// What every connection task needs besides its socket. Each task gets its own clone, which is
/// cheap: a clone of a sender is another handle to the same queue, and the balances are behind
/// an `Arc`, not copied.
#[derive(Debug, Clone)]
struct Shared {
    /// The sending side of the queue to the workers. Connections only ever `try_send`.
    events: Sender<Event>,
    /// Every user's balance, read by balance queries. Only the workers change it.
    balances: Arc<Balances>,
}

/// Accepts connections forever, serving each one in its own task.
///
/// An error on one connection is logged by that connection's task and ends that connection
/// only: the accept loop never sees it.
pub async fn run(listener: TcpListener, config: Config) {
    // The queue holds at most `queue_capacity` events: memory stays bounded however fast
    // clients send and however slow the workers are.
    let (events, queue) = queue::bounded(config.queue_capacity);
    let balances = Arc::new(Balances::default());
    // The workers run for as long as the server does, so their handles are not kept.
    worker::spawn(config.workers, queue, Arc::clone(&balances), config.work);
    let shared = Shared { events, balances };
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
        // `try_send` never waits. Either the queue has room and the event is in it, or the queue
        // is full and the client hears so at once. (Waiting for room would park this connection
        // until the worker caught up, and its client would wait without knowing why.)
        Ok(Request::Event(event)) => match shared.events.try_send(event) {
            Ok(()) => Reply::Accepted,
            // Full, or (only if the worker died) closed: either way the event is not queued,
            // so it will never be processed, and the client must not be told otherwise.
            Err(_) => Reply::Rejected {
                reason: Reason::ServerBusy,
            },
        },
        // TODO: Answer a balance request (contract, balance) from the shared state, in this
        //       connection: a read must not wait behind the queued events.
        Ok(Request::Balance { user }) => {
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
    async fn start(config: Config) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(run(listener, config));
        addr
    }

    /// Sends `input`, half-closes, and returns the reply lines.
    async fn exchange(addr: SocketAddr, input: &str) -> Vec<String> {
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(input.as_bytes()).await.unwrap();
        client.shutdown().await.unwrap();
        let mut reply = String::new();
        client.read_to_string(&mut reply).await.unwrap();
        reply.lines().map(str::to_string).collect()
    }

    const EVENT: &str = "{\"user\":\"a\",\"action\":\"buy\",\"amount\":1}\n";
    const ACCEPTED: &str = r#"{"status":"accepted"}"#;
    const BUSY: &str = r#"{"status":"rejected","reason":"server_busy"}"#;

    #[tokio::test]
    async fn accepts_events_while_the_queue_has_room() {
        let addr = start(Config {
            work: Duration::ZERO,
            queue_capacity: 100,
            workers: 4,
        })
        .await;
        assert_eq!(exchange(addr, &EVENT.repeat(50)).await, vec![ACCEPTED; 50]);
    }

    #[tokio::test]
    async fn balance_query_sees_processed_events() {
        let addr = start(Config {
            work: Duration::ZERO,
            queue_capacity: 100,
            workers: 4,
        })
        .await;
        let sell = r#"{"user":"b","action":"sell","amount":30}"#;
        exchange(addr, &(EVENT.repeat(20) + sell + "\n")).await;
        // Accepted is not processed yet: ask until the workers have caught up.
        let query = concat!(
            r#"{"type":"balance","user":"a"}"#,
            "\n",
            r#"{"type":"balance","user":"b"}"#,
            "\n",
        );
        let expected = [
            r#"{"status":"ok","balance":20}"#,
            r#"{"status":"ok","balance":-30}"#,
        ];
        let deadline = time::Instant::now() + Duration::from_secs(5);
        while exchange(addr, query).await != expected {
            assert!(
                time::Instant::now() < deadline,
                "the balances never reached {expected:?}"
            );
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_burst_beyond_the_queue_gets_server_busy_without_waiting() {
        // The worker needs ten seconds per event and the queue holds one: of a burst of ten,
        // the worker may already hold one event and the queue one more. The rest are turned
        // away at once: all ten replies come long before the first event is processed.
        let addr = start(Config {
            work: Duration::from_secs(10),
            queue_capacity: 1,
            workers: 1,
        })
        .await;
        let replies = time::timeout(Duration::from_secs(5), exchange(addr, &EVENT.repeat(10)))
            .await
            .expect("replies waited for the worker");
        let accepted = replies.iter().filter(|r| *r == ACCEPTED).count();
        let busy = replies.iter().filter(|r| *r == BUSY).count();
        assert!((1..=2).contains(&accepted), "{replies:?}");
        assert_eq!(accepted + busy, 10, "{replies:?}");
    }
}
