//! Step 03: events parsed from JSON lines, and every kind of garbage answered with an error.
//! These checks run at every later step too, with that step's reply to a valid event.

use crate::fail;
use crate::harness::check::{Check, Ctx};
use crate::harness::failure::{OrHint, Outcome};
use crate::harness::transcript::show_bytes;
use crate::oracle::ledger::{mixed_lines, Ledger};
use crate::oracle::reply::{self, error};
use crate::sut::server::{peak_kib, rss_kib};
use serde_json::{json, Value};
use std::thread;
use std::time::Duration;

pub const CHECKS: &[Check] = &[
    Check {
        name: "valid_events",
        about: "valid buy and sell events get the step's reply",
        since: 3,
        alone: false,
        run: valid_events,
    },
    Check {
        name: "invalid_json",
        about: "bytes that are not UTF-8 JSON get invalid_json, and the connection stays usable",
        since: 3,
        alone: false,
        run: invalid_json,
    },
    Check {
        name: "invalid_event",
        about: "JSON that is not a well-formed event gets invalid_event",
        since: 3,
        alone: false,
        run: invalid_event,
    },
    Check {
        name: "extra_fields_ignored",
        about: "unknown extra fields in an event are ignored",
        since: 3,
        alone: false,
        run: extra_fields_ignored,
    },
    Check {
        name: "unknown_type",
        about: "an object with a \"type\" the step does not know (or that is not a string) gets unknown_type",
        since: 3,
        alone: false,
        run: unknown_type,
    },
    Check {
        name: "crlf_stripped",
        about: "a trailing \\r before the newline is stripped",
        since: 3,
        alone: false,
        run: crlf_stripped,
    },
    Check {
        name: "line_too_long",
        about: "a line past 65 536 bytes gets line_too_long before its end arrives, and the next line is answered normally",
        since: 3,
        alone: false,
        run: line_too_long,
    },
    Check {
        name: "line_limit_boundary",
        about: "65 536 bytes is a line, 65 537 is too long, a \\r counts, and so do the bytes of a multi-byte character",
        since: 3,
        alone: false,
        run: line_limit_boundary,
    },
    Check {
        name: "long_line_memory_bounded",
        about: "a 4 MiB line costs the server no more than a few MiB of memory",
        since: 3,
        alone: false,
        run: long_line_memory_bounded,
    },
    Check {
        name: "pipelined_mixed_1000",
        about: "1 000 mixed lines in one write get 1 000 replies, one for one, in order",
        since: 3,
        alone: false,
        run: pipelined_mixed_1000,
    },
    Check {
        name: "byte_per_write",
        about: "a line sent one byte per write gets one reply",
        since: 3,
        alone: false,
        run: byte_per_write,
    },
    Check {
        name: "split_at_every_boundary",
        about: "8 lines (mixed kinds, a two-byte name, a \\r\\n ending), cut in three writes again and again until every byte boundary has been cut once, get the same replies",
        since: 3,
        alone: false,
        run: split_at_every_boundary,
    },
    Check {
        name: "half_close_and_fragment",
        about: "after a half-close every reply arrives, a fragment gets none, then end of file",
        since: 3,
        alone: false,
        run: half_close_and_fragment,
    },
    Check {
        name: "deep_nesting",
        about: "JSON nested 32 000 and 100 000 deep is refused without a crash",
        since: 3,
        alone: false,
        run: deep_nesting,
    },
    Check {
        name: "odd_numbers_and_names",
        about: "numbers past i64 and u64, exponents, leading zeros, unicode and 60 KB user names",
        since: 3,
        alone: false,
        run: odd_numbers_and_names,
    },
];

/// The largest line the contract accepts, in bytes before the newline.
const MAX_LINE: usize = 65_536;

/// The seed of the seeded traffic; change it to explore, and it is in every transcript.
pub const SEED: u64 = 0x5EED_0006;

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

fn extra_fields_ignored(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?;
    let mut ledger = Ledger::new(ctx.step);
    let (_, want) = ledger.event("alice", "buy", 5);
    let line = json!({"note": "birthday", "user": "alice", "tags": [1, {"x": null}], "action": "buy", "amount": 5, "currency": "EUR"}).to_string();
    c.expect(&line, &want)
        .or_hint("Unknown fields are ignored: do not use #[serde(deny_unknown_fields)] on events.")
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
                .hint(f.hint.clone().unwrap_or_default())
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

/// A bad line, what it must get, and what it is, for the failure message.
type Case<'a> = (&'a [u8], &'a str, &'a str);

/// Sends each bad line, followed by a valid event that must be answered normally: a bad line
/// never costs the connection. `hint_for` may name what a wrong reply to one case means.
fn expect_errors(
    ctx: &mut Ctx,
    cases: &[Case],
    hint_for: impl Fn(&str, &serde_json::Value) -> Option<&'static str>,
) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?;
    let mut ledger = Ledger::new(ctx.step);
    for &(bytes, reason, what) in cases {
        let mut line = bytes.to_vec();
        line.push(b'\n');
        c.send(&line)?;
        let got = c.recv_json()?;
        reply::compare(bytes, &error(reason), &got).map_err(|f| {
            let f = fail!("{what} must get {reason}")
                .expected(f.expected.clone().unwrap_or_default())
                .got(f.got.clone().unwrap_or_default());
            let f = match hint_for(what, &got) {
                Some(hint) => f.hint(hint),
                None if f.observed => f,
                None => f,
            };
            match reply::specific(&error(reason), &got) {
                Some(hint) if f.hint.is_none() => f.hint(hint),
                _ => f.guess(
                    "Compare the line with the rules of the contract (book/src/contract.md).",
                ),
            }
        })?;
        let (line, want) = ledger.event("alice", "buy", 1);
        c.expect(&line, &want).or_hint(
            "After a bad line the connection stays open and the next line is answered normally.",
        )?;
    }
    Ok(())
}

fn invalid_json(ctx: &mut Ctx) -> Outcome {
    let cases: &[Case] = &[
        (b"this is not json", "invalid_json", "plain text"),
        (
            br#"{"user":"alice","action":"buy","amount":5"#,
            "invalid_json",
            "truncated JSON",
        ),
        (
            br#"{"user":"alice","action":"buy","amount":5}}"#,
            "invalid_json",
            "trailing garbage after the object",
        ),
        (b"", "invalid_json", "an empty line"),
        (
            br#"{'user':'alice','action':'buy','amount':5}"#,
            "invalid_json",
            "single quotes",
        ),
        (
            b"{\"user\":\"al\xffice\",\"action\":\"buy\",\"amount\":5}",
            "invalid_json",
            "a user name that is not UTF-8",
        ),
        (
            b"{\"user\":\"alice\",\"action\":\"buy\",\"amount\":5,\"note\":\"caf\xe9\"}",
            "invalid_json",
            "bytes that are not UTF-8 in a field the server ignores",
        ),
        (b"\xfe\xff\x00\x01", "invalid_json", "binary bytes"),
        (
            br#"{"user":"alice","action":"buy","amount":5,"user":"#,
            "invalid_json",
            "a duplicate field, then the line cut short",
        ),
        (br#"[1,2"#, "invalid_json", "an array cut short"),
    ];
    expect_errors(ctx, cases, |what, got| {
        let reason = got.get("reason").and_then(|r| r.as_str());
        match (what, reason) {
            ("bytes that are not UTF-8 in a field the server ignores", _) => Some("serde_json checks UTF-8 only in the strings it keeps: bytes that are not UTF-8 in a field it skips go unnoticed. Check that the whole line is UTF-8 (std::str::from_utf8) before parsing."),
            ("a duplicate field, then the line cut short", Some("invalid_event")) => Some("serde stopped at the duplicate field before it reached the end of the line, which is cut short: the line is not JSON at all. A serde error tells you where serde stopped, not what the whole line is: ask separately whether the whole line is valid JSON before calling it invalid_event."),
            _ => None,
        }
    })
}

fn invalid_event(ctx: &mut Ctx) -> Outcome {
    let cases: &[Case] = &[
        (
            br#"{"user":"alice","action":"buy"}"#,
            "invalid_event",
            "a missing amount",
        ),
        (
            br#"{"action":"buy","amount":5}"#,
            "invalid_event",
            "a missing user",
        ),
        (
            br#"{"user":"alice","amount":5}"#,
            "invalid_event",
            "a missing action",
        ),
        (
            br#"{"user":"","action":"buy","amount":5}"#,
            "invalid_event",
            "an empty user",
        ),
        (
            br#"{"user":5,"action":"buy","amount":5}"#,
            "invalid_event",
            "a user that is a number",
        ),
        (
            br#"{"user":null,"action":"buy","amount":5}"#,
            "invalid_event",
            "a null user",
        ),
        (
            br#"{"user":"alice","action":"hold","amount":5}"#,
            "invalid_event",
            "an unknown action",
        ),
        (
            br#"{"user":"alice","action":"BUY","amount":5}"#,
            "invalid_event",
            "an action in capitals (actions are lower case)",
        ),
        (
            br#"{"user":"alice","action":"buy","amount":0}"#,
            "invalid_event",
            "amount 0 (amounts start at 1)",
        ),
        (
            br#"{"user":"alice","action":"buy","amount":-5}"#,
            "invalid_event",
            "a negative amount",
        ),
        (
            br#"{"user":"alice","action":"buy","amount":1000000001}"#,
            "invalid_event",
            "an amount over 1 000 000 000",
        ),
        (
            br#"{"user":"alice","action":"buy","amount":18446744073709551616}"#,
            "invalid_event",
            "an amount beyond u64",
        ),
        (
            br#"{"user":"alice","action":"buy","amount":10.5}"#,
            "invalid_event",
            "a fractional amount",
        ),
        (
            br#"{"user":"alice","action":"buy","amount":10.0}"#,
            "invalid_event",
            "a float amount (10.0 is not an integer)",
        ),
        (
            br#"{"user":"alice","action":"buy","amount":1e3}"#,
            "invalid_event",
            "an amount with an exponent",
        ),
        (
            br#"{"user":"alice","action":"buy","amount":"10"}"#,
            "invalid_event",
            "an amount in a string",
        ),
        (
            br#"{"user":"alice","action":"buy","amount":null}"#,
            "invalid_event",
            "a null amount",
        ),
        (
            br#"{"user":"alice","user":"bob","action":"buy","amount":5}"#,
            "invalid_event",
            "a duplicate field (which user?)",
        ),
        (
            br#"["alice","buy",5]"#,
            "invalid_event",
            "an array holding an event's three values",
        ),
        (
            br#"[null,"alice","buy",5]"#,
            "invalid_event",
            "an array holding a type and an event's three values",
        ),
        (br#"[1,2,3]"#, "invalid_event", "an array"),
        (b"42", "invalid_event", "a number"),
        (br#""alice""#, "invalid_event", "a string"),
        (b"null", "invalid_event", "null"),
        (b"{}", "invalid_event", "an empty object"),
    ];
    expect_errors(ctx, cases, |what, got| {
        match what {
            w if w.contains("duplicate") => Some("A field that appears twice is not a well-formed event. Parse into a struct with #[derive(Deserialize)]: serde refuses a duplicate field, while a serde_json::Value silently keeps the last one."),
            w if w.contains("three values") && got.get("reason").and_then(|r| r.as_str()) != Some("invalid_json") => Some("serde fills a struct from a JSON array too, field by field: an array of values became a request. A request is an object: check that the line starts with `{`."),
            w if w.contains("float") || w.contains("exponent") || w.contains("fractional") => Some("Amounts are integers: 10.0 and 1e3 are numbers, but not integers. Read the amount as an integer (Value::as_u64, or a u64 field), which refuses them."),
            _ => None,
        }
    })
}

fn unknown_type(ctx: &mut Ctx) -> Outcome {
    let mut cases: Vec<Case> = vec![
        (br#"{"type":"teleport"}"#, "unknown_type", "an unknown type"),
        (
            br#"{"type":"BALANCE","user":"alice"}"#,
            "unknown_type",
            "a type in capitals",
        ),
        (br#"{"type":5}"#, "unknown_type", "a type that is a number"),
        (
            br#"{"type":null,"user":"alice","action":"buy","amount":5}"#,
            "unknown_type",
            "a type that is null, on a valid event",
        ),
        (
            br#"{"type":["balance"],"user":"alice"}"#,
            "unknown_type",
            "a type that is an array",
        ),
        (
            br#"{"type":"teleport","user":"alice","action":"buy","amount":5}"#,
            "unknown_type",
            "an unknown type on a valid event",
        ),
    ];
    // Requests from later steps are unknown until their step.
    if !ctx.step.at_least(6) {
        cases.push((
            br#"{"type":"balance","user":"alice"}"#,
            "unknown_type",
            "a balance request, before step 06",
        ));
    }
    if !ctx.step.at_least(9) {
        cases.push((
            br#"{"type":"metrics"}"#,
            "unknown_type",
            "a metrics request, before step 09",
        ));
        cases.push((
            br#"{"type":"health"}"#,
            "unknown_type",
            "a health request, before step 09",
        ));
    }
    expect_errors(ctx, &cases, |what, _| {
        if what.contains("null") || what.contains("number") || what.contains("array") {
            Some("A line with a \"type\" field is a request, never an event, whatever the type holds: a type that is not a known string (null, a number, an array) gets unknown_type. Look for the field's presence, not for a string in it.")
        } else {
            Some("An object with a \"type\" field is a request, never an event: any type the server does not know (yet) gets unknown_type.")
        }
    })
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
    let mut c = ctx.client(addr)?.quiet();
    let mut ledger = Ledger::new(ctx.step);
    let mut start = br#"{"user":""#.to_vec();
    start.resize(70_000, b'a');
    c.note("sends the first 70 000 bytes of a line, and no newline yet");
    c.send(&start)?;
    let got = c.recv_json_within(Duration::from_secs(3)).map_err(|f| {
        if f.observed {
            return f;
        }
        fail!("70 000 bytes of one line got no reply while the line was still open")
            .expected("line_too_long as soon as the 65 537th byte is read, before the line ends")
            .got("nothing yet")
            .hint("The server waits for the end of the line before answering, so it holds the whole line in memory, however long the client makes it. Past 65 536 bytes, answer line_too_long at once and skip the rest of the line as it comes.")
    })?;
    reply::compare(
        b"(70 000 bytes of a line, no newline yet)",
        &error("line_too_long"),
        &got,
    )?;
    c.note("sends 1 MiB more of the same line, then its newline");
    c.send(&vec![b'a'; 1 << 20])?;
    c.send(b"\",\"action\":\"buy\",\"amount\":1}\n")?;
    let (line, want) = ledger.event("alice", "buy", 2);
    c.send_line(&line)?;
    let got = c.recv_json()?;
    reply::compare(line.as_bytes(), &want, &got).map_err(|f| {
        if got == error("line_too_long") {
            f.hint("line_too_long came twice for one line: once when the line passed the limit, and again at its end. Answer it once, then skip the rest of the line up to and including its newline.")
        } else {
            f.guess("After an over-long line, the next line is a normal line: skip up to and including the newline that ends the long one, then go on.")
        }
    })
}

fn line_limit_boundary(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?.quiet();
    let mut ledger = Ledger::new(ctx.step);
    // JSON allows trailing spaces, so padding makes a valid event of any length. Each valid
    // one is a buy of 3 for alice, and the ledger follows them.
    let event = json!({"user": "alice", "action": "buy", "amount": 3}).to_string();
    let padded = |len: usize| format!("{event}{}", " ".repeat(len - event.len()));
    let valid = Some(3);
    let long = json!({"user": "é".repeat(33_000), "action": "buy", "amount": 1}).to_string();
    // (the bytes before the newline, what they are, a buy of that amount if the line is valid)
    let cases: Vec<(String, &str, Option<u64>)> = vec![
        (
            padded(MAX_LINE),
            "a valid event of exactly 65 536 bytes",
            valid,
        ),
        (padded(MAX_LINE + 1), "a valid event of 65 537 bytes", None),
        (
            padded(MAX_LINE - 1) + "\r",
            "65 535 bytes and a \\r (65 536 in all)",
            valid,
        ),
        (
            padded(MAX_LINE) + "\r",
            "65 536 bytes and a \\r (65 537 in all)",
            None,
        ),
        (
            long,
            "a user name of 33 000 two-byte characters (66 000 bytes, 33 000 characters)",
            None,
        ),
    ];
    for (line, what, buy) in cases {
        let want = match buy {
            Some(amount) => ledger.event("alice", "buy", amount).1,
            None => error("line_too_long"),
        };
        c.note(&format!("sends {what}"));
        c.send(format!("{line}\n").as_bytes())?;
        let got = c.recv_json()?;
        reply::compare(what.as_bytes(), &want, &got).map_err(|f| {
            let hint = if what.contains("two-byte") {
                "The limit is in bytes, not characters: a line of 33 000 characters of two bytes each is 66 000 bytes long, and too long."
            } else if what.contains("\\r") {
                "A line's length counts every byte before its \\n, a trailing \\r included: measure before stripping the \\r."
            } else if what.contains("exactly") {
                "A line of exactly 65 536 bytes is still a line: the limit is `longer than 65 536`."
            } else {
                "A line of 65 537 bytes is one byte too long: it gets line_too_long, however valid its JSON."
            };
            f.hint(hint)
        })?;
    }
    let (line, want) = ledger.event("alice", "buy", 4);
    c.expect(&line, &want)
}

fn long_line_memory_bounded(ctx: &mut Ctx) -> Outcome {
    const MIB: usize = 4;
    /// Growth past this means the line was kept: 2 MiB is half the line, and a bounded server
    /// grows by a few hundred KiB.
    const MOST_MIB: u64 = 2;
    let i = ctx.start(&[])?;
    let addr = ctx.server(i).addr;
    let mut c = ctx.client(addr)?.quiet();
    let mut ledger = Ledger::new(ctx.step);
    // A first exchange, so that the server's own start-up allocations are behind us.
    let (line, want) = ledger.event("before", "buy", 1);
    c.expect(&line, &want)?;
    let pid = ctx.server(i).pid().as_raw();
    let baseline = rss_kib(pid).unwrap_or(0);
    c.note(&format!(
        "sends {{\"user\":\" and then {MIB} MiB of 'a' in 1 MiB writes, then a newline"
    ));
    c.send(br#"{"user":""#)?;
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..MIB {
        c.send(&chunk)?;
    }
    c.send(b"\n")?;
    let got = c.recv_json()?;
    reply::compare(b"(the long line)", &error("line_too_long"), &got)?;
    // The reply to the next line comes once the server has read the whole long one: its
    // memory peak since then is what reading it cost.
    let (line, want) = ledger.event("after", "buy", 1);
    c.expect(&line, &want)?;
    let peak = peak_kib(pid).unwrap_or(0).max(ctx.server(i).peak_rss_kib());
    let grew = peak.saturating_sub(baseline) / 1024;
    c.note(&format!("the server's memory grew by {grew} MiB at most"));
    if grew > MOST_MIB {
        return Err(fail!("the server's memory grew by {grew} MiB while reading one {MIB} MiB line")
            .expected(format!("at most {MOST_MIB} MiB: a line is capped at 64 KiB"))
            .hint("The server keeps the whole line in memory. Stop buffering a line once it is longer than 65 536 bytes: answer line_too_long and discard the rest as it arrives."));
    }
    Ok(())
}

fn split_at_every_boundary(ctx: &mut Ctx) -> Outcome {
    const MIXED: usize = 6;
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?.quiet();
    let mut ledger = Ledger::new(ctx.step);
    let stream: Vec<u8> = split_lines(&mut Ledger::new(ctx.step), MIXED)
        .iter()
        .flat_map(|(l, _)| l.iter().copied().chain([b'\n']))
        .collect();
    c.note(&format!(
        "sends the same {} lines ({} bytes: {MIXED} mixed ones of seed {SEED:#x}, a name in Greek, a line ending in \\r\\n) again and again, cut so that every byte boundary is cut once",
        MIXED + 2,
        stream.len()
    ));
    // Each round cuts the stream in three, at `cut` and half the stream further on: every
    // boundary is cut once, in half as many rounds.
    let half = stream.len() / 2;
    for cut in 0..=half {
        // The same lines each time; the ledger follows the balances they build up.
        let lines = split_lines(&mut ledger, MIXED);
        let (a, b) = (cut, cut + half);
        for piece in [&stream[..a], &stream[a..b], &stream[b..]] {
            c.send(piece)?;
            // A pause makes the pieces arrive in separate reads.
            thread::sleep(Duration::from_micros(300));
        }
        for (i, (line, want)) in lines.iter().enumerate() {
            let got = c.recv_json()?;
            if &got != want {
                return Err(fail!("cut at bytes {a} and {b}: the reply to line {} is wrong", i + 1)
                    .expected(want.to_string())
                    .got(format!("{got} (line: {})", show_bytes(line)))
                    .hint("A read can end anywhere, even inside a multi-byte character or between \\r and \\n: keep partial bytes until their newline arrives."));
            }
        }
    }
    Ok(())
}

/// The lines [`split_at_every_boundary`] sends: `mixed` of [`mixed_lines`], then an event whose
/// name is in two-byte characters, then one that ends in `\r` (stripped since step 03).
fn split_lines(ledger: &mut Ledger, mixed: usize) -> Vec<(Vec<u8>, Value)> {
    let mut lines = mixed_lines(ledger, SEED, mixed);
    let (line, want) = ledger.event("αβγ", "buy", 3);
    lines.push((line.into_bytes(), want));
    let (line, want) = ledger.event("carol", "buy", 2);
    lines.push((format!("{line}\r").into_bytes(), want));
    lines
}

fn deep_nesting(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?;
    let mut ledger = Ledger::new(ctx.step);
    for depth in [32_000usize, 100_000] {
        let line = format!("{}{}\n", "[".repeat(depth), "]".repeat(depth));
        c.note(&format!(
            "sends an array nested {depth} deep ({} bytes)",
            line.len() - 1
        ));
        let mut quiet = c;
        quiet = quiet.quiet();
        quiet.send(line.as_bytes())?;
        let got = quiet.recv_json().or_hint("Deeply nested JSON must not crash the server (a recursive parser without a depth limit overflows its stack); serde_json stops at depth 128.")?;
        let reason = got.get("reason").and_then(|r| r.as_str()).unwrap_or("");
        let allowed: &[&str] = if line.len() - 1 > 65_536 {
            &["line_too_long"]
        } else {
            &["invalid_json", "invalid_event"]
        };
        if !allowed.contains(&reason) {
            return Err(fail!("JSON nested {depth} deep got the wrong reply")
                .expected(allowed.join(" or "))
                .got(got.to_string()));
        }
        c = quiet;
    }
    let (line, want) = ledger.event("deep", "buy", 1);
    c.expect(&line, &want)
}

fn odd_numbers_and_names(ctx: &mut Ctx) -> Outcome {
    let addr = ctx.serve(&[])?;
    let mut c = ctx.client(addr)?;
    let mut ledger = Ledger::new(ctx.step);
    for (amount, what) in [
        ("9223372036854775808", "just past i64"),
        ("18446744073709551615", "u64's largest"),
        ("99999999999999999999999999999", "past u64"),
        ("-0", "minus zero"),
        ("1e0", "an exponent"),
        ("1.000", "a fraction of zeros"),
    ] {
        let line = format!(r#"{{"user":"odd","action":"buy","amount":{amount}}}"#);
        let got = c.ask(&line)?;
        reply::compare(line.as_bytes(), &error("invalid_event"), &got)
            .map_err(|f| f.hint(format!("{what} is not an amount from 1 to 1 000 000 000")))?;
    }
    for line in [
        r#"{"user":"odd","action":"buy","amount":01}"#,
        r#"{"user":"odd","action":"buy","amount":0x10}"#,
        r#"{"user":"odd","action":"buy","amount":+5}"#,
    ] {
        c.expect(line, &error("invalid_json")).or_hint(
            "JSON has no leading zeros, hexadecimal or plus signs: these lines are not JSON.",
        )?;
    }
    for user in ["Zoë 🦀 مرحبا", "tab\tand\u{0}nul", &"x".repeat(60_000)] {
        let (line, want) = ledger.event(user, "buy", 7);
        c.send(format!("{line}\n").as_bytes())?;
        let got = c.recv_json()?;
        reply::compare(line.as_bytes(), &want, &got).or_hint("Any non-empty string is a user name: unicode, control characters and long names included.")?;
    }
    Ok(())
}
