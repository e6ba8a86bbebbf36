//! The echo ceiling: a line server with the structure of a fast reference server (a tokio task
//! per connection, lines cut out of one read buffer with a 64 KiB limit, replies gathered in one
//! buffer and written when the read buffer runs dry), whose processing is replaced by echoing
//! each line back. What a server does beyond this costs exactly the difference in throughput.
//!
//! It has a line reader of its own: the checker builds against nothing it grades.
//!
//! It runs as a child process of the checker (`checker serve-echo --addr ...`), so that it can
//! be pinned to its own CPUs like any server under load.

use crate::sut::process::{kill_group, spawn_in_own_group};
use anyhow::{bail, Context, Result};
use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves echo on `addr` until killed, on a multi-threaded runtime like `#[tokio::main]`'s.
pub fn serve(addr: SocketAddr) -> Result<()> {
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    rt.block_on(async {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        println!("listening on {}", listener.local_addr()?);
        io::stdout().flush()?;
        loop {
            let (socket, _) = listener.accept().await?;
            tokio::spawn(async move {
                let _ = echo(socket).await;
            });
        }
    })
}

/// The longest line echoed; a longer one is answered `line_too_long` and skipped.
const MAX_LINE: usize = 64 * 1024;
/// How much room each read gets.
const READ_CHUNK: usize = 8 * 1024;

/// A fast server's connection loop, with its processing replaced by an echo: every complete
/// line already read is answered into `out`, then `out` is written once, then more is read.
async fn echo(mut socket: TcpStream) -> io::Result<()> {
    socket.set_nodelay(true)?;
    let (mut reader, mut writer) = socket.split();
    let mut buf = vec![0u8; READ_CHUNK];
    // Bytes read are in `buf[..end]`; a line being skipped for its length sets `skipping`.
    let (mut end, mut skipping) = (0, false);
    let mut out = Vec::new();
    loop {
        let n = reader.read(&mut buf[end..]).await?;
        if n == 0 {
            return Ok(());
        }
        end += n;
        let mut start = 0;
        while let Some(at) = memchr::memchr(b'\n', &buf[start..end]) {
            let line = &buf[start..start + at];
            if !std::mem::take(&mut skipping) {
                out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
                out.push(b'\n');
            }
            start += at + 1;
        }
        if !out.is_empty() {
            writer.write_all(&out).await?;
            out.clear();
        }
        buf.copy_within(start..end, 0);
        end -= start;
        if end > MAX_LINE && !skipping {
            out.extend_from_slice(b"{\"status\":\"error\",\"reason\":\"line_too_long\"}\n");
            skipping = true;
        }
        if skipping {
            end = 0;
        }
        if buf.len() - end < READ_CHUNK / 8 {
            buf.resize((buf.len() * 2).min(MAX_LINE + READ_CHUNK), 0);
        }
    }
}

/// The echo server as a child process, killed with its process group when dropped.
pub struct EchoServer {
    child: Child,
    pub addr: SocketAddr,
}

impl EchoServer {
    /// Starts `checker serve-echo` on a free port and waits for its `listening on` line.
    pub fn start() -> Result<EchoServer> {
        let exe = std::env::current_exe().context("finding the checker's own executable")?;
        let mut command = Command::new(exe);
        command
            .args(["serve-echo", "--addr", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = spawn_in_own_group(&mut command).context("starting the echo server")?;
        let mut first = String::new();
        let stdout = child.stdout.take().expect("stdout is piped");
        let read = BufReader::new(stdout).read_line(&mut first);
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok());
        match (read, addr) {
            (Ok(_), Some(addr)) => Ok(EchoServer { child, addr }),
            _ => {
                kill_group(&mut child);
                bail!("the echo server did not start: {first:?}")
            }
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}
