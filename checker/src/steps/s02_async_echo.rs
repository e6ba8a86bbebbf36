//! Step 02: an async echo server. Many clients at once, and none waits for another.

use super::s01_blocking_echo::expect_echo;
use crate::fail;
use crate::harness::check::{Check, Ctx};
use crate::harness::failure::{OrHint, Outcome};
use crate::harness::wait::concurrently;
use std::time::Duration;

pub const CHECKS: &[Check] = &[
    Check {
        name: "echo_many_clients",
        about: "100 concurrent clients × 100 lines each, all echoed correctly",
        since: 2,
        run: echo_many_clients,
    },
    Check {
        name: "echo_idle_client_does_not_block",
        about: "a client idling with half a line sent does not delay others",
        since: 2,
        run: echo_idle_client_does_not_block,
    },
];

fn echo_many_clients(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let clients = ctx.quiet_clients(addr, 100)?;
    concurrently(clients, |i, mut c| {
        let lines: Vec<String> = (0..100).map(|j| format!("client {i} line {j}")).collect();
        c.send(format!("{}\n", lines.join("\n")).as_bytes())?;
        for line in &lines {
            expect_echo(&mut c, line.as_bytes())?;
        }
        Ok(())
    })
    .or_hint("With many clients at once, each connection needs its own task (tokio::spawn) that owns its socket.")
}

fn echo_idle_client_does_not_block(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut idle = ctx.client(addr)?;
    idle.send(b"I am typing very slow")?;
    idle.note("stays connected without finishing its line");
    let mut other = ctx.client(addr)?;
    other.send(b"hello from another client\n")?;
    let got = other.recv_raw_within(Duration::from_secs(1)).map_err(|f| {
        fail!("a second client got no echo within 1 s while the first one idled mid-line")
            .got(f.got.unwrap_or_default())
            .hint("The server is still busy with the first client: it serves one connection at a time. Spawn a task per connection (tokio::spawn) so that waiting on one client never stops the others.")
    })?;
    if got != b"hello from another client" {
        return Err(fail!("the second client got the wrong echo")
            .got(crate::harness::transcript::show_bytes(&got)));
    }
    Ok(())
}
