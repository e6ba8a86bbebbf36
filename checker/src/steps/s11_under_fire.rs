//! Step 11 (bonus): under fire. Hostile input and faults that a real server meets, each a named
//! check, deterministic or seeded (the seed is in its transcript): required at step 11, and
//! tried as bonus checks on an earlier step with `checker verify NN --production`.

use super::s01_blocking_echo::{exchange, hello};
use super::s03_parse_events::SEED;
use crate::fail;
use crate::harness::check::{Check, Ctx};
use crate::harness::failure::{OrHint, Outcome};
use crate::harness::transcript::show_bytes;
use crate::harness::wait::poll;
use crate::oracle::client::Client;
use crate::oracle::ledger::{Ledger, Rng};
use crate::oracle::queries::{balance_of, wait_balance};
use crate::oracle::reply::{self, error};
use nix::sys::signal::Signal;
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

pub const CHECKS: &[Check] = &[
    Check {
        name: "slowloris_500",
        about: "500 connections trickling bytes do not slow a normal client down",
        since: 2,
        alone: true,
        run: slowloris_500,
    },
    Check {
        name: "connections_2000",
        about: "2 000 concurrent connections are each answered",
        since: 2,
        alone: false,
        run: connections_2000,
    },
    Check {
        name: "accept_errors_survived",
        about: "running out of file descriptors (accept errors) does not kill the server",
        since: 3,
        alone: false,
        run: accept_errors_survived,
    },
    Check {
        name: "connection_limit",
        about: "past --max-connections a newcomer is told too_many_connections and closed; its place comes back",
        since: 11,
        alone: false,
        run: connection_limit,
    },
    Check {
        name: "refusal_flood_bounded",
        about: "1 000 connections past a limit of 4, each sending and never closing, cost the server at most 64 lingering refusals",
        since: 11,
        alone: false,
        run: refusal_flood_bounded,
    },
    Check {
        name: "signals_under_load_20x",
        about: "SIGINT and SIGTERM under load, 20 times: accepted == processed every time",
        since: 10,
        alone: false,
        run: signals_under_load_20x,
    },
];

fn slowloris_500(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut slow: Vec<TcpStream> = Vec::new();
    for _ in 0..500 {
        slow.push(
            TcpStream::connect(addr)
                .map_err(|e| fail!("opening slow connection {}: {e}", slow.len() + 1))?,
        );
    }
    ctx.log.note(
        "checker",
        "500 connections each trickle one byte every 20 ms of {\"user\":\"slow...",
    );
    let stop = std::sync::atomic::AtomicBool::new(false);
    thread::scope(|scope| {
        let stop = &stop;
        scope.spawn(move || {
            let payload = br#"{"user":"slowloris","action":"buy","amount":1"#;
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for s in &mut slow {
                    let _ = s.write_all(&payload[i % payload.len()..i % payload.len() + 1]);
                }
                i += 1;
                thread::sleep(Duration::from_millis(20));
            }
        });
        let result = (|| -> Outcome {
            let mut c = ctx.client(addr)?;
            let mut ledger = Ledger::new(ctx.step);
            for k in 0..20 {
                let (line, want) = hello(&mut ledger, "normal");
                let asked = Instant::now();
                exchange(&mut c, &line, &want)?;
                if asked.elapsed() > Duration::from_millis(250) {
                    return Err(fail!("request {} of a normal client took {} ms among 500 slow connections", k + 1, asked.elapsed().as_millis())
                        .hint("Slow clients must cost nothing while they wait: a task per connection, never a thread blocked on a read."));
                }
            }
            Ok(())
        })();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        result
    })
}

fn connections_2000(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    ctx.log.note(
        "checker",
        "opens 2 000 connections, sends one event on each, then reads every reply",
    );
    let mut socks = Vec::new();
    for n in 0..2000 {
        let s = TcpStream::connect(addr).map_err(|e| fail!("opening connection {}: {e}", n + 1))?;
        socks.push(s);
    }
    let mut ledger = Ledger::new(ctx.step);
    let mut wants = Vec::new();
    for (n, s) in socks.iter_mut().enumerate() {
        let (line, want) = hello(&mut ledger, &format!("conn{n}"));
        s.write_all(format!("{line}\n").as_bytes())
            .map_err(|e| fail!("writing on connection {}: {e}", n + 1))?;
        wants.push((line, want));
    }
    for (n, (s, (line, want))) in socks.iter_mut().zip(wants).enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while s
            .read(&mut byte)
            .map_err(|e| fail!("connection {} got no reply: {e}", n + 1))?
            == 1
            && byte[0] != b'\n'
        {
            buf.push(byte[0]);
        }
        match want {
            None if buf == line.as_bytes() => {}
            None => {
                return Err(fail!("connection {} got a different line back", n + 1)
                    .expected(line)
                    .got(show_bytes(&buf)))
            }
            Some(want) => {
                let got = reply::parse(&buf)?;
                reply::compare(b"(one event per connection)", &want, &got)?;
            }
        }
    }
    Ok(())
}

fn accept_errors_survived(ctx: &mut Ctx) -> Outcome {
    ctx.limits.open_files = Some(64);
    ctx.exit_means = Some("The server exited while it could not open more files: accept() failed (too many open files) and the error ended the accept loop. That error is temporary: log it, wait a little and accept again; an accept error must never end the server.");
    let addr = ctx.serve(&[])?;
    ctx.log.note(
        "checker",
        "the server may open 64 files; the checker opens 150 connections",
    );
    let mut flood = Vec::new();
    for _ in 0..150 {
        if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            flood.push(s);
        }
    }
    // Give the accept loop time to meet its limit, then free everything.
    thread::sleep(Duration::from_millis(300));
    drop(flood);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut ledger = Ledger::new(ctx.step);
    let (line, want) = ledger.event("after_flood", "buy", 1);
    loop {
        let attempt = ctx.client(addr).and_then(|mut c| c.expect(&line, &want));
        match attempt {
            Ok(()) => return Ok(()),
            Err(f) if Instant::now() >= deadline => {
                return Err(f.hint("When accept fails (too many open files), log it, wait a little and accept again: an accept error must never end the accept loop."))
            }
            Err(_) => thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn connection_limit(ctx: &mut Ctx) -> Outcome {
    const LIMIT: usize = 8;
    let addr = ctx
        .serve(&["--max-connections", &LIMIT.to_string()])
        .or_hint("From step 03 on a server takes --max-connections N (book/src/contract.md, Start-up and flags).")?;
    ctx.log.note(
        "checker",
        format!("the server may serve {LIMIT} connections at once; the checker opens {LIMIT} and has each answered, then more"),
    );
    let mut ledger = Ledger::new(ctx.step);
    let refused = error("too_many_connections");
    let mut served = Vec::new();
    for n in 0..LIMIT {
        let mut c = ctx.client(addr)?;
        let (line, want) = ledger.event(&format!("place{n}"), "buy", 1);
        c.expect(&line, &want)
            .or_hint("A connection within the limit is served like any other.")?;
        served.push(c);
    }
    // One over the limit, silent: the refusal comes without a request.
    let mut silent = ctx.client(addr)?;
    let got = silent.recv_json().or_hint(
        "At the limit, answer a new connection at once with {\"status\":\"error\",\"reason\":\"too_many_connections\"} and close it: take a permit with Semaphore::try_acquire_owned in the accept loop, and keep it in the connection's task until it ends.",
    )?;
    reply::compare(
        b"(nothing: a new connection past the limit)",
        &refused,
        &got,
    )?;
    expect_closed(&mut silent)?;
    // One over the limit that sends first: the same reply in place of the first, then the end.
    // Its event is never processed, and it must not be lost to a reset.
    // It goes on sending for a while (well within the second a refusal lingers), then closes
    // its side: a server that closes with its lines unread resets the connection, and the
    // client's writes fail before it ever reads why it was turned away.
    let mut eager = ctx.client(addr)?;
    let (line, _) = ledger.event("refused", "buy", 1);
    eager.send_line(&line)?;
    eager.note("sends one more event every 20 ms for 300 ms, then closes its side and reads");
    for _ in 0..15 {
        thread::sleep(Duration::from_millis(20));
        if let Err(f) = eager.send_line(&line) {
            return Err(fail!("the refused client's writes failed within 300 ms of connecting: the server closed the connection with its lines unread, and the kernel reset it")
                .got(f.message.clone())
                .hint("A refused connection is closed gracefully: after its one line, shut down your sending side, then read and discard what the client sends until it closes or a second has passed. Closing with unread input resets the connection, and a client that is still sending never reads why it was refused."));
        }
    }
    eager.shutdown_write()?;
    let got = eager.recv_json().or_hint(
        "Refuse with one line, then close gracefully: shut down your writing side and read what the client sent until it closes (closing with unread input resets the connection and can destroy the line).",
    )?;
    reply::compare(line.as_bytes(), &refused, &got)?;
    expect_closed(&mut eager)?;
    // The limit counts open connections, not connections ever made: closing one frees a place.
    // The server learns of the close when it reads the end-of-file, so try until it has.
    drop(served.pop());
    ctx.log.note(
        "checker",
        "closes one of the served connections, then connects until a new one is served (up to 5 s)",
    );
    let (line, want) = ledger.event("next", "buy", 1);
    poll(
        Duration::from_secs(5),
        || {
            let got = ctx.client(addr)?.quiet().ask(&line)?;
            if got == want {
                return Ok((Some(()), ()));
            }
            reply::compare(line.as_bytes(), &refused, &got)?;
            Ok((None, ()))
        },
        |()| {
            fail!("5 s after a served connection closed, new connections are still refused")
            .hint("Release the connection's place when its task ends (drop the permit there), on every path out of it, errors included.")
        },
    )?;
    // The connections that were served all along still are.
    for (n, c) in served.iter_mut().enumerate() {
        let (line, want) = ledger.event(&format!("place{n}"), "buy", 1);
        c.expect(&line, &want)?;
    }
    // Where balances can be read, the refused connection's event must have left no trace, once
    // the newcomer's event (queued after it) has been processed.
    if ctx.step.at_least(6) {
        let c = &mut served[0];
        wait_balance(c, "next", Duration::from_secs(5), |b| b == 1, "1")?;
        let b = balance_of(c, "refused")?;
        if b != 0 {
            return Err(fail!("an event sent on a refused connection was processed")
                .expected("the balance of \"refused\" to stay 0")
                .got(b.to_string())
                .hint("Refuse before reading anything: a refused connection's lines are never parsed or queued."));
        }
    }
    Ok(())
}

/// Fails unless the server closes the connection next, without another line.
fn expect_closed(c: &mut Client) -> Outcome {
    let rest = c.read_to_eof(Duration::from_secs(5)).or_hint(
        "After the refusal line, close the connection: shut your side, and drop the socket once the client closes or a second has passed.",
    )?;
    match rest.first() {
        None => Ok(()),
        Some(line) => Err(fail!("a refused connection got more than its one line")
            .got(show_bytes(line))
            .hint("A refused connection gets one line, then the server closes it.")),
    }
}

fn signals_under_load_20x(ctx: &mut Ctx) -> Outcome {
    let mut rng = Rng::new(SEED);
    for round in 1..=20 {
        let sig = if round % 2 == 0 {
            Signal::SIGTERM
        } else {
            Signal::SIGINT
        };
        let i = ctx.start(&[
            "--workers",
            "2",
            "--work-us",
            "1000",
            "--queue-capacity",
            "32",
        ])?;
        let addr = ctx.server(i).addr;
        let mut clients = ctx.quiet_clients(addr, 3)?;
        let mut sent = 0;
        for c in &mut clients {
            let n = 50 + rng.below(100) as usize;
            sent += n;
            let line = format!(
                "{}\n",
                json!({"user": format!("r{round}"), "action": "buy", "amount": 1})
            );
            c.send(line.repeat(n).as_bytes())?;
        }
        // The first reply shows the server is at work; then the signal.
        let first = clients[0].recv_raw()?;
        ctx.server(i).signal(sig)?;
        let (mut accepted, mut busy) = (0u64, 0u64);
        let mut count = |line: &[u8]| -> Outcome {
            match reply::parse(line)? {
                v if v == reply::accepted() => accepted += 1,
                v if v == reply::busy() => busy += 1,
                v => return Err(fail!("round {round}: unexpected reply {v}")),
            }
            Ok(())
        };
        count(&first)?;
        // Each client reads to the end, then closes: the server's lingering close sees its
        // end-of-file instead of waiting for silence.
        for mut c in clients {
            for line in c.read_to_eof(Duration::from_secs(10))? {
                count(&line)?;
            }
        }
        let status = ctx
            .server(i)
            .wait_exit(Duration::from_secs(10))
            .ok_or_else(|| fail!("round {round}: no exit within 10 s of {sig}"))?;
        if !status.success() {
            return Err(fail!(
                "round {round}: the server {} after {sig}",
                crate::sut::server::describe_exit(status)
            ));
        }
        let last = ctx.server(i).last_stdout_line();
        let m: serde_json::Value = serde_json::from_str(&last).map_err(|_| {
            fail!("round {round}: the last stdout line is not the metrics").got(last.clone())
        })?;
        if m["processed"].as_u64() != Some(accepted) || m["dropped"].as_u64() != Some(busy) {
            return Err(fail!("round {round} ({sig}, {sent} events sent): clients saw {accepted} accepted and {busy} server_busy", )
                .got(last)
                .hint("Every accepted event is processed before the exit, and every reply owed is delivered (lingering close)."));
        }
        ctx.stop(i);
    }
    Ok(())
}

/// How many files a process has open (Linux).
fn open_files(pid: i32) -> Option<usize> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|dir| dir.count())
}

fn refusal_flood_bounded(ctx: &mut Ctx) -> Outcome {
    const LIMIT: usize = 4;
    const FLOOD: usize = 1_000;
    /// The contract's bound on lingering refusals, and room for the runtime's own files.
    const LINGERING: usize = 64;
    const SLACK: usize = 32;
    let i = ctx
        .start(&["--max-connections", &LIMIT.to_string()])
        .or_hint("From step 11 a server takes --max-connections N (book/src/contract.md, Start-up and flags).")?;
    let addr = ctx.server(i).addr;
    let pid = ctx.server(i).pid().as_raw();
    let mut ledger = Ledger::new(ctx.step);
    let mut served = Vec::new();
    for n in 0..LIMIT {
        let mut c = ctx.client(addr)?;
        let (line, want) = ledger.event(&format!("place{n}"), "buy", 1);
        c.expect(&line, &want)?;
        served.push(c);
    }
    let Some(before) = open_files(pid) else {
        return ctx.skip("this system does not say how many files a process has open");
    };
    ctx.log.note(
        "checker",
        format!("{LIMIT} connections served; the server has {before} files open. {FLOOD} more connect, each sending an event and never closing"),
    );
    let (event, _) = ledger.event("flood", "buy", 1);
    let mut flood = Vec::new();
    let mut peak = before;
    for n in 0..FLOOD {
        let mut s = TcpStream::connect(addr)
            .map_err(|e| fail!("opening flood connection {}: {e}", n + 1))?;
        let _ = s.write_all(format!("{event}\n").as_bytes());
        flood.push(s);
        if n % 50 == 0 {
            peak = peak.max(open_files(pid).unwrap_or(0));
        }
    }
    peak = peak.max(open_files(pid).unwrap_or(0));
    // What the first of them heard says which way a failure went.
    let mut first = Vec::new();
    flood[0].set_read_timeout(Some(Duration::from_secs(2))).ok();
    let _ = flood[0].read_to_end(&mut first);
    ctx.log.note(
        "checker",
        format!("the server had at most {peak} files open during the flood; the first of the flood heard {}", show_bytes(&first)),
    );
    let bound = before + LINGERING + SLACK;
    if peak > bound {
        let refused = first.starts_with(br#"{"status":"error","reason":"too_many_connections"}"#);
        let hint = if refused {
            "The connections past the limit were refused, but each refusal kept its socket open while it lingered, and nothing bounded how many lingered at once: a flood of connections costs a socket each. Bound the lingering refusals (at most 64 at a time, a semaphore of their own), and past that write the line without waiting and close at once."
        } else {
            "The connections past the limit were not refused: each one was taken in and kept. Serve at most --max-connections at once: a semaphore with that many permits, one taken without waiting in the accept loop; past it, refuse with one too_many_connections line."
        };
        return Err(fail!(
            "{FLOOD} connections past a limit of {LIMIT} made the server hold {peak} files open"
        )
        .expected(format!(
            "at most about {bound}: the limit, 64 lingering refusals, and the server's own"
        ))
        .got(format!("{peak} open files"))
        .hint(hint));
    }
    // The served connections were served all along.
    for (n, c) in served.iter_mut().enumerate() {
        let (line, want) = ledger.event(&format!("place{n}"), "buy", 1);
        c.expect(&line, &want)
            .or_hint("A flood of refused connections must not disturb the ones being served.")?;
    }
    Ok(())
}
