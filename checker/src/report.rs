//! Printing results: for people (ticks, crosses, transcripts, hints; colour only on a
//! terminal) or as one JSON document for tools.

use crate::catalog::Step;
use crate::check::CheckResult;
use serde_json::{json, Value};
use std::io::IsTerminal;

/// What happened to one step.
pub struct StepReport {
    pub step: &'static Step,
    /// What was graded, as the learner would name it (`solutions/05_backpressure`).
    pub target: String,
    pub outcome: StepOutcome,
}

pub enum StepOutcome {
    /// The checks ran; each has a result.
    Ran(Vec<CheckResult>),
    /// The step could not be graded (missing folder, failed build).
    Error(String),
}

impl StepReport {
    /// (check, message, hint) of the first failure; a step that could not run is a failure
    /// of its build.
    pub fn failure_summary(&self) -> Option<(String, String, Option<String>)> {
        match &self.outcome {
            StepOutcome::Ran(results) => results.iter().filter(|r| !r.bonus).find_map(|r| {
                r.failure
                    .as_ref()
                    .map(|f| (r.name.to_string(), f.message.clone(), f.hint.clone()))
            }),
            StepOutcome::Error(e) => Some(("build".into(), e.clone(), None)),
        }
    }

    pub fn status(&self) -> &'static str {
        match &self.outcome {
            StepOutcome::Error(_) => "error",
            // Production scenarios are reported, never required.
            StepOutcome::Ran(r) if r.iter().all(|c| c.failure.is_none() || c.bonus) => "pass",
            StepOutcome::Ran(_) => "fail",
        }
    }
}

/// Terminal styling, off unless stdout is a terminal (and NO_COLOR and --no-color are unset).
#[derive(Clone, Copy)]
pub struct Style {
    color: bool,
}

impl Style {
    pub fn detect(no_color: bool) -> Style {
        let color =
            !no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal();
        Style { color }
    }

    pub fn is_color(&self) -> bool {
        self.color
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn green(&self, t: &str) -> String {
        self.paint("32", t)
    }
    pub fn red(&self, t: &str) -> String {
        self.paint("31", t)
    }
    pub fn yellow(&self, t: &str) -> String {
        self.paint("33", t)
    }
    pub fn bold(&self, t: &str) -> String {
        self.paint("1", t)
    }
    pub fn dim(&self, t: &str) -> String {
        self.paint("2", t)
    }
}

/// The heading printed before a step's checks run.
pub fn heading(style: Style, step: &Step, target: &str) -> String {
    let head = format!("{} · {}", step.label(), step.title);
    format!(
        "{}  {}",
        style.bold(&head),
        style.dim(&format!("({target})"))
    )
}

/// One check's result, with the transcript, expected/got and hint when it failed.
pub fn check_line(style: Style, r: &CheckResult) -> String {
    let ms = style.dim(&format!("({} ms)", r.duration.as_millis()));
    let Some(f) = &r.failure else {
        return format!("  {} {}  {ms}", style.green("✔"), r.name);
    };
    let mut out = vec![format!(
        "  {} {}  {}  {ms}",
        style.red("✘"),
        style.bold(r.name),
        style.dim(r.about)
    )];
    out.push(format!("      {}", f.message));
    // An unfinished step needs no transcript: the todo!() it hit says everything.
    if f.message.contains("is not implemented yet") {
        if let Some(h) = &f.hint {
            out.push(format!("      {} {h}", style.yellow("hint:")));
        }
        return out.join("\n");
    }
    if !r.transcript.is_empty() {
        out.push(format!("      {}", style.dim("transcript:")));
        out.extend(r.transcript.iter().map(|l| format!("        {l}")));
    }
    if let Some(e) = &f.expected {
        out.push(format!("      expected: {e}"));
    }
    if let Some(g) = &f.got {
        out.push(format!("      got:      {g}"));
    }
    if let Some(h) = &f.hint {
        out.push(format!("      {} {h}", style.yellow("hint:")));
    }
    if let Some(p) = &r.replay {
        out.push(format!(
            "      {} {} replay {}",
            style.dim("replay it:"),
            crate::invocation(),
            p.display()
        ));
    }
    out.join("\n")
}

/// The closing line of a step.
pub fn step_summary(style: Style, report: &StepReport) -> String {
    match &report.outcome {
        StepOutcome::Error(e) => format!("  {} {e}", style.red("could not run:")),
        StepOutcome::Ran(results) => {
            let required: Vec<_> = results.iter().filter(|r| !r.bonus).collect();
            let passed = required.iter().filter(|r| r.failure.is_none()).count();
            let bonus: Vec<_> = results.iter().filter(|r| r.bonus).collect();
            let survived = bonus.iter().filter(|r| r.failure.is_none()).count();
            let scenarios = if bonus.is_empty() {
                String::new()
            } else {
                let noun = if bonus.len() == 1 {
                    "scenario"
                } else {
                    "scenarios"
                };
                format!("; {survived} of {} production {noun} survived", bonus.len())
            };
            let todo = results
                .iter()
                .filter_map(|r| r.failure.as_ref())
                .find(|f| f.message.contains("not implemented yet"));
            if let Some(f) = todo {
                return format!("  {} {}", style.yellow("→"), f.message);
            }
            let noun = if required.len() == 1 {
                "check"
            } else {
                "checks"
            };
            let line = format!("  {passed} of {} {noun} passed{scenarios}", required.len());
            if passed == required.len() {
                style.green(&line)
            } else {
                style.red(&line)
            }
        }
    }
}

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
        "status": if f.is_some() { "fail" } else { "pass" },
        "production": r.bonus,
        "message": f.map(|f| f.message.clone()),
        "expected": f.and_then(|f| f.expected.clone()),
        "got": f.and_then(|f| f.got.clone()),
        "hint": f.and_then(|f| f.hint.clone()),
        "transcript": if f.is_some() { r.transcript.clone() } else { Vec::new() },
        "duration_ms": r.duration.as_millis() as u64,
    })
}

/// Every step's result as a JUnit XML report: a test suite per step, a test case per check.
pub fn to_junit(reports: &[StepReport]) -> String {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut report = Report::new("eventkit");
    for r in reports {
        let mut suite = TestSuite::new(format!("{} {}", r.step.label(), r.step.slug));
        match &r.outcome {
            StepOutcome::Error(e) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
                status.set_message(e.as_str());
                suite.add_test_case(TestCase::new("build", status));
            }
            StepOutcome::Ran(results) => {
                for c in results {
                    let status = match &c.failure {
                        None => TestCaseStatus::success(),
                        Some(f) => {
                            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                            status.set_message(f.message.as_str());
                            let mut details = Vec::new();
                            details.extend(f.expected.iter().map(|e| format!("expected: {e}")));
                            details.extend(f.got.iter().map(|g| format!("got:      {g}")));
                            details.extend(f.hint.iter().map(|h| format!("hint: {h}")));
                            details.push("transcript:".into());
                            details.extend(c.transcript.iter().cloned());
                            status.set_description(details.join("\n"));
                            status
                        }
                    };
                    let mut case = TestCase::new(c.name, status);
                    case.set_classname(r.step.slug.as_str());
                    case.set_time(c.duration);
                    suite.add_test_case(case);
                }
            }
        }
        report.add_test_suite(suite);
    }
    report.to_string().unwrap_or_default()
}
