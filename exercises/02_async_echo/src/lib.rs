//! Step 02: an async echo server.
//!
//! Module map:
//! - [`run`]: the accept loop. It spawns one task per connection and goes straight back to
//!   accepting.
//! - `handle_connection`: reads lines from one client and writes each one straight back.
//!
//! The code is step 01's, made async: the same loop, the same reads and writes, each followed by
//! `.await`. What changes is what happens while a connection waits. A tokio task is cheap (a few
//! hundred bytes and no thread of its own), so each connection gets one; while a task waits for
//! its client, the runtime runs other tasks on the same few threads. An idle client no longer
//! blocks anyone.
//!
//! Nothing limits how long a line may be yet: `read_until` keeps buffering until it finds a
//! `\n`, however many bytes that takes, so one client can make the server hold as much memory as
//! it likes. Step 03 deals with that.

// The TODOs leave some code unused until you write them. Once every TODO is done, delete
// these three lines: the compiler then checks again that nothing is left over.
#![allow(unused)]

use std::io;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time;

/// How long to pause after a failed `accept`, so that a persistent error (such as running out of
/// file descriptors) does not turn the accept loop into a busy loop that floods the log.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts connections forever, serving each one in its own task.
///
/// An error on one connection is logged by that connection's task and ends that connection
/// only: the accept loop never sees it.
pub async fn run(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((socket, peer)) => {
                // TODO: Serve this client without making any other client wait. Goal (contract:
                //       many clients at once): the accept loop is back at accepting at once, and a
                //       slow or idle client holds up nobody. Concepts: tasks; what a task must own
                //       to outlive this turn of the loop (`'static`); where the error of one
                //       connection should end up. Trap: awaiting this client's work right here
                //       serves one client at a time.
                todo!()
            }
            Err(err) => {
                eprintln!("accept failed: {err}");
                time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Echoes every complete line the client sends, until it closes its side of the connection.
async fn handle_connection(mut socket: TcpStream) -> io::Result<()> {
    // Reading and writing need two handles to the same socket: `split` borrows it as a reading
    // half, which we buffer (so we can look for `\n`), and a writing half, which we do not (so
    // each echo leaves at once).
    let (reader, mut writer) = socket.split();
    let mut reader = BufReader::new(reader);
    let mut line: Vec<u8> = Vec::new();

    loop {
        line.clear();
        // `read_until` works on bytes, not `String`s: a line that is not UTF-8 is still a line,
        // and it comes back exactly as it was sent. While no byte has arrived, `.await` hands
        // the runtime thread to other tasks.
        let n = reader.read_until(b'\n', &mut line).await?;
        if n == 0 {
            // The client closed its side: every line has been answered.
            return Ok(());
        }
        if line.last() != Some(&b'\n') {
            // The connection ended in the middle of a line. Those bytes are a fragment, not a
            // line, so they get no reply.
            return Ok(());
        }
        // A write error (the client went away) ends this connection only.
        writer.write_all(&line).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::io::AsyncReadExt;

    /// Starts a server on a free port in a background task and returns its address.
    async fn start() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(run(listener));
        addr
    }

    /// Sends `input`, half-closes, and returns everything the server sent back.
    async fn exchange(addr: SocketAddr, input: &[u8]) -> Vec<u8> {
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(input).await.unwrap();
        client.shutdown().await.unwrap();
        let mut reply = Vec::new();
        client.read_to_end(&mut reply).await.unwrap();
        reply
    }

    #[tokio::test]
    async fn echoes_lines_byte_for_byte() {
        let addr = start().await;
        let input = b"hello\n\xff\xfe not utf-8\r\n\n";
        assert_eq!(exchange(addr, input).await, input);
    }

    #[tokio::test]
    async fn fragment_at_eof_gets_no_reply() {
        let addr = start().await;
        assert_eq!(exchange(addr, b"one\ntwo").await, b"one\n");
    }

    #[tokio::test]
    async fn idle_clients_do_not_block_others() {
        let addr = start().await;
        // Far more silent connections than the runtime has threads, each in the middle of a
        // line, kept open for the whole test.
        let mut idle = Vec::new();
        for _ in 0..64 {
            let mut client = TcpStream::connect(addr).await.unwrap();
            client.write_all(b"half a li").await.unwrap();
            idle.push(client);
        }
        assert_eq!(exchange(addr, b"still served\n").await, b"still served\n");
    }
}
