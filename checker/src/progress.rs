//! The learner's progress: the last result of each step, kept in a small JSON file under
//! `target/`, keyed by slug. Anything unreadable or unknown is ignored: the file is a cache of
//! results, which `checker verify` can always compute afresh.

use crate::catalog::{steps, Step};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failing,
}

/// The last `verify` of one step's exercise.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Result {
    pub status: Status,
    /// Seconds since the Unix epoch.
    pub at: u64,
    /// The first check that failed, if any.
    #[serde(default)]
    pub failing_check: Option<String>,
    /// What that check said, and its hint.
    #[serde(default)]
    pub failing_message: Option<String>,
    #[serde(default)]
    pub failing_hint: Option<String>,
}

/// How the learner takes the course (`checker track`): all three are graded by the same suites.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Track {
    /// Each step's exercise, with TODOs that name the calls to make.
    Guided,
    /// Each step's exercise, with TODOs that state the goal, the rule, the concepts and the
    /// traps, and leave the code to the learner.
    #[default]
    Open,
    /// The learner's own crate, one for the whole course, graded step after step.
    Own,
}

impl Track {
    pub fn name(self) -> &'static str {
        match self {
            Track::Guided => "guided",
            Track::Open => "open",
            Track::Own => "own",
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Progress {
    #[serde(default)]
    pub results: BTreeMap<String, Result>,
    /// How many hints of each step the learner has seen.
    #[serde(default)]
    pub hints_shown: BTreeMap<String, usize>,
    /// The learner's track; none chosen means the default one.
    #[serde(default)]
    pub track: Track,
    /// The crate of the own track, relative to the kit's root when it lies inside it.
    #[serde(default)]
    pub own_dir: Option<PathBuf>,
}

/// Where progress is kept: `target/eventkit-progress.json`, or the file `EVENTKIT_PROGRESS`
/// names (the book's samples are run against a fresh one, so that they show a new learner's view).
fn path(root: &Path) -> PathBuf {
    match std::env::var_os("EVENTKIT_PROGRESS") {
        Some(file) => PathBuf::from(file),
        None => root.join("target").join("eventkit-progress.json"),
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Progress {
    pub fn load(root: &Path) -> Progress {
        std::fs::read_to_string(path(root))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    /// Saves, best effort: progress is a convenience, never a reason to fail a command.
    pub fn save(&self, root: &Path) {
        let p = path(root);
        if let Some(dir) = p.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Ok(text) = serde_json::to_string_pretty(self) {
            let _ = std::fs::write(p, text);
        }
    }

    /// The learner's crate for `step`, relative to the kit's root: the step's exercise, or, on
    /// the own track, the own crate of its kind.
    pub fn learner_dir(&self, step: &Step) -> String {
        match self.track {
            Track::Own => crate::commands::own::Crate::of(step).folder().to_string(),
            _ => step.exercise_dir(),
        }
    }

    pub fn status(&self, step: &Step) -> Option<Status> {
        self.results.get(&step.slug).map(|r| r.status)
    }

    /// Records a result: `failure` is (check, message, hint) of the first failure, if any.
    pub fn record(&mut self, step: &Step, failure: Option<(String, String, Option<String>)>) {
        let status = if failure.is_none() {
            Status::Passed
        } else {
            Status::Failing
        };
        let (failing_check, failing_message, failing_hint) = match failure {
            Some((c, m, h)) => (Some(c), Some(m), h),
            None => (None, None, None),
        };
        self.results.insert(
            step.slug.clone(),
            Result {
                status,
                at: now(),
                failing_check,
                failing_message,
                failing_hint,
            },
        );
    }

    /// The first step not passed yet (the last step once all have passed).
    pub fn current(&self) -> &'static Step {
        let all = steps();
        all.iter()
            .find(|s| self.status(s) != Some(Status::Passed))
            .unwrap_or(&all[all.len() - 1])
    }

    pub fn passed(&self) -> usize {
        steps()
            .iter()
            .filter(|s| self.status(s) == Some(Status::Passed))
            .count()
    }

    /// True once every step of the course (the bonus steps aside) has passed.
    pub fn current_course_done(&self) -> bool {
        crate::catalog::course().all(|s| self.status(s) == Some(Status::Passed))
    }

    /// "3 of 10 steps passed + 0 of 2 bonus".
    pub fn summary(&self) -> String {
        let passed = |bonus: bool| {
            let of: Vec<_> = steps().iter().filter(|s| s.bonus == bonus).collect();
            let done = of
                .iter()
                .filter(|s| self.status(s) == Some(Status::Passed))
                .count();
            (done, of.len())
        };
        let ((done, of), (bonus_done, bonus_of)) = (passed(false), passed(true));
        format!("{done} of {of} steps passed + {bonus_done} of {bonus_of} bonus")
    }
}

/// "3 min ago", "2 h ago", "5 days ago".
pub fn ago(at: u64) -> String {
    let s = now().saturating_sub(at);
    match s {
        0..=59 => "just now".into(),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_step_is_the_first_not_passed_and_unknown_slugs_are_ignored() {
        let mut p: Progress =
            serde_json::from_str(r#"{"results":{"99_renamed":{"status":"passed","at":1}}}"#)
                .unwrap();
        assert_eq!(p.current().number, 1);
        p.record(&steps()[0], None);
        p.record(
            &steps()[1],
            Some(("echo_many_clients".into(), "boom".into(), None)),
        );
        assert_eq!(p.current().number, 2);
        assert_eq!(p.passed(), 1);
        assert_eq!(p.summary(), "1 of 10 steps passed + 0 of 2 bonus");
        for step in crate::catalog::course() {
            p.record(step, None);
        }
        assert!(p.current_course_done());
        assert_eq!(p.current().number, 11);
        assert_eq!(p.summary(), "10 of 10 steps passed + 0 of 2 bonus");
        assert!(serde_json::from_str::<Progress>("not json").is_err());
    }
}
