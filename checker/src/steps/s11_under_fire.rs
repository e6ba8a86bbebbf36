//! Step 11 (bonus): under fire. Hostile input and faults that a real server meets, each a named
//! check, deterministic or seeded (the seed is in its transcript): required at step 11, and
//! tried as bonus checks on an earlier step with `checker verify NN --production`.

use crate::fail;
use crate::harness::check::{Check, Ctx};
use crate::harness::failure::{OrHint, Outcome};
use crate::harness::transcript::show_bytes;
use crate::harness::wait::poll;
use crate::oracle::client::Client;
use crate::oracle::ledger::{mixed_lines, Ledger, Rng};
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
        name: "split_at_every_boundary",
        about: "40 mixed lines, sent in two writes split at every byte, get the same replies",
        since: 3,run: split_at_every_boundary,
    },
    Check {
        name: "hundred_mb_line",
        about: "a 100 MB line with no newline: line_too_long, memory bounded, connection usable",
        since: 3,run: hundred_mb_line,
    },
    Check {
        name: "deep_nesting",
        about: "JSON nested 32 000 and 100 000 deep is refused without a crash",
        since: 3,run: deep_nesting,
    },
    Check {
        name: "odd_numbers_and_names",
        about: "numbers past i64 and u64, exponents, leading zeros, unicode and 60 KB user names",
        since: 3,run: odd_numbers_and_names,
    },
    Check {
        name: "reset_mid_reply",
        about: "a client that resets the connection while replies flow does not hurt the server",
        since: 3,run: reset_mid_reply,
    },
    Check {
        name: "slowloris_500",
        about: "500 connections trickling bytes do not slow a normal client down",
        since: 3,run: slowloris_500,
    },
    Check {
        name: "connections_2000",
        about: "2 000 concurrent connections are each answered",
        since: 3,run: connections_2000,
    },
    Check {
        name: "accept_errors_survived",
        about: "running out of file descriptors (accept errors) does not kill the server",
        since: 3,run: accept_errors_survived,
    },
    Check {
        name: "connection_limit",
        about: "past --max-connections a newcomer is told too_many_connections and closed; its place comes back",
        since: 11,run: connection_limit,
    },
    Check {
        name: "signals_under_load_20x",
        about: "SIGINT and SIGTERM under load, 20 times: accepted == processed every time",
        since: 10,run: signals_under_load_20x,
    },
];

/// The seed of the seeded scenarios; change it to explore, and it is in every transcript.
const SEED: u64 = 0x5EED_0006;

fn split_at_every_boundary(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?.quiet();
    let mut ledger = Ledger::new(ctx.step);
    let first = mixed_lines(&mut Ledger::new(ctx.step), SEED, 40);
    let stream: Vec<u8> = first
        .iter()
        .flat_map(|(l, _)| l.iter().copied().chain([b'\n']))
        .collect();
    c.note(&format!(
        "sends the same 40 lines ({} bytes, seed {SEED:#x}) split in two at every byte",
        stream.len()
    ));
    for cut in 0..=stream.len() {
        // The same lines each time; the ledger follows the balances they build up.
        let lines = mixed_lines(&mut ledger, SEED, 40);
        c.send(&stream[..cut])?;
        // A pause makes the two halves arrive in separate reads.
        thread::sleep(Duration::from_micros(300));
        c.send(&stream[cut..])?;
        for (i, (line, want)) in lines.iter().enumerate() {
            let got = c.recv_json()?;
            if &got != want {
                return Err(fail!("split at byte {cut}: the reply to line {} is wrong", i + 1)
                    .expected(want.to_string())
                    .got(format!("{got} (line: {})", show_bytes(line)))
                    .hint("A read can end anywhere, even inside a multi-byte character or between \\r and \\n: keep partial bytes until their newline arrives."));
            }
        }
    }
    Ok(())
}

fn hundred_mb_line(ctx: &mut Ctx) -> Outcome {
    let i = ctx.start(&[])?;
    let addr = ctx.server(i).addr;
    let mut c = ctx.client(addr)?.quiet();
    let baseline = ctx.server(i).peak_rss_kib();
    c.note("sends {\"user\":\" and then 100 MB of 'a', no newline, in 1 MiB writes");
    c.send(br#"{"user":""#)?;
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..100 {
        c.send(&chunk)?;
    }
    c.send(b"\n")?;
    let got = c.recv_json()?;
    reply::compare(b"(the 100 MB line)", &error("line_too_long"), &got)?;
    let mut ledger = Ledger::new(ctx.step);
    let (line, want) = ledger.event("after", "buy", 1);
    c.expect(&line, &want)?;
    let grew = ctx.server(i).peak_rss_kib().saturating_sub(baseline) / 1024;
    c.note(&format!("server memory grew by at most {grew} MiB"));
    if grew > 32 {
        return Err(fail!("the server's memory grew by {grew} MiB while reading one long line")
            .expected("at most 32 MiB: a line is capped at 64 KiB")
            .hint("Stop buffering a line once it is longer than 65 536 bytes: answer line_too_long and discard the rest as it arrives."));
    }
    Ok(())
}

fn deep_nesting(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?;
    let mut ledger = Ledger::new(ctx.step);
    for depth in [32_000usize, 100_000] {
        let line = format!("{}{}\n", "[".repeat(depth), "]".repeat(depth));
        c.note(&format!(
            "sends an array nested {depth} deep ({} bytes)",
            line.len() - 1
        ));
        let mut quiet = c;
        quiet = quiet.quiet();
        quiet.send(line.as_bytes())?;
        let got = quiet.recv_json().or_hint("Deeply nested JSON must not crash the server (a recursive parser without a depth limit overflows its stack); serde_json stops at depth 128.")?;
        let reason = got.get("reason").and_then(|r| r.as_str()).unwrap_or("");
        let allowed: &[&str] = if line.len() - 1 > 65_536 {
            &["line_too_long"]
        } else {
            &["invalid_json", "invalid_event"]
        };
        if !allowed.contains(&reason) {
            return Err(fail!("JSON nested {depth} deep got the wrong reply")
                .expected(allowed.join(" or "))
                .got(got.to_string()));
        }
        c = quiet;
    }
    let (line, want) = ledger.event("deep", "buy", 1);
    c.expect(&line, &want)
}

fn odd_numbers_and_names(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?;
    let mut ledger = Ledger::new(ctx.step);
    for (amount, what) in [
        ("9223372036854775808", "just past i64"),
        ("18446744073709551615", "u64's largest"),
        ("99999999999999999999999999999", "past u64"),
        ("-0", "minus zero"),
        ("1e0", "an exponent"),
        ("1.000", "a fraction of zeros"),
    ] {
        let line = format!(r#"{{"user":"odd","action":"buy","amount":{amount}}}"#);
        let got = c.ask(&line)?;
        reply::compare(line.as_bytes(), &error("invalid_event"), &got)
            .map_err(|f| f.hint(format!("{what} is not an amount from 1 to 1 000 000 000")))?;
    }
    for line in [
        r#"{"user":"odd","action":"buy","amount":01}"#,
        r#"{"user":"odd","action":"buy","amount":0x10}"#,
        r#"{"user":"odd","action":"buy","amount":+5}"#,
    ] {
        c.expect(line, &error("invalid_json")).or_hint(
            "JSON has no leading zeros, hexadecimal or plus signs: these lines are not JSON.",
        )?;
    }
    for user in ["Zoë 🦀 مرحبا", "tab\tand\u{0}nul", &"x".repeat(60_000)] {
        let (line, want) = ledger.event(user, "buy", 7);
        c.send(format!("{line}\n").as_bytes())?;
        let got = c.recv_json()?;
        reply::compare(line.as_bytes(), &want, &got).or_hint("Any non-empty string is a user name: unicode, control characters and long names included.")?;
    }
    Ok(())
}

fn reset_mid_reply(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    {
        let mut rude = ctx.client(addr)?.quiet();
        let line = format!(
            "{}\n",
            json!({"user": "rude", "action": "buy", "amount": 1})
        );
        rude.send(line.repeat(5000).as_bytes())?;
        for _ in 0..10 {
            rude.recv_json()?;
        }
        rude.note("reads 10 of 5 000 replies, then resets the connection (RST)");
        let s = rude.writer()?;
        nix::sys::socket::setsockopt(
            &s,
            nix::sys::socket::sockopt::Linger,
            &nix::libc::linger {
                l_onoff: 1,
                l_linger: 0,
            },
        )
        .map_err(|e| fail!("setting SO_LINGER: {e}"))?;
    }
    let mut c = ctx.client(addr)?;
    let mut ledger = Ledger::new(ctx.step);
    let (line, want) = ledger.event("polite", "buy", 1);
    c.expect(&line, &want).or_hint("A reset is an error on one connection: log it, drop that connection, and keep serving the others.")
}

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
                let (line, want) = ledger.event("normal", "buy", 1);
                let asked = Instant::now();
                c.expect(&line, &want)?;
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
        let (line, want) = ledger.event(&format!("conn{n}"), "buy", 1);
        s.write_all(format!("{line}\n").as_bytes())
            .map_err(|e| fail!("writing on connection {}: {e}", n + 1))?;
        wants.push(want);
    }
    for (n, (s, want)) in socks.iter_mut().zip(wants).enumerate() {
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
        let got = reply::parse(&buf)?;
        reply::compare(b"(one event per connection)", &want, &got)?;
    }
    Ok(())
}

fn accept_errors_survived(ctx: &mut Ctx) -> Outcome {
    ctx.open_files = Some(64);
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
    let mut eager = ctx.client(addr)?;
    let (line, _) = ledger.event("refused", "buy", 1);
    eager.send_line(&line)?;
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
