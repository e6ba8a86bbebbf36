//! The sweeps. Each is short (seconds), measures the reference servers, and returns a
//! [`Figure`] whose title and axes say what it shows.

use super::figure::{Figure, Panel, Series};
use super::Bench;
use crate::load::engine::{self, Limit, Plan};
use crate::load::machine::rss_kib;
use crate::load::requests::{json_event, Mix, Wire};
use crate::load::stats::{histogram, record, Latency};
use crate::load::{start_pinned, start_server, thousands};
use crate::sut::server::Server;
use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A blocking connection that sends a line and reads the reply line.
struct LineConn {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    line: String,
}

impl LineConn {
    fn connect(addr: SocketAddr) -> Result<LineConn> {
        let s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(LineConn {
            writer: s.try_clone()?,
            reader: BufReader::new(s),
            line: String::new(),
        })
    }

    /// Sends `line` (with its newline) and returns the reply, without its newline.
    fn ask(&mut self, line: &[u8]) -> Result<&str> {
        self.writer.write_all(line)?;
        self.line.clear();
        if self.reader.read_line(&mut self.line)? == 0 {
            bail!("the server closed the connection");
        }
        Ok(self.line.trim_end())
    }
}

fn event(user: &str, amount: u64) -> Vec<u8> {
    let mut out = Vec::new();
    json_event(&mut out, user, "buy", amount);
    out
}

fn flags(pairs: &[(&str, String)]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|(f, v)| [f.to_string(), v.clone()])
        .collect()
}

/// A closed- or open-loop run of the load generator, without a progress bar.
fn load(
    addr: SocketAddr,
    clients: usize,
    in_flight: usize,
    rate: Option<f64>,
    secs: f64,
    users: usize,
) -> Result<engine::Outcome> {
    engine::run(
        &Plan {
            addr,
            wire: Wire::Json,
            clients,
            in_flight,
            rate,
            limit: Limit::Time(Duration::from_secs_f64(secs)),
            mix: Mix {
                users,
                ..Mix::default()
            },
            threads: 1,
            patience: Duration::from_secs(5),
        },
        |_, _| {},
    )
}

fn ms(us: f64) -> f64 {
    us / 1000.0
}

// ---------------------------------------------------------------------------------------------
// 01 against 02: a blocking server serves one client at a time.

/// `clients` connect at once; each sends a line, reads the echo, keeps its connection `think`
/// longer (as a person at a terminal does), and leaves. Returns each first echo's latency.
fn first_echoes(addr: SocketAddr, clients: usize, think: Duration) -> Result<Vec<Duration>> {
    let start = Arc::new(Barrier::new(clients));
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let start = start.clone();
            thread::spawn(move || -> Result<Duration> {
                let mut c = LineConn::connect(addr)?;
                start.wait();
                let asked = Instant::now();
                c.ask(b"hello\n")?;
                let took = asked.elapsed();
                thread::sleep(think);
                c.ask(b"bye\n")?;
                Ok(took)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().map_err(|_| anyhow::anyhow!("a client panicked"))?)
        .collect()
}

pub fn async_echo(b: &Bench) -> Result<Figure> {
    let think = Duration::from_millis(20);
    let counts = [1usize, 2, 4, 8, 16, 32];
    let mut median = Vec::new();
    let mut slowest = Vec::new();
    for step in [1, 2] {
        let server = start_server(b.bin(step), &[])?;
        let (mut m, mut s) = (
            Series::new(format!("step {step:02}, median")),
            Series::new(format!("step {step:02}, slowest")),
        );
        for &n in &counts {
            let mut lat = first_echoes(server.addr, n, think)?;
            lat.sort();
            let med = lat[lat.len() / 2].as_secs_f64() * 1000.0;
            let max = lat[lat.len() - 1].as_secs_f64() * 1000.0;
            eprintln!("  step {step:02}, {n} clients: median {med:.2} ms, slowest {max:.2} ms");
            m.push(n as f64, med);
            s.push(n as f64, max);
        }
        median.push(m);
        slowest.push(s);
    }
    let mut series = Vec::new();
    for (m, s) in median.into_iter().zip(slowest) {
        series.extend([m, s]);
    }
    Ok(Figure {
        slug: "02_async_echo".into(),
        title: "Steps 01 and 02: how long a client waits for its first echo".into(),
        panels: vec![Panel {
            title: "each client stays connected 20 ms after its echo".into(),
            x_label: "clients connecting at the same moment".into(),
            y_label: "wait for the first echo (ms, log scale)".into(),
            log_x: true,
            log_y: true,
            series,
        }],
        notes: vec![
            "Step 01 serves one connection at a time: the n-th client waits for the n-1 before it to leave.".into(),
            "Step 02 gives every connection a task: nobody waits for anybody.".into(),
        ],
        machine: b.machine.clone(),
    })
}

// ---------------------------------------------------------------------------------------------
// 04 against 05: blocking work inside the runtime stalls everyone.

/// A quick client's latencies (one event at a time, every 5 ms) for `secs`.
fn quick_client(addr: SocketAddr, secs: f64) -> Result<Latency> {
    let mut c = LineConn::connect(addr)?;
    let line = event("quick", 1);
    let mut h = histogram();
    let until = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < until {
        let asked = Instant::now();
        c.ask(&line)?;
        record(&mut h, asked.elapsed());
        thread::sleep(Duration::from_millis(5));
    }
    Ok(Latency::of(&h))
}

pub fn inline_state(b: &Bench) -> Result<Figure> {
    let work_us = 2000;
    let busy_counts = [0usize, 1, 2, 4, 8];
    let mut panels_series = (Vec::new(), Vec::new());
    for step in [4, 5] {
        let server = start_server(b.bin(step), &flags(&[("--work-us", work_us.to_string())]))?;
        let mut p50 = Series::new(format!("step {step:02}"));
        let mut p99 = Series::new(format!("step {step:02}"));
        for &busy in &busy_counts {
            let addr = server.addr;
            let background =
                (busy > 0).then(|| thread::spawn(move || load(addr, busy, 4, None, 1.0, 100)));
            thread::sleep(Duration::from_millis(150));
            let l = quick_client(addr, 0.6)?;
            if let Some(bg) = background {
                bg.join()
                    .map_err(|_| anyhow::anyhow!("the load thread panicked"))??;
            }
            eprintln!(
                "  step {step:02}, {busy} busy clients: quick client p50 {:.2} ms, p99 {:.2} ms",
                ms(l.p50),
                ms(l.p99)
            );
            p50.push(busy as f64, ms(l.p50));
            p99.push(busy as f64, ms(l.p99));
        }
        panels_series.0.push(p50);
        panels_series.1.push(p99);
    }
    let panel = |title: &str, series| Panel {
        title: title.into(),
        x_label: "busy clients, each pipelining 4 slow events".into(),
        y_label: "quick client's reply time (ms, log scale)".into(),
        log_x: false,
        log_y: true,
        series,
    };
    Ok(Figure {
        slug: "04_inline_state".into(),
        title: format!("Step 04: slow events ({} ms of blocking work each) stall a quick client", work_us / 1000),
        panels: vec![panel("median", panels_series.0), panel("99th percentile", panels_series.1)],
        notes: vec![
            "Step 04 sleeps inside the connection task: busy clients block the runtime's threads, and the quick client waits its turn.".into(),
            "Step 05 hands the work to a worker thread through a queue: the quick client is answered at once (accepted or server_busy).".into(),
        ],
        machine: b.machine.clone(),
    })
}

// ---------------------------------------------------------------------------------------------
// 05: overload is answered, not stored.

/// Polls a process's memory while `run` runs; returns `run`'s result and the peak, in KiB.
fn with_peak_rss<T>(pid: i32, run: impl FnOnce() -> Result<T>) -> Result<(T, u64)> {
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(rss_kib(pid).unwrap_or(0)));
    let watcher = {
        let (done, peak) = (done.clone(), peak.clone());
        thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(kib) = rss_kib(pid) {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
                thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let out = run();
    done.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    Ok((out?, peak.load(Ordering::Relaxed)))
}

pub fn backpressure(b: &Bench) -> Result<Figure> {
    let work_us = 200;
    let server = start_server(b.bin(5), &flags(&[("--work-us", work_us.to_string())]))?;
    let pid = server.pid().as_raw();
    let (mut offered, mut accepted, mut busy, mut rss) = (
        Series::new("offered"),
        Series::new("accepted"),
        Series::new("server_busy"),
        Series::new("server memory (peak RSS)"),
    );
    for rate in [500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0, 32000.0] {
        let (out, peak) = with_peak_rss(pid, || load(server.addr, 8, 1024, Some(rate), 1.0, 1000))?;
        let secs = out.elapsed.as_secs_f64().max(1e-9);
        let (a, r) = (
            out.tally.accepted as f64 / secs,
            out.tally.rejected as f64 / secs,
        );
        eprintln!(
            "  offered {rate}/s: accepted {a:.0}/s, server_busy {r:.0}/s, peak RSS {peak} KiB"
        );
        offered.push(rate, rate);
        accepted.push(rate, a);
        busy.push(rate, r);
        rss.push(rate, peak as f64 / 1024.0);
    }
    Ok(Figure {
        slug: "05_backpressure".into(),
        title: format!("Step 05: past its capacity, the server says server_busy ({work_us} µs of work per event, one worker)"),
        panels: vec![
            Panel {
                title: "replies per second".into(),
                x_label: "offered load (events/s, log scale)".into(),
                y_label: "events per second (log scale)".into(),
                log_x: true,
                log_y: true,
                series: vec![offered, accepted, busy],
            },
            Panel {
                title: "memory stays flat".into(),
                x_label: "offered load (events/s, log scale)".into(),
                y_label: "server RSS (MiB)".into(),
                log_x: true,
                log_y: false,
                series: vec![rss],
            },
        ],
        notes: vec![
            "Open loop: 8 clients send at the offered rate whatever the server does; the queue holds 1024 events.".into(),
        ],
        machine: b.machine.clone(),
    })
}

// ---------------------------------------------------------------------------------------------
// 06: more workers, more events per second.

/// Accepted events per second when the offered load is well above what the workers can do:
/// with a small queue, every accepted event is one a worker has made room for.
fn saturated_throughput(
    bin: &Path,
    extra: &[(&str, String)],
    rate: f64,
    users: usize,
    reader: bool,
) -> Result<(f64, Option<Latency>)> {
    let mut f = vec![("--queue-capacity", "16".to_string())];
    f.extend(extra.iter().cloned());
    let server = start_server(bin, &flags(&f))?;
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));
    // Balance reads of a user nobody writes, every 2 ms, while the load runs.
    let reads = reader.then(|| {
        let stop = stop.clone();
        thread::spawn(move || -> Result<Latency> {
            let mut c = LineConn::connect(addr)?;
            let mut h = histogram();
            thread::sleep(Duration::from_millis(200));
            while !stop.load(Ordering::Relaxed) {
                let asked = Instant::now();
                c.ask(b"{\"type\":\"balance\",\"user\":\"reader\"}\n")?;
                record(&mut h, asked.elapsed());
                thread::sleep(Duration::from_millis(2));
            }
            Ok(Latency::of(&h))
        })
    });
    let out = load(addr, 10, 1024, Some(rate), 1.2, users);
    stop.store(true, Ordering::Relaxed);
    let read_latency = match reads {
        Some(h) => Some(
            h.join()
                .map_err(|_| anyhow::anyhow!("the reader panicked"))??,
        ),
        None => None,
    };
    let out = out?;
    Ok((
        out.tally.accepted as f64 / out.elapsed.as_secs_f64().max(1e-9),
        read_latency,
    ))
}

pub fn worker_threads(b: &Bench) -> Result<Figure> {
    let work_us = 1000u64;
    let mut measured = Series::new("step 06, measured");
    let mut ideal = Series::new("workers × 1000/s (if the work took exactly 1 ms)");
    for workers in [1usize, 2, 4, 8, 16] {
        let (rate, _) = saturated_throughput(
            b.bin(6),
            &[
                ("--workers", workers.to_string()),
                ("--work-us", work_us.to_string()),
            ],
            25_000.0,
            1000,
            false,
        )?;
        eprintln!("  {workers} workers: {rate:.0} events/s");
        measured.push(workers as f64, rate);
        ideal.push(workers as f64, workers as f64 * 1e6 / work_us as f64);
    }
    Ok(Figure {
        slug: "06_worker_threads".into(),
        title: format!("Step 06: events processed per second as workers grow ({} ms of work per event)", work_us / 1000),
        panels: vec![Panel {
            title: "offered: 25 000 events/s, far beyond capacity".into(),
            x_label: "worker threads (--workers, log scale)".into(),
            y_label: "events processed per second (log scale)".into(),
            log_x: true,
            log_y: true,
            series: vec![measured, ideal],
        }],
        notes: vec![
            "The work is a sleep, as --work-us is: it scales past the CPU count, as waiting on a disk or a network would.".into(),
        ],
        machine: b.machine.clone(),
    })
}

// ---------------------------------------------------------------------------------------------
// 07 against 08: one lock for everyone against a lock per user.

pub fn per_user_locks(b: &Bench) -> Result<Figure> {
    let hold_us = 1000u64;
    let users = 8;
    let (mut tput, mut reads) = (Vec::new(), Vec::new());
    for step in [7, 8] {
        let mut t = Series::new(format!("step {step:02}"));
        let mut r = Series::new(format!("step {step:02}"));
        for workers in [1usize, 2, 4, 8] {
            let (rate, lat) = saturated_throughput(
                b.bin(step),
                &[
                    ("--workers", workers.to_string()),
                    ("--hold-us", hold_us.to_string()),
                ],
                20_000.0,
                users,
                true,
            )?;
            let lat = lat.unwrap_or_default();
            eprintln!("  step {step:02}, {workers} workers: {rate:.0} events/s; reads p50 {:.3} ms, p99 {:.3} ms", ms(lat.p50), ms(lat.p99));
            t.push(workers as f64, rate);
            r.push(workers as f64, ms(lat.p99));
        }
        tput.push(t);
        reads.push(r);
    }
    Ok(Figure {
        slug: "08_per_user_locks".into(),
        title: format!("Steps 07 and 08: {users} busy users, each event holding its user's balance {} ms", hold_us / 1000),
        panels: vec![
            Panel {
                title: "events processed per second".into(),
                x_label: "worker threads (--workers)".into(),
                y_label: "events per second".into(),
                log_x: false,
                log_y: false,
                series: tput,
            },
            Panel {
                title: "a balance read of another user".into(),
                x_label: "worker threads (--workers)".into(),
                y_label: "read latency, 99th percentile (ms, log scale)".into(),
                log_x: false,
                log_y: true,
                series: reads,
            },
        ],
        notes: vec![
            "Step 07 holds one lock over every balance: workers take turns, and a read of anyone waits for them.".into(),
            "Step 08 locks one user at a time: workers on different users run together, and reads of others never wait.".into(),
        ],
        machine: b.machine.clone(),
    })
}

// ---------------------------------------------------------------------------------------------
// 09: what counting costs.

/// The server's two hot counters, behind one mutex.
#[derive(Default)]
struct Locked {
    received: u64,
    processed: u64,
}

/// The two counters both ways: as atomics (step 09) and behind one mutex.
#[derive(Default)]
struct Counters {
    received: AtomicU64,
    processed: AtomicU64,
    locked: Mutex<Locked>,
}

impl Counters {
    /// One event counted, received then processed, as the server counts it.
    fn count(&self, atomic: bool) {
        if atomic {
            self.received.fetch_add(1, Ordering::Relaxed);
            self.processed.fetch_add(1, Ordering::Release);
        } else {
            let mut c = self.locked.lock().unwrap_or_else(|e| e.into_inner());
            c.received += 1;
            c.processed += 1;
        }
    }

    /// A metrics read: (received, processed).
    fn snapshot(&self, atomic: bool) -> (u64, u64) {
        if atomic {
            let processed = self.processed.load(Ordering::Acquire);
            (self.received.load(Ordering::Relaxed), processed)
        } else {
            let c = self.locked.lock().unwrap_or_else(|e| e.into_inner());
            (c.received, c.processed)
        }
    }
}

/// Events counted per second by `threads` threads, each counting `received` then `processed`
/// for every event, with atomics or with one mutex.
fn counting_rate(threads: usize, atomic: bool) -> f64 {
    const PER_THREAD: u64 = 1_000_000;
    let counters = Arc::new(Counters::default());
    let start = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (counters, start) = (counters.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                for _ in 0..PER_THREAD {
                    counters.count(atomic);
                }
            })
        })
        .collect();
    start.wait();
    let t = Instant::now();
    for h in handles {
        let _ = h.join();
    }
    counters.snapshot(atomic).1 as f64 / t.elapsed().as_secs_f64()
}

/// The best of three tries: a neighbour's burst on a shared machine only ever slows a try down.
fn best_of_three(mut rate: impl FnMut() -> f64) -> f64 {
    (0..3).map(|_| rate()).fold(0.0, f64::max)
}

/// How long a metrics read (a snapshot of both counters) takes while `threads` threads count
/// flat out, with atomics or with one mutex: the read path a `metrics` request takes.
fn snapshot_latency(threads: usize, atomic: bool) -> Latency {
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (counters, stop) = (counters.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..1000 {
                        counters.count(atomic);
                    }
                }
            })
        })
        .collect();
    let mut h = histogram();
    let deadline = Instant::now() + Duration::from_millis(400);
    let mut seen = 0u64;
    while Instant::now() < deadline {
        let asked = Instant::now();
        let (received, processed) = counters.snapshot(atomic);
        record(&mut h, asked.elapsed());
        seen = seen.wrapping_add(received ^ processed);
        thread::sleep(Duration::from_micros(100));
    }
    stop.store(true, Ordering::Relaxed);
    for handle in handles {
        let _ = handle.join();
    }
    std::hint::black_box(seen);
    Latency::of(&h)
}

pub fn atomic_metrics(b: &Bench) -> Result<Figure> {
    let (mut atomics, mut mutex) = (
        Series::new("AtomicU64::fetch_add (step 09)"),
        Series::new("one Mutex around the counters"),
    );
    let (mut atomic_read, mut mutex_read) = (
        Series::new("atomics: p99.9 of a read"),
        Series::new("mutex: p99.9 of a read"),
    );
    for threads in [1usize, 2, 4, 8] {
        let a = best_of_three(|| counting_rate(threads, true));
        let m = best_of_three(|| counting_rate(threads, false));
        let (ar, mr) = (
            snapshot_latency(threads, true),
            snapshot_latency(threads, false),
        );
        eprintln!(
            "  {threads} threads: atomics {}/s, mutex {}/s; a read's p99.9 {:.1} µs with atomics, {:.1} µs with the mutex (max {:.0} and {:.0})",
            thousands(a as u64),
            thousands(m as u64),
            ar.p99_9,
            mr.p99_9,
            ar.max,
            mr.max
        );
        atomics.push(threads as f64, a);
        mutex.push(threads as f64, m);
        atomic_read.push(threads as f64, ar.p99_9);
        mutex_read.push(threads as f64, mr.p99_9);
    }
    Ok(Figure {
        slug: "09_atomic_metrics".into(),
        title: "Step 09: counting events with atomics against a mutex".into(),
        panels: vec![
            Panel {
                title: "each event counted twice (received, processed), as the server does".into(),
                x_label: "threads counting at the same time".into(),
                y_label: "events counted per second (log scale)".into(),
                log_x: true,
                log_y: true,
                series: vec![atomics, mutex],
            },
            Panel {
                title: "a metrics read (both counters) while the threads count".into(),
                x_label: "threads counting at the same time".into(),
                y_label: "p99.9 of a read (µs, log scale)".into(),
                log_x: true,
                log_y: true,
                series: vec![atomic_read, mutex_read],
            },
        ],
        notes: vec![
            "Measured inside the checker (no server): counting rates are the best of three tries; each read panel point is about 3 000 reads, one every 100 µs.".into(),
        ],
        machine: b.machine.clone(),
    })
}

// ---------------------------------------------------------------------------------------------
// 10: a graceful shutdown drains the queue, and loses nothing.

/// One shutdown: a burst of `capacity` events into a queue of that size, SIGINT, and the time
/// until the server exits. Returns (events queued at the signal, drain time, accepted, final
/// processed, exit code).
fn one_shutdown(
    bin: &Path,
    capacity: usize,
    work_us: u64,
) -> Result<(u64, Duration, u64, u64, Option<i32>)> {
    let mut server: Server = start_server(
        bin,
        &flags(&[
            ("--workers", "2".into()),
            ("--work-us", work_us.to_string()),
            ("--queue-capacity", capacity.to_string()),
        ]),
    )?;
    let mut c = LineConn::connect(server.addr)?;
    let burst: Vec<u8> = (0..capacity)
        .flat_map(|i| event(&format!("u{}", i % 100), 1))
        .collect();
    c.writer.write_all(&burst)?;
    let mut accepted = 0;
    for _ in 0..capacity {
        let mut line = String::new();
        c.reader.read_line(&mut line)?;
        accepted += u64::from(line.contains("\"accepted\""));
    }
    let m = c.ask(b"{\"type\":\"metrics\"}\n")?.to_string();
    let v: serde_json::Value = serde_json::from_str(&m)?;
    let field = |k: &str| v[k].as_u64().unwrap_or(0);
    let queued = field("received") - field("processed") - field("dropped");
    // Leave first: an idle client would get up to half a second of lingering close, and the
    // drain is what this measures.
    drop(c);
    let signalled = Instant::now();
    server
        .signal(Signal::SIGINT)
        .map_err(|f| anyhow::anyhow!(f.message.clone()))?;
    let status = server.wait_exit(Duration::from_secs(30));
    let took = signalled.elapsed();
    let last = server.stdout_lines().last().cloned().unwrap_or_default();
    let fin: serde_json::Value = serde_json::from_str(&last).unwrap_or_default();
    Ok((
        queued,
        took,
        accepted,
        fin["processed"].as_u64().unwrap_or(0),
        status.and_then(|s| s.code()),
    ))
}

pub fn graceful_shutdown(b: &Bench) -> Result<Figure> {
    let work_us = 100;
    let mut measured = Series::new("measured");
    let mut lost = Series::new("accepted events lost");
    let mut all_clean = true;
    for capacity in [250usize, 500, 1000, 2000, 4000, 8000] {
        let (queued, took, accepted, processed, code) = one_shutdown(b.bin(10), capacity, work_us)?;
        let loss = accepted.saturating_sub(processed);
        all_clean &= loss == 0 && processed == accepted && code == Some(0);
        eprintln!("  queue {capacity}: {queued} queued at the signal, drained in {} ms; accepted {accepted}, processed {processed}, exit {code:?}", took.as_millis());
        measured.push(queued as f64, took.as_secs_f64() * 1000.0);
        lost.push(queued as f64, loss as f64);
    }
    if !all_clean {
        bail!("a shutdown lost accepted events or did not exit with 0 (see above)");
    }
    Ok(Figure {
        slug: "10_graceful_shutdown".into(),
        title: format!(
            "Step 10: shutdown drain time as the queue grows (2 workers, {work_us} µs per event)"
        ),
        panels: vec![
            Panel {
                title: "from SIGINT to exit".into(),
                x_label: "events in the queue at the signal".into(),
                y_label: "drain time (ms)".into(),
                log_x: false,
                log_y: false,
                series: vec![measured],
            },
            Panel {
                title: "accepted but never processed".into(),
                x_label: "events in the queue at the signal".into(),
                y_label: "events lost".into(),
                log_x: false,
                log_y: false,
                series: vec![lost],
            },
        ],
        notes: vec![
            "Every run: final processed == events answered accepted, exit code 0. Zero loss."
                .into(),
        ],
        machine: b.machine.clone(),
    })
}

// ---------------------------------------------------------------------------------------------
// 10 against 11: a flood of connections that never send.

/// How many files the process `pid` has open (sockets included).
fn open_files(pid: i32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// Polls `measure` until it gives the same value twice 200 ms apart (or 5 s pass).
fn settled(mut measure: impl FnMut() -> Option<u64>) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = measure().unwrap_or(0);
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(200));
        let now = measure().unwrap_or(last);
        if now == last {
            break;
        }
        last = now;
    }
    last
}

pub fn under_fire(b: &Bench) -> Result<Figure> {
    const LIMIT: usize = 500;
    let floods = [0usize, 250, 500, 1000, 2000, 4000];
    let mut files = Vec::new();
    let mut memory = Vec::new();
    for (step, extra) in [
        (10, vec![]),
        (11, flags(&[("--max-connections", LIMIT.to_string())])),
    ] {
        let name = if step == 10 {
            "step 10 (no limit)".to_string()
        } else {
            format!("step 11 (--max-connections {LIMIT})")
        };
        let (mut f, mut m) = (Series::new(name.clone()), Series::new(name));
        for &flood in &floods {
            // A fresh server for each size, so that one flood's leftovers do not count in the next.
            let server = start_server(b.bin(step), &extra)?;
            let pid = server.pid().as_raw();
            let mut conns = Vec::with_capacity(flood);
            for i in 0..flood {
                conns.push(
                    TcpStream::connect(server.addr)
                        .with_context(|| format!("connection {i} of {flood}"))?,
                );
            }
            // Refused connections linger for up to a second before the server closes them.
            if step == 11 && flood > LIMIT {
                thread::sleep(Duration::from_millis(1500));
            }
            let fds = settled(|| open_files(pid).map(|n| n as u64));
            let rss = settled(|| rss_kib(pid));
            eprintln!(
                "  step {step}, {flood} silent connections held: {fds} open files, RSS {rss} KiB"
            );
            f.push(flood as f64, fds as f64);
            m.push(flood as f64, rss as f64 / 1024.0);
            drop(conns);
        }
        files.push(f);
        memory.push(m);
    }
    Ok(Figure {
        slug: "11_under_fire".into(),
        title: "Steps 10 and 11: a flood of connections that never send".into(),
        panels: vec![
            Panel {
                title: "files the server holds open (sockets)".into(),
                x_label: "silent connections the clients hold open".into(),
                y_label: "open files".into(),
                log_x: false,
                log_y: false,
                series: files,
            },
            Panel {
                title: "server memory".into(),
                x_label: "silent connections the clients hold open".into(),
                y_label: "server RSS (MiB)".into(),
                log_x: false,
                log_y: false,
                series: memory,
            },
        ],
        notes: vec![format!(
            "Measured once the counts settle (1.5 s after the last connection where some were refused). Past {LIMIT}, step 11 answers too_many_connections, lingers, and closes."
        )],
        machine: b.machine.clone(),
    })
}

// ---------------------------------------------------------------------------------------------
// 10 against 12: the same load, before and after the optimisations.

pub fn fast(b: &Bench) -> Result<Figure> {
    let widths = [1usize, 2, 4, 8, 16];
    let (server_cpus, client_cpus) = crate::load::machine::server_and_client_cpus();
    let mut rates = Vec::new();
    for step in [10, 12] {
        let mut series = Series::new(format!("step {step}"));
        for &w in &widths {
            // A queue deep enough that no event is turned away: every accepted event is processed.
            let server = start_pinned(server_cpus.as_deref(), || {
                start_server(
                    b.bin(step),
                    &flags(&[("--queue-capacity", "65536".to_string())]),
                )
            })?;
            let out = start_pinned(client_cpus.as_deref(), || {
                load(server.addr, 50, w, None, 1.5, 10_000)
            })?;
            let rate = out.tally.accepted as f64 / out.elapsed.as_secs_f64().max(1e-9);
            eprintln!("  step {step}, {w} in flight: {rate:.0} accepted events/s");
            series.push(w as f64, rate);
        }
        rates.push(series);
    }
    Ok(Figure {
        slug: "12_fast".into(),
        title: "Steps 10 and 12: events accepted per second, the same load generator".into(),
        panels: vec![Panel {
            title: "50 connections, 10 000 users, closed loop".into(),
            x_label: "requests in flight per connection (log scale)".into(),
            y_label: "events accepted per second".into(),
            log_x: true,
            log_y: false,
            series: rates,
        }],
        notes: vec![
            "Release builds; the server on one CPU, the load generator on the others; a queue of 65 536, so every accepted event is processed.".into(),
        ],
        machine: b.machine.clone(),
    })
}

// ---------------------------------------------------------------------------------------------
// Memory per idle connection (steps 10 and 12): data for chapter 12, no graph.

/// How many idle connections `idle_connections` opens to each server.
const IDLE_CONNECTIONS: usize = 10_000;

/// The resident memory of the server `bin` before and after `IDLE_CONNECTIONS` idle
/// connections: (before, after, KiB per connection).
fn idle_rss(bin: &Path, args: &[String]) -> Result<(u64, u64, f64)> {
    let server = start_server(bin, args)?;
    let pid = server.pid().as_raw();
    // One connection first, so that the runtime's own first allocations are not counted.
    let warm = LineConn::connect(server.addr)?;
    thread::sleep(Duration::from_millis(200));
    let before = rss_kib(pid).context("reading the server's memory")?;
    // (On some machines this takes half a minute: a connection request that finds the listen
    // queue full is retried by the kernel only a second later.)
    let mut conns = Vec::with_capacity(IDLE_CONNECTIONS);
    for i in 0..IDLE_CONNECTIONS {
        conns
            .push(TcpStream::connect(server.addr).with_context(|| {
                format!("connection {i} (is the open-file limit high enough?)")
            })?);
    }
    // Let every connection be accepted and its task wait for a first line.
    let mut after = rss_kib(pid).unwrap_or(before);
    for _ in 0..50 {
        thread::sleep(Duration::from_millis(100));
        let now = rss_kib(pid).unwrap_or(after);
        if now == after {
            break;
        }
        after = now;
    }
    let per = (after.saturating_sub(before)) as f64 / IDLE_CONNECTIONS as f64;
    drop(conns);
    drop(warm);
    Ok((before, after, per))
}

pub fn idle_connections(b: &Bench, out: &Path) -> Result<PathBuf> {
    // Step 10 has no connection limit (step 11 adds it); step 12's is raised above the count.
    let limit = vec![
        "--max-connections".to_string(),
        (IDLE_CONNECTIONS + 100).to_string(),
    ];
    let mut rows = Vec::new();
    let mut csv =
        String::from("step,connections,rss_before_kib,rss_after_kib,kib_per_connection\n");
    for (step, args) in [(10, vec![]), (12, limit)] {
        let (before, after, per) = idle_rss(b.bin(step), &args)?;
        eprintln!(
            "  step {step}, {IDLE_CONNECTIONS} idle connections: RSS {before} KiB → {after} KiB, {per:.2} KiB each"
        );
        rows.push(serde_json::json!({
            "step": step,
            "connections": IDLE_CONNECTIONS,
            "rss_before_kib": before,
            "rss_after_kib": after,
            "kib_per_connection": per,
        }));
        csv += &format!("{step},{IDLE_CONNECTIONS},{before},{after},{per:.3}\n");
    }
    let data = serde_json::json!({ "servers": rows, "machine": b.machine });
    std::fs::create_dir_all(out)?;
    let path = out.join("idle_connections.json");
    std::fs::write(&path, serde_json::to_string_pretty(&data)? + "\n")?;
    std::fs::write(out.join("idle_connections.csv"), csv)?;
    Ok(path)
}
