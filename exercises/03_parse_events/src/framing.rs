//! Splitting a byte stream into lines, with a limit on how long a line may be.
//!
//! [`LineReader`] keeps the bytes read from the socket in a buffer of its own and hands out
//! complete lines from it. Reading from the socket ([`LineReader::fill`]) and taking lines out
//! ([`LineReader::next_line`]) are separate on purpose: the connection answers every line that is
//! already buffered, flushes the replies, and only then waits for the client again.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

/// The longest line accepted, in bytes before its `\n` (a trailing `\r` counts).
pub const MAX_LINE: usize = 64 * 1024;

/// How much room one read from the socket gets: the buffer's size once a connection has sent
/// something.
const READ_CHUNK: usize = 8 * 1024;

/// The size of the first read, made before the buffer exists.
const FIRST_READ: usize = 512;

/// Below this much free room, the buffer grows before the next read, so that a long line
/// arriving in small pieces still gets reads of a useful size.
const MIN_READ: usize = 1024;

/// What [`LineReader::next_line`] found in the bytes already buffered.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete line, without its `\n` and without a trailing `\r`.
    Line(&'a [u8]),
    /// A line longer than [`MAX_LINE`]. It is reported once, and the rest of it, up to and
    /// including its `\n`, is skipped.
    TooLong,
}

/// Reads lines from a byte stream without ever holding much more than [`MAX_LINE`] bytes.
#[derive(Debug, Default)]
pub struct LineReader {
    /// Bytes read from the socket are in `buf[start..end]`; `buf[end..]` is room for the next
    /// read. It is allocated at the first bytes a client sends, and grows only as far as a long
    /// line needs, so a connection that sends short lines never pays for the 64 KiB limit.
    buf: Vec<u8>,
    /// Where the bytes not yet handed out begin. Lines are consumed by moving this index; the
    /// consumed bytes are dropped in one go by the next [`fill`](Self::fill).
    start: usize,
    /// Where the bytes read so far end.
    end: usize,
    /// How many bytes from `start` on are known to hold no `\n`. A long line arriving in many
    /// small reads would otherwise be searched from its beginning after every read.
    searched: usize,
    /// True while skipping the rest of an over-long line that was already reported.
    skipping: bool,
}

impl LineReader {
    /// Creates a reader with an empty buffer. Nothing is allocated until the first bytes arrive.
    pub fn new() -> LineReader {
        LineReader::default()
    }

    /// Returns the next line from the bytes already buffered, or `None` when they hold no
    /// complete line. Never does any I/O.
    pub fn next_line(&mut self) -> Option<Frame<'_>> {
        if self.skipping {
            // The tail of an over-long line: drop it, up to and including its `\n`.
            match self.find_newline() {
                Some(len) => {
                    self.consume(len + 1);
                    self.skipping = false;
                }
                None => {
                    self.consume_all();
                    return None;
                }
            }
        }
        match self.find_newline() {
            Some(len) => {
                let line_start = self.start;
                self.consume(len + 1);
                if len > MAX_LINE {
                    return Some(Frame::TooLong);
                }
                let line = &self.buf[line_start..line_start + len];
                Some(Frame::Line(line.strip_suffix(b"\r").unwrap_or(line)))
            }
            None if self.end - self.start > MAX_LINE => {
                // Too long already, and its end not even in sight. Say so now and skip the rest
                // as it arrives, instead of buffering a line of any length the client likes.
                self.consume_all();
                self.skipping = true;
                Some(Frame::TooLong)
            }
            None => None,
        }
    }

    /// Reads more bytes from `reader` into the buffer. Returns how many were read: 0 means the
    /// client closed its side, and any unfinished line still buffered is abandoned.
    ///
    /// Cancel safe: if the future is dropped before it completes, no bytes were read.
    pub async fn fill<R>(&mut self, reader: &mut R) -> io::Result<usize>
    where
        R: AsyncRead + Unpin,
    {
        // Drop the bytes already handed out: only an unfinished line is kept, moved to the front.
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.is_empty() {
            // No buffer yet: a connection that has not sent a byte costs none. Wait for its first
            // bytes in a small array of our own, and only then allocate.
            let mut first = [0; FIRST_READ];
            let n = reader.read(&mut first).await?;
            if n > 0 {
                self.buf.resize(READ_CHUNK, 0);
                self.buf[..n].copy_from_slice(&first[..n]);
                self.end = n;
            }
            return Ok(n);
        }
        // A buffer that grew for a long line goes back to its small size once that line is done.
        if self.end == 0 && self.buf.len() > READ_CHUNK {
            self.buf.truncate(READ_CHUNK);
            self.buf.shrink_to_fit();
        }
        if self.buf.len() - self.end < MIN_READ {
            self.buf.resize(self.end + READ_CHUNK, 0);
        }
        let n = reader.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// Finds the next `\n` in the unconsumed bytes and returns its offset from `start`.
    fn find_newline(&mut self) -> Option<usize> {
        let unread = &self.buf[self.start..self.end];
        match unread[self.searched..].iter().position(|&b| b == b'\n') {
            Some(offset) => Some(self.searched + offset),
            None => {
                self.searched = unread.len();
                None
            }
        }
    }

    /// Marks the next `n` bytes as handed out.
    fn consume(&mut self, n: usize) {
        self.start += n;
        self.searched = 0;
    }

    /// Drops every buffered byte.
    fn consume_all(&mut self) {
        self.start = 0;
        self.end = 0;
        self.searched = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a frame turned into, owned, so that tests can collect frames across reads.
    #[derive(Debug, PartialEq, Eq)]
    enum Got {
        Line(Vec<u8>),
        TooLong,
    }

    fn line(text: &str) -> Got {
        Got::Line(text.as_bytes().to_vec())
    }

    /// Feeds `input` to a fresh reader in pieces of `chunk` bytes and collects every frame,
    /// taking frames out after each read the way a connection does.
    async fn frames(input: &[u8], chunk: usize) -> Vec<Got> {
        let mut lines = LineReader::new();
        let mut got = Vec::new();
        for mut piece in input.chunks(chunk) {
            while !piece.is_empty() {
                lines.fill(&mut piece).await.unwrap();
                while let Some(frame) = lines.next_line() {
                    got.push(match frame {
                        Frame::Line(line) => Got::Line(line.to_vec()),
                        Frame::TooLong => Got::TooLong,
                    });
                }
                assert!(
                    lines.end <= MAX_LINE + READ_CHUNK,
                    "buffered {} bytes",
                    lines.end
                );
            }
        }
        // End of input: a fragment left in the buffer is dropped with the reader.
        assert_eq!(lines.fill(&mut &b""[..]).await.unwrap(), 0);
        got
    }

    #[tokio::test]
    async fn splits_lines_however_they_arrive() {
        let input = b"one\ntwo\n\nthree\n";
        let expected = vec![line("one"), line("two"), line(""), line("three")];
        for chunk in [1, 2, 5, input.len()] {
            assert_eq!(frames(input, chunk).await, expected, "chunk {chunk}");
        }
    }

    #[tokio::test]
    async fn strips_one_trailing_carriage_return() {
        let got = frames(b"crlf\r\nbare\r\rtwo\r\r\n", 3).await;
        assert_eq!(got, vec![line("crlf"), line("bare\r\rtwo\r")]);
    }

    #[tokio::test]
    async fn fragment_at_eof_is_dropped() {
        assert_eq!(frames(b"whole\nfragm", 4).await, vec![line("whole")]);
    }

    #[tokio::test]
    async fn line_at_the_limit_is_a_line() {
        let mut input = vec![b'a'; MAX_LINE - 1];
        input.extend_from_slice(b"\r\n");
        let got = frames(&input, 1000).await;
        assert_eq!(got, vec![Got::Line(vec![b'a'; MAX_LINE - 1])]);
    }

    #[tokio::test]
    async fn too_long_then_normal_line() {
        for len in [MAX_LINE + 1, MAX_LINE + 2, 10 * MAX_LINE] {
            let mut input = vec![b'x'; len];
            input.extend_from_slice(b"\nnext\n");
            for chunk in [333, 8192, input.len()] {
                let got = frames(&input, chunk).await;
                assert_eq!(
                    got,
                    vec![Got::TooLong, line("next")],
                    "len {len} chunk {chunk}"
                );
            }
        }
    }

    #[tokio::test]
    async fn carriage_return_counts_towards_the_limit() {
        let mut input = vec![b'a'; MAX_LINE];
        input.extend_from_slice(b"\r\nnext\n");
        assert_eq!(frames(&input, 4096).await, vec![Got::TooLong, line("next")]);
    }
}
