//! The load generator itself: a few OS threads, each with a single-threaded tokio runtime
//! serving its share of the connections, so that no lock and no cross-thread wake-up sits on
//! the hot path.
//!
//! Per connection, requests are slices of one pre-rendered buffer ([`Pool`]), written in
//! batches; replies are read into one reused buffer and recognised by a few bytes ([`Scanner`]).
//! Latency is timed per batch: every request of a write shares that write's timestamp, and every
//! reply of a read shares that read's, so a reply costs no clock read of its own.
//!
//! - **Closed loop** (no `rate`): each connection keeps `in_flight` requests outstanding and sends
//!   as many new ones as replies came back, as fast as the server answers.
//! - **Open loop** (`rate`): requests are due at fixed times whatever the server does; latency is
//!   measured from when a request was *due*, not when it could be sent, so a server that falls
//!   behind shows its backlog in the latency (no coordinated omission). `in_flight` caps what one
//!   connection has outstanding.

use super::requests::{Kind, Mix, Pool, Wire};
use super::scan::{for_each_line, Scanner, Seen};
use super::stats::{record, Tally};
use anyhow::{Context, Result};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bytes of replies one read may bring.
const READ_BUF: usize = 64 * 1024;
/// How often the run's own loop looks at the clock, the counters and the threads.
const TICK: Duration = Duration::from_millis(50);

/// When a run stops sending.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Limit {
    /// After this long.
    Time(Duration),
    /// After this many requests in all.
    Requests(u64),
}

/// Everything a run needs to know.
#[derive(Clone, Debug)]
pub struct Plan {
    pub addr: SocketAddr,
    pub wire: Wire,
    pub clients: usize,
    /// Closed loop: requests outstanding per connection. Open loop: the most a connection may
    /// have outstanding.
    pub in_flight: usize,
    /// Open loop: requests per second, all connections together. `None`: closed loop.
    pub rate: Option<f64>,
    pub limit: Limit,
    pub mix: Mix,
    /// OS threads, each with its own runtime and its share of the connections.
    pub threads: usize,
    /// A run gives up on replies when none has come for this long.
    pub patience: Duration,
}

/// Counters the threads bump once per batch, for the progress bar.
#[derive(Default)]
pub struct Live {
    pub sent: AtomicU64,
    pub answered: AtomicU64,
    /// Set when the run's time is up: connections stop sending and collect their replies.
    stop: AtomicBool,
    /// Set when the run gives up: threads drop their connections as they are.
    abort: AtomicBool,
}

/// What a run saw.
#[derive(Debug)]
pub struct Outcome {
    pub tally: Tally,
    /// From the start of sending to the last reply.
    pub elapsed: Duration,
    /// True if the run gave up waiting for replies.
    pub gave_up: bool,
}

/// Runs `plan`, calling `tick` with the live counters and the time since the start about
/// twenty times a second.
pub fn run(plan: &Plan, mut tick: impl FnMut(&Live, Duration)) -> Result<Outcome> {
    let clients = plan.clients.max(1);
    let threads = plan.threads.clamp(1, clients);
    let in_flight = plan.in_flight.max(1);
    // Enough distinct requests for every user to appear, and a wrap that covers a full window.
    let distinct = (2 * plan.mix.users).clamp(8192, 1 << 20);
    let pool = Arc::new(Pool::render(
        plan.wire,
        &plan.mix,
        distinct,
        in_flight.max(1024),
    ));
    let live = Arc::new(Live::default());
    let ready = Arc::new(Barrier::new(threads + 1));
    let quotas = quotas(plan.limit, clients);
    let mut handles = Vec::new();
    for t in 0..threads {
        let mine: Vec<Conn> = (t..clients)
            .step_by(threads)
            .map(|c| Conn {
                first: c * pool.len() / clients,
                quota: quotas.as_ref().map(|q| q[c]),
                rate: plan.rate.map(|r| r / clients as f64),
                stagger: plan
                    .rate
                    .map(|r| Duration::from_secs_f64(c as f64 / r))
                    .unwrap_or_default(),
            })
            .collect();
        let (pool, live, ready) = (pool.clone(), live.clone(), ready.clone());
        let (addr, wire) = (plan.addr, plan.wire);
        handles.push(
            thread::Builder::new()
                .name(format!("load-{t}"))
                .spawn(move || run_thread(addr, wire, in_flight, mine, pool, live, ready))
                .context("starting a load thread")?,
        );
    }
    ready.wait();
    let start = Instant::now();
    let (mut last_answered, mut last_change) = (0, start);
    let mut gave_up = false;
    while handles.iter().any(|h| !h.is_finished()) {
        thread::sleep(TICK);
        let now = Instant::now();
        let elapsed = now - start;
        tick(&live, elapsed);
        if let Limit::Time(d) = plan.limit {
            if elapsed >= d {
                live.stop.store(true, Relaxed);
            }
        }
        let answered = live.answered.load(Relaxed);
        if answered != last_answered {
            (last_answered, last_change) = (answered, now);
        } else if now - last_change > plan.patience && !gave_up {
            // Nothing came back for a long while: the server is stuck or gone.
            gave_up = true;
            live.stop.store(true, Relaxed);
            live.abort.store(true, Relaxed);
        }
    }
    tick(&live, start.elapsed());
    let mut tally = Tally::default();
    let mut last_reply = start;
    for h in handles {
        let (t, last) = h
            .join()
            .map_err(|_| anyhow::anyhow!("a load thread panicked"))?;
        tally.merge(&t);
        last_reply = last_reply.max(last);
    }
    Ok(Outcome {
        tally,
        elapsed: last_reply.saturating_duration_since(start),
        gave_up,
    })
}

/// How many requests each connection sends, when the run counts requests.
fn quotas(limit: Limit, clients: usize) -> Option<Vec<u64>> {
    let Limit::Requests(n) = limit else {
        return None;
    };
    let c = clients as u64;
    Some((0..c).map(|i| n / c + u64::from(i < n % c)).collect())
}

/// One connection's part of the plan.
#[derive(Clone, Copy)]
struct Conn {
    /// The pool index it starts at, so that connections do not all send the same requests.
    first: usize,
    /// Requests to send, if the run counts them.
    quota: Option<u64>,
    /// Open loop: this connection's requests per second.
    rate: Option<f64>,
    /// Open loop: when its first request is due, after the start (spreads connections out).
    stagger: Duration,
}

/// One load thread: connect, wait for every thread, run every connection to the end.
fn run_thread(
    addr: SocketAddr,
    wire: Wire,
    in_flight: usize,
    conns: Vec<Conn>,
    pool: Arc<Pool>,
    live: Arc<Live>,
    ready: Arc<Barrier>,
) -> (Tally, Instant) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let tally = Rc::new(RefCell::new(Tally::default()));
    let streams: Vec<Option<TcpStream>> = rt.block_on(async {
        let mut streams = Vec::new();
        for _ in &conns {
            let s = TcpStream::connect(addr).await.ok();
            if let Some(s) = &s {
                let _ = s.set_nodelay(true);
            }
            streams.push(s);
        }
        streams
    });
    ready.wait();
    let start = Instant::now();
    let last_reply = Rc::new(std::cell::Cell::new(start));
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let mut tasks = Vec::new();
        for (conn, stream) in conns.into_iter().zip(streams) {
            let Some(stream) = stream else {
                tally.borrow_mut().broken_connections += 1;
                continue;
            };
            let c = Connection {
                stream,
                pool: pool.clone(),
                live: live.clone(),
                tally: tally.clone(),
                last_reply: last_reply.clone(),
                scanner: Scanner::new(wire),
                in_flight,
                conn,
                start,
            };
            tasks.push(tokio::task::spawn_local(c.run()));
        }
        let all = async {
            for t in tasks {
                let _ = t.await;
            }
        };
        let abort = async {
            while !live.abort.load(Relaxed) {
                tokio::time::sleep(TICK).await;
            }
        };
        tokio::select! {
            () = all => {}
            () = abort => {}
        }
    });
    // Dropping the tasks (if the run gave up) releases their handles on the tally.
    drop(local);
    let mut t = Rc::try_unwrap(tally)
        .map(RefCell::into_inner)
        .unwrap_or_else(|rc| rc.borrow().clone());
    t.unanswered = t.sent.saturating_sub(t.answered());
    (t, last_reply.get())
}

/// One connection's state while it runs.
struct Connection {
    stream: TcpStream,
    pool: Arc<Pool>,
    live: Arc<Live>,
    tally: Rc<RefCell<Tally>>,
    last_reply: Rc<std::cell::Cell<Instant>>,
    scanner: Scanner,
    in_flight: usize,
    conn: Conn,
    start: Instant,
}

/// Where a connection is: what it sent, what came back.
struct Cursor {
    /// Pool index of the next request to send, and of the next reply expected.
    next: usize,
    reply: usize,
    /// Requests sent, and replies received, on this connection.
    sent: u64,
    answered: u64,
    /// Requests still to send (`u64::MAX` when the run counts time).
    remaining: u64,
    /// Closed loop: (requests, when written) per write not yet fully answered.
    batches: VecDeque<(u32, Instant)>,
}

impl Connection {
    async fn run(mut self) {
        let mut cur = Cursor {
            next: self.conn.first,
            reply: self.conn.first,
            sent: 0,
            answered: 0,
            remaining: self.conn.quota.unwrap_or(u64::MAX),
            batches: VecDeque::with_capacity(self.in_flight.min(4096)),
        };
        let mut buf = vec![0u8; READ_BUF];
        let mut filled = 0;
        // Open loop: request `i` of this connection is due at `due_from + i * period`.
        let period = self.conn.rate.map(|r| (1e9 / r.max(1e-3)).max(1.0) as u64);
        let due_from = self.start + self.conn.stagger;
        let due_at = |i: u64, p: u64| due_from + Duration::from_nanos(i.saturating_mul(p));
        loop {
            let stopped = self.live.stop.load(Relaxed) || cur.remaining == 0;
            let outstanding = (cur.sent - cur.answered) as usize;
            if !stopped && outstanding < self.in_flight {
                let room = (self.in_flight - outstanding) as u64;
                let n = match period {
                    // Closed loop: fill the window.
                    None => room,
                    // Open loop: everything due by now, as far as the window allows.
                    Some(p) => {
                        let now = Instant::now();
                        let due = match now.checked_duration_since(due_from) {
                            Some(t) => (t.as_nanos() / u128::from(p)) as u64 + 1,
                            None => 0,
                        };
                        due.saturating_sub(cur.sent).min(room)
                    }
                }
                .min(cur.remaining);
                if n > 0 && self.send(&mut cur, n as usize).await.is_err() {
                    self.tally.borrow_mut().broken_connections += 1;
                    break;
                }
            }
            let outstanding = cur.sent - cur.answered;
            if stopped && outstanding == 0 {
                break;
            }
            // Open loop, with room in the window: also wake when the next request falls due.
            let wake = match period {
                Some(p) if !stopped && (outstanding as usize) < self.in_flight => {
                    Some(due_at(cur.sent, p))
                }
                _ => None,
            };
            let read = match wake {
                Some(at) => {
                    tokio::select! {
                        biased;
                        r = self.stream.read(&mut buf[filled..]) => Some(r),
                        () = tokio::time::sleep_until(at.into()) => None,
                    }
                }
                None => Some(self.stream.read(&mut buf[filled..]).await),
            };
            let Some(read) = read else { continue };
            match read {
                Ok(n) if n > 0 => filled += n,
                // End of file or an error: the connection is over, with what it still owed.
                _ => {
                    self.tally.borrow_mut().broken_connections += 1;
                    break;
                }
            }
            let used = self.replies(&mut cur, &buf[..filled], period.map(|p| (p, due_from)));
            buf.copy_within(used..filled, 0);
            filled -= used;
            if filled == buf.len() {
                // A reply longer than the whole buffer is not a reply this generator expects.
                self.tally.borrow_mut().broken_connections += 1;
                break;
            }
        }
    }

    /// Writes the next `n` requests, in as few writes as the pool allows (usually one).
    async fn send(&mut self, cur: &mut Cursor, n: usize) -> std::io::Result<()> {
        let len = self.pool.len();
        let mut left = n;
        while left > 0 {
            let k = left.min(self.pool.wrap().max(len - cur.next));
            self.stream.write_all(self.pool.slice(cur.next, k)).await?;
            cur.next = (cur.next + k) % len;
            left -= k;
        }
        if self.conn.rate.is_none() {
            cur.batches.push_back((n as u32, Instant::now()));
        }
        cur.sent += n as u64;
        if cur.remaining != u64::MAX {
            cur.remaining -= n as u64;
        }
        self.tally.borrow_mut().sent += n as u64;
        self.live.sent.fetch_add(n as u64, Relaxed);
        Ok(())
    }

    /// Counts and times every complete reply in `buf`; returns the bytes they took.
    /// `open`: the open loop's period (in nanoseconds) and start, to time replies from when
    /// their requests were due.
    fn replies(&mut self, cur: &mut Cursor, buf: &[u8], open: Option<(u64, Instant)>) -> usize {
        let now = Instant::now();
        let len = self.pool.len();
        let mut tally = self.tally.borrow_mut();
        let tally = &mut *tally;
        let before = cur.answered;
        let scanner = &mut self.scanner;
        let pool = &self.pool;
        let used = for_each_line(buf, |line| {
            let Some(seen) = scanner.classify(line) else {
                return;
            };
            if cur.answered == cur.sent {
                // A reply to nothing: the server said more than it was asked.
                tally.error_replies += 1;
                return;
            }
            let kind = pool.kind(cur.reply);
            cur.reply = (cur.reply + 1) % len;
            let sent_at = match open {
                Some((p, from)) => from + Duration::from_nanos(cur.answered.saturating_mul(p)),
                None => {
                    let front = cur.batches.front_mut().expect("a batch per request");
                    let at = front.1;
                    front.0 -= 1;
                    if front.0 == 0 {
                        cur.batches.pop_front();
                    }
                    at
                }
            };
            cur.answered += 1;
            let latency = now.saturating_duration_since(sent_at);
            match (kind, seen) {
                (Kind::Event, Seen::Accepted | Seen::Ok) => {
                    tally.accepted += 1;
                    record(&mut tally.events, latency);
                }
                (Kind::Event, Seen::Busy) => {
                    tally.rejected += 1;
                    record(&mut tally.events, latency);
                }
                (Kind::Read, Seen::Ok) => {
                    tally.ok += 1;
                    record(&mut tally.reads, latency);
                }
                (_, Seen::Refused) => {
                    tally.error_replies += 1;
                    tally.refused_connections += 1;
                }
                _ => tally.error_replies += 1,
            }
        });
        if cur.answered > before {
            self.live.answered.fetch_add(cur.answered - before, Relaxed);
            self.last_reply.set(now);
        }
        used
    }
}

/// Requests per connection and in all, as a plan will send them; for tests and reports.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_quotas_add_up() {
        let q = quotas(Limit::Requests(2000), 3).unwrap();
        assert_eq!(q, vec![667, 667, 666]);
        assert_eq!(q.iter().sum::<u64>(), 2000);
        assert!(quotas(Limit::Time(Duration::from_secs(1)), 3).is_none());
    }

    /// A tiny in-process server: answers every line with `reply(line)`.
    fn serve(reply: fn(&[u8]) -> Vec<u8>) -> SocketAddr {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                thread::spawn(move || {
                    let mut out = stream.try_clone().unwrap();
                    let mut reader = BufReader::new(stream);
                    let mut line = Vec::new();
                    while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                        let mut r = reply(&line);
                        r.push(b'\n');
                        if out.write_all(&r).is_err() {
                            return;
                        }
                        line.clear();
                    }
                });
            }
        });
        addr
    }

    fn plan(addr: SocketAddr, limit: Limit) -> Plan {
        Plan {
            addr,
            wire: Wire::Json,
            clients: 3,
            in_flight: 4,
            rate: None,
            limit,
            mix: Mix {
                reads_percent: 20,
                ..Mix::default()
            },
            threads: 2,
            patience: Duration::from_secs(10),
        }
    }

    #[test]
    fn every_request_is_counted_once() {
        // Events alternate accepted and busy by their amount; reads get a balance.
        let addr = serve(|line| {
            if line.starts_with(b"{\"type\"") {
                br#"{"status":"ok","balance":1}"#.to_vec()
            } else if line.len() % 2 == 0 {
                br#"{"status":"accepted"}"#.to_vec()
            } else {
                br#"{"status":"rejected","reason":"server_busy"}"#.to_vec()
            }
        });
        let out = run(&plan(addr, Limit::Requests(1000)), |_, _| {}).unwrap();
        let t = &out.tally;
        assert_eq!(t.sent, 1000);
        assert_eq!(t.accepted + t.rejected + t.ok + t.errors(), 1000, "{t:?}");
        assert!(t.accepted > 0 && t.rejected > 0 && t.ok > 0, "{t:?}");
        assert_eq!(t.errors(), 0);
        assert_eq!(t.events.len() + t.reads.len(), 1000);
        assert!(!out.gave_up);
    }

    #[test]
    fn wrong_replies_are_errors() {
        let addr = serve(|_| br#"{"status":"error","reason":"invalid_json"}"#.to_vec());
        let out = run(&plan(addr, Limit::Requests(100)), |_, _| {}).unwrap();
        assert_eq!((out.tally.sent, out.tally.error_replies), (100, 100));
    }

    #[test]
    fn refusals_are_counted_apart_from_other_errors() {
        let addr = serve(|line| {
            if line.contains(&b'9') {
                br#"{"status":"error","reason":"too_many_connections"}"#.to_vec()
            } else {
                br#"{"status":"accepted"}"#.to_vec()
            }
        });
        let mut p = plan(addr, Limit::Requests(300));
        p.mix.reads_percent = 0;
        let out = run(&p, |_, _| {}).unwrap();
        let t = &out.tally;
        let seen = (t.accepted, t.error_replies, t.refused_connections);
        assert!(t.refused_connections > 0, "{seen:?}");
        assert_eq!(t.refused_connections, t.error_replies, "{seen:?}");
        assert_eq!(t.accepted + t.error_replies, 300, "{seen:?}");
    }

    #[test]
    fn open_loop_sends_at_the_rate() {
        let addr = serve(|_| br#"{"status":"accepted"}"#.to_vec());
        let mut p = plan(addr, Limit::Time(Duration::from_millis(500)));
        p.rate = Some(2000.0);
        p.in_flight = 64;
        let out = run(&p, |_, _| {}).unwrap();
        // 2000/s for half a second is at most 1000 requests: an open loop never sends ahead of
        // its schedule (a slow machine may send fewer, which says nothing about the pacing; an
        // unpaced loop would send tens of thousands).
        let sent = out.tally.sent;
        assert!(sent > 0 && sent <= 1000 + p.in_flight as u64, "sent {sent}");
        assert_eq!(out.tally.answered(), sent);
    }

    #[test]
    fn a_server_that_never_answers_is_given_up_on() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut p = plan(addr, Limit::Requests(30));
        p.patience = Duration::from_millis(300);
        let out = run(&p, |_, _| {}).unwrap();
        assert!(out.gave_up);
        assert_eq!(out.tally.unanswered, out.tally.sent);
        assert!(out.tally.sent > 0);
        drop(listener);
    }
}
