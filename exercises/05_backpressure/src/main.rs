//! Command-line entry point: parse the flags, bind, announce the address and hand the listener
//! to the library. Everything the server *does* lives in `lib.rs`.

// The TODOs leave some code unused until you write them. Once every TODO is done, delete
// these three lines: the compiler then checks again that nothing is left over.
#![allow(unused)]

use std::io::{self, Write};
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use step05_backpressure::Config;
use tokio::net::TcpListener;

/// An event server that queues every event for a worker thread, and says when the queue is full.
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = Config {
        work: Duration::from_micros(args.work_us),
        queue_capacity: args.queue_capacity.get(),
    };

    let listener = TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("failed to bind {}", args.addr))?;
    // Report the address actually bound (port 0 becomes a real port), and flush at once: whoever
    // started us waits for this line before connecting.
    println!("listening on {}", listener.local_addr()?);
    io::stdout().flush()?;

    step05_backpressure::run(listener, config).await;
    Ok(())
}
