//! The echo ceiling: a line server with the reference's own structure (a tokio task per
//! connection, step 10's [`LineReader`], replies gathered in one buffer and written when the
//! read buffer runs dry), whose processing is replaced by echoing each line back. What the
//! reference server does beyond this costs exactly the difference in throughput.
//!
//! It runs as a child process of the checker (`checker serve-echo --addr ...`), so that it can
//! be pinned to its own CPUs like any server under load.

use crate::sut::process::{kill_group, spawn_in_own_group};
use anyhow::{bail, Context, Result};
use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use step10_graceful_shutdown_solution::framing::{Frame, LineReader};
use tokio::io::AsyncWriteExt;
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

/// Step 10's connection loop, with `respond` replaced by an echo.
async fn echo(mut socket: TcpStream) -> io::Result<()> {
    socket.set_nodelay(true)?;
    let (mut reader, mut writer) = socket.split();
    let mut lines = LineReader::new();
    let mut out = Vec::new();
    loop {
        while let Some(frame) = lines.next_line() {
            match frame {
                Frame::Line(line) => out.extend_from_slice(line),
                Frame::TooLong => {
                    out.extend_from_slice(br#"{"status":"error","reason":"line_too_long"}"#)
                }
            }
            out.push(b'\n');
        }
        if !out.is_empty() {
            writer.write_all(&out).await?;
            out.clear();
        }
        if lines.fill(&mut reader).await? == 0 {
            return Ok(());
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
