//! Step 02: an async echo server.
//!
//! Module map:
//! - [`run`]: the accept loop. It spawns one task per connection and goes straight back to
//!   accepting.
//! - `handle_connection`: reads lines from one client and echoes them, batching the replies.
//!
//! A tokio task is cheap (a few hundred bytes, no thread of its own), so one per connection is
//! fine even for thousands of clients. While a task waits for its client to send, the runtime
//! runs other tasks on the same threads: an idle client no longer blocks anyone.
//!
//! Nothing limits how long a line may be yet: `read_until` keeps buffering until it finds a
//! `\n`, however many bytes that takes, so one client can make the server hold as much memory as
//! it likes.

// The TODOs leave some code unused until you write them. Once every TODO is done, delete
// the next line: the compiler then checks again that nothing is left over.
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
                // TODO: Serve this client in a task of its own, so that the accept loop goes
                //       straight back to `accept` and no client ever waits for another one:
                //       `tokio::spawn` an `async move` block that awaits
                //       `handle_connection(socket)` and logs an error with `eprintln!`, naming
                //       the `peer`.
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
    // We batch replies ourselves (below), so Nagle's algorithm, which holds small writes back
    // hoping to batch them, would only add delay.
    socket.set_nodelay(true)?;
    let (reader, mut writer) = socket.split();
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    // Replies owed to the client, not yet written to the socket.
    let mut out = Vec::new();

    loop {
        line.clear();
        reader.read_until(b'\n', &mut line).await?;
        if line.last() != Some(&b'\n') {
            // End of the connection, possibly in the middle of a line: that fragment gets no
            // reply. Every complete line was answered (and flushed) before we got here.
            return Ok(());
        }
        out.extend_from_slice(&line);

        // One `write_all` per reply costs a system call (and often a TCP segment) per line. A
        // client that pipelines sends many lines at once, so we answer every line it has already
        // sent and write the replies together. We flush when the read buffer holds no other
        // complete line: the next `read_until` would have to wait for the client, and the client
        // may be waiting for these replies.
        if !reader.buffer().contains(&b'\n') {
            writer.write_all(&out).await?;
            out.clear();
        }
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
    async fn idle_client_does_not_block_others() {
        let addr = start().await;
        // Connected, silent, and kept open for the whole test.
        let _idle = TcpStream::connect(addr).await.unwrap();
        assert_eq!(exchange(addr, b"still served\n").await, b"still served\n");
    }

    #[tokio::test]
    async fn reply_is_flushed_before_the_rest_of_a_split_line_arrives() {
        let addr = start().await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        // One complete line plus the start of the next: the first reply must not wait for the
        // second line to be finished.
        client.write_all(b"first\nsec").await.unwrap();
        let mut reply = [0; 6];
        time::timeout(Duration::from_secs(5), client.read_exact(&mut reply))
            .await
            .expect("the first reply was held back")
            .unwrap();
        assert_eq!(&reply, b"first\n");
    }
}
