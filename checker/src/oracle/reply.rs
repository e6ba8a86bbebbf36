//! Reading replies as JSON and comparing them with what the contract expects, with a
//! diagnosis of the usual ways they differ.

use crate::fail;
use crate::harness::failure::Outcome;
use crate::harness::transcript::show_bytes;
use serde_json::{json, Value};

/// A reply line parsed as JSON; anything else is a failure with a hint.
pub fn parse(line: &[u8]) -> Outcome<Value> {
    match serde_json::from_slice::<Value>(line) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(v) => Err(fail!("the reply is JSON but not an object")
            .got(v.to_string())
            .hint("Every reply is one JSON object, like {\"status\":\"accepted\"}.")),
        Err(_) => {
            let hint = if line.starts_with(b"{\"user\"") || line.starts_with(b"{\"type\"") {
                "The reply looks like the request itself: is the server still echoing lines back?"
            } else if line.first().is_some_and(|b| b.is_ascii_uppercase()) {
                "Replies are JSON, built with serde_json (or json!), not Debug output ({:?}) or prose."
            } else {
                "Replies are one JSON object per line, built with serde_json."
            };
            Err(fail!("the reply is not JSON")
                .got(show_bytes(line))
                .hint(hint))
        }
    }
}

pub fn ok() -> Value {
    json!({"status": "ok"})
}

pub fn accepted() -> Value {
    json!({"status": "accepted"})
}

pub fn busy() -> Value {
    json!({"status": "rejected", "reason": "server_busy"})
}

pub fn error(reason: &str) -> Value {
    json!({"status": "error", "reason": reason})
}

pub fn balance(b: i64) -> Value {
    json!({"status": "ok", "balance": b})
}

/// The reply to `sent` must equal `want` (as JSON: key order and spacing are free).
pub fn compare(sent: &[u8], want: &Value, got: &Value) -> Outcome {
    if want == got {
        return Ok(());
    }
    let f = fail!("wrong reply to {}", show_bytes(sent))
        .expected(want.to_string())
        .got(got.to_string());
    Err(match specific(want, got) {
        Some(hint) => f.hint(hint),
        None => f.guess(diagnose(want, got)),
    })
}

/// What differs between `want` and `got` when the difference itself says something (a wrong
/// reason, a wrong status, a number written as a string); `None` when only the context of the
/// check can say why.
pub fn specific(want: &Value, got: &Value) -> Option<String> {
    let hint = diagnose(want, got);
    (hint != GENERIC).then_some(hint)
}

/// The hint of a difference that says nothing by itself.
const GENERIC: &str = "Compare the reply with the contract (book/src/contract.md).";

/// Names the most likely mistake behind a reply that differs from the expected one.
pub fn diagnose(want: &Value, got: &Value) -> String {
    let field = |v: &Value, k: &str| v.get(k).cloned();
    let (ws, gs) = (field(want, "status"), field(got, "status"));
    let (wr, gr) = (field(want, "reason"), field(got, "reason"));
    if gs.is_none() {
        return "The reply has no \"status\" field: every reply carries one.".into();
    }
    if ws == gs && wr.is_some() && wr != gr {
        let (w, g) = (wr.unwrap_or_default(), gr.unwrap_or(Value::Null));
        return match (w.as_str(), g.as_str()) {
            (Some("invalid_event"), Some("invalid_json")) => "This line is valid JSON of the wrong shape: that is invalid_event. invalid_json is only for bytes that are not JSON at all.".into(),
            (Some("invalid_json"), Some("invalid_event")) => "These bytes are not valid JSON (or not UTF-8): that is invalid_json, not invalid_event.".into(),
            (Some("unknown_type"), _) => "An object with a \"type\" the server does not know gets unknown_type, whatever its other fields.".into(),
            (Some("line_too_long"), _) => "Lines longer than 65 536 bytes get line_too_long: cap the line buffer instead of reading the whole line.".into(),
            _ => format!("The reason should be {w}, not {g}."),
        };
    }
    if let (Some(Value::String(w)), Some(Value::String(g))) = (&ws, &gs) {
        if w != g {
            return match (w.as_str(), g.as_str()) {
                ("error", _) => "This request is invalid and must get an error reply: check the validation rules in the contract (book/src/contract.md).".into(),
                ("accepted", "ok") if got.get("balance").is_some() => "From step 05 on, events are queued: reply {\"status\":\"accepted\"} when try_send succeeds, and process the event later.".into(),
                ("ok", "accepted") if want.get("balance").is_some() => "At this step the reply to an event carries the balance after applying it: {\"status\":\"ok\",\"balance\":B}.".into(),
                (_, "error") => "The server refused a request the contract accepts: compare the line with the rules in book/src/contract.md.".into(),
                _ => format!("The status should be {w:?}, not {g:?}."),
            };
        }
    }
    if let (Some(w), Some(g)) = (want.as_object(), got.as_object()) {
        for (k, wv) in w {
            match g.get(k) {
                None => return format!("The reply lacks the field {k:?}."),
                Some(gv) if gv.is_string() && !wv.is_string() => {
                    return format!("{k:?} should be a JSON number, not a string ({gv}).")
                }
                Some(gv) if gv != wv && k == "balance" => {
                    return "The balance is wrong: buy adds the amount, sell subtracts it, and no event may be lost or applied twice.".into()
                }
                _ => {}
            }
        }
    }
    GENERIC.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_that_is_not_json_is_diagnosed() {
        let f = parse(b"{\"user\":\"a\",\"action\":\"buy\"").unwrap_err();
        assert!(f.hint.as_deref().unwrap().contains("echoing"));
        let f = parse(b"Accepted").unwrap_err();
        assert!(f.hint.as_deref().unwrap().contains("Debug"));
        assert!(parse(b"[1]").is_err());
        assert!(parse(br#"{"status":"ok"}"#).is_ok());
    }

    #[test]
    fn comparison_ignores_key_order_and_names_the_mistake() {
        let want = error("invalid_event");
        let got: Value =
            serde_json::from_str(r#"{"reason":"invalid_event","status":"error"}"#).unwrap();
        assert!(compare(b"x", &want, &got).is_ok());
        let f = compare(b"x", &want, &error("invalid_json")).unwrap_err();
        assert!(f.hint.as_deref().unwrap().contains("wrong shape"));
        let f = compare(b"x", &balance(5), &json!({"status":"ok","balance":"5"})).unwrap_err();
        assert!(f.hint.as_deref().unwrap().contains("number"));
        let f = compare(b"x", &accepted(), &balance(5)).unwrap_err();
        assert!(f.hint.as_deref().unwrap().contains("queued"));
        let f = compare(b"x", &accepted(), &json!({"ok":true})).unwrap_err();
        assert!(f.hint.as_deref().unwrap().contains("status"));
    }
}
