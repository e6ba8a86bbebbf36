//! The protocol: how a request line becomes a typed request, and how a reply becomes a line.
//!
//! Parsing happens in two stages, so that every problem gets the right reason:
//! 1. serde reads the line into `Fields`, which only checks its *shape*: valid JSON, an
//!    object, no field twice. Every field is kept as a [`Field`]: a string, a non-negative
//!    integer, or "something else".
//! 2. Plain Rust code then checks what each field holds, and builds a [`Request`].
//!
//! Every event goes through here, so it is made cheap. Nearly every event is written the same
//! plain way, `{"user":"NAME","action":"buy","amount":N}`, and a line of exactly that shape is
//! read by a fast path without serde (`parse_plain_event`); every other line, valid or not, goes
//! through the two stages, which decide everything the fast path does not. Both stages avoid
//! work they do not need too: a string is borrowed from the line instead of copied (unless it
//! holds escapes), and nothing is kept of a field the server ignores. The user's name travels
//! inside the event (no allocation for a name of up to 24 bytes), and the two replies nearly
//! every event gets are written as the constant bytes they always are.

use std::borrow::Cow;
use std::fmt;

use compact_str::CompactString;
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::metrics::Snapshot;

/// The largest amount one event may carry.
pub const MAX_AMOUNT: u64 = 1_000_000_000;

/// A valid request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// An event, to be queued.
    Event(Event),
    /// `{"type":"balance","user":...}`: the user's balance, with every event processed so far
    /// applied.
    Balance { user: CompactString },
    /// `{"type":"metrics"}`: the server's counters.
    Metrics,
    /// `{"type":"health"}`: is the server up?
    Health,
}

/// A valid event: a user buys or sells an amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Whose balance the event changes; never empty.
    pub user: CompactString,
    /// Whether the amount is added or subtracted.
    pub action: Action,
    /// From 1 to [`MAX_AMOUNT`].
    pub amount: u64,
}

/// What an event does to the user's balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Adds the amount.
    Buy,
    /// Subtracts the amount.
    Sell,
}

/// Why a line was not accepted, as it appears in an error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Not UTF-8, or not JSON at all.
    InvalidJson,
    /// Valid JSON, but not a well-formed event or request.
    InvalidEvent,
    /// A `"type"` this server does not know.
    UnknownType,
    /// Longer than [`MAX_LINE`](crate::framing::MAX_LINE) bytes.
    LineTooLong,
    /// The queue is full (the reason in a `rejected` reply).
    ServerBusy,
    /// The server is already serving `--max-connections` connections: the one line a new
    /// connection gets before it is closed.
    TooManyConnections,
}

/// One reply line. `#[serde(tag = "status")]` turns the variant into the `"status"` field and
/// its fields into the object's other fields: `Reply::Error { reason }` is written as
/// `{"status":"error","reason":"..."}`.
#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Reply {
    /// The event is in the queue: a promise that it will be processed.
    Accepted,
    /// The event was turned away, and why. It will never be processed.
    Rejected { reason: Reason },
    /// The answer to a balance query.
    Ok { balance: i64 },
    /// The answer to a metrics query: `{"status":"ok","received":...}`.
    #[serde(rename = "ok")]
    Metrics(Snapshot),
    /// The answer to a health check: `{"status":"ok"}`.
    #[serde(rename = "ok")]
    Health,
    /// The line was not accepted, and why.
    Error { reason: Reason },
}

impl Reply {
    /// `{"status":"accepted"}`, as serde writes it.
    const ACCEPTED: &'static [u8] = b"{\"status\":\"accepted\"}\n";
    /// `{"status":"rejected","reason":"server_busy"}`, as serde writes it.
    const SERVER_BUSY: &'static [u8] = b"{\"status\":\"rejected\",\"reason\":\"server_busy\"}\n";

    /// Appends this reply to `out` as one line of JSON.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            // Nearly every event gets one of these two: copy their bytes instead of serializing
            // them again and again. (A test checks that they are what serde would write.)
            Reply::Accepted => out.extend_from_slice(Reply::ACCEPTED),
            Reply::Rejected {
                reason: Reason::ServerBusy,
            } => out.extend_from_slice(Reply::SERVER_BUSY),
            _ => {
                // Writing into a `Vec` cannot fail, and every reply is plain data that serializes.
                serde_json::to_writer(&mut *out, self).expect("a reply always serializes");
                out.push(b'\n');
            }
        }
    }
}

/// What one field of a request line holds, kept only as far as the protocol cares: a string, a
/// non-negative integer, or anything else (a negative or fractional number, `true`, `null`, an
/// array, an object). The string is borrowed from the line when it can be: only a string with
/// escapes in it (`"al\u0069ce"`) has to be copied to be decoded.
#[derive(Debug, PartialEq, Eq)]
enum Field<'a> {
    Str(Cow<'a, str>),
    Uint(u64),
    Other,
}

// Borrowing: a `Field<'a>` can be read from any input that lives at least as long (`'de: 'a`).
impl<'de: 'a, 'a> Deserialize<'de> for Field<'a> {
    fn deserialize<D>(deserializer: D) -> Result<Field<'a>, D::Error>
    where
        D: Deserializer<'de>,
    {
        // A JSON value can be anything: let the JSON say what it is, and sort it as it comes.
        deserializer.deserialize_any(FieldVisitor)
    }
}

/// Sorts whatever value serde meets into a [`Field`].
struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Field<'de>, E> {
        Ok(Field::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Field<'de>, E> {
        Ok(Field::Str(Cow::Owned(v.to_string())))
    }

    // serde_json calls this for every integer without a sign, fraction or exponent.
    fn visit_u64<E>(self, v: u64) -> Result<Field<'de>, E> {
        Ok(Field::Uint(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Field<'de>, E> {
        Ok(u64::try_from(v).map_or(Field::Other, Field::Uint))
    }

    // `10.0` and `1e3` arrive here: they are not plain integers.
    fn visit_f64<E>(self, _: f64) -> Result<Field<'de>, E> {
        Ok(Field::Other)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Field<'de>, E> {
        Ok(Field::Other)
    }

    fn visit_unit<E>(self) -> Result<Field<'de>, E> {
        Ok(Field::Other)
    }

    // An array or an object is read to its end (it must still be valid JSON), and forgotten.
    fn visit_seq<A>(self, mut seq: A) -> Result<Field<'de>, A::Error>
    where
        A: SeqAccess<'de>,
    {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Field::Other)
    }

    fn visit_map<A>(self, mut map: A) -> Result<Field<'de>, A::Error>
    where
        A: MapAccess<'de>,
    {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Field::Other)
    }
}

impl Field<'_> {
    fn as_str(&self) -> Option<&str> {
        match self {
            Field::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// The fields of a request line that the server looks at; any other field is skipped without
/// being kept.
///
/// Each is an `Option<Field>`, so that serde accepts any content and only checks the shape of
/// the line. The content is checked by hand afterwards, where each problem can get its own
/// reason.
#[derive(Debug, Deserialize)]
struct Fields<'a> {
    /// `Some` whenever the line has a `"type"` field, even `"type": null`: a line with a type
    /// is a request, never an event.
    #[serde(rename = "type", default, borrow, deserialize_with = "present")]
    kind: Option<Field<'a>>,
    #[serde(borrow)]
    user: Option<Field<'a>>,
    #[serde(borrow)]
    action: Option<Field<'a>>,
    #[serde(borrow)]
    amount: Option<Field<'a>>,
}

/// Deserializes a field that is present as `Some`, even when it holds `null`. (A plain
/// `Option<Field>` reads `null` as `None`, as if the field were missing.)
fn present<'de: 'a, 'a, D>(deserializer: D) -> Result<Option<Field<'a>>, D::Error>
where
    D: Deserializer<'de>,
{
    Field::deserialize(deserializer).map(Some)
}

/// Parses one line (without its `\n`) into a request.
pub fn parse(line: &[u8]) -> Result<Request, Reason> {
    if let Some(event) = parse_plain_event(line) {
        return Ok(Request::Event(event));
    }
    let fields = read_fields(line)?;
    let Some(kind) = &fields.kind else {
        // No `"type"`: the line is an event.
        return parse_event(fields).map(Request::Event);
    };
    match kind.as_str() {
        Some("balance") => Ok(Request::Balance {
            user: parse_user(fields.user)?,
        }),
        Some("metrics") => Ok(Request::Metrics),
        Some("health") => Ok(Request::Health),
        // Any other type, including one that is not a string at all.
        _ => Err(Reason::UnknownType),
    }
}

/// The fast path: an event written the way nearly every client writes it,
/// `{"user":"NAME","action":"buy","amount":N}` with the fields in this order, no spaces, and no
/// escapes in the name, is read directly, without serde. Any other line, valid or not, gets
/// `None` here and goes through the two stages below, which have the last word on everything
/// that is not this plain. (A test holds the two paths against each other, line by line.)
fn parse_plain_event(line: &[u8]) -> Option<Event> {
    // TODO: A fast path for the one line shape that matters (the plain event: no spaces, no
    //       escapes), without serde and without allocating; None for anything else, so that serde
    //       keeps the last word on every other line. Measure before and after (chapter 12).
    todo!()
}

/// Stage 1: reads the line into [`Fields`], telling "not JSON" from "JSON of the wrong shape".
fn read_fields(line: &[u8]) -> Result<Fields<'_>, Reason> {
    // serde_json checks UTF-8 only in the strings it keeps, so bytes that are not UTF-8 could
    // hide in a field we ignore. Check the whole line first.
    let text = std::str::from_utf8(line).map_err(|_| Reason::InvalidJson)?;
    match serde_json::from_str::<Fields>(text) {
        // serde would also build `Fields` from a JSON array of four values; a request is an
        // object, so it must start with `{`.
        Ok(fields) if text.trim_start().starts_with('{') => Ok(fields),
        // Not a well-formed request. serde stops at the first problem it meets (a duplicate
        // field, say), which tells us nothing about the rest of the line, so we ask separately
        // whether the whole line is JSON: if it is, it is JSON of the wrong shape.
        _ if serde_json::from_str::<IgnoredAny>(text).is_ok() => Err(Reason::InvalidEvent),
        _ => Err(Reason::InvalidJson),
    }
}

/// Stage 2: checks what each field of an event holds.
fn parse_event(fields: Fields) -> Result<Event, Reason> {
    let user = parse_user(fields.user)?;
    let action = match fields.action.as_ref().and_then(Field::as_str) {
        Some("buy") => Action::Buy,
        Some("sell") => Action::Sell,
        _ => return Err(Reason::InvalidEvent),
    };
    // Only a plain integer is a `Field::Uint`: a negative number, or one written with a fraction
    // or an exponent (`10.0`, `1e3`), is `Field::Other`.
    let amount = match fields.amount {
        Some(Field::Uint(amount)) if (1..=MAX_AMOUNT).contains(&amount) => amount,
        _ => return Err(Reason::InvalidEvent),
    };
    Ok(Event {
        user,
        action,
        amount,
    })
}

/// Checks a `user` field: a non-empty string. The event outlives the line, so it owns its copy:
/// a [`CompactString`], which keeps a name of up to 24 bytes inside itself instead of on the heap,
/// so that an event costs no allocation (a longer name is allocated, like a `String`'s).
fn parse_user(user: Option<Field>) -> Result<CompactString, Reason> {
    match user {
        Some(Field::Str(user)) if !user.is_empty() => Ok(CompactString::from(user)),
        _ => Err(Reason::InvalidEvent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Request, Reason> {
        parse(line.as_bytes())
    }

    /// The slow path alone: what `parse` answers when the fast path declines.
    fn parse_with_serde(line: &[u8]) -> Result<Request, Reason> {
        let fields = read_fields(line)?;
        match fields.kind {
            None => parse_event(fields).map(Request::Event),
            Some(_) => Err(Reason::UnknownType),
        }
    }

    #[test]
    fn the_fast_path_agrees_with_serde_on_every_line_one_byte_away_from_a_plain_event() {
        let plain: &[&[u8]] = &[
            br#"{"user":"alice","action":"buy","amount":250}"#,
            br#"{"user":"b","action":"sell","amount":1000000000}"#,
            "{\"user\":\"b\u{f6}b \u{1F600}\",\"action\":\"sell\",\"amount\":7}".as_bytes(),
        ];
        // Bytes that matter to JSON, to UTF-8 and to the fast path's own checks.
        let odd = b"\"\\{}:,0129 \t\x01\x7faAe-.\xc3\xff";
        let mut lines: Vec<Vec<u8>> = Vec::new();
        for base in plain {
            lines.push(base.to_vec());
            for at in 0..=base.len() {
                for &b in odd {
                    let mut inserted = base.to_vec();
                    inserted.insert(at, b);
                    lines.push(inserted);
                    if at < base.len() {
                        let mut replaced = base.to_vec();
                        replaced[at] = b;
                        lines.push(replaced);
                    }
                }
                if at < base.len() {
                    let mut removed = base.to_vec();
                    removed.remove(at);
                    lines.push(removed);
                }
            }
        }
        let mut fast = 0;
        for line in &lines {
            if let Some(event) = parse_plain_event(line) {
                fast += 1;
                assert_eq!(
                    parse_with_serde(line),
                    Ok(Request::Event(event)),
                    "{}",
                    String::from_utf8_lossy(line)
                );
            }
        }
        // The plain lines themselves, and many of their neighbours, took the fast path.
        assert!(fast > 100, "only {fast} lines took the fast path");
    }

    #[test]
    fn the_fast_path_leaves_everything_unusual_to_serde() {
        for line in [
            r#"{"user":"al\u0069ce","action":"buy","amount":1}"#,
            r#"{"user":"","action":"buy","amount":1}"#,
            r#"{"user":"a","action":"buy","amount":0}"#,
            r#"{"user":"a","action":"buy","amount":01}"#,
            r#"{"user":"a","action":"buy","amount":1000000001}"#,
            r#"{"user":"a","action":"buy","amount":99999999999}"#,
            r#"{"user":"a","action":"buy","amount":1.0}"#,
            r#"{"user":"a","action":"buy","amount":1} "#,
            r#"{"user":"a","action":"buy","amount":1,"user":"b"}"#,
            r#"{"action":"buy","user":"a","amount":1}"#,
            r#"{"user":"a","action":"BUY","amount":1}"#,
        ] {
            assert_eq!(parse_plain_event(line.as_bytes()), None, "{line}");
        }
        assert_eq!(
            parse_plain_event(b"{\"user\":\"\xff\",\"action\":\"buy\",\"amount\":1}"),
            None
        );
    }

    #[test]
    fn parses_an_event() {
        let event = parse_str(r#" {"user":"alice","action":"sell","amount":250,"note":[1]} "#);
        assert_eq!(
            event,
            Ok(Request::Event(Event {
                user: "alice".into(),
                action: Action::Sell,
                amount: 250,
            }))
        );
    }

    #[test]
    fn amounts_at_the_limits() {
        for (amount, ok) in [("1", true), ("1000000000", true), ("0", false)] {
            let line = format!(r#"{{"user":"a","action":"buy","amount":{amount}}}"#);
            assert_eq!(parse_str(&line).is_ok(), ok, "amount {amount}");
        }
    }

    #[test]
    fn invalid_json() {
        for line in [
            "",
            "this is not json",
            r#"{"user":"a","action":"buy","amount":1"#,
            r#"{"user":"a","action":"buy","amount":1} x"#,
            r#"{"user":"a","action":"buy","amount":1,"user":"#,
            "[1,2",
        ] {
            assert_eq!(parse_str(line), Err(Reason::InvalidJson), "{line}");
        }
        let not_utf8 = b"{\"user\":\"a\",\"action\":\"buy\",\"amount\":1,\"x\":\"\xff\"}";
        assert_eq!(parse(not_utf8), Err(Reason::InvalidJson));
    }

    #[test]
    fn invalid_event() {
        for line in [
            "42",
            "null",
            r#""text""#,
            "[]",
            r#"[null,"a","buy",1]"#,
            "[1,2,3,4,5]",
            "{}",
            r#"{"user":"","action":"buy","amount":1}"#,
            r#"{"user":7,"action":"buy","amount":1}"#,
            r#"{"user":"a","action":"hold","amount":1}"#,
            r#"{"user":"a","action":"buy"}"#,
            r#"{"user":"a","action":"buy","amount":null}"#,
            r#"{"user":"a","action":"buy","amount":10.0}"#,
            r#"{"user":"a","action":"buy","amount":1e3}"#,
            r#"{"user":"a","action":"buy","amount":"10"}"#,
            r#"{"user":"a","action":"buy","amount":-5}"#,
            r#"{"user":"a","action":"buy","amount":1000000001}"#,
            r#"{"user":"a","action":"buy","amount":1,"amount":1}"#,
        ] {
            assert_eq!(parse_str(line), Err(Reason::InvalidEvent), "{line}");
        }
    }

    #[test]
    fn parses_a_balance_query() {
        assert_eq!(
            parse_str(r#"{"type":"balance","user":"bob","extra":1}"#),
            Ok(Request::Balance { user: "bob".into() })
        );
        for line in [
            r#"{"type":"balance"}"#,
            r#"{"type":"balance","user":""}"#,
            r#"{"type":"balance","user":["bob"]}"#,
        ] {
            assert_eq!(parse_str(line), Err(Reason::InvalidEvent), "{line}");
        }
    }

    #[test]
    fn parses_metrics_and_health() {
        assert_eq!(parse_str(r#"{"type":"metrics"}"#), Ok(Request::Metrics));
        assert_eq!(parse_str(r#"{"type":"health","x":1}"#), Ok(Request::Health));
    }

    #[test]
    fn other_types_are_unknown() {
        for line in [
            r#"{"type":"teleport"}"#,
            r#"{"type":"shutdown"}"#,
            r#"{"type":"Balance","user":"a"}"#,
            r#"{"type":null,"user":"a","action":"buy","amount":1}"#,
            r#"{"type":3}"#,
        ] {
            assert_eq!(parse_str(line), Err(Reason::UnknownType), "{line}");
        }
    }

    #[test]
    fn strings_are_borrowed_unless_they_hold_escapes() {
        let fields: Fields = serde_json::from_str(r#"{"user":"bob","action":"b\u0075y"}"#).unwrap();
        assert!(matches!(
            fields.user,
            Some(Field::Str(Cow::Borrowed("bob")))
        ));
        assert!(matches!(fields.action, Some(Field::Str(Cow::Owned(ref s))) if s == "buy"));
        assert_eq!(
            parse_str(r#"{"user":"b\u00f6b","action":"b\u0075y","amount":1}"#),
            Ok(Request::Event(Event {
                user: "böb".into(),
                action: Action::Buy,
                amount: 1,
            }))
        );
    }

    #[test]
    fn fields_keep_only_what_the_protocol_needs() {
        for (json, field) in [
            ("7", Field::Uint(7)),
            ("-7", Field::Other),
            ("7.0", Field::Other),
            ("7e0", Field::Other),
            ("true", Field::Other),
            ("null", Field::Other),
            (r#"[1,{"a":[]}]"#, Field::Other),
            (r#"{"a":{"b":null}}"#, Field::Other),
            (r#""x""#, Field::Str(Cow::Borrowed("x"))),
        ] {
            assert_eq!(
                serde_json::from_str::<Field>(json).unwrap(),
                field,
                "{json}"
            );
        }
    }

    #[test]
    fn the_constant_replies_are_what_serde_writes() {
        for reply in [
            Reply::Accepted,
            Reply::Rejected {
                reason: Reason::ServerBusy,
            },
        ] {
            let mut fast = Vec::new();
            reply.write_to(&mut fast);
            let mut slow = serde_json::to_vec(&reply).unwrap();
            slow.push(b'\n');
            assert_eq!(fast, slow);
        }
    }

    #[test]
    fn replies_are_one_json_line() {
        let mut out = Vec::new();
        Reply::Ok { balance: -3 }.write_to(&mut out);
        Reply::Metrics(Snapshot {
            received: 4,
            processed: 3,
            dropped: 1,
            refused: 0,
        })
        .write_to(&mut out);
        Reply::Health.write_to(&mut out);
        Reply::Accepted.write_to(&mut out);
        Reply::Rejected {
            reason: Reason::ServerBusy,
        }
        .write_to(&mut out);
        Reply::Error {
            reason: Reason::LineTooLong,
        }
        .write_to(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"status\":\"ok\",\"balance\":-3}\n\
             {\"status\":\"ok\",\"received\":4,\"processed\":3,\"dropped\":1,\"refused\":0}\n\
             {\"status\":\"ok\"}\n\
             {\"status\":\"accepted\"}\n\
             {\"status\":\"rejected\",\"reason\":\"server_busy\"}\n\
             {\"status\":\"error\",\"reason\":\"line_too_long\"}\n"
        );
    }
}
