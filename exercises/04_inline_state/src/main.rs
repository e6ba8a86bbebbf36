//! Command-line entry point: parse the flags, bind, announce the address and hand the listener
//! to the library. Everything the server *does* lives in `lib.rs`.

// The TODOs leave some code unused until you write them. Once every TODO is done, delete
// these three lines: the compiler then checks again that nothing is left over.
#![allow(unused)]

use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use step04_inline_state::Config;
use tokio::net::TcpListener;

/// An event server that applies every event to the user's balance and replies with the result.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on; port 0 asks the operating system for a free port.
    #[arg(long, default_value = "127.0.0.1:7878")]
    addr: SocketAddr,
    /// Simulated CPU work per event, in microseconds.
    #[arg(long, value_name = "MICROS", default_value_t = 0)]
    work_us: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = Config {
        work: Duration::from_micros(args.work_us),
    };

    let listener = TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("failed to bind {}", args.addr))?;
    // Report the address actually bound (port 0 becomes a real port), and flush at once: whoever
    // started us waits for this line before connecting.
    println!("listening on {}", listener.local_addr()?);
    io::stdout().flush()?;

    step04_inline_state::run(listener, config).await;
    Ok(())
}
