//! Step 10: graceful shutdown. On a signal the server stops accepting, answers what it has read,
//! closes every connection without losing a reply, processes every accepted event, and reports
//! its final counters.
//!
//! Module map:
//! - [`run`]: the accept loop, until the shutdown future completes; then the drain.
//! - `spawn_connection`: the task that serves one connection.
//! - `close_listener`: refuses new connections, and takes in those still waiting to be accepted.
//! - `handle_connection`: the per-connection loop: take lines out of the buffer and answer each
//!   one, then read more; on shutdown, stop reading and close.
//! - `lingering_close`: closes a connection without the kernel throwing replies away.
//! - `respond`: the reply to one line; an event is offered to the queue, without ever waiting,
//!   and a balance, metrics or health query is answered on the spot.
//! - [`framing`]: [`LineReader`], which splits the byte stream into lines and enforces the 64 KiB
//!   line limit.
//! - [`protocol`]: parsing a line into a [`Request`], and the [`Reply`] lines.
//! - [`state`]: [`Balances`], every user's balance behind a lock of its own, found through a
//!   read-mostly map; checking and applying a sell happen under the user's lock.
//! - [`worker`]: the worker threads that take events off the queue and process them.
//! - [`metrics`]: [`Metrics`], four atomic counters and a consistent snapshot.
//! - [`shutdown`]: [`Shutdown`], each connection's end of the shutdown signal.
//! - [`sync`]: where the types that threads share come from (the standard library's, or loom's
//!   for the model checks), the queue included.
//!
//! Until now the only way to stop the server was to kill it, losing every accepted event still
//! in the queue and every reply not yet delivered. Shutting down gracefully takes two
//! mechanisms:
//! - **Broadcast to stop.** `run` sends the shutdown deadline on a `broadcast` channel that every
//!   connection task listens to. Each one stops reading, answers what it has read and closes.
//! - **Drop to complete.** Nobody sends on the `done` channel: every connection task and every
//!   worker holds a clone of its sender and drops it when finished. When the last clone is gone,
//!   `done.recv()` returns `None`, and `run` knows everything is finished. The event queue works
//!   the same way: once the connections have dropped their senders, the workers empty the queue and
//!   exit.
//!
//! Everything after the signal is bounded by `--shutdown-timeout-ms`: a client that never reads
//! its replies, or a queue too long to drain in time, cannot hold the exit back forever.

// The TODOs leave some code unused until you write them. Once every TODO is done, delete
// these three lines: the compiler then checks again that nothing is left over.
#![allow(unused)]

pub mod framing;
pub mod metrics;
pub mod protocol;
pub mod shutdown;
pub mod state;
pub mod sync;
pub mod worker;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};
use tokio::time::{self, Instant};

use crate::framing::{Frame, LineReader};
use crate::metrics::{Metrics, Snapshot};
use crate::protocol::{Event, Reason, Reply, Request};
use crate::shutdown::Shutdown;
use crate::state::Balances;
use crate::sync::queue::{self, Sender};
use crate::sync::Arc;

/// How long to pause after a failed `accept`, so that a persistent error (such as running out of
/// file descriptors) does not turn the accept loop into a busy loop that floods the log.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// During a lingering close, how long the client may stay silent before we close anyway. A
/// client that has read our end-of-file stops sending; one that is idle, or not reading at all,
/// should not keep the server from exiting until the deadline.
const LINGER_QUIET: Duration = Duration::from_millis(500);

/// How the server processes events, as set on the command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// Simulated CPU work per event, done as a blocking sleep where the event is processed.
    pub work: Duration,
    /// How many events may wait in the queue for a worker. Must be at least 1.
    pub queue_capacity: usize,
    /// How many worker threads process events. Must be at least 1.
    pub workers: usize,
    /// Simulated risk check per event, done while the user's balance is locked.
    pub hold: Duration,
    /// How long a graceful shutdown may take, from the signal to the last event processed.
    pub shutdown_timeout: Duration,
}

/// How a graceful shutdown ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// The counters once the drain is over (or the deadline passed): the final metrics.
    pub metrics: Snapshot,
    /// Accepted events (received minus dropped) that were never processed. Zero unless the
    /// drain ran out of time.
    pub unprocessed: u64,
}

impl Report {
    /// The final metrics as one line of JSON, the same object a metrics query gets.
    pub fn metrics_line(&self) -> String {
        serde_json::to_string(&Reply::Metrics(self.metrics)).expect("a reply always serializes")
    }
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
    /// The counters: connections count events received and dropped, workers count events
    /// processed and refused, metrics queries read them.
    metrics: Arc<Metrics>,
}

/// Accepts connections, serving each one in its own task, until `shutdown` completes; then shuts
/// down gracefully and reports how it went.
///
/// An error on one connection is logged by that connection's task and ends that connection
/// only: the accept loop never sees it.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Report {
    // The queue holds at most `queue_capacity` events: memory stays bounded however fast
    // clients send and however slow the workers are.
    let (events, queue) = queue::bounded(config.queue_capacity);
    let balances = Arc::new(Balances::default());
    let metrics = Arc::new(Metrics::default());
    // Drop to complete: every connection task and every worker holds a clone of `done`.
    let (done, mut all_done) = mpsc::channel::<()>(1);
    let workers = worker::spawn(
        config.workers,
        queue,
        Arc::clone(&balances),
        Arc::clone(&metrics),
        config.work,
        config.hold,
        done.clone(),
    );
    let shared = Shared {
        events,
        balances,
        metrics: Arc::clone(&metrics),
    };
    // Broadcast to stop: one value, the deadline, sent once to every connection task.
    let (notify_shutdown, _) = broadcast::channel(1);

    // `shutdown` is polled again on every turn of the loop, so it must stay in one place.
    tokio::pin!(shutdown);
    loop {
        // TODO: Wait for whichever comes first: the next connection, or the shutdown signal. On the
        //       signal, stop accepting: leave the loop. Concept: racing two futures.
        let accepted: io::Result<(TcpStream, SocketAddr)> = todo!();
        match accepted {
            Ok((socket, peer)) => spawn_connection(socket, peer, &shared, &notify_shutdown, &done),
            Err(err) => {
                eprintln!("accept failed: {err}");
                time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }

    // 1. Refuse new connections at once. Clients still waiting in the listener's queue already
    //    count as connected: they are served (and closed) like every other connection.
    for (socket, peer) in close_listener(listener) {
        spawn_connection(socket, peer, &shared, &notify_shutdown, &done);
    }
    let deadline = shutdown::deadline_after(config.shutdown_timeout);
    // TODO: The rest of the shutdown (contract, shutdown): every connection stops reading, answers
    //       what it has read and closes by the deadline; the workers finish the queue; and this
    //       function waits for all of them, never past the deadline. `finished` says whether
    //       everyone made it in time (the exit code depends on it). Concepts: broadcast to stop,
    //       drop to complete: how does a channel tell you that every sender is gone? Trap: a handle
    //       this function still holds keeps the queue, or the wait, open for ever.
    let finished: bool = todo!();
    if finished {
        // Every worker has left its loop, so these joins return at once.
        for worker in workers {
            if worker.join().is_err() {
                eprintln!("a worker thread panicked");
            }
        }
    } else {
        eprintln!("shutdown deadline passed; giving up on what is left");
    }

    let metrics = metrics.snapshot();
    Report {
        metrics,
        // Cannot underflow: a snapshot always has `processed + dropped <= received`.
        unprocessed: metrics.received - metrics.dropped - metrics.processed,
    }
}

/// Starts the task that serves one connection.
fn spawn_connection(
    socket: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    notify_shutdown: &broadcast::Sender<Instant>,
    done: &mpsc::Sender<()>,
) {
    let shared = shared.clone();
    // Subscribed here, before the task exists, so that no task can miss the signal.
    let shutdown = Shutdown::new(notify_shutdown.subscribe());
    let done = done.clone();
    // `spawn` returns at once: the accept loop is back to `accept` while the new task serves
    // this client. The task owns the socket (`async move`).
    tokio::spawn(async move {
        if let Err(err) = handle_connection(socket, shared, shutdown).await {
            eprintln!("connection {peer}: {err}");
        }
        // This connection is finished.
        drop(done);
    });
}

/// Closes the listener, and returns the connections that were still waiting in its queue.
///
/// The kernel completes a client's handshake before the server accepts the connection, so a
/// client whose connection is still in the queue believes it is connected, and may have sent
/// lines already. Closing the listener would reset those connections; taking them first lets
/// them be closed as gracefully as the others.
fn close_listener(listener: TcpListener) -> Vec<(TcpStream, SocketAddr)> {
    let mut waiting = Vec::new();
    // Taken back from tokio, the socket is a plain non-blocking `std` listener: `accept` asks the
    // kernel directly and returns at once, with a connection or with `WouldBlock` once the queue
    // is empty.
    let Ok(listener) = listener.into_std() else {
        return waiting;
    };
    while let Ok((stream, peer)) = listener.accept() {
        // An accepted socket does not inherit the non-blocking mode that tokio needs.
        match stream
            .set_nonblocking(true)
            .and_then(|()| TcpStream::from_std(stream))
        {
            Ok(socket) => waiting.push((socket, peer)),
            Err(err) => eprintln!("connection {peer}: {err}"),
        }
    }
    waiting
    // `listener` is dropped here: its socket closes, and new connects are refused.
}

/// Answers every complete line the client sends, until it closes its side of the connection or
/// the server shuts down.
async fn handle_connection(
    mut socket: TcpStream,
    shared: Shared,
    mut shutdown: Shutdown,
) -> io::Result<()> {
    let (mut reader, mut writer) = socket.split();
    let mut lines = LineReader::new();
    // One reply line at a time, in a buffer kept for the whole connection.
    let mut reply = Vec::new();

    let deadline = loop {
        // Answer every complete line already buffered, in order. A garbage line gets an error
        // reply like any other: it never ends the connection. (Should the client never read its
        // replies, a write never ends; during a shutdown, `run` stops waiting at the deadline.)
        while let Some(frame) = lines.next_line() {
            reply.clear();
            respond(&shared, frame).write_to(&mut reply);
            writer.write_all(&reply).await?;
        }
        // The buffer holds no complete line: wait for more bytes, or for the shutdown, whichever
        // comes first. `biased` looks at the shutdown first, so once it has begun no more lines
        // are read, even from a client that keeps sending. Every line read so far has been
        // answered just above.
        tokio::select! {
            biased;
            deadline = shutdown.recv() => break deadline,
            read = lines.fill(&mut reader) => {
                if read? == 0 {
                    // The client closed its side, and every complete line has been answered.
                    // Bytes still buffered are a fragment, not a request: they get no reply.
                    return Ok(());
                }
            }
        }
    };
    // No more lines will be read, so no more events will be queued: let go of the queue now, so
    // that the workers can finish without waiting for this client to close.
    drop(shared);
    lingering_close(&mut reader, &mut writer, deadline).await
}

/// Closes a connection during shutdown without losing the replies already written to it.
async fn lingering_close(
    reader: &mut ReadHalf<'_>,
    writer: &mut WriteHalf<'_>,
    deadline: Instant,
) -> io::Result<()> {
    // TODO: Close this connection without losing a reply. Goal (contract, shutdown): the client
    //       reads every reply it is owed, then end-of-file, even while it is still sending. Trap:
    //       closing a socket that has unread input makes the kernel reset the connection and throw
    //       away the replies still on their way. Wait for nothing past the deadline, or past
    //       `LINGER_QUIET` of silence from the client.
    todo!()
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
        Ok(Request::Event(event)) => {
            // Counted before it can possibly be processed or dropped (see `metrics`).
            shared.metrics.event_received();
            match shared.events.try_send(event) {
                Ok(()) => Reply::Accepted,
                // Full, or (only if the workers died) closed: either way the event is not
                // queued, so it will never be processed, and the client must not be told
                // otherwise.
                Err(_) => {
                    shared.metrics.event_dropped();
                    Reply::Rejected {
                        reason: Reason::ServerBusy,
                    }
                }
            }
        }
        // Answered right here in the connection task, without the queue. It locks only this
        // user's balance, so a risk check in progress for another user does not delay it.
        Ok(Request::Balance { user }) => Reply::Ok {
            balance: shared.balances.get(&user),
        },
        // Four atomic loads: no lock, no queue, nothing to wait for.
        Ok(Request::Metrics) => Reply::Metrics(shared.metrics.snapshot()),
        Ok(Request::Health) => Reply::Health,
        Err(reason) => Reply::Error { reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc as StdArc;
    use tokio::sync::{oneshot, Notify};
    use tokio::task::JoinHandle;

    /// Starts a server on a free port in a background task and returns its address.
    async fn start(config: Config) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // These tests never shut the server down.
        tokio::spawn(run(listener, config, std::future::pending()));
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
            hold: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(10),
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
            hold: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(10),
        })
        .await;
        let sell = r#"{"user":"b","action":"sell","amount":30}"#;
        // 20 buys of 1 for `a`; a sell of 30 for `b`, who has nothing, is refused.
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
            r#"{"status":"ok","balance":0}"#,
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
            hold: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(10),
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

    /// A server on a free port, running in a background task, that a test can shut down.
    struct Server {
        addr: SocketAddr,
        /// Completing this starts the shutdown.
        stop: oneshot::Sender<()>,
        /// Finishes with the shutdown report.
        report: JoinHandle<Report>,
    }

    impl Server {
        async fn start(config: Config) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (stop, stopped) = oneshot::channel::<()>();
            let shutdown = async move {
                let _ = stopped.await;
            };
            let report = tokio::spawn(run(listener, config, shutdown));
            Server { addr, stop, report }
        }

        /// Starts the shutdown and waits (a bounded time) for the report.
        async fn shut_down(self) -> Report {
            self.stop.send(()).unwrap();
            time::timeout(Duration::from_secs(15), self.report)
                .await
                .expect("shutdown took too long")
                .unwrap()
        }
    }

    /// A configuration for tests: no work, room in the queue, two workers.
    fn config() -> Config {
        Config {
            work: Duration::ZERO,
            queue_capacity: 100,
            workers: 2,
            hold: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(10),
        }
    }

    #[tokio::test]
    async fn accepts_events_and_reports_them_at_shutdown() {
        let server = Server::start(config()).await;
        assert_eq!(
            exchange(server.addr, &EVENT.repeat(50)).await,
            vec![ACCEPTED; 50]
        );
        let report = server.shut_down().await;
        assert_eq!(report.unprocessed, 0);
        assert_eq!(
            (report.metrics.received, report.metrics.processed),
            (50, 50)
        );
        assert_eq!(
            report.metrics_line(),
            r#"{"status":"ok","received":50,"processed":50,"dropped":0,"refused":0}"#
        );
    }

    #[tokio::test]
    async fn shutdown_closes_idle_connections_and_refuses_new_ones() {
        let server = Server::start(config()).await;
        let addr = server.addr;
        // Connected, silent, never closing: it must not hold the shutdown back.
        let mut idle = TcpStream::connect(addr).await.unwrap();

        let report = server.shut_down().await;
        assert_eq!(report.unprocessed, 0);
        assert_eq!(report.metrics.received, 0);
        // The idle client was sent end-of-file, and nobody can connect any more.
        assert_eq!(idle.read(&mut [0; 16]).await.unwrap(), 0);
        assert!(TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn shutdown_closes_connections_still_waiting_to_be_accepted() {
        use std::io::Read;

        let server = Server::start(config()).await;
        // Blocking connects never yield to the server task, so when the shutdown begins these
        // connections are still in the listener's queue, one of them with a line already sent.
        let mut waiting: Vec<_> = (0..3)
            .map(|_| std::net::TcpStream::connect(server.addr).unwrap())
            .collect();
        std::io::Write::write_all(&mut waiting[0], EVENT.as_bytes()).unwrap();

        let report = server.shut_down().await;
        assert_eq!(report.unprocessed, 0);
        // Each is closed cleanly (end of file), not reset.
        for client in &mut waiting {
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut rest = Vec::new();
            client
                .read_to_end(&mut rest)
                .expect("the connection was reset");
            assert!(rest.is_empty());
        }
    }

    #[tokio::test]
    async fn shutdown_processes_every_accepted_event() {
        let server = Server::start(Config {
            work: Duration::from_millis(2),
            queue_capacity: 1000,
            ..config()
        })
        .await;
        let client = TcpStream::connect(server.addr).await.unwrap();
        let (mut reader, mut writer) = client.into_split();
        // Keep sending, about one event a millisecond, well past the shutdown (which comes
        // after 100 replies, about 200 ms in); count the replies as they come.
        let sender = tokio::spawn(async move {
            for _ in 0..400 {
                if writer.write_all(EVENT.as_bytes()).await.is_err() {
                    break;
                }
                time::sleep(Duration::from_micros(200)).await;
            }
        });
        let mut replies = String::new();
        let mut buf = [0; 4096];
        while replies.lines().count() < 100 {
            let n = reader.read(&mut buf).await.unwrap();
            replies.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }

        let report = server.shut_down().await;
        reader.read_to_string(&mut replies).await.unwrap();
        sender.await.unwrap();
        let accepted = replies.lines().filter(|r| *r == ACCEPTED).count() as u64;
        assert!(accepted >= 100);
        assert_eq!(report.unprocessed, 0);
        assert_eq!(report.metrics.processed, accepted);
        assert_eq!(report.metrics.received, accepted + report.metrics.dropped);
    }

    #[tokio::test]
    async fn shutdown_loses_no_reply_to_a_client_still_sending() {
        let server = Server::start(Config {
            queue_capacity: 100_000,
            ..config()
        })
        .await;
        let client = TcpStream::connect(server.addr).await.unwrap();
        let (mut reader, mut writer) = client.into_split();
        // Megabytes of events, and no reply read until the shutdown has begun: when the server
        // stops reading, much of this is still on its way, and replies wait in its send buffer.
        let started = StdArc::new(Notify::new());
        let sender = {
            let started = StdArc::clone(&started);
            tokio::spawn(async move {
                let batch = EVENT.repeat(1000);
                for _ in 0..60 {
                    if writer.write_all(batch.as_bytes()).await.is_err() {
                        break;
                    }
                    started.notify_one();
                }
            })
        };
        started.notified().await;
        server.stop.send(()).unwrap();
        let mut replies = String::new();
        reader.read_to_string(&mut replies).await.unwrap();
        sender.await.unwrap();

        let report = server.report.await.unwrap();
        let accepted = replies.lines().filter(|r| *r == ACCEPTED).count() as u64;
        assert!(accepted > 0);
        assert_eq!(report.metrics.processed, accepted);
    }

    #[tokio::test]
    async fn shutdown_timeout_reports_the_loss() {
        let server = Server::start(Config {
            work: Duration::from_millis(300),
            queue_capacity: 10,
            workers: 1,
            shutdown_timeout: Duration::from_millis(100),
            ..config()
        })
        .await;
        let replies = exchange(server.addr, &EVENT.repeat(5)).await;
        assert_eq!(replies, vec![ACCEPTED; 5]);

        let report = server.shut_down().await;
        // One event per 300 ms, 100 ms to drain five: most were never processed.
        assert!(report.unprocessed >= 3, "{report:?}");
        assert_eq!(report.unprocessed, 5 - report.metrics.processed);
    }
}

/// Model checks (`cargo test --features loom`): the counting of a real connection and a real
/// worker, tried in every interleaving against a metrics query.
#[cfg(all(test, feature = "loom"))]
mod model {
    use super::*;
    use crate::sync::{model, thread};

    const EVENT: &[u8] = br#"{"user":"a","action":"buy","amount":1}"#;

    /// A server's shared state with a queue of `capacity` and one worker, as `run` makes it.
    fn server(capacity: usize) -> (Shared, Vec<thread::JoinHandle<()>>) {
        let (events, queue) = queue::bounded(capacity);
        let balances = Arc::new(Balances::default());
        let metrics = Arc::new(Metrics::default());
        let (done, _) = mpsc::channel(1);
        let workers = worker::spawn(
            1,
            queue,
            Arc::clone(&balances),
            Arc::clone(&metrics),
            Duration::ZERO,
            Duration::ZERO,
            done,
        );
        let shared = Shared {
            events,
            balances,
            metrics,
        };
        (shared, workers)
    }

    /// Checks one metrics reply against the rule every snapshot keeps.
    fn check(reply: Reply) {
        let Reply::Metrics(m) = reply else {
            panic!("a metrics query got {reply:?}");
        };
        assert!(
            m.processed + m.dropped <= m.received,
            "a snapshot counted more events done than received: {m:?}"
        );
    }

    #[test]
    fn no_snapshot_counts_an_event_done_before_it_is_received() {
        model(|| {
            let (shared, workers) = server(1);
            let connection = {
                let shared = shared.clone();
                thread::spawn(move || respond(&shared, Frame::Line(EVENT)))
            };
            check(respond(&shared, Frame::Line(br#"{"type":"metrics"}"#)));
            assert_eq!(connection.join().unwrap(), Reply::Accepted);
            let metrics = Arc::clone(&shared.metrics);
            // The last sender goes: the worker finishes the queue and leaves.
            drop(shared);
            for worker in workers {
                worker.join().unwrap();
            }
            let done = metrics.snapshot();
            assert_eq!((done.received, done.processed), (1, 1), "{done:?}");
        });
    }

    #[test]
    fn no_snapshot_counts_an_event_dropped_before_it_is_received() {
        model(|| {
            // A queue of one, already holding an event that the worker cannot take yet (it is
            // stopped first, below): the next event is dropped.
            let (shared, workers) = server(1);
            let connection = {
                let shared = shared.clone();
                thread::spawn(move || {
                    let first = respond(&shared, Frame::Line(EVENT));
                    let second = respond(&shared, Frame::Line(EVENT));
                    (first, second)
                })
            };
            check(respond(&shared, Frame::Line(br#"{"type":"metrics"}"#)));
            let (first, second) = connection.join().unwrap();
            assert_eq!(first, Reply::Accepted);
            let metrics = Arc::clone(&shared.metrics);
            drop(shared);
            for worker in workers {
                worker.join().unwrap();
            }
            let done = metrics.snapshot();
            let dropped = u64::from(second != Reply::Accepted);
            assert_eq!(
                (done.received, done.processed, done.dropped),
                (2, 2 - dropped, dropped),
                "{done:?}"
            );
        });
    }
}
