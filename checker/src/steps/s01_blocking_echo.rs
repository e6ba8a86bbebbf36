//! Step 01: a blocking echo server. Each line comes back byte for byte.

use crate::fail;
use crate::harness::check::{Check, Ctx};
use crate::harness::failure::{OrHint, Outcome};
use crate::harness::transcript::show_bytes;
use std::thread;
use std::time::Duration;

pub const CHECKS: &[Check] = &[
    Check {
        name: "echo_one_line",
        about: "one line comes back byte for byte",
        since: 1,
        run: echo_one_line,
    },
    Check {
        name: "echo_pipelined",
        about: "many lines in one write come back in order, non-UTF-8 bytes included",
        since: 1,
        run: echo_pipelined,
    },
    Check {
        name: "echo_split_writes",
        about: "one line sent over many writes comes back whole",
        since: 1,
        run: echo_split_writes,
    },
    Check {
        name: "echo_survives_mid_line_disconnect",
        about: "a client that leaves mid-line does not stop the server",
        since: 1,
        run: echo_survives_mid_line_disconnect,
    },
    Check {
        name: "echo_sequential_clients",
        about: "a second client is served after the first leaves",
        since: 1,
        run: echo_sequential_clients,
    },
];

/// Receives one line and requires it to be `want` (without its newline).
pub fn expect_echo(c: &mut crate::oracle::client::Client, want: &[u8]) -> Outcome {
    expect_echo_or_fragment(c, want, EXACT_BYTES)
}

/// What a line that came back with other bytes most likely means.
const EXACT_BYTES: &str = "Echo the bytes exactly as read: do not trim, re-encode or convert them to a String (lossy conversion changes bytes that are not UTF-8).";

/// [`expect_echo`], with `fragment_hint` for a reply that is only the start of `want` (the
/// server answered part of a line as if it were the whole).
fn expect_echo_or_fragment(
    c: &mut crate::oracle::client::Client,
    want: &[u8],
    fragment_hint: &str,
) -> Outcome {
    let got = c.recv_raw()?;
    if got != want {
        let hint = if got.len() < want.len() && want.starts_with(&got) {
            fragment_hint
        } else {
            EXACT_BYTES
        };
        return Err(fail!("{} got a different line back", c.name)
            .expected(show_bytes(want))
            .got(show_bytes(&got))
            .hint(hint));
    }
    Ok(())
}

fn echo_one_line(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?;
    c.send(b"hello, eventkit\n")?;
    expect_echo(&mut c, b"hello, eventkit")
}

fn echo_pipelined(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?;
    let mut lines: Vec<Vec<u8>> = (0..50)
        .map(|i| format!("line {i} of 50").into_bytes())
        .collect();
    lines[17] = b"caf\xe9 \xff\xfe not UTF-8".to_vec();
    lines[33] = b"  spaces and\ttabs  ".to_vec();
    let mut all = Vec::new();
    for line in &lines {
        all.extend_from_slice(line);
        all.push(b'\n');
    }
    c.send(&all)?;
    for line in &lines {
        expect_echo(&mut c, line).or_hint("Lines written together must come back one by one, in order, each exactly as sent: read with read_until(b'\\n') on bytes, not lines() on Strings.")?;
    }
    Ok(())
}

fn echo_split_writes(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?;
    for part in ["one line ", "sent in ", "five ", "separate ", "writes\n"] {
        c.send(part.as_bytes())?;
        // Paces the writes so that they reach the server as separate reads.
        thread::sleep(Duration::from_millis(10));
    }
    expect_echo_or_fragment(
        &mut c,
        b"one line sent in five separate writes",
        "A read can return part of a line: keep the bytes until the newline arrives instead of treating each read as a line.",
    )
}

fn echo_survives_mid_line_disconnect(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    {
        let mut leaver = ctx.client(addr)?;
        leaver.send(b"half a li")?;
        leaver.note("disconnects without finishing the line");
    }
    let mut c = ctx.client(addr)?;
    c.send(b"still there?\n")?;
    // A reply with other bytes keeps its own hint: the server survived, it just echoes wrong.
    expect_echo(&mut c, b"still there?").map_err(|f| match f.expected {
        Some(_) => f,
        None => f.hint("A client that disconnects is an error for that client only: handle it and go back to accepting (no unwrap on reads and writes)."),
    })
}

fn echo_sequential_clients(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    for round in 1..=2 {
        let mut c = ctx.client(addr)?;
        let line = format!("client number {round}");
        c.send(format!("{line}\n").as_bytes())?;
        expect_echo(&mut c, line.as_bytes())?;
        c.note("disconnects");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::transcript::Transcript;
    use crate::oracle::client::Client;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    /// The hint a one-line exchange gets from a server that answers with `answer(line)`.
    fn hint_for(answer: fn(&str) -> String) -> Option<String> {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line).unwrap();
            (&stream)
                .write_all(answer(line.trim_end()).as_bytes())
                .unwrap();
        });
        let mut c = Client::connect(addr, "client 1".into(), Transcript::default()).unwrap();
        c.send(b"one line\n").unwrap();
        let outcome = expect_echo_or_fragment(&mut c, b"one line", "FRAGMENT");
        server.join().unwrap();
        outcome.err().and_then(|f| f.hint)
    }

    #[test]
    fn a_fragment_and_other_bytes_get_different_hints() {
        assert_eq!(hint_for(|l| format!("{l}\n")), None);
        assert_eq!(hint_for(|_| "one \n".into()).as_deref(), Some("FRAGMENT"));
        assert_eq!(
            hint_for(|l| format!("{}\n", l.to_uppercase())).as_deref(),
            Some(EXACT_BYTES)
        );
    }
}
