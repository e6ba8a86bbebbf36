//! The server under test, as a child process: started in a process group of its own, watched
//! through its stdout and stderr, and killed with its whole group on every exit path (the
//! guard's `Drop`, the per-check watchdog, and Ctrl+C or SIGTERM of the checker itself).

use crate::fail;
use crate::harness::failure::{Failure, Outcome};
use crate::harness::transcript::Transcript;
use crate::sut::process::{kill_group, spawn_limited, unregister, Limits};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a server may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines of stderr kept per server (a chatty server cannot make the checker grow).
const KEEP_STDERR: usize = 200;
/// Bytes of one stdout or stderr line kept.
const MAX_LINE: usize = 4096;

/// The last [`KEEP_STDERR`] lines a server wrote to stderr, and how many it wrote in all.
#[derive(Default)]
struct StderrTail {
    lines: Vec<String>,
    seen: usize,
}

impl StderrTail {
    fn push(&mut self, line: String) {
        if self.lines.len() == KEEP_STDERR {
            self.lines.remove(0);
        }
        self.lines.push(line);
        self.seen += 1;
    }

    /// The kept lines written after the first `mark` lines.
    fn since(&self, mark: usize) -> String {
        let first_kept = self.seen - self.lines.len();
        let skip = mark.saturating_sub(first_kept).min(self.lines.len());
        self.lines[skip..].join("\n")
    }
}

/// A running server under test.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// Set once the child has been reaped: its process group id may then be reused, so it
    /// must not be signalled again.
    exit: Option<ExitStatus>,
    /// True once the checker sent it a signal: exiting is then expected, not a crash.
    pub signalled: bool,
    /// Lines the server wrote to stdout after its `listening on` line.
    stdout: Arc<Mutex<Vec<String>>>,
    /// The last lines the server wrote to stderr.
    stderr: Arc<Mutex<StderrTail>>,
    /// Signalled when stdout reaches end of file (so every stdout line has been read).
    stdout_done: mpsc::Receiver<()>,
    /// Signalled when stderr reaches end of file.
    stderr_done: mpsc::Receiver<()>,
    /// Where the check's actions are recorded (signals are actions too).
    log: Transcript,
    /// This server's number in its check, in start order (for replays).
    index: usize,
    /// The memory watchdog's findings.
    memory: Arc<Memory>,
}

/// What the memory watchdog saw of one server.
#[derive(Default)]
pub struct Memory {
    /// The largest resident set seen, in KiB.
    pub peak_kib: AtomicU64,
    /// Set when the server went past the limit and was killed for it.
    pub exceeded: AtomicBool,
    /// Tells the watchdog to stop.
    stop: AtomicBool,
}

/// How often the watchdog reads a server's memory use.
const MEMORY_POLL: Duration = Duration::from_millis(20);

/// The resident set of a process, in KiB, from /proc.
pub fn rss_kib(pid: i32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// The most resident memory `pid` has ever had, in KiB, as the kernel counts it (no sample
/// can miss a peak).
pub fn peak_kib(pid: i32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

/// A KiB figure from `/proc/<pid>/status`.
fn status_kib(pid: i32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Watches a server's memory until told to stop; past `limit_kib` it kills the server's group.
fn watch_memory(pid: i32, limit_kib: u64, memory: Arc<Memory>) {
    thread::spawn(move || {
        while !memory.stop.load(Ordering::Relaxed) {
            let Some(rss) = rss_kib(pid) else { break };
            memory.peak_kib.fetch_max(rss, Ordering::Relaxed);
            if rss > limit_kib {
                memory.exceeded.store(true, Ordering::Relaxed);
                let _ = signal::killpg(Pid::from_raw(pid), Signal::SIGKILL);
                break;
            }
            thread::sleep(MEMORY_POLL);
        }
    });
}

impl Server {
    /// Starts `bin --addr 127.0.0.1:0 FLAGS...` and waits for its `listening on` line.
    pub fn start(bin: &Path, flags: &[String], log: &Transcript) -> Outcome<Server> {
        Server::start_numbered(
            bin,
            flags,
            log,
            0,
            crate::harness::check::DEFAULT_MEMORY_LIMIT_MIB * 1024,
            &Limits::default(),
        )
    }

    /// [`Server::start`], as server number `index` of a check, with a memory limit.
    pub fn start_numbered(
        bin: &Path,
        flags: &[String],
        log: &Transcript,
        index: usize,
        memory_limit_kib: u64,
        limits: &Limits,
    ) -> Outcome<Server> {
        let mut command = Command::new(bin);
        command
            .arg("--addr")
            .arg("127.0.0.1:0")
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("RUST_BACKTRACE", "0");
        let shown = format!("{} --addr 127.0.0.1:0 {}", bin.display(), flags.join(" "));
        let pinned = limits
            .cpu
            .map(|cpu| format!("  (on CPU {cpu} alone)"))
            .unwrap_or_default();
        log.note("checker", format!("$ {}{pinned}", shown.trim_end()));
        let mut child = spawn_limited(&mut command, limits)
            .map_err(|e| fail!("could not start {}: {e}", bin.display()))?;

        let stderr = Arc::new(Mutex::new(StderrTail::default()));
        let pipe = child.stderr.take().expect("stderr is piped");
        let (keep, log2) = (stderr.clone(), log.clone());
        let (stderr_closed, stderr_done) = mpsc::channel();
        thread::spawn(move || {
            for line in lines(pipe) {
                log2.server(&line);
                keep.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
            let _ = stderr_closed.send(());
        });

        let (first_tx, first_rx) = mpsc::channel();
        let (done_tx, stdout_done) = mpsc::channel();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stdout.take().expect("stdout is piped");
        let keep = stdout.clone();
        thread::spawn(move || {
            let mut lines = lines(pipe);
            let _ = first_tx.send(lines.next());
            for line in lines {
                keep.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
            let _ = done_tx.send(());
        });

        let memory = Arc::new(Memory::default());
        watch_memory(child.id() as i32, memory_limit_kib, memory.clone());
        let mut server = Server {
            child,
            addr: ([127, 0, 0, 1], 0).into(),
            exit: None,
            signalled: false,
            stdout,
            stderr,
            stdout_done,
            stderr_done,
            log: log.clone(),
            index,
            memory,
        };
        let first = match first_rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                return Err(server.start_failure(
                    fail!("the server printed nothing on stdout within {} s", START_TIMEOUT.as_secs())
                        .hint("Print `listening on IP:PORT` right after binding, and flush stdout (call std::io::stdout().flush() after it, so that nothing holds it back).")
                ))
            }
        };
        let Some(first) = first else {
            let _ = server.wait_exit(Duration::from_secs(2));
            let status = server
                .exit
                .map(describe_exit)
                .unwrap_or_else(|| "closed its stdout".into());
            // What it said on stderr has arrived once stderr is closed: it exited.
            let said = server.stderr_when_closed(Duration::from_secs(1));
            let f = fail!("the server {status} before printing its `listening on` line");
            let f = match unknown_flag(&said) {
                Some(flag) => f.hint(format!("The server does not take {flag}, which this check starts it with: every flag of the contract is accepted from the step where it means something (book/src/contract.md, Start-up and flags).")),
                None => f.guess("Look at what it said, in the transcript: a bad flag (exit code 2 comes from clap), an address in use, or a panic at start-up."),
            };
            return Err(server.start_failure(f));
        };
        match parse_listening(&first) {
            Some(addr) => {
                server.addr = addr;
                log.note("checker", format!("server is listening on {addr}"));
                Ok(server)
            }
            None => Err(server.start_failure(
                fail!("the first line on stdout must be `listening on IP:PORT`")
                    .expected("listening on 127.0.0.1:PORT (the address actually bound)")
                    .got(first)
                    .hint("Print exactly `listening on {}` with listener.local_addr(), before anything else; logs go to stderr (eprintln!)."),
            )),
        }
    }

    /// Completes a start-up failure with the server's stderr, and kills it.
    fn start_failure(&mut self, f: Failure) -> Failure {
        self.kill();
        f
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Sends a signal to the server process (as Ctrl+C in its terminal would).
    pub fn signal(&mut self, sig: Signal) -> Outcome {
        self.signalled = true;
        self.log.record(crate::harness::transcript::Action::Signal {
            server: self.index,
            signal: sig.as_str().to_string(),
        });
        if self.exit.is_some() {
            return Err(fail!(
                "the server already exited before it could be sent {sig}"
            ));
        }
        signal::kill(self.pid(), sig).map_err(|e| fail!("sending {sig} to the server: {e}"))
    }

    /// The exit status, if the server has exited (reaping it).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exit = Some(status);
                unregister(self.child.id() as i32);
            }
        }
        self.exit
    }

    /// Waits up to `timeout` for the server to exit, polling.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Every stdout line after `listening on`, once stdout is closed (waits up to 2 s for it).
    pub fn stdout_lines(&self) -> Vec<String> {
        let _ = self.stdout_done.recv_timeout(Duration::from_secs(2));
        self.stdout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The last stdout line (once stdout is closed), or "" when there was none after
    /// `listening on`.
    pub fn last_stdout_line(&self) -> String {
        self.stdout_lines().last().cloned().unwrap_or_default()
    }

    /// The stderr lines kept so far, joined.
    pub fn stderr_text(&self) -> String {
        self.stderr_since(0)
    }

    /// How many lines the server has written to stderr so far: a mark for [`Server::stderr_since`].
    pub fn stderr_mark(&self) -> usize {
        self.stderr.lock().unwrap_or_else(|e| e.into_inner()).seen
    }

    /// What the server wrote to stderr, once stderr is closed (waiting up to `patience` for it).
    fn stderr_when_closed(&self, patience: Duration) -> String {
        let _ = self.stderr_done.recv_timeout(patience);
        self.stderr_text()
    }

    /// The kept lines of stderr written after `mark`, once the server has closed stderr (it
    /// has exited): its last words included.
    pub fn stderr_since_at_exit(&self, mark: usize) -> String {
        let _ = self.stderr_done.recv_timeout(Duration::from_secs(2));
        self.stderr_since(mark)
    }

    /// The kept lines of stderr written after `mark`.
    pub fn stderr_since(&self, mark: usize) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .since(mark)
    }

    /// Where the server panicked on a `todo!()`, if it did: `path:line`.
    pub fn todo_location(&self) -> Option<String> {
        todo_location(&self.stderr_text())
    }

    /// The largest resident set seen so far, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.memory.peak_kib.load(Ordering::Relaxed)
    }

    /// True if the watchdog killed the server for using too much memory.
    pub fn memory_exceeded(&self) -> bool {
        self.memory.exceeded.load(Ordering::Relaxed)
    }

    /// Kills the server's process group (if it is still running) and reaps it.
    pub fn kill(&mut self) {
        self.memory.stop.store(true, Ordering::Relaxed);
        if self.exit.is_none() {
            kill_group(&mut self.child);
            self.exit = self.child.try_wait().ok().flatten();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Lines of a pipe, lossily decoded and capped in length, until end of file.
fn lines(pipe: impl Read) -> impl Iterator<Item = String> {
    let mut reader = BufReader::new(pipe);
    std::iter::from_fn(move || {
        let mut buf = Vec::new();
        // Reads at most MAX_LINE bytes of a line; the rest is skipped up to the newline.
        let n = reader
            .by_ref()
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut buf)
            .ok()?;
        if n == 0 {
            return None;
        }
        if !buf.ends_with(b"\n") && buf.len() == MAX_LINE {
            let mut skip = Vec::new();
            let _ = reader.read_until(b'\n', &mut skip);
        }
        Some(
            String::from_utf8_lossy(&buf)
                .trim_end_matches(['\n', '\r'])
                .to_string(),
        )
    })
}

/// The flag clap refused, from what it printed: `error: unexpected argument '--x' found`.
fn unknown_flag(stderr: &str) -> Option<String> {
    let rest = stderr.split("unexpected argument '").nth(1)?;
    Some(rest.split('\'').next()?.to_string())
}

fn parse_listening(line: &str) -> Option<SocketAddr> {
    line.strip_prefix("listening on ")?.trim().parse().ok()
}

/// "exited with code 2", "was killed by SIGSEGV", ...
pub fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with code {code}");
    }
    match status.signal().and_then(|s| Signal::try_from(s).ok()) {
        Some(sig) => format!("was killed by {sig}"),
        None => "exited".into(),
    }
}

/// Finds `panicked at PATH:LINE:COL:` followed by `not yet implemented` in a server's stderr.
pub fn todo_location(stderr: &str) -> Option<String> {
    let lines: Vec<&str> = stderr.lines().collect();
    lines.windows(2).find_map(|w| {
        if !w[1].trim_start().starts_with("not yet implemented") {
            return None;
        }
        let at = w[0].split("panicked at ").nth(1)?.trim_end_matches(':');
        // PATH:LINE:COL → PATH:LINE
        let mut parts = at.rsplitn(3, ':');
        let (_col, line, path) = (parts.next()?, parts.next()?, parts.next()?);
        Some(format!("{path}:{line}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_since_a_mark_survives_the_window_moving() {
        let mut tail = StderrTail::default();
        tail.push("before".into());
        let mark = tail.seen;
        for n in 0..KEEP_STDERR + 5 {
            tail.push(format!("line {n}"));
        }
        // The window has moved past the mark: everything kept came after it.
        assert_eq!(tail.since(mark).lines().count(), KEEP_STDERR);
        assert!(!tail.since(mark).contains("before"));
        tail.push("after".into());
        assert_eq!(tail.since(tail.seen - 1), "after");
        assert_eq!(tail.since(tail.seen), "");
    }

    #[test]
    fn finds_the_todo_the_server_panicked_on() {
        let stderr = "listening\nthread 'tokio-runtime-worker' panicked at exercises/05_backpressure/src/queue.rs:42:9:\nnot yet implemented\nnote: run with `RUST_BACKTRACE=1`";
        assert_eq!(
            todo_location(stderr).as_deref(),
            Some("exercises/05_backpressure/src/queue.rs:42")
        );
        let other = "thread 'main' panicked at src/main.rs:3:5:\nindex out of bounds";
        assert_eq!(todo_location(other), None);
    }

    #[test]
    fn the_flag_clap_refused_is_named() {
        let said = "error: unexpected argument '--queue-capacity' found\n\nUsage: x";
        assert_eq!(unknown_flag(said).as_deref(), Some("--queue-capacity"));
        assert_eq!(unknown_flag("thread 'main' panicked"), None);
    }

    #[test]
    fn listening_line_must_name_an_address() {
        assert_eq!(
            parse_listening("listening on 127.0.0.1:4000"),
            Some(([127, 0, 0, 1], 4000).into())
        );
        assert_eq!(parse_listening("Listening on 127.0.0.1:4000"), None);
        assert_eq!(parse_listening("listening on port 4000"), None);
    }
}
