//! Step 01: a blocking echo server. Each line comes back byte for byte.

use crate::fail;
use crate::harness::check::{Check, Ctx};
use crate::harness::failure::{OrHint, Outcome};
use crate::harness::transcript::show_bytes;
use crate::oracle::client::Client;
use crate::oracle::ledger::Ledger;
use crate::oracle::reply;
use std::thread;
use std::time::Duration;

pub const CHECKS: &[Check] = &[
    Check {
        name: "echo_one_line",
        about: "one line comes back byte for byte",
        since: 1,
        alone: false,
        run: echo_one_line,
    },
    Check {
        name: "echo_pipelined",
        about: "many lines in one write come back in order, non-UTF-8 bytes included",
        since: 1,
        alone: false,
        run: echo_pipelined,
    },
    Check {
        name: "echo_split_writes",
        about: "one line sent over many writes comes back whole",
        since: 1,
        alone: false,
        run: echo_split_writes,
    },
    Check {
        name: "echo_survives_mid_line_disconnect",
        about: "a client that leaves mid-line does not stop the server",
        since: 1,
        alone: false,
        run: echo_survives_mid_line_disconnect,
    },
    Check {
        name: "echo_half_close_and_fragment",
        about: "after a half-close every line comes back, the fragment after the last newline does not, then end of file",
        since: 1,
        alone: false,
        run: echo_half_close_and_fragment,
    },
    Check {
        name: "survives_a_reset",
        about: "a client that resets its connection while replies flow hurts nobody else",
        since: 1,
        alone: false,
        run: survives_a_reset,
    },
    Check {
        name: "unit_tests",
        about: "the crate's own unit tests pass (cargo test)",
        since: 1,
        alone: false,
        run: unit_tests,
    },
    Check {
        name: "echo_sequential_clients",
        about: "a second client is served after the first leaves",
        since: 1,
        alone: false,
        run: echo_sequential_clients,
    },
];

/// Receives one line and requires it to be `want` (without its newline).
pub fn expect_echo(c: &mut Client, want: &[u8]) -> Outcome {
    expect_echo_or_fragment(c, want, EXACT_BYTES)
}

/// What a line that came back with other bytes most likely means.
const EXACT_BYTES: &str = "A line came back with other bytes than were sent: echo the bytes exactly as read, without trimming, re-encoding or converting them to a String (a lossy conversion changes bytes that are not UTF-8).";

/// [`expect_echo`], with `fragment_hint` for a reply that is only the start of `want` (the
/// server answered part of a line as if it were the whole).
fn expect_echo_or_fragment(c: &mut Client, want: &[u8], fragment_hint: &str) -> Outcome {
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

fn unit_tests(ctx: &mut Ctx) -> Outcome {
    super::common::crate_tests(ctx, super::common::Tests::Unit)
}

fn echo_one_line(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?;
    c.send(b"hello, eventkit\n")?;
    expect_echo(&mut c, b"hello, eventkit")
}

fn echo_pipelined(ctx: &mut Ctx) -> Outcome {
    const NOT_UTF8: usize = 17;
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?;
    let mut lines: Vec<Vec<u8>> = (0..50)
        .map(|i| format!("line {i} of 50").into_bytes())
        .collect();
    lines[NOT_UTF8] = b"caf\xe9 \xff\xfe not UTF-8".to_vec();
    lines[33] = b"  spaces and\ttabs  ".to_vec();
    let mut all = Vec::new();
    for line in &lines {
        all.extend_from_slice(line);
        all.push(b'\n');
    }
    c.send(&all)?;
    for (i, line) in lines.iter().enumerate() {
        expect_echo(&mut c, line).map_err(|f| {
            if i == NOT_UTF8 && f.expected.is_none() {
                // Nothing came back for the one line that is not UTF-8, and nothing after it.
                f.hint("The lines before it came back, but not the one that is not UTF-8: reading into a String (read_line, lines()) fails on such bytes, and the error ended the connection. Read bytes (read_until) and write them back as they are.")
            } else {
                f.guess("Lines written together must come back one by one, in order, each exactly as sent.")
            }
        })?;
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
        "Only the start of the line came back: a read can return part of a line. Keep the bytes until the newline arrives instead of treating each read as a line.",
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
    expect_echo(&mut c, b"still there?").or_hint("A client that disconnects is an error for that client only: handle it and go back to accepting.")
}

fn echo_half_close_and_fragment(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?;
    const FRAGMENT: &[u8] = b"third, cut off";
    let fragment_came_back = |got: &[u8]| {
        fail!("the fragment after the last newline came back")
            .expected("no reply: bytes after the last \\n at end of file are not a line")
            .got(show_bytes(got))
            .hint("A line that does not end with \\n is what is left of a connection that ended mid-line: it gets no reply.")
    };
    c.send(b"first\nsecond\nthird, cut off")?;
    c.shutdown_write()?;
    // The fragment echoed as it came (without a newline) is the fragment's mistake, not a
    // missing newline.
    let lines = c.read_to_eof(Duration::from_secs(3)).map_err(|f| {
        if f.got.as_deref() == Some(show_bytes(FRAGMENT).as_str()) {
            fragment_came_back(FRAGMENT)
        } else {
            f
        }
    })?;
    let got: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    match got.as_slice() {
        [b"first", b"second"] => Ok(()),
        [b"first", b"second", extra, ..] => Err(fragment_came_back(extra)),
        _ => Err(fail!("after a half-close, the two complete lines did not both come back before end of file")
            .expected("first, second, then end of file")
            .got(got.iter().map(|l| show_bytes(l)).collect::<Vec<_>>().join(" | "))
            .hint("When the client shuts its sending side, the server still echoes every complete line before it closes.")),
    }
}

/// A line of this step's traffic and what it must get back, as a request/reply pair for
/// [`Client::ask`]-like exchanges that work at every step: an echo at steps 01-02, an event
/// from step 03 on.
pub fn hello(ledger: &mut Ledger, who: &str) -> (String, Option<serde_json::Value>) {
    if ledger.echoes() {
        (format!("hello from {who}"), None)
    } else {
        let (line, want) = ledger.event(who, "buy", 1);
        (line, Some(want))
    }
}

/// Sends `line` and requires `want` back (the line itself where `want` is `None`: an echo).
pub fn exchange(c: &mut Client, line: &str, want: &Option<serde_json::Value>) -> Outcome {
    c.send_line(line)?;
    match want {
        None => expect_echo(c, line.as_bytes()),
        Some(want) => {
            let got = c.recv_json()?;
            reply::compare(line.as_bytes(), want, &got)
        }
    }
}

fn survives_a_reset(ctx: &mut Ctx) -> Outcome {
    // From step 05 on, a queue with room for every event of the rude client: the polite one's
    // event is then accepted however slowly the workers drain, never server_busy.
    let flags: &[&str] = if ctx.step.number >= 5 {
        &["--queue-capacity", "10000"]
    } else {
        &[]
    };
    let addr = ctx.serve(flags)?;
    let mut ledger = Ledger::new(ctx.step);
    {
        let mut rude = ctx.client(addr)?.quiet();
        let (line, _) = hello(&mut ledger, "rude");
        rude.send(format!("{line}\n").repeat(5000).as_bytes())?;
        for _ in 0..10 {
            rude.recv_raw()?;
        }
        rude.note("reads 10 of 5 000 replies, then resets the connection (RST)");
        rude.reset()?;
    }
    let mut c = ctx.client(addr)?;
    let (line, want) = hello(&mut ledger, "polite");
    exchange(&mut c, &line, &want).or_hint("A client that resets its connection is an error on that connection only: writing to it fails, so end that connection, and keep serving the others.")
}

fn echo_sequential_clients(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    for round in 1..=2 {
        let mut c = ctx.client(addr)?;
        let line = format!("client number {round}");
        c.send(format!("{line}\n").as_bytes())?;
        expect_echo(&mut c, line.as_bytes()).or_hint("The server answered its first client but not the next one: after a client leaves, go back to accepting.")?;
        c.note("disconnects");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::transcript::Transcript;
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
        outcome.err().and_then(|f| f.hint.clone())
    }

    #[test]
    fn a_fragment_other_bytes_and_a_missing_newline_get_different_hints() {
        assert_eq!(hint_for(|l| format!("{l}\n")), None);
        assert_eq!(hint_for(|_| "one \n".into()).as_deref(), Some("FRAGMENT"));
        assert_eq!(
            hint_for(|l| format!("{}\n", l.to_uppercase())).as_deref(),
            Some(EXACT_BYTES)
        );
        let no_newline = hint_for(|l| l.to_string()).unwrap();
        assert!(no_newline.contains("without its trailing"), "{no_newline}");
    }
}
