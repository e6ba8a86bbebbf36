//! `checker replay FILE`: does again, byte for byte, what a failed check did (the file `verify`
//! wrote), against a fresh server, and shows the conversation. No suite, no verdict: a way to
//! look at one failure closely, as often as needed.

use crate::catalog;
use crate::commands::verify::{self, Source};
use crate::harness::check::DEFAULT_MEMORY_LIMIT_MIB;
use crate::harness::runner::ReplayFile;
use crate::harness::transcript::{Action, Transcript};
use crate::oracle::client::{unhex, Client};
use crate::output::Style;
use crate::sut::server::Server;
use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;
use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// How long a replay waits for more replies after each write.
const SETTLE: Duration = Duration::from_millis(50);

pub fn replay(root: &Path, file: &Path, source: Source, style: Style) -> Result<u8> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let recorded: ReplayFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a replay file", file.display()))?;
    if recorded.version != 1 {
        bail!(
            "{} is a replay file of version {}; this checker reads version 1",
            file.display(),
            recorded.version
        );
    }
    let step = catalog::find(&recorded.step)?;
    let bin = verify::executable(root, step, &source)?;
    println!(
        "{}",
        style.bold(&format!(
            "replay · {} · {} against {}",
            step.label(),
            recorded.check,
            bin.display()
        ))
    );
    if recorded.truncated {
        println!(
            "{}",
            style.yellow(
                "(the recorded traffic was too large to keep whole: this replay stops short)"
            )
        );
    }
    let log = Transcript::default();
    let mut servers: Vec<Server> = Vec::new();
    let mut clients: HashMap<String, Client> = HashMap::new();
    let outcome = (|| -> Result<(), crate::harness::failure::Failure> {
        for action in recorded.actions {
            match action {
                Action::Start { flags, limits } => {
                    servers.push(Server::start_numbered(
                        &bin,
                        &flags,
                        &log,
                        servers.len(),
                        DEFAULT_MEMORY_LIMIT_MIB * 1024,
                        &limits,
                    )?);
                }
                Action::Connect { client, server } => {
                    let addr = servers.get(server).map(|s| s.addr).ok_or_else(|| {
                        crate::fail!("the file names a server that was never started")
                    })?;
                    clients.insert(
                        client.clone(),
                        Client::connect_to(addr, client, log.clone(), server)?,
                    );
                }
                Action::Send { client, hex } => {
                    let bytes = unhex(&hex)
                        .ok_or_else(|| crate::fail!("the file holds bytes that are not hex"))?;
                    let c = clients
                        .get_mut(&client)
                        .ok_or_else(|| crate::fail!("{client} sends before connecting"))?;
                    c.send(&bytes)?;
                    c.drain(SETTLE);
                }
                Action::ShutdownWrite { client } => {
                    if let Some(c) = clients.get_mut(&client) {
                        c.shutdown_write()?;
                    }
                }
                Action::Reset { client } => {
                    if let Some(c) = clients.remove(&client) {
                        c.reset()?;
                    }
                }
                Action::Signal { server, signal } => {
                    let sig = Signal::from_str(&signal)
                        .map_err(|_| crate::fail!("unknown signal {signal}"))?;
                    if let Some(s) = servers.get_mut(server) {
                        s.signal(sig)?;
                    }
                }
            }
        }
        for c in clients.values_mut() {
            c.drain(Duration::from_millis(500));
        }
        Ok(())
    })();
    for line in log.render(usize::MAX) {
        println!("  {line}");
    }
    match outcome {
        Ok(()) => Ok(0),
        Err(f) => {
            println!("{} {}", style.red("the replay stopped:"), f.message);
            Ok(1)
        }
    }
}
