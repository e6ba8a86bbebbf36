//! Step 04: balances kept in memory; the reply to an event carries the new balance.

use crate::fail;
use crate::harness::check::{Check, Ctx};
use crate::harness::failure::{OrHint, Outcome};
use crate::harness::wait::concurrently;
use crate::oracle::ledger::Ledger;
use crate::oracle::reply;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const CHECKS: &[Check] = &[
    Check {
        name: "balances_exact",
        about: "balances follow buys and sells exactly, per user, across connections",
        since: 4,
        alone: false,
        run: balances_exact,
    },
    Check {
        name: "balances_concurrent",
        about: "8 clients pipelining 2 000 buys each for one user lose no update",
        since: 4,
        alone: false,
        run: balances_concurrent,
    },
    Check {
        name: "work_done_before_the_reply",
        about: "with --work-us 100000, the reply to an event comes after the work, 100 ms later at least",
        since: 4,
        alone: false,
        run: work_done_before_the_reply,
    },
    Check {
        name: "slow_reader_blocks_nobody",
        about: "a client floods events and never reads its replies, until its writes block; another client is still answered within 2 s",
        since: 4,
        alone: true,
        run: slow_reader_blocks_nobody,
    },
    Check {
        name: "model_checks",
        about: "the crate's model checks pass: loom tries every interleaving of the lesson's races",
        since: 4,
        alone: false,
        run: model_checks,
    },
];

fn model_checks(ctx: &mut Ctx) -> Outcome {
    super::common::crate_tests(ctx, super::common::Tests::Models)
}

fn balances_exact(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?;
    let mut ledger = Ledger::new(ctx.step);
    let script = [
        ("alice", "buy", 100),
        ("bob", "buy", 50),
        ("alice", "sell", 40),
        ("carol", "buy", 1),
        ("bob", "sell", 50),
        ("alice", "buy", 1_000_000_000),
        ("bob", "buy", 3),
    ];
    for (user, action, amount) in script {
        let (line, want) = ledger.event(user, action, amount);
        c.expect(&line, &want)?;
    }
    // A second connection sees the same balances: state belongs to the server, not to a connection.
    let mut other = ctx.client(addr)?;
    let (line, want) = ledger.event("bob", "buy", 1);
    other.expect(&line, &want).map_err(|f| f.hint("A second connection did not see the balances the first one built up: balances belong to the server, shared by every connection (one map behind an Arc), not to a connection's task."))
}

fn balances_concurrent(ctx: &mut Ctx) -> Outcome {
    const CLIENTS: usize = 8;
    const EVENTS: usize = 2_000;
    let addr = ctx.serve(&[])?;
    let clients = ctx.quiet_clients(addr, CLIENTS)?;
    ctx.log.note(
        "checker",
        format!("{CLIENTS} clients each send {EVENTS} buys of 1 for \"hot\" in one write, at the same time"),
    );
    let highest = AtomicI64::new(0);
    concurrently(clients, |_, mut c| {
        let line = format!("{}\n", json!({"user": "hot", "action": "buy", "amount": 1}));
        c.send(line.repeat(EVENTS).as_bytes())?;
        let mut last = 0;
        for _ in 0..EVENTS {
            let got = c.recv_json()?;
            let balance = got.get("balance").and_then(Value::as_i64).ok_or_else(|| {
                fail!("a reply to an event lacks an integer balance")
                    .got(got.to_string())
                    .hint(reply::diagnose(&reply::balance(0), &got))
            })?;
            if balance <= last {
                return Err(fail!("\"hot\"'s balance went from {last} to {balance} after a buy of 1")
                    .hint("One connection's buys made the balance go down: another connection's update overwrote this one's. Read and write the balance under one lock guard: a balance read under one lock and written back under another loses the updates made in between."));
            }
            last = balance;
        }
        highest.fetch_max(last, Ordering::Relaxed);
        Ok(())
    })?;
    let mut c = ctx.client(addr)?;
    let total = (CLIENTS * EVENTS) as i64;
    let line = json!({"user": "hot", "action": "buy", "amount": 1}).to_string();
    let got = c.ask(&line)?;
    let balance = got
        .get("balance")
        .and_then(Value::as_i64)
        .unwrap_or(i64::MIN);
    if balance != total + 1 {
        return Err(fail!("after {total} buys of 1 from {CLIENTS} connections at once, one more buy left the balance at {balance}")
            .expected(format!("{}", total + 1))
            .got(format!("{balance}: {} updates lost", total + 1 - balance))
            .hint("Updates were lost when connections updated one balance at the same time: the read, the addition and the write must happen under one lock guard. A balance read under one lock and written back under another loses the updates made in between."));
    }
    Ok(())
}

fn work_done_before_the_reply(ctx: &mut Ctx) -> Outcome {
    const WORK: Duration = Duration::from_millis(100);
    let work_us = WORK.as_micros().to_string();
    let addr = ctx.serve(&["--work-us", &work_us])?;
    let mut c = ctx.client(addr)?;
    let mut ledger = Ledger::new(ctx.step);
    for round in 0..3 {
        let (line, want) = ledger.event("worker", "buy", 1);
        let asked = Instant::now();
        c.expect(&line, &want)?;
        let took = asked.elapsed();
        if took < WORK {
            return Err(fail!("with --work-us {work_us}, reply {} came {} ms after its event", round + 1, took.as_millis())
                .expected(format!("at least {} ms: the work is done before the reply", WORK.as_millis()))
                .got(format!("{} ms", took.as_millis()))
                .hint("The simulated work was not done: at this step each event takes --work-us microseconds of work (a std::thread::sleep), done where the event is processed, before its reply."));
        }
    }
    Ok(())
}

fn slow_reader_blocks_nobody(ctx: &mut Ctx) -> Outcome {
    /// The flood stops here if the server never stops reading (it then holds the replies).
    const MOST: usize = 256 << 20;
    /// A writer that made no progress for this long is blocked: the buffers are full.
    const STALLED: Duration = Duration::from_millis(300);
    let addr = ctx.serve(&[])?;
    let flooder = ctx.client(addr)?.quiet();
    let line = format!(
        "{}\n",
        json!({"user": "flood", "action": "buy", "amount": 1})
    );
    let chunk = line.repeat(64 * 1024 / line.len());
    flooder.note("sends events without end and never reads a reply, until its writes block");
    // A writer of its own: the flood blocks once the server stops reading, which it must once
    // its replies fill the buffers. It counts what it wrote, so the checker sees it block.
    let mut w = flooder.writer()?;
    // Small buffers on the flooder's side (fixed sizes: the kernel stops growing them), so that
    // its writes block after a few MB rather than after tens.
    {
        use nix::sys::socket::{setsockopt, sockopt};
        let _ = setsockopt(&w, sockopt::RcvBuf, &(64 * 1024));
        let _ = setsockopt(&w, sockopt::SndBuf, &(64 * 1024));
    }
    let stopper = flooder.writer()?;
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let written = Arc::clone(&written);
        std::thread::spawn(move || {
            use std::io::Write;
            while written.load(Ordering::Relaxed) < MOST && w.write_all(chunk.as_bytes()).is_ok() {
                written.fetch_add(chunk.len(), Ordering::Relaxed);
            }
        })
    };
    // Wait until the flood is blocked: from then on, a server that holds a lock while its write
    // to the flooder waits keeps holding it. Blocked means: the writer makes no progress and no
    // more replies arrive (a server that is merely slow to read still sends replies).
    let progress = || (written.load(Ordering::Relaxed), unread(&stopper));
    let started = Instant::now();
    let budget = Duration::from_secs(10);
    let mut other = ctx.client(addr)?;
    let mut ledger = Ledger::new(ctx.step);
    loop {
        let (mut last, mut since) = ((0, 0), Instant::now());
        while started.elapsed() < budget && since.elapsed() < STALLED {
            std::thread::sleep(Duration::from_millis(20));
            let now = progress();
            if now != last || now.0 == 0 {
                (last, since) = (now, Instant::now());
            }
        }
        let blocked = since.elapsed() >= STALLED;
        flooder.note(&format!(
            "{} MB written; its writes {}",
            last.0 >> 20,
            if blocked {
                "block"
            } else {
                "still go through after 10 s"
            }
        ));
        let (line, want) = ledger.event("patient", "buy", 1);
        other.send_line(&line)?;
        let got = other.recv_json_within(Duration::from_secs(2)).map_err(|f| {
            if f.observed {
                return f;
            }
            fail!("a client got no reply within 2 s while another one flooded the server without reading its replies")
                .hint("Another client's writes were blocked because it does not read its replies, and this client waited too: something this client needs (a lock, say a tokio Mutex) was held across a write to the flooding client, or across an .await that waits for one.")
        })?;
        reply::compare(line.as_bytes(), &want, &got)
            .or_hint("Another client's flood must not change this client's replies.")?;
        // On a busy machine a pause of the flood can look like a block: if it moves on within
        // a moment of the reply, the reply proved nothing yet; wait for the real block, ask again.
        std::thread::sleep(STALLED);
        if !blocked || progress() == last || started.elapsed() >= budget {
            break;
        }
        flooder.note("its writes went through again: the block was only a pause");
    }
    // The writer may still be blocked in a write: shutting the socket down wakes it.
    let _ = stopper.shutdown(std::net::Shutdown::Both);
    let _ = writer.join();
    drop(flooder);
    Ok(())
}

/// Bytes received on `stream` and not read yet (FIONREAD).
fn unread(stream: &std::net::TcpStream) -> usize {
    use std::os::fd::AsRawFd;
    let mut n: nix::libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which points at `n`.
    let rc = unsafe { nix::libc::ioctl(stream.as_raw_fd(), nix::libc::FIONREAD, &mut n) };
    if rc == 0 {
        n.max(0) as usize
    } else {
        0
    }
}
