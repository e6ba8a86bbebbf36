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
use step10_graceful_shutdown::Config;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// An event server that queues every event for a pool of worker threads, never lets a balance
/// go below zero, answers balance, metrics and health queries, and shuts down gracefully on
/// SIGINT or SIGTERM.
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
    };

    // Take over SIGINT and SIGTERM before announcing ourselves: from here on they start a
    // graceful shutdown instead of killing the process on the spot.
    let interrupt = signal(SignalKind::interrupt()).context("failed to handle SIGINT")?;
    let terminate = signal(SignalKind::terminate()).context("failed to handle SIGTERM")?;

    let listener = TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("failed to bind {}", args.addr))?;
    // Report the address actually bound (port 0 becomes a real port), and flush at once: whoever
    // started us waits for this line before connecting.
    println!("listening on {}", listener.local_addr()?);
    io::stdout().flush()?;

    let shutdown = first_signal(interrupt, terminate);
    let report = step10_graceful_shutdown::run(listener, config, shutdown).await;

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
        // TODO: A second signal means now: end the process at once, with the exit code the contract
        //       gives (128 + the signal's number), for SIGINT and SIGTERM alike.
        todo!()
    });
}
