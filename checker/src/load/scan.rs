//! Reading replies at full speed: a reply line is recognised by the few bytes that tell what it
//! is, never parsed as JSON. The reference servers' exact replies are matched first (one
//! comparison); any other spelling the contract allows (spaces, another key order) is still
//! recognised by looking for the words that matter.

use super::requests::Wire;
use memchr::memmem;

/// What a reply says, as far as counting goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// `{"status":"accepted"}`.
    Accepted,
    /// `{"status":"rejected","reason":"server_busy"}`.
    Busy,
    /// `{"status":"ok",...}` (a balance, or step 04's answer to an event), an echoed line, or a
    /// RESP integer, simple string or bulk string.
    Ok,
    /// `{"status":"error","reason":"too_many_connections"}`: the server turned the connection
    /// away at its connection limit.
    Refused,
    /// `{"status":"error",...}`, a RESP error, or a line that is none of the above.
    Error,
}

/// Turns reply lines into [`Seen`]s for one connection. RESP bulk strings take two lines, so
/// the scanner remembers whether it is in the middle of one.
#[derive(Debug)]
pub struct Scanner {
    wire: Wire,
    in_bulk: bool,
}

impl Scanner {
    pub fn new(wire: Wire) -> Scanner {
        Scanner {
            wire,
            in_bulk: false,
        }
    }

    /// What the reply `line` (without its `\n`) says; `None` when the line is only the first
    /// half of a reply (a RESP bulk string's length).
    #[inline]
    pub fn classify(&mut self, line: &[u8]) -> Option<Seen> {
        match self.wire {
            Wire::Json => Some(classify_json(line)),
            Wire::Echo => Some(Seen::Ok),
            Wire::Resp => self.classify_resp(line),
        }
    }

    fn classify_resp(&mut self, line: &[u8]) -> Option<Seen> {
        if self.in_bulk {
            self.in_bulk = false;
            return Some(Seen::Ok);
        }
        match line.first() {
            Some(b':' | b'+') => Some(Seen::Ok),
            // `$-1` is a nil (a key never set); `$N` announces N bytes on the next line.
            Some(b'$') if line.starts_with(b"$-1") => Some(Seen::Ok),
            Some(b'$') => {
                self.in_bulk = true;
                None
            }
            _ => Some(Seen::Error),
        }
    }
}

/// Classifies one JSON reply line (without its `\n`; a trailing `\r` is ignored).
#[inline]
pub fn classify_json(line: &[u8]) -> Seen {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match line {
        b"{\"status\":\"accepted\"}" => Seen::Accepted,
        b"{\"status\":\"rejected\",\"reason\":\"server_busy\"}" => Seen::Busy,
        b"{\"status\":\"error\",\"reason\":\"too_many_connections\"}" => Seen::Refused,
        _ if line.starts_with(b"{\"status\":\"ok\"") => Seen::Ok,
        _ => classify_json_slowly(line),
    }
}

/// Any other spelling: look for the words themselves.
#[cold]
fn classify_json_slowly(line: &[u8]) -> Seen {
    let has = |word: &[u8]| memmem::find(line, word).is_some();
    if !line.starts_with(b"{") && !line.trim_ascii_start().starts_with(b"{") {
        Seen::Error
    } else if has(b"\"server_busy\"") {
        Seen::Busy
    } else if has(b"\"too_many_connections\"") {
        Seen::Refused
    } else if has(b"\"error\"") {
        Seen::Error
    } else if has(b"\"accepted\"") {
        Seen::Accepted
    } else if has(b"\"ok\"") {
        Seen::Ok
    } else {
        Seen::Error
    }
}

/// Splits the complete lines off the front of `buf`, calling `each` with every line (without
/// its `\n`), and returns how many bytes they took: the rest is an unfinished line.
#[inline]
pub fn for_each_line(buf: &[u8], mut each: impl FnMut(&[u8])) -> usize {
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', buf) {
        each(&buf[start..end]);
        start = end + 1;
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_replies() {
        for (line, seen) in [
            (&br#"{"status":"accepted"}"#[..], Seen::Accepted),
            (
                br#"{"status":"rejected","reason":"server_busy"}"#,
                Seen::Busy,
            ),
            (br#"{"status":"ok","balance":-12}"#, Seen::Ok),
            (
                br#"{"status":"error","reason":"too_many_connections"}"#,
                Seen::Refused,
            ),
            (br#"{"status":"ok"}"#, Seen::Ok),
            (
                br#"{"status":"ok","received":3,"processed":2,"dropped":1,"refused":0}"#,
                Seen::Ok,
            ),
            (
                br#"{"status":"error","reason":"invalid_json"}"#,
                Seen::Error,
            ),
        ] {
            assert_eq!(
                classify_json(line),
                seen,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn other_spellings_the_contract_allows() {
        for (line, seen) in [
            (&br#"{ "status": "accepted" }"#[..], Seen::Accepted),
            (br#"{"status":"accepted"}"#.as_slice(), Seen::Accepted),
            (b"{\"status\":\"accepted\"}\r", Seen::Accepted),
            (
                br#"{"reason":"server_busy","status":"rejected"}"#,
                Seen::Busy,
            ),
            (br#"{"balance":5,"status":"ok"}"#, Seen::Ok),
            (
                br#"{"status":"error", "reason":"too_many_connections"}"#,
                Seen::Refused,
            ),
            (
                br#"{"reason":"too_many_connections","status":"error"}"#,
                Seen::Refused,
            ),
            (
                br#"{"reason":"line_too_long","status":"error"}"#,
                Seen::Error,
            ),
            (b"", Seen::Error),
            (b"hello", Seen::Error),
            (br#"{"status":"maybe"}"#, Seen::Error),
        ] {
            assert_eq!(
                classify_json(line),
                seen,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn resp_replies_and_bulk_strings() {
        let mut s = Scanner::new(Wire::Resp);
        assert_eq!(s.classify(b":42\r"), Some(Seen::Ok));
        assert_eq!(s.classify(b"+OK\r"), Some(Seen::Ok));
        assert_eq!(
            s.classify(b"-ERR value is not an integer\r"),
            Some(Seen::Error)
        );
        assert_eq!(s.classify(b"$-1\r"), Some(Seen::Ok));
        assert_eq!(s.classify(b"$2\r"), None);
        // The bulk string's data is the reply, whatever it holds.
        assert_eq!(s.classify(b"-5\r"), Some(Seen::Ok));
        assert_eq!(s.classify(b"-ERR\r"), Some(Seen::Error));
    }

    #[test]
    fn echo_counts_every_line() {
        let mut s = Scanner::new(Wire::Echo);
        assert_eq!(s.classify(b"anything at all"), Some(Seen::Ok));
    }

    #[test]
    fn lines_are_split_and_the_rest_kept() {
        let mut got = Vec::new();
        let used = for_each_line(b"a\nbc\n\nunfinish", |l| got.push(l.to_vec()));
        assert_eq!(got, vec![b"a".to_vec(), b"bc".to_vec(), b"".to_vec()]);
        assert_eq!(used, 6);
        assert_eq!(for_each_line(b"no newline", |_| panic!()), 0);
    }
}
