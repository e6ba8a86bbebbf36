//! The protocol's queries, as the checks ask them: a user's balance and the server's counters.

use crate::fail;
use crate::harness::failure::Outcome;
use crate::harness::wait::poll;
use crate::oracle::client::Client;
use crate::oracle::reply;
use serde_json::Value;
use std::time::Duration;

/// Reads a user's balance with a balance request.
pub fn balance_of(c: &mut Client, user: &str) -> Outcome<i64> {
    let line = serde_json::json!({"type": "balance", "user": user}).to_string();
    let got = c.ask(&line)?;
    match (
        got.get("status").and_then(Value::as_str),
        got.get("balance").and_then(Value::as_i64),
    ) {
        (Some("ok"), Some(b)) => Ok(b),
        _ => Err(fail!("a balance request got an unexpected reply")
            .expected(reply::balance(0).to_string().replace('0', "B"))
            .got(got.to_string())
            .hint(reply::diagnose(&reply::balance(0), &got))),
    }
}

/// Polls a balance until `done` says it has reached its final value.
pub fn wait_balance(
    c: &mut Client,
    user: &str,
    timeout: Duration,
    done: impl Fn(i64) -> bool,
    explain: &str,
) -> Outcome<i64> {
    c.note(&format!("polling the balance of {user:?} until {explain}"));
    poll(
        timeout,
        || {
            let b = balance_of(c, user)?;
            Ok((done(b).then_some(b), b))
        },
        |last| {
            fail!(
                "the balance of {user:?} did not reach its expected value within {} s",
                timeout.as_secs()
            )
            .expected(explain.to_string())
            .got(format!("{last}"))
        },
    )
}

/// The server's counters, from a metrics request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metrics {
    pub received: u64,
    pub processed: u64,
    pub dropped: u64,
    pub refused: u64,
}

impl Metrics {
    pub fn from_json(v: &Value) -> Outcome<Metrics> {
        let field = |k: &str| {
            v.get(k).and_then(Value::as_u64).ok_or_else(|| {
                fail!("the metrics lack the unsigned integer field {k:?}")
                    .expected("{\"status\":\"ok\",\"received\":R,\"processed\":P,\"dropped\":D,\"refused\":F}")
                    .got(v.to_string())
                    .hint("Metrics are one JSON object with at least received, processed, dropped and refused, each a JSON number.")
            })
        };
        Ok(Metrics {
            received: field("received")?,
            processed: field("processed")?,
            dropped: field("dropped")?,
            refused: field("refused")?,
        })
    }
}

/// Asks for the metrics.
pub fn metrics_of(c: &mut Client) -> Outcome<Metrics> {
    let got = c.ask(r#"{"type":"metrics"}"#)?;
    if got.get("status").and_then(Value::as_str) != Some("ok") {
        return Err(fail!("a metrics request did not get status ok")
            .got(got.to_string())
            .hint("{\"type\":\"metrics\"} is answered {\"status\":\"ok\",...} from step 09 on."));
    }
    Metrics::from_json(&got)
}
