//! Command-line entry point: parse the flags, set up the signals, bind, announce the address,
//! run the server until a signal, then print the final metrics and exit with the right code.
//! Everything the server *does* lives in `lib.rs`.

// The TODOs leave some code unused until you write them. Once every TODO is done, delete
// these three lines: the compiler then checks again that nothing is left over.
#![allow(unused)]

use std::io::{self, Write};
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::process;
use std::thread;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use step12_fast::Config;
use tokio::net::{TcpListener, TcpSocket};
use tokio::signal::unix::{signal, Signal, SignalKind};

/// An event server that queues every event for a pool of worker threads, never lets a balance
/// go below zero, answers balance, metrics and health queries, shuts down gracefully on SIGINT
/// or SIGTERM, and serves at most a set number of connections at once.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on; port 0 asks the operating system for a free port.
    #[arg(long, default_value = "127.0.0.1:7878")]
    addr: SocketAddr,
    /// Simulated CPU work per event, in microseconds.
    #[arg(long, value_name = "MICROS", default_value_t = 0)]
    work_us: u64,
    /// Capacity of the queue between reading events and processing them (at least 1).
    #[arg(long, value_name = "EVENTS", default_value = "1024")]
    queue_capacity: NonZeroUsize,
    /// Number of worker threads that process events (at least 1).
    #[arg(long, value_name = "THREADS", default_value_t = default_workers())]
    workers: NonZeroUsize,
    /// Simulated risk check per event, in microseconds, done while the user's balance is locked.
    #[arg(long, value_name = "MICROS", default_value_t = 0)]
    hold_us: u64,
    /// How long a graceful shutdown may take, in milliseconds.
    #[arg(long, value_name = "MILLIS", default_value_t = 10_000)]
    shutdown_timeout_ms: u64,
    /// How many connections to serve at once (at least 1); one more is answered
    /// `too_many_connections` and closed.
    #[arg(long, value_name = "CONNECTIONS", default_value = "10000")]
    max_connections: NonZeroUsize,
}

/// How many connections the kernel may hold for us, handshake done, before we accept them.
/// A burst of new clients larger than this finds the queue full, and the kernel drops their
/// handshakes: each of those clients tries again only a second later. `TcpListener::bind`
/// asks for a short queue; a server that expects bursts asks for a longer one.
const BACKLOG: u32 = 1024;

/// Binds `addr` with a queue of [`BACKLOG`] connections waiting to be accepted.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restarted server can bind its port again at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// One worker per CPU this process may use, unless told otherwise.
fn default_workers() -> NonZeroUsize {
    thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = Config {
        work: Duration::from_micros(args.work_us),
        queue_capacity: args.queue_capacity.get(),
        workers: args.workers.get(),
        hold: Duration::from_micros(args.hold_us),
        shutdown_timeout: Duration::from_millis(args.shutdown_timeout_ms),
        max_connections: args.max_connections.get(),
    };

    // Take over SIGINT and SIGTERM before announcing ourselves: from here on they start a
    // graceful shutdown instead of killing the process on the spot.
    let interrupt = signal(SignalKind::interrupt()).context("failed to handle SIGINT")?;
    let terminate = signal(SignalKind::terminate()).context("failed to handle SIGTERM")?;

    let listener = bind(args.addr).with_context(|| format!("failed to bind {}", args.addr))?;
    // Report the address actually bound (port 0 becomes a real port), and flush at once: whoever
    // started us waits for this line before connecting.
    println!("listening on {}", listener.local_addr()?);
    io::stdout().flush()?;

    let shutdown = first_signal(interrupt, terminate);
    let report = step12_fast::run(listener, config, shutdown).await;

    // The final metrics are the last line on stdout, whatever happened.
    println!("{}", report.metrics_line());
    io::stdout().flush()?;
    if report.unprocessed > 0 {
        eprintln!(
            "shutdown timed out: {} accepted events were not processed",
            report.unprocessed
        );
        // Exit now: workers may still be busy with events that can no longer be waited for.
        process::exit(1);
    }
    Ok(())
}

/// Completes at the first SIGINT or SIGTERM. From then on, a second one ends the process at
/// once, for an operator who cannot wait for the graceful shutdown.
async fn first_signal(mut interrupt: Signal, mut terminate: Signal) {
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    eprintln!("shutting down gracefully; send another signal to exit at once");
    tokio::spawn(async move {
        // The usual exit codes for death by signal: 128 + the signal's number.
        let code = tokio::select! {
            _ = interrupt.recv() => 130,
            _ = terminate.recv() => 143,
        };
        eprintln!("second signal: exiting without finishing the shutdown");
        process::exit(code);
    });
}
