//! A test client: a blocking TCP connection whose every read has a deadline, and whose every
//! byte goes into the check's transcript.

use crate::fail;
use crate::harness::failure::{Failure, Outcome};
use crate::harness::transcript::{Action, Transcript};
use crate::oracle::reply;
use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long a single reply may take before the check fails. Generous: a correct server
/// answers in well under a millisecond, so only a stuck one gets anywhere near it.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(3);
/// The hint for bytes that never got their newline.
const NO_NEWLINE: &str = "A reply came without its trailing \\n, and a client reads a reply up to its newline: end every reply with \\n, the last one too.";

/// A reply longer than this is a failure, not a memory problem for the checker.
const MAX_REPLY: usize = 1 << 20;

pub struct Client {
    pub name: String,
    stream: TcpStream,
    /// Bytes read but not yet returned as lines.
    pending: Vec<u8>,
    log: Transcript,
    /// Quiet clients (bulk traffic) do not log every line.
    quiet: bool,
    /// Set while [`Client::drain`] reads: a timeout then means "no more", not a failure.
    silence_expected: bool,
}

impl Client {
    pub fn connect(addr: SocketAddr, name: String, log: Transcript) -> Outcome<Client> {
        Client::connect_to(addr, name, log, 0)
    }

    /// [`Client::connect`] to server number `server` of a check (for replays).
    pub fn connect_to(
        addr: SocketAddr,
        name: String,
        log: Transcript,
        server: usize,
    ) -> Outcome<Client> {
        Client::open(addr, name, log, server, false)
    }

    /// Connects a client that is quiet from the start: its connection is not noted either.
    pub fn connect_quiet(
        addr: SocketAddr,
        name: String,
        log: Transcript,
        server: usize,
    ) -> Outcome<Client> {
        Client::open(addr, name, log, server, true)
    }

    fn open(
        addr: SocketAddr,
        name: String,
        log: Transcript,
        server: usize,
        quiet: bool,
    ) -> Outcome<Client> {
        let stream = TcpStream::connect_timeout(&addr, REPLY_TIMEOUT).map_err(|e| {
            fail!("{name} could not connect to {addr}: {e}").hint(
                "The server printed its `listening on` line but refuses connections: is it still running, and did it print the address it really bound?",
            )
        })?;
        stream.set_nodelay(true).ok();
        if !quiet {
            log.note(&name, format!("connected to {addr}"));
        }
        log.record(Action::Connect {
            client: name.clone(),
            server,
        });
        Ok(Client {
            name,
            stream,
            pending: Vec::new(),
            log,
            quiet,
            silence_expected: false,
        })
    }

    /// Stops logging each line (for clients that send thousands); failures are still logged.
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// A second handle on the same socket, for a writer thread beside a reader.
    pub fn writer(&self) -> Outcome<TcpStream> {
        self.stream
            .try_clone()
            .map_err(|e| fail!("cloning a socket: {e}"))
    }

    /// A note in this client's name in the transcript.
    pub fn note(&self, text: &str) {
        self.log.note(&self.name, text.to_string());
    }

    pub fn send(&mut self, bytes: &[u8]) -> Outcome {
        if !self.quiet {
            self.log.sent(&self.name, bytes);
        }
        self.log.record_send(&self.name, bytes);
        self.stream
            .write_all(bytes)
            .map_err(|e| self.io_failure("sending", e))
    }

    pub fn send_line(&mut self, line: &str) -> Outcome {
        self.send(format!("{line}\n").as_bytes())
    }

    /// Resets the connection (RST) instead of closing it: what a client that crashed, or a
    /// network that broke, does to a server.
    pub fn reset(self) -> Outcome {
        self.log.record(Action::Reset {
            client: self.name.clone(),
        });
        nix::sys::socket::setsockopt(
            &self.stream,
            nix::sys::socket::sockopt::Linger,
            &nix::libc::linger {
                l_onoff: 1,
                l_linger: 0,
            },
        )
        .map_err(|e| fail!("setting SO_LINGER: {e}"))?;
        // Closing with a zero linger time sends the reset.
        drop(self);
        Ok(())
    }

    /// Closes the sending side (half-close): the server reads end-of-file.
    pub fn shutdown_write(&mut self) -> Outcome {
        self.log
            .note(&self.name, "closed its sending side (half-close)");
        self.log.record(Action::ShutdownWrite {
            client: self.name.clone(),
        });
        self.stream
            .shutdown(Shutdown::Write)
            .map_err(|e| self.io_failure("half-closing", e))
    }

    /// The next line without its `\n`, or `None` at end of file, within `timeout`.
    pub fn next_line(&mut self, timeout: Duration) -> Outcome<Option<Vec<u8>>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(at) = self.pending.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.pending.drain(..=at).collect();
                line.pop();
                if !self.quiet {
                    self.log.received(&self.name, &line);
                }
                return Ok(Some(line));
            }
            if self.pending.len() > MAX_REPLY {
                return Err(
                    fail!("{} received more than 1 MiB without a newline", self.name)
                        .hint("Every reply is one line: end it with \\n."),
                );
            }
            if self.read_some(deadline)? == 0 {
                self.log.note(&self.name, "end of file");
                if !self.pending.is_empty() {
                    return Err(fail!(
                        "{} got a last reply without its newline, then end of file",
                        self.name
                    )
                    .got(crate::harness::transcript::show_bytes(&self.pending))
                    .symptom("got a reply without its newline")
                    .hint(NO_NEWLINE));
                }
                return Ok(None);
            }
        }
    }

    /// The next line, without its `\n`, within `timeout`; end of file is a failure.
    pub fn recv_raw_within(&mut self, timeout: Duration) -> Outcome<Vec<u8>> {
        match self.next_line(timeout)? {
            Some(line) => Ok(line),
            None => Err(fail!("{} expected a reply line, but the server closed the connection", self.name)
                .got("end of file")
                .symptom("saw the connection closed before its reply")
                .hint("The server closed the connection without answering this line. Every line gets a reply, a bad one too, and the connection stays open: whatever goes wrong with one line (a `?` on its error, a panic) must end neither.")),
        }
    }

    pub fn recv_raw(&mut self) -> Outcome<Vec<u8>> {
        self.recv_raw_within(REPLY_TIMEOUT)
    }

    /// The next line parsed as one JSON value.
    pub fn recv_json_within(&mut self, timeout: Duration) -> Outcome<Value> {
        let line = self.recv_raw_within(timeout)?;
        reply::parse(&line)
    }

    pub fn recv_json(&mut self) -> Outcome<Value> {
        self.recv_json_within(REPLY_TIMEOUT)
    }

    /// Sends one line and returns the reply, parsed.
    pub fn ask(&mut self, line: &str) -> Outcome<Value> {
        self.send_line(line)?;
        self.recv_json()
    }

    /// Sends one line and checks the reply against `want` (compared as JSON).
    pub fn expect(&mut self, line: &str, want: &Value) -> Outcome {
        let got = self.ask(line)?;
        reply::compare(line.as_bytes(), want, &got)
    }

    /// Reads the lines that arrive until `settle` passes without one, or the connection ends.
    /// Silence is the expected end here, so it is not logged as a timeout.
    pub fn drain(&mut self, settle: Duration) {
        self.silence_expected = true;
        while let Ok(Some(_)) = self.next_line(settle) {}
        self.silence_expected = false;
    }

    /// Reads every remaining line until the server closes the connection.
    pub fn read_to_eof(&mut self, timeout: Duration) -> Outcome<Vec<Vec<u8>>> {
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        loop {
            match self.next_line(deadline.saturating_duration_since(Instant::now())) {
                Ok(Some(line)) => lines.push(line),
                Ok(None) => return Ok(lines),
                Err(_) if Instant::now() >= deadline => {
                    return Err(fail!("{} waited {} s for end of file; the server kept the connection open", self.name, timeout.as_secs_f32())
                        .hint("The server should close the connection here: after the client's end of file, or on shutdown, finish the replies and drop the socket."))
                }
                Err(f) => return Err(f),
            }
        }
    }

    /// One read with a deadline; `Ok(0)` is end of file.
    fn read_some(&mut self, deadline: Instant) -> Outcome<usize> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(self.timeout_failure());
        }
        self.stream.set_read_timeout(Some(left)).ok();
        quick_ack(&self.stream);
        let mut buf = [0u8; 16 * 1024];
        match self.stream.read(&mut buf) {
            Ok(n) => {
                self.pending.extend_from_slice(&buf[..n]);
                Ok(n)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err(self.timeout_failure())
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(self.pending.len().min(1)),
            Err(e) => Err(self.io_failure("reading", e)),
        }
    }

    fn timeout_failure(&self) -> Failure {
        // Bulk clients do not each note their timeout: `concurrently` sums them up.
        if !self.silence_expected && !self.quiet {
            self.log.note(&self.name, "timed out waiting for a reply");
        }
        let mut f = fail!("{} waited for a reply and none came", self.name)
            .got("nothing")
            .symptom("timed out waiting for a reply");
        if !self.pending.is_empty() {
            f = f.got(format!(
                "{} (no newline after it)",
                crate::harness::transcript::show_bytes(&self.pending)
            ));
            return f
                .symptom("got a reply without its newline")
                .hint(NO_NEWLINE);
        }
        f.guess("Likely mistakes: the reply sits in a buffer that is never flushed (flush when there is nothing more to read); or a blocking call (std::thread::sleep, a std Mutex held across .await, blocking I/O) stalling the async runtime.")
    }

    fn io_failure(&self, doing: &str, e: std::io::Error) -> Failure {
        self.log.note(&self.name, format!("{doing} failed: {e}"));
        let f = fail!("{} failed {doing}: {e}", self.name);
        match e.kind() {
            ErrorKind::ConnectionReset => f.symptom("saw the connection reset").hint("The server reset the connection (RST) instead of closing it: it crashed, or it closed the socket while input the client had sent was still unread, which makes the kernel reset the connection and throw away replies still on their way."),
            ErrorKind::BrokenPipe => f.symptom("found the connection closed while sending").hint("The server closed the connection while the client was still sending: a connection stays open after a bad line, and closes only after the client's end-of-file (or at shutdown)."),
            _ => f.guess("The connection broke: look at the server's own output above."),
        }
    }
}

/// Asks the kernel to acknowledge what arrives at once rather than after its usual delay (up to
/// 40 ms on Linux). A server that writes each reply on its own, without `TCP_NODELAY`, has its
/// second small write held back until the first is acknowledged: with delayed acknowledgements
/// a client reading many replies would wait 40 ms at a time. That is slow, not wrong, and the
/// checks grade what is wrong. (Linux forgets the setting after a while, hence once per read.)
#[cfg(target_os = "linux")]
fn quick_ack(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let on: nix::libc::c_int = 1;
    // SAFETY: a valid socket, and a pointer to an int that outlives the call, of the size given.
    unsafe {
        nix::libc::setsockopt(
            stream.as_raw_fd(),
            nix::libc::IPPROTO_TCP,
            nix::libc::TCP_QUICKACK,
            std::ptr::addr_of!(on).cast(),
            std::mem::size_of_val(&on) as nix::libc::socklen_t,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn quick_ack(_stream: &TcpStream) {}

/// Bytes as lowercase hex, for replay files.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of a hex string (what [`hex`] wrote).
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_round_trips_every_byte() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(super::unhex(&super::hex(&bytes)).unwrap(), bytes);
        assert_eq!(super::unhex("zz"), None);
    }
}
