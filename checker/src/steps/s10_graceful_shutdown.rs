//! Step 10: graceful shutdown. Stop accepting, answer what was read, process what was
//! accepted, report, exit 0; and never lose an event a client was told was accepted.

use crate::fail;
use crate::harness::check::{Check, Ctx};
use crate::harness::failure::{OrHint, Outcome};
use crate::oracle::client::Client;
use crate::oracle::queries::Metrics;
use crate::oracle::reply;
use crate::sut::server::describe_exit;
use nix::sys::signal::Signal;
use serde_json::json;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

pub const CHECKS: &[Check] = &[
    Check { name: "sigint_idle_exits_clean", about: "SIGINT with idle clients: end of file for each, final metrics, exit 0", since: 10,alone: false,run: sigint_idle_exits_clean },
    Check { name: "sigterm_idle_exits_clean", about: "SIGTERM with idle clients: end of file for each, final metrics, exit 0", since: 10,alone: false,run: sigterm_idle_exits_clean },
    Check { name: "shutdown_under_load_loses_nothing", about: "SIGINT during a burst: new connections refused, accepted == processed, server_busy == dropped", since: 10,alone: false,run: shutdown_under_load_loses_nothing },
    Check { name: "shutdown_keeps_the_replies_of_a_client_still_sending", about: "a client still writing through the signal, not reading for 1.5 s, gets every reply and then end of file, never a reset", since: 10, alone: false, run: shutdown_keeps_the_replies_of_a_client_still_sending },
    Check { name: "second_signal_exits_at_once", about: "a second signal during a long drain exits at once, non-zero", since: 10,alone: false,run: second_signal_exits_at_once },
    Check { name: "shutdown_timeout_reports_loss", about: "a drain longer than --shutdown-timeout-ms exits 1 and says how many events were lost", since: 10,alone: false,run: shutdown_timeout_reports_loss },
];

/// The final metrics: the last stdout line, once the server has exited.
fn final_metrics(ctx: &mut Ctx, i: usize) -> Outcome<Metrics> {
    let last = ctx.server(i).last_stdout_line();
    let value: serde_json::Value = serde_json::from_str(&last).map_err(|_| {
        fail!("the last stdout line is not the final metrics object")
            .expected("{\"received\":R,\"processed\":P,\"dropped\":D,\"refused\":F,...}")
            .got(if last.is_empty() { "no line after `listening on`".to_string() } else { last.clone() })
            .hint("After draining, print the final metrics as one JSON line on stdout (println! then flush), after everything else.")
    })?;
    Metrics::from_json(&value)
}

/// Waits for the server to exit and requires `code`.
fn expect_exit(ctx: &mut Ctx, i: usize, within: Duration, code: i32, why: &str) -> Outcome {
    match ctx.server(i).wait_exit(within) {
        None => Err(fail!(
            "the server did not exit within {} s of the signal",
            within.as_secs_f32()
        )
        .hint(why.to_string())),
        Some(status) if status.code() == Some(code) => Ok(()),
        Some(status) => {
            let hint = match status.code() {
                None => "The signal killed the server: nothing handled it. Listen for SIGINT and SIGTERM with tokio::signal::unix and turn them into a graceful shutdown.",
                Some(_) => why,
            };
            Err(
                fail!("the server {} after the signal", describe_exit(status))
                    .expected(format!("exit code {code}"))
                    .hint(hint.to_string()),
            )
        }
    }
}

fn idle_exit(ctx: &mut Ctx, sig: Signal) -> Outcome {
    let i = ctx.start(&[])?;
    let addr = ctx.server(i).addr;
    let mut busy = ctx.client(addr)?;
    busy.expect(
        &json!({"user": "ida", "action": "buy", "amount": 3}).to_string(),
        &reply::accepted(),
    )?;
    let idle = ctx.client(addr)?;
    let mut typing = ctx.client(addr)?;
    typing.send(b"{\"user\":\"ida\",")?;
    ctx.log
        .note("checker", format!("sends {sig} to the server"));
    ctx.server(i).signal(sig)?;
    let why = if sig == Signal::SIGTERM {
        "SIGTERM is how service managers stop a server: handle it exactly like SIGINT, and let idle clients not hold the exit back."
    } else {
        "Idle clients must not hold the exit back: on shutdown, stop reading, flush, and close every connection."
    };
    // Each client reads to its end of file and closes, as a client does once told the server is
    // going: the server's lingering close then sees the client's end at once.
    let mut ends = Ok(());
    for mut c in [busy, idle, typing] {
        match c.read_to_eof(Duration::from_secs(3)) {
            Ok(rest) if rest.is_empty() => {}
            Ok(_) => {
                return Err(fail!(
                    "{} got replies it did not ask for after shutdown",
                    c.name
                ))
            }
            Err(f) => {
                ends = Err(f);
                break;
            }
        }
    }
    // A signal that killed the server, or one it ignored, gets expect_exit's own hint.
    expect_exit(ctx, i, Duration::from_secs(3), 0, why)?;
    ends?;
    let m = final_metrics(ctx, i)?;
    if (m.received, m.processed) != (1, 1) {
        return Err(fail!("the final metrics do not count the one event")
            .expected("received 1, processed 1")
            .got(format!("{m:?}")));
    }
    Ok(())
}

fn sigint_idle_exits_clean(ctx: &mut Ctx) -> Outcome {
    idle_exit(ctx, Signal::SIGINT)
}

fn sigterm_idle_exits_clean(ctx: &mut Ctx) -> Outcome {
    idle_exit(ctx, Signal::SIGTERM)
}

/// Polls new connections until one is refused, or the server has exited.
fn wait_until_refused(ctx: &mut Ctx, i: usize, addr: SocketAddr, within: Duration) -> Outcome {
    let deadline = Instant::now() + within;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err()
            || ctx.server(i).exited().is_some()
        {
            ctx.log.note("checker", "a new connection is refused");
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(fail!("new connections were still accepted {} ms after the signal", within.as_millis())
                .hint("On the first signal, leave the accept loop and drop the listener at once, so that new clients are refused."));
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Replies one client saw before end of file.
#[derive(Default)]
struct Seen {
    accepted: u64,
    busy: u64,
}

impl Seen {
    /// Counts one reply to an event: accepted or server_busy, nothing else.
    fn count(&mut self, line: &[u8]) -> Outcome {
        match reply::parse(line)? {
            v if v == reply::accepted() => self.accepted += 1,
            v if v == reply::busy() => self.busy += 1,
            v => return Err(fail!("unexpected reply to an event").got(v.to_string())),
        }
        Ok(())
    }
}

fn shutdown_under_load_loses_nothing(ctx: &mut Ctx) -> Outcome {
    const CLIENTS: usize = 6;
    const EVENTS: usize = 400;
    /// The backlog a full queue holds: 40 events of 50 ms on one worker, 2 s of work. A fixed
    /// wait shorter than that in place of the drain loses events; a drain that waits out the
    /// timeout (30 s here) instead of the workers exits too late.
    const WORK: Duration = Duration::from_millis(50);
    const QUEUE: u32 = 40;
    let work_us = WORK.as_micros().to_string();
    let queue = QUEUE.to_string();
    let i = ctx.start(&[
        "--workers",
        "1",
        "--work-us",
        &work_us,
        "--queue-capacity",
        &queue,
        "--shutdown-timeout-ms",
        "30000",
    ])?;
    let addr = ctx.server(i).addr;
    let clients = ctx.quiet_clients(addr, CLIENTS)?;
    let replies = Arc::new(AtomicU64::new(0));
    let busy_seen = Arc::new(AtomicU64::new(0));
    ctx.log.note("checker", format!("{CLIENTS} clients pipeline {EVENTS} events each (1 worker, {} ms of work, queue of {QUEUE}: {} s of backlog when full)", WORK.as_millis(), (WORK * QUEUE).as_secs_f32()));
    let mut signal_at = None;
    let results: Vec<Outcome<Seen>> = thread::scope(|scope| {
        let handles: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(n, mut c)| {
                let (replies, busy_seen) = (replies.clone(), busy_seen.clone());
                scope.spawn(move || -> Outcome<Seen> {
                    let mut all = String::new();
                    for k in 0..EVENTS {
                        all.push_str(&json!({"user": format!("load{}", (n + k) % 16), "action": "buy", "amount": 1}).to_string());
                        all.push('\n');
                    }
                    // A writer beside the reader: the server may stop reading at any time.
                    let mut w = c.writer()?;
                    let writer = thread::spawn(move || {
                        use std::io::Write;
                        let _ = w.write_all(all.as_bytes());
                        w
                    });
                    let mut seen = Seen::default();
                    let deadline = Instant::now() + Duration::from_secs(20);
                    loop {
                        let left = deadline.saturating_duration_since(Instant::now());
                        let Some(line) = c.next_line(left).or_hint("After the signal every connection ends with end of file once its replies are flushed.")? else {
                            break;
                        };
                        let got = reply::parse(&line)?;
                        if got == reply::accepted() {
                            seen.accepted += 1;
                        } else if got == reply::busy() {
                            seen.busy += 1;
                            busy_seen.fetch_add(1, Ordering::Relaxed);
                        } else {
                            return Err(fail!("unexpected reply during the burst").got(got.to_string()));
                        }
                        replies.fetch_add(1, Ordering::Relaxed);
                    }
                    drop(writer.join());
                    Ok(seen)
                })
            })
            .collect();
        // Signal once the queue is clearly backed up.
        let deadline = Instant::now() + Duration::from_secs(10);
        let backed_up =
            || replies.load(Ordering::Relaxed) >= 200 && busy_seen.load(Ordering::Relaxed) > 0;
        while !backed_up() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        let signalled = if backed_up() {
            signal_at = Some(Instant::now());
            ctx.log.note(
                "checker",
                format!(
                    "sends SIGINT after {} replies",
                    replies.load(Ordering::Relaxed)
                ),
            );
            ctx.server(i).signal(Signal::SIGINT)
        } else {
            ctx.stop(i); // ends the clients' reads
            Err(fail!("the queue never backed up: no server_busy among the first 200 replies within 10 s")
                .hint("With a queue of 40 and one worker doing 50 ms of work per event, 2 400 pipelined events must overflow the queue: use try_send on a channel bounded by --queue-capacity."))
        };
        let refused =
            signalled.and_then(|_| wait_until_refused(ctx, i, addr, Duration::from_millis(1000)));
        let mut results: Vec<Outcome<Seen>> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(fail!("a client thread panicked")))
            })
            .collect();
        if let Err(f) = refused {
            results.insert(0, Err(f));
        }
        results
    });
    let mut total = Seen::default();
    let backlog = WORK * QUEUE;
    for r in results {
        let seen = match r {
            Ok(seen) => seen,
            // Reset by a server that is gone already: it left before the work was done.
            Err(f) if f.symptom == Some("saw the connection reset") => {
                let after = signal_at.map(|at| at.elapsed()).unwrap_or_default();
                // A process that is exiting resets its connections a moment before it is gone.
                let gone = Instant::now() + Duration::from_secs(1);
                while ctx.server(i).exited().is_none() && Instant::now() < gone {
                    thread::sleep(Duration::from_millis(10));
                }
                if after < backlog && ctx.server(i).exited().is_some() {
                    return Err(fail!("{}; the server had exited within {} ms of the signal", f.message, after.as_millis())
                        .hint(format!("The server exited before its {} s of queued work could be done, and the kernel reset the connections of the clients still sending: it did not wait for the workers to drain the queue (a fixed sleep, or no wait at all). The workers stop when every sender of the queue is gone and the queue is empty: let them, and join them before printing the metrics.", backlog.as_secs())));
                }
                return Err(f);
            }
            Err(f) => return Err(f),
        };
        total.accepted += seen.accepted;
        total.busy += seen.busy;
    }
    ctx.log.note(
        "checker",
        format!(
            "clients saw {} accepted and {} server_busy",
            total.accepted, total.busy
        ),
    );
    expect_exit(
        ctx,
        i,
        Duration::from_secs(10),
        0,
        &format!("The queue held about {} s of work when the signal came, and the server was still running 10 s later: the shutdown waits for something else than the workers (a fixed sleep, or the whole --shutdown-timeout-ms of 30 s). Wait for the workers to finish the queue, and exit as soon as they have.", backlog.as_secs_f32()),
    )?;
    let exited_after = signal_at.map(|at| at.elapsed()).unwrap_or_default();
    let m = final_metrics(ctx, i)?;
    if m.processed != total.accepted {
        let hint = if m.processed > total.accepted {
            "Clients received fewer accepted replies than the server processed: replies were lost on the way out. Write every reply you owe before closing, then shut down the write side and read until the client's end of file: closing a socket with unread input sends a reset that destroys replies in flight.".to_string()
        } else if exited_after < backlog {
            format!("The server exited {} ms after the signal, before its {} s of queued work could be done: it did not wait for the workers to drain the queue (a fixed sleep, or no wait at all). The workers stop when every sender of the queue is gone and the queue is empty: let them, and join them before printing the metrics.", exited_after.as_millis(), backlog.as_secs_f32())
        } else {
            "Accepted events were lost: let the workers drain the queue until it is empty (they stop when every sender is dropped), and join them before printing the metrics; an event answered accepted must still reach the queue during shutdown.".to_string()
        };
        return Err(fail!(
            "{} events were answered accepted but the final metrics say {} processed",
            total.accepted,
            m.processed
        )
        .expected(format!("processed == {}", total.accepted))
        .got(format!("{m:?}"))
        .hint(hint));
    }
    if m.dropped != total.busy || m.received != total.accepted + total.busy {
        return Err(fail!("the final metrics do not match the replies clients received ({} accepted, {} server_busy)", total.accepted, total.busy)
            .expected(format!("received {}, dropped {}", total.accepted + total.busy, total.busy))
            .got(format!("{m:?}"))
            .hint("Every line already parsed gets its reply: count an event in received only once it will be answered, and answer it before closing."));
    }
    Ok(())
}

/// Starts a server with a long backlog to drain: one worker, `events` events of 100 ms.
fn long_drain(ctx: &mut Ctx, extra: &[&str], events: u64) -> Outcome<(usize, Client, u64)> {
    let flags = [
        &[
            "--workers",
            "1",
            "--work-us",
            "100000",
            "--queue-capacity",
            "100",
        ][..],
        extra,
    ]
    .concat();
    let i = ctx.start(&flags)?;
    let addr = ctx.server(i).addr;
    let mut c = ctx.client(addr)?;
    let amounts: Vec<u64> = (1..=events).collect();
    let b = super::s05_backpressure::burst(&mut c, "slow", &amounts, Duration::from_secs(2))?;
    Ok((i, c, b.accepted.len() as u64))
}

fn second_signal_exits_at_once(ctx: &mut Ctx) -> Outcome {
    let (i, _client, _) = long_drain(ctx, &[], 40)?;
    let addr = ctx.server(i).addr;
    ctx.log
        .note("checker", "sends SIGINT: about 4 s of events to drain");
    ctx.server(i).signal(Signal::SIGINT)?;
    wait_until_refused(ctx, i, addr, Duration::from_secs(1))?;
    ctx.log.note("checker", "sends a second SIGINT");
    ctx.server(i).signal(Signal::SIGINT)?;
    match ctx.server(i).wait_exit(Duration::from_secs(1)) {
        None => Err(fail!("the server was still running 1 s after a second SIGINT")
            .hint("Keep listening for signals during shutdown: a second one means the operator wants out now (std::process::exit with a non-zero code).")),
        Some(status) if status.success() => Err(fail!("the server exited with code 0 after a second SIGINT")
            .expected("a non-zero exit code: the drain was cut short")
            .hint("Exit with a non-zero code when a second signal interrupts the drain.")),
        Some(_) => Ok(()),
    }
}

fn shutdown_timeout_reports_loss(ctx: &mut Ctx) -> Outcome {
    let (i, _client, accepted) = long_drain(ctx, &["--shutdown-timeout-ms", "300"], 30)?;
    ctx.log.note("checker", format!("sends SIGINT with {accepted} accepted events of 100 ms each and a 300 ms shutdown timeout"));
    // Only what the server says after the signal counts: a number it logged before cannot be
    // the report of a loss that had not happened yet.
    let said_before = ctx.server(i).stderr_mark();
    ctx.server(i).signal(Signal::SIGINT)?;
    expect_exit(
        ctx,
        i,
        Duration::from_secs(3),
        1,
        "When draining outlasts --shutdown-timeout-ms, exit with code 1.",
    )?;
    let m = final_metrics(ctx, i)?;
    let lost = accepted.saturating_sub(m.processed);
    if lost == 0 {
        return Err(fail!("the server says it processed all {accepted} events within 300 ms, which takes {} ms of work", accepted * 100)
            .got(format!("{m:?}")));
    }
    let stderr = ctx.server(i).stderr_since_at_exit(said_before);
    let says_it = stderr
        .split(|c: char| !c.is_ascii_digit())
        .any(|w| w == lost.to_string());
    if !says_it {
        return Err(fail!("after the signal, stderr does not say how many accepted events were not processed")
            .expected(format!("the number {lost} ({accepted} accepted - {} processed) on stderr", m.processed))
            .got(stderr.lines().last().unwrap_or("nothing").to_string())
            .hint("On timeout, eprintln! how many accepted events (received - dropped - processed) were left unprocessed."));
    }
    Ok(())
}

fn shutdown_keeps_the_replies_of_a_client_still_sending(ctx: &mut Ctx) -> Outcome {
    /// Longer than any fixed wait a server might put in place of the lingering close.
    const PAUSE: Duration = Duration::from_millis(1500);
    /// A writer that made no progress for this long is blocked: the buffers are full.
    const STALLED: Duration = Duration::from_millis(300);
    let i = ctx.start(&["--workers", "2", "--queue-capacity", "100000"])?;
    let addr = ctx.server(i).addr;
    let mut c = ctx.client(addr)?.quiet();
    let mut w = c.writer()?;
    // A small receive buffer (fixed: the kernel stops growing it), so that replies the client
    // does not read soon back up into the server.
    let _ = nix::sys::socket::setsockopt(&w, nix::sys::socket::sockopt::RcvBuf, &(64 * 1024));
    let stop = std::sync::atomic::AtomicBool::new(false);
    let written = std::sync::atomic::AtomicUsize::new(0);
    let line = format!(
        "{}\n",
        json!({"user": "chatty", "action": "buy", "amount": 1})
    );
    c.note("writes events without end, and reads the replies");
    let outcome = thread::scope(|scope| -> Outcome<(u64, u64)> {
        let (stop, written) = (&stop, &written);
        // Returns the error that ended its writing early, if one did.
        let writer = scope.spawn(move || {
            use std::io::Write;
            let batch = line.repeat(100);
            while !stop.load(Ordering::Relaxed) {
                if let Err(e) = w.write_all(batch.as_bytes()) {
                    return Some(e.kind());
                }
                written.fetch_add(batch.len(), Ordering::Relaxed);
            }
            // The client has read its end of file: it closes its side too.
            let _ = w.shutdown(std::net::Shutdown::Write);
            None
        });
        let read = (|| -> Outcome<(u64, u64)> {
            let mut seen = Seen::default();
            while seen.accepted < 2000 {
                let line = c.recv_raw()?;
                seen.count(&line)?;
            }
            // Stop reading until the client's writes block: the server then owes replies it
            // cannot write yet, so a server that drops what it owes at shutdown shows on
            // every run, not only when the signal happens to find replies unsent.
            c.note("stops reading, and goes on writing until its writes block");
            let (mut last, mut since) = (written.load(Ordering::Relaxed), Instant::now());
            let started = Instant::now();
            while since.elapsed() < STALLED && started.elapsed() < Duration::from_secs(10) {
                thread::sleep(Duration::from_millis(20));
                let now = written.load(Ordering::Relaxed);
                if now != last {
                    (last, since) = (now, Instant::now());
                }
            }
            ctx.log.note("checker", format!("sends SIGINT after {} replies read, with replies still owed; the client goes on writing, and reads nothing for {} ms more", seen.accepted + seen.busy, PAUSE.as_millis()));
            ctx.server(i).signal(Signal::SIGINT)?;
            thread::sleep(PAUSE);
            c.note("reads again, to the end");
            loop {
                let next = c.next_line(Duration::from_secs(5)).map_err(|f| {
                    if f.symptom == Some("saw the connection reset") {
                        fail!("the connection was reset instead of closed: the replies still on their way were destroyed")
                            .expected("every reply, then end of file")
                            .got("a reset (RST)")
                            .hint("The server closed the socket while the client's events were still arriving unread: the kernel answers that with a reset, and the reset throws away the replies not yet read by the client. Close gracefully: shut down your sending side, then read and discard what the client still sends until its end of file (or a moment of silence, or the deadline), and only then close.")
                    } else {
                        f
                    }
                })?;
                match next {
                    Some(line) => seen.count(&line)?,
                    None => break,
                }
            }
            c.note(&format!(
                "end of file, after {} accepted and {} server_busy",
                seen.accepted, seen.busy
            ));
            Ok((seen.accepted, seen.busy))
        })();
        stop.store(true, Ordering::Relaxed);
        let broke = writer.join().ok().flatten();
        // A reply cut short, then end of file, while the client's own writes failed: the
        // reset destroyed the rest of the line in flight.
        if let (Err(f), Some(kind)) = (&read, broke) {
            if f.symptom == Some("got a reply without its newline") {
                return Err(fail!("the replies stopped in the middle of a line, and the client's writes failed ({kind:?}): the connection was reset, not closed")
                    .expected("every reply, then end of file")
                    .got(format!("a reply cut short, then end of file; {kind:?} while sending"))
                    .hint("The server closed the socket while the client's events were still arriving: the kernel answers that with a reset, which throws away replies not yet delivered. Close gracefully: shut down your sending side, then read and discard what the client still sends until its end of file (or a moment of silence, or the deadline), and only then close."));
            }
        }
        // A reply cut short, then end of file, with the client's writes unharmed: the server
        // stopped writing in the middle of a reply. Two thousand whole lines came before it, so
        // it does end its replies with a newline; what it owed at the end it dropped.
        if let Err(f) = &read {
            if f.symptom == Some("got a reply without its newline") {
                return Err(fail!("the replies stopped in the middle of a line, then end of file: replies were lost on the way out")
                    .expected("every reply, whole, then end of file")
                    .got(f.got.clone().unwrap_or_else(|| "a reply cut short".into()))
                    .hint("Every line already read gets its reply, and every reply is written whole before the connection is closed: on shutdown, finish writing what is owed (a write may take several tries while the client reads slowly), then shut down your sending side."));
            }
        }
        let read = read?;
        // The replies may all have arrived before the reset did; the writer still felt it.
        if let Some(kind) = broke {
            return Err(fail!("the client's writes failed ({kind:?}) before it had read the server's end of file: the connection was reset, not closed")
                .expected("the server reads what the client still sends until the client's end of file, then closes")
                .got(format!("{kind:?} while sending"))
                .hint("The server closed the socket while the client's events were still arriving: the kernel answers that with a reset, which throws away replies not yet delivered. Close gracefully: shut down your sending side, then read and discard what the client still sends until its end of file (or a moment of silence, or the deadline), and only then close."));
        }
        Ok(read)
    });
    let (accepted, busy) = outcome?;
    expect_exit(
        ctx,
        i,
        Duration::from_secs(12),
        0,
        "After the client's end of file, the connection is done: exit once everything is drained.",
    )?;
    let m = final_metrics(ctx, i)?;
    if m.processed != accepted || m.dropped != busy {
        return Err(fail!("the client read {accepted} accepted and {busy} server_busy replies, but the final metrics say {} processed and {} dropped", m.processed, m.dropped)
            .got(format!("{m:?}"))
            .hint("Replies were lost on the way out, or events were answered after their counting: every line already read gets its reply, written before the connection is closed."));
    }
    Ok(())
}
