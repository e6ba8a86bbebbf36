//! What a check saw, in order: bytes sent, lines received, the server's own stderr and notes.
//! Printed when a check fails, so a learner can replay the conversation in their head.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Entries kept per check; older ones are counted, not kept (a chatty check stays bounded).
const KEEP: usize = 400;
/// Characters shown of one line before it is shortened.
const SHOW: usize = 100;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sent,
    Received,
    Server,
    Note,
}

struct Entry {
    who: String,
    kind: Kind,
    text: String,
}

/// A shared, append-only log; cheap to clone into client threads and server readers.
#[derive(Clone, Default)]
pub struct Transcript(Arc<Mutex<Log>>);

#[derive(Default)]
struct Log {
    entries: VecDeque<Entry>,
    forgotten: usize,
    /// Everything the check did, byte for byte, for `checker replay` (up to [`RAW_LIMIT`]).
    actions: Vec<Action>,
    raw_bytes: usize,
    raw_truncated: bool,
}

/// Bytes of raw traffic recorded per check for replays.
const RAW_LIMIT: usize = 8 << 20;

/// One thing a check did, recorded exactly so that it can be done again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A server started with these flags (servers are numbered from 0 in start order), within
    /// these limits.
    Start {
        flags: Vec<String>,
        #[serde(default)]
        limits: crate::sut::process::Limits,
    },
    /// A client connected to server number `server`.
    Connect { client: String, server: usize },
    /// A client sent these bytes (hex).
    Send { client: String, hex: String },
    /// A client closed its sending side.
    ShutdownWrite { client: String },
    /// A client reset its connection (and is gone).
    Reset { client: String },
    /// The checker sent a signal to server number `server`.
    Signal { server: usize, signal: String },
}

impl Transcript {
    /// Records an action for replays, within the byte budget.
    pub fn record(&self, action: Action) {
        let mut log = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Past the budget the replay stops short: anything recorded after a gap would replay a
        // different conversation.
        if log.raw_truncated {
            return;
        }
        let size = match &action {
            Action::Send { hex, .. } => hex.len() / 2,
            _ => 0,
        };
        if log.raw_bytes + size > RAW_LIMIT {
            log.raw_truncated = true;
            return;
        }
        log.raw_bytes += size;
        log.actions.push(action);
    }

    /// Records that `client` sent `bytes`, within the byte budget. The bytes are hex-encoded
    /// only when they fit: a check that sends 100 MB spends no time encoding what no replay
    /// file will keep.
    pub fn record_send(&self, client: &str, bytes: &[u8]) {
        {
            let mut log = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if log.raw_truncated || log.raw_bytes + bytes.len() > RAW_LIMIT {
                log.raw_truncated = true;
                return;
            }
        }
        self.record(Action::Send {
            client: client.to_string(),
            hex: crate::oracle::client::hex(bytes),
        });
    }

    /// The recorded actions, and whether some were left out for size.
    pub fn actions(&self) -> (Vec<Action>, bool) {
        let log = self.0.lock().unwrap_or_else(|e| e.into_inner());
        (log.actions.clone(), log.raw_truncated)
    }

    fn push(&self, who: &str, kind: Kind, text: String) {
        let mut log = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if log.entries.len() == KEEP {
            log.entries.pop_front();
            log.forgotten += 1;
        }
        log.entries.push_back(Entry {
            who: who.to_string(),
            kind,
            text,
        });
    }

    /// Bytes a client wrote: one entry per line, a missing final newline called out.
    pub fn sent(&self, who: &str, bytes: &[u8]) {
        let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
        const MAX_LINES: usize = 6;
        for line in lines.iter().take(MAX_LINES) {
            let text = match line.strip_suffix(b"\n") {
                Some(body) => show_bytes(body),
                None => format!("{}   (no newline yet)", show_bytes(line)),
            };
            self.push(who, Kind::Sent, text);
        }
        if lines.len() > MAX_LINES {
            let more = lines.len() - MAX_LINES;
            self.push(
                who,
                Kind::Sent,
                format!("… {more} more lines in the same write"),
            );
        }
    }

    /// A line a client read (without its newline).
    pub fn received(&self, who: &str, line: &[u8]) {
        self.push(who, Kind::Received, show_bytes(line));
    }

    /// A line the server wrote to stderr.
    pub fn server(&self, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        self.push("your_server", Kind::Server, shorten(line));
    }

    /// Something the checker did or observed that is not bytes on a socket.
    pub fn note(&self, who: &str, text: impl Into<String>) {
        self.push(who, Kind::Note, text.into());
    }

    /// The last `max` entries, formatted one per line.
    pub fn render(&self, max: usize) -> Vec<String> {
        let log = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let skip = log.entries.len().saturating_sub(max);
        let mut out = Vec::new();
        if skip + log.forgotten > 0 {
            out.push(format!(
                "… {} earlier entries not shown",
                skip + log.forgotten
            ));
        }
        for e in log.entries.iter().skip(skip) {
            out.push(match e.kind {
                Kind::Sent => format!("[{}] -> {}", e.who, e.text),
                Kind::Received => format!("[{}] <- {}", e.who, e.text),
                Kind::Server => format!("[{}] {}", e.who, e.text),
                Kind::Note => format!("[{}] {}", e.who, e.text),
            });
        }
        out
    }
}

/// Bytes as readable text: escapes for what is not printable ASCII, long runs shortened.
pub fn show_bytes(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(SHOW)];
    // Printable ASCII as is (JSON stays readable); tabs, returns and other bytes escaped.
    let mut text = String::new();
    for &b in head {
        match b {
            b' '..=b'~' => text.push(b as char),
            b'\n' => text.push_str("\\n"),
            b'\r' => text.push_str("\\r"),
            b'\t' => text.push_str("\\t"),
            _ => text.push_str(&format!("\\x{b:02x}")),
        }
    }
    if bytes.len() > SHOW {
        text.push_str(&format!("… ({} bytes)", bytes.len()));
    }
    text
}

fn shorten(line: &str) -> String {
    match line.char_indices().nth(SHOW * 2) {
        Some((cut, _)) => format!("{}… ({} bytes)", &line[..cut], line.len()),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_bytes_are_split_into_lines_and_a_missing_newline_is_called_out() {
        let t = Transcript::default();
        t.sent("client 1", b"one\ntw\xffo\nthr");
        let lines = t.render(10);
        assert_eq!(lines[0], "[client 1] -> one");
        assert_eq!(lines[1], "[client 1] -> tw\\xffo");
        t.sent("client 1", b"{\"a\":\"\\u00e9\"}\r\n");
        assert_eq!(
            t.render(1).last().unwrap(),
            r#"[client 1] -> {"a":"\u00e9"}\r"#
        );
        assert_eq!(lines[2], "[client 1] -> thr   (no newline yet)");
    }

    #[test]
    fn long_payloads_are_shortened_and_old_entries_counted() {
        let t = Transcript::default();
        t.sent("c", &vec![b'a'; 5000]);
        assert!(t.render(1)[0].ends_with("(5000 bytes)   (no newline yet)"));
        for i in 0..KEEP + 5 {
            t.note("c", i.to_string());
        }
        let shown = t.render(3);
        assert_eq!(shown.len(), 4);
        assert!(shown[0].starts_with("… "), "{shown:?}");
    }
}
