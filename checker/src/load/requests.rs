//! The requests a load run sends, rendered once before the run: the hot path only copies
//! slices of one buffer into the socket, and never formats or allocates a line.

use std::fmt::Write as _;

/// How requests are written and replies read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Wire {
    /// The course's protocol: one JSON object per line, one reply line per request.
    Json,
    /// The same JSON lines, against a server that echoes each line back (steps 01-02, and the
    /// echo ceiling of the benchmarks).
    Echo,
    /// Redis's protocol (RESP): an event is `INCRBY user amount`, a read is `GET user`.
    Resp,
}

/// What a request is, to know what its reply should be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An event (`buy` or `sell`), or `INCRBY`.
    Event,
    /// A balance read, or `GET`.
    Read,
}

/// What the requests look like: who they are for and how many are reads.
#[derive(Clone, Debug)]
pub struct Mix {
    /// Users are `{prefix}0` to `{prefix}{users-1}`, picked uniformly at random.
    pub users: usize,
    pub prefix: String,
    /// Percentage of requests that are balance reads (0 to 100).
    pub reads_percent: u8,
    /// Percentage of events that are sells (the rest are buys).
    pub sells_percent: u8,
    pub seed: u64,
}

impl Default for Mix {
    fn default() -> Mix {
        Mix {
            users: 10_000,
            prefix: "u".into(),
            reads_percent: 0,
            sells_percent: 25,
            seed: 0x5eed,
        }
    }
}

/// A small, fast, reproducible random number generator (SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Every request of a run, rendered: `len()` distinct requests, then the first `wrap` of them
/// again, so that any run of at most `wrap` consecutive requests (counted modulo `len()`) is one
/// contiguous slice of `bytes`, written with one system call.
#[derive(Debug)]
pub struct Pool {
    bytes: Vec<u8>,
    /// `ends[i]` is where request `i` ends in `bytes` (request `i` starts at `ends[i-1]`).
    ends: Vec<usize>,
    kinds: Vec<Kind>,
    /// The number of distinct requests.
    len: usize,
}

impl Pool {
    /// Renders `len` requests (at least 1) in `wire`'s format, and repeats the first `wrap`.
    pub fn render(wire: Wire, mix: &Mix, len: usize, wrap: usize) -> Pool {
        let len = len.max(1);
        let wrap = wrap.min(len);
        let mut rng = Rng::new(mix.seed);
        let mut pool = Pool {
            bytes: Vec::with_capacity((len + wrap) * 48),
            ends: Vec::with_capacity(len + wrap),
            kinds: Vec::with_capacity(len + wrap),
            len,
        };
        let mut user = String::new();
        for _ in 0..len {
            user.clear();
            let _ = write!(user, "{}{}", mix.prefix, rng.below(mix.users.max(1) as u64));
            let kind = if rng.below(100) < u64::from(mix.reads_percent) {
                Kind::Read
            } else {
                Kind::Event
            };
            let sell = rng.below(100) < u64::from(mix.sells_percent);
            let amount = 1 + rng.below(100);
            match (wire, kind) {
                (Wire::Json | Wire::Echo, Kind::Event) => {
                    let action = if sell { "sell" } else { "buy" };
                    json_event(&mut pool.bytes, &user, action, amount)
                }
                (Wire::Json | Wire::Echo, Kind::Read) => json_balance(&mut pool.bytes, &user),
                (Wire::Resp, Kind::Event) => {
                    let amount = if sell {
                        format!("-{amount}")
                    } else {
                        amount.to_string()
                    };
                    resp_command(&mut pool.bytes, &["INCRBY", &user, &amount])
                }
                (Wire::Resp, Kind::Read) => resp_command(&mut pool.bytes, &["GET", &user]),
            }
            pool.ends.push(pool.bytes.len());
            pool.kinds.push(kind);
        }
        for i in 0..wrap {
            let (start, end) = pool.span(i);
            pool.bytes.extend_from_within(start..end);
            pool.ends.push(pool.bytes.len());
            pool.kinds.push(pool.kinds[i]);
        }
        pool
    }

    /// The number of distinct requests.
    pub fn len(&self) -> usize {
        self.len
    }

    /// How many consecutive requests one slice can hold (see [`Pool::slice`]).
    pub fn wrap(&self) -> usize {
        self.ends.len() - self.len
    }

    fn span(&self, i: usize) -> (usize, usize) {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        (start, self.ends[i])
    }

    /// Requests `first` to `first + count - 1` as one slice; `first < len()`,
    /// `count <= max(wrap(), len() - first)`.
    pub fn slice(&self, first: usize, count: usize) -> &[u8] {
        let start = self.span(first).0;
        let end = self.ends[first + count - 1];
        &self.bytes[start..end]
    }

    /// What request `i` (counted modulo `len()`) is.
    pub fn kind(&self, i: usize) -> Kind {
        self.kinds[i % self.len]
    }

    /// Request `i` (counted modulo `len()`), as sent.
    #[cfg(test)]
    pub fn request(&self, i: usize) -> &[u8] {
        let (s, e) = self.span(i % self.len);
        &self.bytes[s..e]
    }
}

/// `{"user":"u7","action":"buy","amount":12}` and a newline.
pub fn json_event(out: &mut Vec<u8>, user: &str, action: &str, amount: u64) {
    out.extend_from_slice(b"{\"user\":\"");
    out.extend_from_slice(user.as_bytes());
    out.extend_from_slice(b"\",\"action\":\"");
    out.extend_from_slice(action.as_bytes());
    out.extend_from_slice(b"\",\"amount\":");
    out.extend_from_slice(amount.to_string().as_bytes());
    out.extend_from_slice(b"}\n");
}

/// `{"type":"balance","user":"u7"}` and a newline.
pub fn json_balance(out: &mut Vec<u8>, user: &str) {
    out.extend_from_slice(b"{\"type\":\"balance\",\"user\":\"");
    out.extend_from_slice(user.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// A RESP command: an array of bulk strings, `*N\r\n` then `$LEN\r\nARG\r\n` for each argument.
pub fn resp_command(out: &mut Vec<u8>, args: &[&str]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp_commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        resp_command(&mut out, &["INCRBY", "u42", "-7"]);
        assert_eq!(
            out,
            b"*3\r\n$6\r\nINCRBY\r\n$3\r\nu42\r\n$2\r\n-7\r\n".to_vec()
        );
        out.clear();
        resp_command(&mut out, &["GET", "alice"]);
        assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$5\r\nalice\r\n".to_vec());
    }

    #[test]
    fn json_requests_are_valid_json_lines() {
        let pool = Pool::render(
            Wire::Json,
            &Mix {
                reads_percent: 30,
                ..Mix::default()
            },
            500,
            16,
        );
        let (mut reads, mut events) = (0, 0);
        for i in 0..pool.len() {
            let line = pool.request(i);
            assert_eq!(line.last(), Some(&b'\n'));
            let v: serde_json::Value = serde_json::from_slice(line).unwrap();
            match pool.kind(i) {
                Kind::Read => {
                    reads += 1;
                    assert_eq!(v["type"], "balance");
                }
                Kind::Event => {
                    events += 1;
                    assert!(v["action"] == "buy" || v["action"] == "sell", "{v}");
                    let amount = v["amount"].as_u64().unwrap();
                    assert!((1..=100).contains(&amount));
                }
            }
            let user = v["user"].as_str().unwrap();
            let n: usize = user.strip_prefix('u').unwrap().parse().unwrap();
            assert!(n < 10_000);
        }
        assert!((100..200).contains(&reads), "{reads} reads of 500");
        assert_eq!(reads + events, 500);
    }

    #[test]
    fn a_window_across_the_end_is_one_slice() {
        let pool = Pool::render(Wire::Json, &Mix::default(), 10, 4);
        assert_eq!(pool.len(), 10);
        assert_eq!(pool.wrap(), 4);
        let expected: Vec<u8> = (8..12).flat_map(|i| pool.request(i).to_vec()).collect();
        assert_eq!(pool.slice(8, 4), &expected[..]);
        assert_eq!(
            pool.slice(0, 10).iter().filter(|&&b| b == b'\n').count(),
            10
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_requests() {
        let a = Pool::render(Wire::Resp, &Mix::default(), 100, 0);
        let b = Pool::render(Wire::Resp, &Mix::default(), 100, 0);
        let c = Pool::render(
            Wire::Resp,
            &Mix {
                seed: 7,
                ..Mix::default()
            },
            100,
            0,
        );
        assert_eq!(a.slice(0, 100), b.slice(0, 100));
        assert_ne!(a.slice(0, 100), c.slice(0, 100));
    }
}
