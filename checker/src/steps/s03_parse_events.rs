//! Step 03: events parsed from JSON lines, and every kind of garbage answered with an error.
//! These checks run at every later step too, with that step's reply to a valid event.

use crate::fail;
use crate::harness::check::{Check, Ctx};
use crate::harness::failure::{OrHint, Outcome};
use crate::harness::transcript::show_bytes;
use crate::oracle::client::Client;
use crate::oracle::ledger::{mixed_lines, Ledger};
use crate::oracle::reply::{self, error};
use serde_json::json;
use std::thread;
use std::time::Duration;

pub const CHECKS: &[Check] = &[
    Check {
        name: "valid_events",
        about: "valid buy and sell events get the step's reply",
        since: 3,
        run: valid_events,
    },
    Check {
        name: "invalid_json",
        about: "bytes that are not UTF-8 JSON get invalid_json, and the connection stays usable",
        since: 3,
        run: invalid_json,
    },
    Check {
        name: "invalid_event",
        about: "JSON that is not a well-formed event gets invalid_event",
        since: 3,
        run: invalid_event,
    },
    Check {
        name: "extra_fields_ignored",
        about: "unknown extra fields in an event are ignored",
        since: 3,
        run: extra_fields_ignored,
    },
    Check {
        name: "unknown_type",
        about: "an object with an unknown \"type\" gets unknown_type",
        since: 3,
        run: unknown_type,
    },
    Check {
        name: "crlf_stripped",
        about: "a trailing \\r before the newline is stripped",
        since: 3,
        run: crlf_stripped,
    },
    Check {
        name: "line_too_long",
        about: "a 1 MiB line gets line_too_long, and the next line is answered normally",
        since: 3,
        run: line_too_long,
    },
    Check {
        name: "line_limit_boundary",
        about: "65 536 bytes is a line, 65 537 is too long",
        since: 3,
        run: line_limit_boundary,
    },
    Check {
        name: "pipelined_mixed_1000",
        about: "1 000 mixed lines in one write get 1 000 replies, one for one, in order",
        since: 3,
        run: pipelined_mixed_1000,
    },
    Check {
        name: "byte_per_write",
        about: "a line sent one byte per write gets one reply",
        since: 3,
        run: byte_per_write,
    },
    Check {
        name: "half_close_and_fragment",
        about: "after a half-close every reply arrives, a fragment gets none, then end of file",
        since: 3,
        run: half_close_and_fragment,
    },
];

/// The largest line the contract accepts, in bytes before the newline.
const MAX_LINE: usize = 65_536;

/// Sends each line and checks its reply; stops at the first difference.
fn expect_all(c: &mut Client, cases: &[(&str, serde_json::Value)], hint: &str) -> Outcome {
    for (line, want) in cases {
        c.expect(line, want).or_hint(hint)?;
    }
    Ok(())
}

fn valid_events(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?;
    let mut ledger = Ledger::new(ctx.step);
    for (user, action, amount) in [
        ("alice", "buy", 100),
        ("alice", "sell", 30),
        ("bob", "buy", 1),
        ("bob", "buy", 1_000_000_000),
        ("alice", "buy", 7),
    ] {
        let (line, want) = ledger.event(user, action, amount);
        c.expect(&line, &want)?;
    }
    Ok(())
}

fn invalid_json(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?;
    let mut ledger = Ledger::new(ctx.step);
    let cases: &[(&[u8], &str)] = &[
        (b"this is not json", "plain text"),
        (
            br#"{"user":"alice","action":"buy","amount":5"#,
            "truncated JSON",
        ),
        (
            br#"{"user":"alice","action":"buy","amount":5}}"#,
            "trailing garbage after the object",
        ),
        (b"", "an empty line"),
        (
            br#"{'user':'alice','action':'buy','amount':5}"#,
            "single quotes",
        ),
        (
            b"{\"user\":\"al\xffice\",\"action\":\"buy\",\"amount\":5}",
            "a string that is not UTF-8",
        ),
        (b"\xfe\xff\x00\x01", "binary bytes"),
    ];
    for (bytes, what) in cases {
        let mut line = bytes.to_vec();
        line.push(b'\n');
        c.send(&line)?;
        let got = c.recv_json()?;
        reply::compare(bytes, &error("invalid_json"), &got).map_err(|f| {
            fail!("{what} must get invalid_json")
                .expected(f.expected.unwrap_or_default())
                .got(f.got.unwrap_or_default())
                .hint(f.hint.unwrap_or_default())
        })?;
        // The connection must stay usable after every bad line.
        let (line, want) = ledger.event("alice", "buy", 1);
        c.expect(&line, &want).or_hint(
            "After a bad line the connection stays open and the next line is answered normally.",
        )?;
    }
    Ok(())
}

fn invalid_event(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?;
    let cases: &[(&str, &str)] = &[
        (r#"{"user":"alice","action":"buy"}"#, "a missing amount"),
        (r#"{"action":"buy","amount":5}"#, "a missing user"),
        (r#"{"user":"alice","amount":5}"#, "a missing action"),
        (r#"{"user":"","action":"buy","amount":5}"#, "an empty user"),
        (
            r#"{"user":5,"action":"buy","amount":5}"#,
            "a user that is a number",
        ),
        (
            r#"{"user":"alice","action":"hold","amount":5}"#,
            "an unknown action",
        ),
        (
            r#"{"user":"alice","action":"BUY","amount":5}"#,
            "an action in capitals (actions are lower case)",
        ),
        (
            r#"{"user":"alice","action":"buy","amount":0}"#,
            "amount 0 (amounts start at 1)",
        ),
        (
            r#"{"user":"alice","action":"buy","amount":-5}"#,
            "a negative amount",
        ),
        (
            r#"{"user":"alice","action":"buy","amount":1000000001}"#,
            "an amount over 1 000 000 000",
        ),
        (
            r#"{"user":"alice","action":"buy","amount":18446744073709551616}"#,
            "an amount beyond u64",
        ),
        (
            r#"{"user":"alice","action":"buy","amount":10.5}"#,
            "a fractional amount",
        ),
        (
            r#"{"user":"alice","action":"buy","amount":10.0}"#,
            "a float amount (10.0 is not an integer)",
        ),
        (
            r#"{"user":"alice","action":"buy","amount":1e3}"#,
            "an amount with an exponent",
        ),
        (
            r#"{"user":"alice","action":"buy","amount":"10"}"#,
            "an amount in a string",
        ),
        (
            r#"{"user":"alice","action":"buy","amount":null}"#,
            "a null amount",
        ),
        (
            r#"{"user":"alice","user":"bob","action":"buy","amount":5}"#,
            "a duplicate field (which user?)",
        ),
        ("[1,2,3]", "an array"),
        ("42", "a number"),
        (r#""alice""#, "a string"),
        ("null", "null"),
        ("{}", "an empty object"),
    ];
    for (line, what) in cases {
        let got = c.ask(line)?;
        reply::compare(line.as_bytes(), &error("invalid_event"), &got).map_err(|f| {
            let mut hint = f.hint.unwrap_or_default();
            if what.contains("duplicate") {
                hint = "Parse into a struct with #[derive(Deserialize)]: serde rejects a duplicate field, while a serde_json::Value silently keeps the last one.".into();
            } else if what.contains("float") || what.contains("exponent") || what.contains("fractional") {
                hint = "Amounts are integers: deserialize into an integer type (or use Value::as_u64), which rejects 10.0 and 1e3.".into();
            }
            fail!("{what} must get invalid_event").expected(f.expected.unwrap_or_default()).got(f.got.unwrap_or_default()).hint(hint)
        })?;
    }
    Ok(())
}

fn extra_fields_ignored(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?;
    let mut ledger = Ledger::new(ctx.step);
    let (_, want) = ledger.event("alice", "buy", 5);
    let line = json!({"note": "birthday", "user": "alice", "tags": [1, {"x": null}], "action": "buy", "amount": 5, "currency": "EUR"}).to_string();
    c.expect(&line, &want)
        .or_hint("Unknown fields are ignored: do not use #[serde(deny_unknown_fields)] on events.")
}

fn unknown_type(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?;
    let mut cases = vec![
        (r#"{"type":"teleport"}"#, error("unknown_type")),
        (
            r#"{"type":"BALANCE","user":"alice"}"#,
            error("unknown_type"),
        ),
        (r#"{"type":5}"#, error("unknown_type")),
        (
            r#"{"type":"teleport","user":"alice","action":"buy","amount":5}"#,
            error("unknown_type"),
        ),
    ];
    // Requests from later steps are unknown until their step.
    if !ctx.step.at_least(6) {
        cases.push((
            r#"{"type":"balance","user":"alice"}"#,
            error("unknown_type"),
        ));
    }
    if !ctx.step.at_least(9) {
        cases.push((r#"{"type":"metrics"}"#, error("unknown_type")));
        cases.push((r#"{"type":"health"}"#, error("unknown_type")));
    }
    expect_all(&mut c, &cases, "An object with a \"type\" field is a request, never an event: any type the server does not know (yet) gets unknown_type.")
}

fn crlf_stripped(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?;
    let mut ledger = Ledger::new(ctx.step);
    let (line, want) = ledger.event("alice", "buy", 5);
    for (bytes, want) in [
        (format!("{line}\r\n"), want),
        (
            "{\"type\":\"teleport\"}\r\n".to_string(),
            error("unknown_type"),
        ),
    ] {
        c.send(bytes.as_bytes())?;
        let got = c.recv_json()?;
        reply::compare(bytes.as_bytes(), &want, &got).or_hint(
            "Strip one trailing \\r before parsing, so that telnet and Windows clients work.",
        )?;
    }
    Ok(())
}

fn line_too_long(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?;
    let mut ledger = Ledger::new(ctx.step);
    let mut huge = br#"{"user":""#.to_vec();
    huge.resize(huge.len() + (1 << 20), b'a');
    huge.extend_from_slice(b"\",\"action\":\"buy\",\"amount\":1}\n");
    c.send(&huge)?;
    let got = c.recv_json()?;
    reply::compare(&huge, &error("line_too_long"), &got)
        .or_hint("Cap the line buffer at 65 536 bytes: past that, reply line_too_long once and discard the rest of the line up to its newline.")?;
    let (line, want) = ledger.event("alice", "buy", 2);
    c.expect(&line, &want)
        .or_hint("After an over-long line, the next line is a normal line: discard up to and including the newline that ends the long one, then go on.")
}

fn line_limit_boundary(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?;
    let mut ledger = Ledger::new(ctx.step);
    let (event, want) = ledger.event("alice", "buy", 3);
    // JSON allows trailing spaces, so padding makes a valid event of any length.
    let padded = |len: usize| format!("{event}{}\n", " ".repeat(len - event.len()));
    let at_limit = padded(MAX_LINE);
    c.send(at_limit.as_bytes())?;
    let got = c.recv_json()?;
    reply::compare(
        b"(a valid event padded with spaces to exactly 65 536 bytes)",
        &want,
        &got,
    )
    .or_hint(
        "A line of exactly 65 536 bytes is still a line: the limit is `longer than 65 536`.",
    )?;
    let over = padded(MAX_LINE + 1);
    c.send(over.as_bytes())?;
    let got = c.recv_json()?;
    reply::compare(b"(a valid event padded with spaces to 65 537 bytes)", &error("line_too_long"), &got)
        .or_hint("A line of 65 537 bytes is one byte too long: it gets line_too_long, however valid its JSON.")?;
    let (line, want) = ledger.event("alice", "buy", 4);
    c.expect(&line, &want)
}

fn pipelined_mixed_1000(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?.quiet();
    let mut ledger = Ledger::new(ctx.step);
    let lines = mixed_lines(&mut ledger, 0x5EED_0003, 1000);
    let mut all = Vec::new();
    for (line, _) in &lines {
        all.extend_from_slice(line);
        all.push(b'\n');
    }
    c.note(&format!(
        "sends 1000 mixed lines in one write ({} bytes; mix seed 0x5EED0003)",
        all.len()
    ));
    c.send(&all)?;
    for (i, (line, want)) in lines.iter().enumerate() {
        let got = c.recv_json().map_err(|f| {
            fail!("reply {} of 1000 did not arrive: {}", i + 1, f.message)
                .hint(f.hint.unwrap_or_default())
        })?;
        if &got != want {
            c.note(&format!("line {} was: {}", i + 1, show_bytes(line)));
            return Err(fail!("reply {} of 1000 does not answer line {}", i + 1, i + 1)
                .expected(want.to_string())
                .got(got.to_string())
                .hint("Each line gets exactly one reply, in order: no line skipped, none answered twice, no reply for the wrong line. Keep one read buffer per connection and answer every complete line in it before reading more."));
        }
    }
    Ok(())
}

fn byte_per_write(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let c = ctx.client(addr)?;
    let mut ledger = Ledger::new(ctx.step);
    let (line, want) = ledger.event("trickle", "buy", 9);
    c.note(&format!("sends {line} one byte per write"));
    let mut quiet = c.quiet();
    for byte in format!("{line}\n").bytes() {
        quiet.send(&[byte])?;
        // Paces the bytes so that each arrives in a read of its own.
        thread::sleep(Duration::from_millis(1));
    }
    let got = quiet.recv_json()?;
    reply::compare(line.as_bytes(), &want, &got)
        .or_hint("A line may arrive one byte at a time: keep partial bytes in the buffer until the newline comes.")
}

fn half_close_and_fragment(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?;
    let mut ledger = Ledger::new(ctx.step);
    let (one, want_one) = ledger.event("alice", "buy", 10);
    let (two, want_two) = ledger.event("alice", "buy", 20);
    let fragment = r#"{"user":"alice","action":"buy","amount":1"#;
    c.send(format!("{one}\n{two}\n{fragment}").as_bytes())?;
    c.shutdown_write()?;
    let lines = c.read_to_eof(Duration::from_secs(3))?;
    let got: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| reply::parse(l))
        .collect::<Outcome<_>>()?;
    if got.len() < 2 {
        return Err(fail!("after a half-close, {} of the 2 replies arrived before end of file", got.len())
            .hint("When the client shuts its sending side, the server still answers every complete line and flushes before closing."));
    }
    reply::compare(one.as_bytes(), &want_one, &got[0])?;
    reply::compare(two.as_bytes(), &want_two, &got[1])?;
    if got.len() > 2 {
        return Err(fail!("the fragment after the last newline got a reply")
            .expected("no reply: bytes after the last \\n at end of file are not a request")
            .got(got[2].to_string())
            .hint("A line cut off by end of file is discarded: here `...\"amount\":1` was cut from a larger amount. Only a \\n ends a request."));
    }
    Ok(())
}
