//! The step catalogue: `checker/steps.toml`, compiled into the binary so that an installed
//! checker knows the course without its source tree.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::sync::OnceLock;

/// What a valid event gets at a step (see the table in `book/src/contract.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventReply {
    /// Steps 01-02: the line comes back byte for byte.
    Echo,
    /// Step 03: `{"status":"accepted"}`.
    Accepted,
    /// Step 04: `{"status":"ok","balance":B}`, the balance after the event.
    Balance,
    /// Steps 05-10: `{"status":"accepted"}`, or `server_busy` when the queue is full.
    Queued,
}

/// One step of the course, as written in `steps.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub slug: String,
    pub title: String,
    pub lesson: String,
    pub event_reply: EventReply,
    pub checks: Vec<String>,
    /// Production scenarios: hostile input and faults, reported as bonus checks that a step
    /// does not need to pass (`verify --production`, or one by name with `--check`).
    #[serde(default)]
    pub production: Vec<String>,
    pub hints: Vec<String>,
    /// 1-based position in the course, filled in from the order of the file.
    #[serde(skip)]
    pub number: usize,
}

impl Step {
    /// `step 05`, the way the checker names a step in its output.
    pub fn label(&self) -> String {
        format!("step {:02}", self.number)
    }

    /// Where the reference server of this step lives, relative to the workspace root.
    pub fn solution_dir(&self) -> String {
        format!("solutions/{}", self.slug)
    }

    /// Where the learner's exercise of this step lives, relative to the workspace root.
    pub fn exercise_dir(&self) -> String {
        format!("exercises/{}", self.slug)
    }

    /// True from the step where a rule or request appears (`since` is a step number).
    pub fn at_least(&self, since: usize) -> bool {
        self.number >= since
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    step: Vec<Step>,
}

const STEPS_TOML: &str = include_str!("../steps.toml");

/// All steps, in course order.
pub fn steps() -> &'static [Step] {
    static STEPS: OnceLock<Vec<Step>> = OnceLock::new();
    STEPS.get_or_init(|| parse(STEPS_TOML).expect("checker/steps.toml is valid (tested)"))
}

fn parse(text: &str) -> Result<Vec<Step>> {
    let mut file: File = toml::from_str(text).context("parsing checker/steps.toml")?;
    for (i, step) in file.step.iter_mut().enumerate() {
        step.number = i + 1;
        let prefix = format!("{:02}_", step.number);
        if !step.slug.starts_with(&prefix) {
            bail!(
                "step {} has slug {:?}, which should start with {prefix:?}",
                step.number,
                step.slug
            );
        }
    }
    Ok(file.step)
}

/// Finds a step from what a learner types: `5`, `05`, `step05`, `step 5` or the slug.
pub fn find(selector: &str) -> Result<&'static Step> {
    let s = selector.trim().to_ascii_lowercase();
    let digits = s.trim_start_matches("step").trim();
    let by_number = digits.parse::<usize>().ok();
    // The slug's name alone works too: `backpressure` for `05_backpressure`.
    let name = |step: &Step| step.slug.split_once('_').map_or("", |(_, n)| n).to_string();
    steps()
        .iter()
        .find(|step| Some(step.number) == by_number || step.slug == s || name(step) == s)
        .with_context(|| {
            let known: Vec<_> = steps().iter().map(|s| s.slug.as_str()).collect();
            // A slip of a letter or two (`backpresure`) gets the step it surely meant.
            let close = steps().iter().find(|step| {
                edit_distance(
                    &name(step),
                    s.trim_start_matches(|c: char| c.is_ascii_digit() || c == '_'),
                ) <= 2
            });
            let guess = close
                .map(|step| format!("did you mean {}? ", step.slug))
                .unwrap_or_default();
            format!(
                "there is no step {selector:?}: {guess}use a number from 1 to {} or a slug ({})",
                steps().len(),
                known.join(", ")
            )
        })
}

/// How many single-letter insertions, deletions or substitutions turn `a` into `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_found_by_number_slug_or_name_and_a_slip_gets_a_guess() {
        for selector in [
            "5",
            "05",
            "step05",
            "05_backpressure",
            "backpressure",
            " Backpressure ",
        ] {
            assert_eq!(find(selector).unwrap().number, 5, "{selector:?}");
        }
        let slip = find("backpresure").unwrap_err().to_string();
        assert!(slip.contains("did you mean 05_backpressure?"), "{slip}");
        let far = find("teleport").unwrap_err().to_string();
        assert!(!far.contains("did you mean"), "{far}");
        assert!(find("11").is_err());
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn ten_steps_numbered_in_order() {
        let steps = steps();
        assert_eq!(steps.len(), 10);
        for (i, step) in steps.iter().enumerate() {
            assert_eq!(step.number, i + 1);
            assert!(!step.hints.is_empty(), "{} has no hints", step.slug);
        }
    }

    #[test]
    fn every_check_named_in_the_catalogue_exists_and_every_check_is_used() {
        let registry: Vec<_> = crate::steps::registry().collect();
        for step in steps() {
            for name in step.checks.iter().chain(&step.production) {
                assert!(
                    registry.iter().any(|c| c.name == name),
                    "{} lists unknown check {name}",
                    step.slug
                );
            }
        }
        for check in registry {
            assert!(
                steps().iter().any(|s| s
                    .checks
                    .iter()
                    .chain(&s.production)
                    .any(|n| n == check.name)),
                "check {} is run by no step",
                check.name
            );
        }
    }

    #[test]
    fn suites_are_cumulative() {
        // A step keeps every check of the step before it, except where the protocol itself
        // changes: echo gives way to events at step 03, and the balance-carrying replies of
        // step 04 give way to queued events (balances are then read back with queries).
        for pair in steps().windows(2) {
            let (prev, next) = (&pair[0], &pair[1]);
            if prev.event_reply == EventReply::Echo && next.event_reply != EventReply::Echo {
                continue;
            }
            for name in &prev.checks {
                let balance_replies_only =
                    prev.event_reply == EventReply::Balance && name.starts_with("balances_");
                assert!(
                    balance_replies_only || next.checks.contains(name),
                    "{} drops check {name} of {}",
                    next.slug,
                    prev.slug
                );
            }
        }
    }

    #[test]
    fn find_accepts_every_spelling() {
        for sel in ["5", "05", "step05", "Step 5", "05_backpressure"] {
            assert_eq!(find(sel).unwrap().number, 5, "{sel}");
        }
        let err = find("11").unwrap_err().to_string();
        assert!(err.contains("there is no step"), "{err}");
    }

    #[test]
    fn slugs_must_carry_their_number() {
        let bad = "[[step]]\nslug = \"02_x\"\ntitle = \"t\"\nlesson = \"l\"\nevent_reply = \"echo\"\nchecks = []\nhints = []\n";
        assert!(parse(bad)
            .unwrap_err()
            .to_string()
            .contains("should start with"));
    }
}
