//! The step catalogue: `checker/steps.toml`, compiled into the binary so that an installed
//! checker knows the course without its source tree. The file says what each step adds to the
//! suite (and retires from it); the catalogue computes each step's whole suite.

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
    /// Steps 05 on: `{"status":"accepted"}`, or `server_busy` when the queue is full.
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
    /// A step after the course's ten: graded like the others, not needed to finish the course.
    #[serde(default)]
    pub bonus: bool,
    /// The checks this step adds to the suite of the step before it.
    pub adds: Vec<String>,
    /// Checks of earlier steps that stop applying here (the protocol changed).
    #[serde(default)]
    pub retires: Vec<String>,
    pub hints: Vec<String>,
    /// 1-based position in the course, filled in from the order of the file.
    #[serde(skip)]
    pub number: usize,
    /// The step's whole suite, in order: every earlier step's additions that were not retired,
    /// then this step's own. Computed from the file.
    #[serde(skip)]
    pub checks: Vec<String>,
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
    let mut suite: Vec<String> = Vec::new();
    let mut bonus_seen = false;
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
        if bonus_seen && !step.bonus {
            bail!(
                "step {} follows a bonus step, so it must be one too",
                step.slug
            );
        }
        bonus_seen |= step.bonus;
        for name in &step.retires {
            if !suite.contains(name) {
                bail!("{} retires {name}, which no earlier step added", step.slug);
            }
        }
        suite.retain(|c| !step.retires.contains(c));
        for name in &step.adds {
            if suite.contains(name) {
                bail!("{} adds {name}, which its suite already has", step.slug);
            }
            suite.push(name.clone());
        }
        step.checks = suite.clone();
    }
    Ok(file.step)
}

/// The steps of the course itself, without the bonus steps.
pub fn course() -> impl Iterator<Item = &'static Step> {
    steps().iter().filter(|s| !s.bonus)
}

/// The checks that `verify NN --production` tries on `step` as bonus checks: the additions of
/// the bonus steps that apply from this step on and are not in its suite already.
pub fn production(step: &Step) -> Vec<&'static str> {
    steps()
        .iter()
        .filter(|s| s.bonus && s.number > step.number)
        .flat_map(|s| &s.adds)
        .filter_map(|name| crate::steps::find(name))
        .filter(|check| check.since <= step.number)
        .map(|check| check.name)
        .filter(|name| !step.checks.iter().any(|own| own == name))
        .collect()
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
            "Step 5",
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
        let err = find("13").unwrap_err().to_string();
        assert!(err.contains("there is no step"), "{err}");
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn ten_steps_then_two_bonus_steps_numbered_in_order() {
        let steps = steps();
        assert_eq!(steps.len(), 12);
        for (i, step) in steps.iter().enumerate() {
            assert_eq!(step.number, i + 1);
            assert_eq!(step.bonus, step.number > 10, "{}", step.slug);
            assert!(!step.hints.is_empty(), "{} has no hints", step.slug);
            assert!(!step.checks.is_empty(), "{} has no checks", step.slug);
        }
        assert_eq!(course().count(), 10);
    }

    #[test]
    fn every_check_named_in_the_catalogue_exists_and_every_check_is_added() {
        let registry: Vec<_> = crate::steps::registry().collect();
        for step in steps() {
            for name in &step.adds {
                let check = registry
                    .iter()
                    .find(|c| c.name == name)
                    .unwrap_or_else(|| panic!("{} adds unknown check {name}", step.slug));
                assert!(
                    check.since <= step.number,
                    "{} adds {name}, which applies only from step {}",
                    step.slug,
                    check.since
                );
            }
        }
        for check in registry {
            let adding: Vec<_> = steps()
                .iter()
                .filter(|s| s.adds.iter().any(|n| n == check.name))
                .collect();
            // Added once, or again after a step retired it (loading the catalogue refuses a
            // check added while its suite already has it).
            assert!(!adding.is_empty(), "no step adds check {}", check.name);
        }
    }

    #[test]
    fn suites_are_computed_from_additions_and_retirements() {
        let suite = |n: usize| &steps()[n - 1].checks;
        assert!(suite(1).contains(&"echo_one_line".to_string()));
        assert!(!suite(3).iter().any(|c| c.starts_with("echo_")));
        assert!(suite(4).contains(&"balances_concurrent".to_string()));
        assert!(!suite(5).contains(&"balances_concurrent".to_string()));
        assert!(suite(10).contains(&"valid_events".to_string()));
        for pair in steps().windows(2) {
            for name in &pair[0].checks {
                assert!(
                    pair[1].checks.contains(name) || pair[1].retires.contains(name),
                    "{} drops {name} without retiring it",
                    pair[1].slug
                );
            }
        }
    }

    #[test]
    fn the_catalogue_refuses_what_would_make_suites_wrong() {
        let step = |n: u32, extra: &str| {
            format!("[[step]]\nslug = \"{n:02}_x\"\ntitle = \"t\"\nlesson = \"l\"\nevent_reply = \"echo\"\nhints = []\n{extra}\n")
        };
        let refused = |text: String, says: &str| {
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        };
        refused(step(2, "adds = []"), "should start with");
        refused(
            step(1, "adds = []\nretires = [\"a\"]"),
            "no earlier step added",
        );
        refused(step(1, "adds = [\"a\", \"a\"]"), "already has");
        refused(
            step(1, "adds = []\nbonus = true") + &step(2, "adds = []"),
            "must be one too",
        );
    }

    #[test]
    fn production_tries_the_bonus_scenarios_that_apply() {
        let at05 = production(find("5").unwrap());
        assert!(!at05.is_empty());
        for name in &at05 {
            let check = crate::steps::find(name).unwrap();
            assert!(check.since <= 5, "{name}");
            assert!(!find("5").unwrap().checks.iter().any(|c| c == name));
        }
        assert!(production(find("12").unwrap()).is_empty());
        // Back at step 11, but already in step 04's own suite: not tried twice there.
        assert!(!production(find("4").unwrap()).contains(&"slow_reader_blocks_nobody"));
    }
}
