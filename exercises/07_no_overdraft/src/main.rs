//! Command-line entry point: parse the flags, bind, announce the address and hand the listener
//! to the library. Everything the server *does* lives in `lib.rs`.

// The TODOs leave some code unused until you write them. Once every TODO is done, delete
// these three lines: the compiler then checks again that nothing is left over.
#![allow(unused)]

use std::io::{self, Write};
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::thread;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use step07_no_overdraft::Config;
use tokio::net::TcpListener;

/// An event server that queues every event for a pool of worker threads, never lets a balance
/// go below zero, and answers balance queries.
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
    };

    let listener = TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("failed to bind {}", args.addr))?;
    // Report the address actually bound (port 0 becomes a real port), and flush at once: whoever
    // started us waits for this line before connecting.
    println!("listening on {}", listener.local_addr()?);
    io::stdout().flush()?;

    step07_no_overdraft::run(listener, config).await;
    Ok(())
}
