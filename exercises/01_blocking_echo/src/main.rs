//! Command-line entry point: parse the flags, bind, announce the address and hand the listener
//! to the library. Everything the server *does* lives in `lib.rs`.

// The TODOs leave some code unused until you write them. Once every TODO is done, delete
// these three lines: the compiler then checks again that nothing is left over.
#![allow(unused)]

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};

use anyhow::Context;
use clap::Parser;

/// A blocking echo server: every line comes back byte for byte, one client at a time.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on; port 0 asks the operating system for a free port.
    #[arg(long, default_value = "127.0.0.1:7878")]
    addr: SocketAddr,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();

    let listener =
        TcpListener::bind(args.addr).with_context(|| format!("failed to bind {}", args.addr))?;
    // Report the address actually bound (port 0 becomes a real port), and flush at once: whoever
    // started us waits for this line before connecting.
    println!("listening on {}", listener.local_addr()?);
    io::stdout().flush()?;

    step01_blocking_echo::run(listener);
    Ok(())
}
