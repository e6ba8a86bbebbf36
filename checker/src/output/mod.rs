//! What `verify` reports, and its three forms: for people (`human`: ticks, crosses, transcripts,
//! hints; colour only on a terminal), one JSON document (`json`), or JUnit XML (`junit`).

pub mod human;
pub mod json;
pub mod junit;

use crate::catalog::Step;
use crate::harness::runner::CheckResult;
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
