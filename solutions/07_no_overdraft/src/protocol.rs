//! The protocol: how a request line becomes a typed request, and how a reply becomes a line.
//!
//! Parsing happens in two stages, so that every problem gets the right reason:
//! 1. serde reads the line into `Fields`, which only checks its *shape*: valid JSON, an
//!    object, no field twice. Every field is kept as a raw [`Value`].
//! 2. Plain Rust code then checks what each field holds, and builds a [`Request`].

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The largest amount one event may carry.
pub const MAX_AMOUNT: u64 = 1_000_000_000;

/// A valid request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// An event, to be queued.
    Event(Event),
    /// `{"type":"balance","user":...}`: the user's balance, with every event processed so far
    /// applied.
    Balance { user: String },
}

/// A valid event: a user buys or sells an amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Whose balance the event changes; never empty.
    pub user: String,
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
}

// ANCHOR: reply
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
    /// The line was not accepted, and why.
    Error { reason: Reason },
}
// ANCHOR_END: reply

impl Reply {
    /// Appends this reply to `out` as one line of JSON.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        // Writing into a `Vec` cannot fail, and every reply is plain data that serializes.
        serde_json::to_writer(&mut *out, self).expect("a reply always serializes");
        out.push(b'\n');
    }
}

// ANCHOR: fields
/// The fields of a request line that the server looks at; any other field is ignored.
///
/// Each is an `Option<Value>`, so that serde accepts any content and only checks the shape of
/// the line. The content is checked by hand afterwards, where each problem can get its own
/// reason.
#[derive(Debug, Deserialize)]
struct Fields {
    /// `Some` whenever the line has a `"type"` field, even `"type": null`: a line with a type
    /// is a request, never an event.
    #[serde(rename = "type", default, deserialize_with = "present")]
    kind: Option<Value>,
    user: Option<Value>,
    action: Option<Value>,
    amount: Option<Value>,
}
// ANCHOR_END: fields

/// Deserializes a field that is present as `Some`, even when it holds `null`. (A plain
/// `Option<Value>` reads `null` as `None`, as if the field were missing.)
fn present<'de, D>(deserializer: D) -> Result<Option<Value>, D::Error>
where
    D: Deserializer<'de>,
{
    Value::deserialize(deserializer).map(Some)
}

// ANCHOR: parse
/// Parses one line (without its `\n`) into a request.
pub fn parse(line: &[u8]) -> Result<Request, Reason> {
    let fields = read_fields(line)?;
    let Some(kind) = &fields.kind else {
        // No `"type"`: the line is an event.
        return parse_event(fields).map(Request::Event);
    };
    match kind.as_str() {
        Some("balance") => Ok(Request::Balance {
            user: parse_user(fields.user)?,
        }),
        // Any other type, including one that is not a string at all.
        _ => Err(Reason::UnknownType),
    }
}

/// Stage 1: reads the line into [`Fields`], telling "not JSON" from "JSON of the wrong shape".
fn read_fields(line: &[u8]) -> Result<Fields, Reason> {
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
        _ if serde_json::from_str::<Value>(text).is_ok() => Err(Reason::InvalidEvent),
        _ => Err(Reason::InvalidJson),
    }
}

/// Stage 2: checks what each field of an event holds.
fn parse_event(fields: Fields) -> Result<Event, Reason> {
    let user = parse_user(fields.user)?;
    let action = match fields.action.as_ref().and_then(Value::as_str) {
        Some("buy") => Action::Buy,
        Some("sell") => Action::Sell,
        _ => return Err(Reason::InvalidEvent),
    };
    // `as_u64` gives `None` for a negative number and for any number written with a fraction
    // or an exponent (`10.0`, `1e3`): an amount must be a plain integer.
    let amount = fields
        .amount
        .as_ref()
        .and_then(Value::as_u64)
        .filter(|amount| (1..=MAX_AMOUNT).contains(amount))
        .ok_or(Reason::InvalidEvent)?;
    Ok(Event {
        user,
        action,
        amount,
    })
}

/// Checks a `user` field: a non-empty string.
fn parse_user(user: Option<Value>) -> Result<String, Reason> {
    match user {
        Some(Value::String(user)) if !user.is_empty() => Ok(user),
        _ => Err(Reason::InvalidEvent),
    }
}
// ANCHOR_END: parse

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Request, Reason> {
        parse(line.as_bytes())
    }

    #[test]
    fn parses_an_event() {
        let event = parse_str(r#" {"user":"alice","action":"sell","amount":250,"note":[1]} "#);
        assert_eq!(
            event,
            Ok(Request::Event(Event {
                user: "alice".to_string(),
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
            Ok(Request::Balance {
                user: "bob".to_string()
            })
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
    fn other_types_are_unknown() {
        for line in [
            r#"{"type":"teleport"}"#,
            r#"{"type":"metrics"}"#,
            r#"{"type":"Balance","user":"a"}"#,
            r#"{"type":null,"user":"a","action":"buy","amount":1}"#,
            r#"{"type":3}"#,
        ] {
            assert_eq!(parse_str(line), Err(Reason::UnknownType), "{line}");
        }
    }

    #[test]
    fn replies_are_one_json_line() {
        let mut out = Vec::new();
        Reply::Ok { balance: -3 }.write_to(&mut out);
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
             {\"status\":\"accepted\"}\n\
             {\"status\":\"rejected\",\"reason\":\"server_busy\"}\n\
             {\"status\":\"error\",\"reason\":\"line_too_long\"}\n"
        );
    }
}
