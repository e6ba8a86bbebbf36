//! Results as one JSON document (schema: checker/results.schema.json).

use super::{StepOutcome, StepReport};
use crate::harness::runner::CheckResult;
use serde_json::{json, Value};

/// Every step's result as one JSON document (schema version 1).
pub fn to_json(reports: &[StepReport]) -> Value {
    let overall = if reports.iter().any(|r| r.status() == "error") {
        "error"
    } else if reports.iter().any(|r| r.status() == "fail") {
        "fail"
    } else {
        "pass"
    };
    let steps: Vec<Value> = reports
        .iter()
        .map(|r| {
            let (checks, error) = match &r.outcome {
                StepOutcome::Error(e) => (Vec::new(), Some(e.clone())),
                StepOutcome::Ran(results) => (results.iter().map(check_json).collect(), None),
            };
            json!({
                "step": r.step.number,
                "slug": r.step.slug,
                "title": r.step.title,
                "target": r.target,
                "status": r.status(),
                "error": error,
                "checks": checks,
            })
        })
        .collect();
    json!({"version": 1, "status": overall, "steps": steps})
}

fn check_json(r: &CheckResult) -> Value {
    let f = r.failure.as_ref();
    json!({
        "name": r.name,
        "about": r.about,
        "status": r.status(),
        "production": r.bonus,
        "message": f.map(|f| f.message.clone()).or_else(|| r.skipped.clone()),
        "expected": f.and_then(|f| f.expected.clone()),
        "got": f.and_then(|f| f.got.clone()),
        "hint": f.and_then(|f| f.hint.clone()),
        "transcript": if f.is_some() { r.transcript.clone() } else { Vec::new() },
        "duration_ms": r.duration.as_millis() as u64,
    })
}
