//! `checker demo STEP`: the step's scenario, live and narrated, in a few seconds. Some steps
//! show their own flaw (01 blocks, 04 stalls, 07 does not scale) and the next step shows the
//! fix on the same scenario (02, 05, 08); the others show what the step adds. Run it against
//! the reference (`--solution`) or against your own server.

use crate::catalog::Step;
use crate::harness::check::{Ctx, Target};
use crate::harness::failure::Outcome;
use crate::oracle::queries::{balance_of, metrics_of};
use crate::output::Style;
use crate::steps::{s05_backpressure::burst, s06_worker_threads::drain_time};
use crate::{build, fail};
use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;
use serde_json::json;
use std::io::Write;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

/// Narration with the time since the demo began.
struct Narrator {
    start: Instant,
    style: Style,
}

impl Narrator {
    fn say(&self, text: &str) {
        let t = self
            .style
            .dim(&format!("[{:>6.3} s]", self.start.elapsed().as_secs_f64()));
        println!("{t} {text}");
        let _ = std::io::stdout().flush();
    }
    fn lesson(&self, text: &str) {
        println!("\n{}", self.style.bold(text));
    }
}

pub fn demo(root: &Path, step: &'static Step, solution: bool, style: Style) -> Result<u8> {
    let rel = if solution {
        step.solution_dir()
    } else {
        crate::progress::Progress::load(root).learner_dir(step)
    };
    let dir = root.join(&rel);
    let built = build::build(root, std::slice::from_ref(&dir))
        .with_context(|| format!("building {rel}"))?;
    let Some(bin) = built.get(&dir) else {
        bail!("{}", built.failure(&rel));
    };
    println!(
        "{}\n",
        style.bold(&format!(
            "demo · {} · {}  ({rel})",
            step.label(),
            step.title
        ))
    );
    let n = Narrator {
        start: Instant::now(),
        style,
    };
    let mut ctx = Ctx::new(step, Target::new(bin));
    let outcome = match step.number {
        1 | 2 => waiting_room(&mut ctx, &n),
        3 => garbage(&mut ctx, &n),
        4 => slow_event_stalls_others(&mut ctx, &n),
        5 => burst_becomes_busy(&mut ctx, &n),
        6 => workers_drain(&mut ctx, &n),
        7 | 8 => throughput_vs_workers(&mut ctx, &n),
        9 => counters_add_up(&mut ctx, &n),
        10 => ctrl_c_under_load(&mut ctx, &n),
        11 => flood_past_the_limit(&mut ctx, &n),
        _ => pipelined_rate(root, &mut ctx, &n),
    };
    match outcome {
        Ok(()) => {
            n.lesson(&format!("Lesson: {}.", step.lesson));
            Ok(0)
        }
        Err(f) => {
            // The same diagnosis as `verify`: a todo!() hit or a crash says so plainly.
            let f = ctx.diagnose(f);
            println!("\n{} {}", style.red("the demo stopped:"), f.message);
            if let Some(h) = &f.hint {
                println!("{} {h}", style.yellow("hint:"));
            }
            Ok(1)
        }
    }
}

/// 01 and 02: one client idles mid-line; does a second one wait?
fn waiting_room(ctx: &mut Ctx, n: &Narrator) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut first = ctx.client(addr)?;
    first.send(b"I am typing slo")?;
    n.say("client A connects and starts a line, without finishing it");
    let mut second = ctx.client(addr)?;
    let asked = Instant::now();
    second.send(b"hello\n")?;
    n.say("client B connects and sends \"hello\"");
    match second.recv_raw_within(Duration::from_millis(1500)) {
        Ok(_) => {
            n.say(&format!(
                "client B got its echo after {} ms: nobody waits for anybody",
                asked.elapsed().as_millis()
            ));
            return Ok(());
        }
        // Not a wait but a failure (the connection closed, the server crashed): say that.
        Err(f) if asked.elapsed() < Duration::from_millis(1400) => return Err(f),
        Err(_) => {}
    }
    n.say("client B has waited 1.5 s and heard nothing: the server is still busy with A");
    drop(first);
    n.say("client A disconnects");
    second.recv_raw_within(Duration::from_secs(3))?;
    n.say(&format!(
        "client B finally gets its echo, {} ms after asking",
        asked.elapsed().as_millis()
    ));
    Ok(())
}

/// 03: what garbage gets.
fn garbage(ctx: &mut Ctx, n: &Narrator) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?;
    for line in [
        r#"{"user":"alice","action":"buy","amount":100}"#,
        "hello?",
        r#"{"user":"alice","action":"buy","amount":10.5}"#,
        r#"{"user":"","action":"sell","amount":5}"#,
        r#"{"user":"alice","action":"buy""#,
        r#"{"type":"teleport"}"#,
    ] {
        let reply = c.ask(line)?;
        n.say(&format!("-> {line}"));
        n.say(&format!("<- {reply}"));
    }
    let mut long = vec![b'x'; 200_000];
    long.push(b'\n');
    c.send(&long)?;
    n.say("-> (a line of 200 000 bytes)");
    n.say(&format!("<- {}", c.recv_json()?));
    n.say("every line got exactly one reply, and the connection is still open");
    Ok(())
}

/// 04: slow events processed inline stall everyone else.
fn slow_event_stalls_others(ctx: &mut Ctx, n: &Narrator) -> Outcome {
    let addr = ctx.serve(&["--work-us", "300000"])?;
    let slow = thread::available_parallelism()
        .map(|p| p.get())
        .unwrap_or(2)
        .min(8);
    let mut quick = ctx.client(addr)?;
    let line = json!({"user": "quick", "action": "buy", "amount": 1}).to_string();
    let asked = Instant::now();
    quick.ask(&line)?;
    n.say(&format!(
        "with nobody else around, a quick client's event takes {} ms (--work-us 300000)",
        asked.elapsed().as_millis()
    ));
    let mut busy = Vec::new();
    for i in 0..slow {
        let mut c = ctx.client(addr)?;
        c.send(
            format!(
                "{}\n",
                json!({"user": format!("slow{i}"), "action": "buy", "amount": 1})
            )
            .repeat(3)
            .as_bytes(),
        )?;
        busy.push(c);
    }
    n.say(&format!(
        "{slow} clients each send 3 slow events (as many clients as the runtime has threads)"
    ));
    let asked = Instant::now();
    quick.ask(&line)?;
    let took = asked.elapsed();
    // Say what happened, not what should have: a stall is one slow event (300 ms) or more.
    if took >= Duration::from_millis(250) {
        n.say(&format!(
            "the quick client's next event took {} ms: the sleeping tasks blocked every runtime thread",
            took.as_millis()
        ));
    } else {
        n.say(&format!(
            "the quick client's next event took {} ms: no stall this time (a runtime thread was free when it arrived)",
            took.as_millis()
        ));
    }
    Ok(())
}

/// 05: a burst turns into server_busy, and memory stays flat.
fn burst_becomes_busy(ctx: &mut Ctx, n: &Narrator) -> Outcome {
    let i = ctx.start(&["--queue-capacity", "8", "--work-us", "20000"])?;
    let addr = ctx.server(i).addr;
    let rss = |ctx: &mut Ctx| rss_kib(ctx.server(i).pid().as_raw());
    n.say(&format!(
        "server started: queue of 8, 20 ms of work per event, {} KiB of memory",
        rss(ctx)
    ));
    let mut c = ctx.client(addr)?;
    for round in 1..=3 {
        let amounts: Vec<u64> = (1..=2000).collect();
        let b = burst(&mut c, "burst", &amounts, Duration::from_secs(5))?;
        n.say(&format!(
            "burst {round}: 2000 events in one write → {} accepted, {} server_busy; memory {} KiB",
            b.accepted.len(),
            b.busy.len(),
            rss(ctx)
        ));
    }
    n.say("the queue never holds more than 8 events: overload is answered, not stored");
    Ok(())
}

fn rss_kib(pid: i32) -> String {
    crate::sut::server::rss_kib(pid).map_or_else(|| "?".into(), |k| k.to_string())
}

/// 06: one worker against four on a backlog of slow events.
fn workers_drain(ctx: &mut Ctx, n: &Narrator) -> Outcome {
    let users: Vec<String> = (0..40).map(|i| format!("user{}", i % 8)).collect();
    for workers in ["1", "4"] {
        let took = drain_time(ctx, &["--workers", workers, "--work-us", "20000"], &users)?.took;
        n.say(&format!(
            "--workers {workers}: 40 events of 20 ms drained in {} ms",
            took.as_millis()
        ));
    }
    Ok(())
}

/// 07 and 08: throughput as workers grow, when each event holds its user's state.
fn throughput_vs_workers(ctx: &mut Ctx, n: &Narrator) -> Outcome {
    let users: Vec<String> = (0..40).map(|i| format!("user{i}")).collect();
    n.say("40 events on 40 users, each holding its user's state for 10 ms (--hold-us 10000)");
    for workers in ["1", "2", "4", "8"] {
        let took = drain_time(ctx, &["--workers", workers, "--hold-us", "10000"], &users)?.took;
        let rate = 40.0 / took.as_secs_f64();
        n.say(&format!(
            "--workers {workers}: {} ms, {rate:.0} events/s",
            took.as_millis()
        ));
    }
    let addr = ctx.serve(&["--workers", "2", "--hold-us", "500000"])?;
    let mut w = ctx.client(addr)?;
    w.ask(&json!({"user": "hot", "action": "buy", "amount": 1}).to_string())?;
    n.say("a slow write to user \"hot\" is in progress (500 ms hold)");
    let mut r = ctx.client(addr)?;
    let asked = Instant::now();
    balance_of(&mut r, "cold")?;
    n.say(&format!(
        "a balance read for user \"cold\" took {} ms",
        asked.elapsed().as_millis()
    ));
    Ok(())
}

/// 09: the counters, during and after a burst.
fn counters_add_up(ctx: &mut Ctx, n: &Narrator) -> Outcome {
    const QUEUE: u64 = 16;
    const WORKERS: u64 = 2;
    let (queue, workers) = (QUEUE.to_string(), WORKERS.to_string());
    let addr = ctx.serve(&[
        "--queue-capacity",
        &queue,
        "--work-us",
        "5000",
        "--workers",
        &workers,
    ])?;
    let mut c = ctx.client(addr)?;
    let mut m = ctx.client(addr)?;
    let amounts: Vec<u64> = (1..=300).collect();
    let b = burst(&mut c, "metered", &amounts, Duration::from_secs(5))?;
    n.say(&format!(
        "a burst of 300 events: clients saw {} accepted, {} server_busy",
        b.accepted.len(),
        b.busy.len()
    ));
    // Every snapshot is checked, not only shown: what was received is processed, dropped or
    // still in the server, so processed + dropped can never pass received, the server never
    // holds more than its queue and the one event each worker is on, and no counter ever goes
    // down.
    let mut last = (0u64, 0u64, 0u64);
    loop {
        let x = metrics_of(&mut m)?;
        if x.processed + x.dropped > x.received {
            return Err(fail!(
                "a snapshot that does not add up: processed {} + dropped {} > received {}",
                x.processed,
                x.dropped,
                x.received
            ));
        }
        let queued = x.received - x.processed - x.dropped;
        if queued > QUEUE + WORKERS {
            return Err(fail!(
                "a snapshot with {queued} events still in the server, which holds at most {} (a queue of {QUEUE}, {WORKERS} workers): received {}, processed {}, dropped {}",
                QUEUE + WORKERS,
                x.received,
                x.processed,
                x.dropped
            ));
        }
        if x.received < last.0 || x.processed < last.1 || x.dropped < last.2 {
            return Err(fail!(
                "a counter went down: received {} → {}, processed {} → {}, dropped {} → {}",
                last.0,
                x.received,
                last.1,
                x.processed,
                last.2,
                x.dropped
            ));
        }
        last = (x.received, x.processed, x.dropped);
        n.say(&format!(
            "metrics: {} received = {} processed + {} dropped + {queued} in the server ✔",
            x.received, x.processed, x.dropped,
        ));
        if queued == 0 {
            break;
        }
        thread::sleep(Duration::from_millis(15));
    }
    // Once idle, the counters must say what the clients were told.
    if last.1 != b.accepted.len() as u64 || last.2 != b.busy.len() as u64 {
        return Err(fail!(
            "once idle the server counts {} processed and {} dropped, but its clients were told {} accepted and {} server_busy",
            last.1,
            last.2,
            b.accepted.len(),
            b.busy.len()
        ));
    }
    n.say("every snapshot adds up; once idle, the counters match what the clients were told");
    Ok(())
}

/// 10: Ctrl+C under load.
fn ctrl_c_under_load(ctx: &mut Ctx, n: &Narrator) -> Outcome {
    let i = ctx.start(&[
        "--workers",
        "2",
        "--work-us",
        "5000",
        "--queue-capacity",
        "64",
    ])?;
    let addr = ctx.server(i).addr;
    let mut clients = Vec::new();
    for k in 0..4 {
        let mut c = ctx.client(addr)?.quiet();
        let line = format!(
            "{}\n",
            json!({"user": format!("u{k}"), "action": "buy", "amount": 1})
        );
        c.send(line.repeat(300).as_bytes())?;
        clients.push(c);
    }
    n.say("4 clients pipeline 300 events each; the queue of 64 fills up");
    thread::sleep(Duration::from_millis(100));
    ctx.server(i).signal(Signal::SIGINT)?;
    n.say("Ctrl+C (SIGINT) sent to the server");
    let (mut accepted, mut other) = (0u64, 0u64);
    for c in &mut clients {
        for line in c.read_to_eof(Duration::from_secs(15))? {
            if line.starts_with(b"{\"status\":\"accepted\"") {
                accepted += 1;
            } else {
                other += 1;
            }
        }
    }
    n.say(&format!(
        "clients read to the end: {accepted} accepted, {other} other replies (server_busy)"
    ));
    let status = ctx
        .server(i)
        .wait_exit(Duration::from_secs(15))
        .ok_or_else(|| fail!("the server did not exit within 15 s"))?;
    let last = ctx.server(i).last_stdout_line();
    n.say(&format!(
        "the server {}; its last words: {last}",
        crate::sut::server::describe_exit(status)
    ));
    let processed = serde_json::from_str::<serde_json::Value>(&last)
        .ok()
        .and_then(|m| m["processed"].as_u64());
    match processed {
        Some(p) if p == accepted => n.say(&format!(
            "{accepted} events were promised (accepted) and {p} were processed: nothing was lost"
        )),
        Some(p) => n.say(&format!(
            "{accepted} events were promised (accepted) but {p} were processed: {} lost",
            accepted.abs_diff(p)
        )),
        None => {
            n.say("the last line is not the final metrics object: no way to tell what was lost")
        }
    }
    Ok(())
}

/// How many file descriptors a process has open (Linux); `None` elsewhere.
fn open_files(pid: i32) -> Option<usize> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|dir| dir.count())
}

/// 11: a flood of connections past the limit.
fn flood_past_the_limit(ctx: &mut Ctx, n: &Narrator) -> Outcome {
    const LIMIT: usize = 8;
    const FLOOD: usize = 400;
    let i = ctx.start(&["--max-connections", &LIMIT.to_string()])?;
    let addr = ctx.server(i).addr;
    let pid = ctx.server(i).pid().as_raw();
    let event = json!({"user": "regular", "action": "buy", "amount": 1}).to_string();
    let mut served = Vec::new();
    for _ in 0..LIMIT {
        let mut c = ctx.client(addr)?.quiet();
        c.ask(&event)?;
        served.push(c);
    }
    let before = open_files(pid);
    n.say(&format!(
        "{LIMIT} clients are served (the limit is {LIMIT}); the server has {} files open",
        before.map_or("?".into(), |f| f.to_string())
    ));
    let mut flood = Vec::new();
    let mut peak = before.unwrap_or(0);
    for _ in 0..FLOOD {
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            let _ = s.write_all(format!("{event}\n").as_bytes());
            flood.push(s);
        }
        peak = peak.max(open_files(pid).unwrap_or(0));
    }
    n.say(&format!(
        "{} more clients connect at once, each sending an event and never closing",
        flood.len()
    ));
    let (mut refused, mut other) = (0, 0);
    for s in &mut flood {
        s.set_read_timeout(Some(Duration::from_secs(2))).ok();
        let mut reply = Vec::new();
        let _ = std::io::Read::read_to_end(s, &mut reply);
        if reply.starts_with(b"{\"status\":\"error\",\"reason\":\"too_many_connections\"}") {
            refused += 1;
        } else {
            other += 1;
        }
    }
    n.say(&format!(
        "{refused} of them were told too_many_connections, {other} got nothing or a reset; the server never had more than {peak} files open"
    ));
    let mut answered = 0;
    for c in &mut served {
        if c.ask(&event).is_ok() {
            answered += 1;
        }
    }
    n.say(&format!(
        "meanwhile the {answered} clients being served were answered as if nothing happened"
    ));
    Ok(())
}

/// 12: how fast the server answers pipelining clients, beside step 10's reference.
fn pipelined_rate(root: &Path, ctx: &mut Ctx, n: &Narrator) -> Outcome {
    let baseline = crate::catalog::find("10").map_err(|e| fail!("{e}"))?;
    let dir = root.join(baseline.solution_dir());
    let built = build::build(root, std::slice::from_ref(&dir))
        .map_err(|e| fail!("building {}: {e}", baseline.solution_dir()))?;
    let step10 = built
        .get(&dir)
        .ok_or_else(|| fail!("{}", built.failure(&baseline.solution_dir())))?;
    let flags = ["--queue-capacity", "100000"];
    let i = ctx.start(&flags)?;
    let ours = events_per_second(ctx, i)?;
    ctx.stop(i);
    n.say(&format!(
        "this server: 8 clients pipelining 5 000 events each, {ours:.0} events per second"
    ));
    let mut theirs_ctx = Ctx::new(ctx.step, Target::new(step10));
    let j = theirs_ctx.start(&flags)?;
    let theirs = events_per_second(&mut theirs_ctx, j)?;
    n.say(&format!(
        "step 10's reference, the same traffic: {theirs:.0} events per second"
    ));
    n.say(&format!(
        "{:.2}× step 10 (debug builds; `checker load 12 --solution` measures release builds)",
        ours / theirs.max(1.0)
    ));
    Ok(())
}

/// Events per second from 8 clients each pipelining 5 000 events in batches of 100.
fn events_per_second(ctx: &mut Ctx, server: usize) -> Outcome<f64> {
    let addr = ctx.server(server).addr;
    let clients = ctx.quiet_clients(addr, 8)?;
    let started = Instant::now();
    crate::harness::wait::concurrently(clients, |k, mut c| {
        let line = format!(
            "{}\n",
            json!({"user": format!("speed{k}"), "action": "buy", "amount": 1})
        );
        let batch = line.repeat(100);
        for _ in 0..50 {
            c.send(batch.as_bytes())?;
            for _ in 0..100 {
                c.recv_raw()?;
            }
        }
        Ok(())
    })?;
    Ok(40_000.0 / started.elapsed().as_secs_f64())
}
