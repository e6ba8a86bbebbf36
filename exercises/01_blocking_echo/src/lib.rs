//! Step 01: a blocking echo server.
//!
//! Module map:
//! - [`run`]: the accept loop. It takes one client, serves it until it leaves, then takes the next
//!   one.
//! - `handle_client`: reads lines from one client and writes each one straight back.
//!
//! Everything here uses blocking `std::net` sockets, so the thread that serves a client can do
//! nothing else until that client is gone. A second client can connect (the kernel completes the
//! handshake and queues it), but it gets no reply until every client before it has left. That is
//! the problem the next step solves.

// The TODOs leave some code unused until you write them. Once every TODO is done, delete
// these three lines: the compiler then checks again that nothing is left over.
#![allow(unused)]

use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

/// How long to pause after a failed `accept`, so that a persistent error (such as running out of
/// file descriptors) does not turn the accept loop into a busy loop that floods the log.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts clients forever and serves them one at a time.
///
/// An error with one client is logged and ends that client only: the server keeps accepting.
pub fn run(listener: TcpListener) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let peer = peer_name(&stream);
                // The whole conversation with this client happens right here, on the accept
                // loop's own thread. Nobody else is served until it returns.
                if let Err(err) = handle_client(stream) {
                    eprintln!("client {peer}: {err}");
                }
            }
            Err(err) => {
                eprintln!("accept failed: {err}");
                thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
}

/// Echoes every complete line the client sends, until it closes its side of the connection.
fn handle_client(stream: TcpStream) -> io::Result<()> {
    // Reading and writing need two handles to the same socket: the reader is buffered (so we can
    // look for `\n`), the writer is not (so each echo leaves at once).
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut line: Vec<u8> = Vec::new();

    loop {
        line.clear();
        // TODO: Echo one line. Goal (contract, echo): the client gets back exactly the bytes it
        //       sent, line by line, bytes that are not UTF-8 included. Decide what ends this loop:
        //       the client leaving, and a connection that ends in the middle of a line (a fragment
        //       gets no reply). Concepts: buffered reading of bytes, the `?` operator. Traps:
        //       text-based reading rejects bytes that are not UTF-8; a reply without its newline;
        //       an error that ends the whole server instead of this one client.
        todo!()
    }
}

/// The client's address for log lines, or a placeholder when the socket no longer knows it.
fn peer_name(stream: &TcpStream) -> String {
    stream
        .peer_addr()
        .map_or_else(|_| "(unknown)".to_string(), |addr| addr.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::Shutdown;

    /// Starts a server on a free port in a background thread and returns its address.
    fn start() -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || run(listener));
        addr
    }

    /// Sends `input`, half-closes, and returns everything the server sent back.
    fn exchange(addr: std::net::SocketAddr, input: &[u8]) -> Vec<u8> {
        let mut client = TcpStream::connect(addr).unwrap();
        client.write_all(input).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut reply = Vec::new();
        client.read_to_end(&mut reply).unwrap();
        reply
    }

    #[test]
    fn echoes_lines_byte_for_byte() {
        let addr = start();
        let input = b"hello\n\xff\xfe not utf-8\r\n\n";
        assert_eq!(exchange(addr, input), input);
    }

    #[test]
    fn fragment_at_eof_gets_no_reply() {
        let addr = start();
        assert_eq!(exchange(addr, b"one\ntwo"), b"one\n");
    }

    #[test]
    fn serves_clients_one_after_another() {
        let addr = start();
        assert_eq!(exchange(addr, b"first\n"), b"first\n");
        assert_eq!(exchange(addr, b"second\n"), b"second\n");
    }
}
