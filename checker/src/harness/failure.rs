//! How a check fails: what went wrong, what was expected and what came back, and a hint that
//! names the likely mistake.
//!
//! A hint is either *observed*, derived from what the check saw (a reply without its newline, a
//! reset instead of end-of-file, replies that came only after the work's delay), or a *guess*
//! from the check's situation alone. An observed hint is never replaced by a guess: a learner is
//! told what their server did before being told what servers usually get wrong there.

use std::fmt;

/// A failed check. Built with [`Failure::new`] and refined with the builder methods; its
/// [`Details`] are read and written through it. Boxed, so that every `Outcome` stays small.
#[derive(Debug, Clone, Default)]
pub struct Failure(Box<Details>);

/// What a [`Failure`] says.
#[derive(Debug, Clone, Default)]
pub struct Details {
    pub message: String,
    pub expected: Option<String>,
    pub got: Option<String>,
    pub hint: Option<String>,
    /// True when `hint` was derived from what the check observed; false when it is a guess.
    pub observed: bool,
    /// What happened to a client, in a few words ("timed out waiting for a reply"), when the
    /// failure is one client's: many clients failing alike are summarised by it.
    pub symptom: Option<&'static str>,
    /// Set when the server (or its tests) hit a `todo!()`: the step is not implemented yet, and
    /// this is where (`path:line`).
    pub todo: Option<String>,
}

/// What every check step returns.
pub type Outcome<T = ()> = Result<T, Failure>;

impl std::ops::Deref for Failure {
    type Target = Details;
    fn deref(&self) -> &Details {
        &self.0
    }
}

impl std::ops::DerefMut for Failure {
    fn deref_mut(&mut self) -> &mut Details {
        &mut self.0
    }
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Failure(Box::new(Details {
            message: message.into(),
            ..Details::default()
        }))
    }

    pub fn expected(mut self, what: impl Into<String>) -> Self {
        self.expected = Some(what.into());
        self
    }

    pub fn got(mut self, what: impl Into<String>) -> Self {
        self.got = Some(what.into());
        self
    }

    /// A hint derived from what was observed: it replaces any hint the failure had.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self.observed = true;
        self
    }

    /// The failure of a step not implemented yet: it hit the `todo!()` at `at` (`path:line`).
    pub fn unfinished(step: &crate::catalog::Step, at: String) -> Self {
        let mut f = Failure::new(format!(
            "{} is not implemented yet: replace the todo!() at {at}",
            step.label()
        ))
        .hint(format!(
            "Read the // TODO: comment there, and book/src/{}.md.",
            step.slug
        ));
        f.todo = Some(at);
        f
    }

    /// Names what happened to a client, for summaries of many clients failing alike.
    pub fn symptom(mut self, symptom: &'static str) -> Self {
        self.symptom = Some(symptom);
        self
    }

    /// A hint from the situation alone: kept only when nothing more specific was observed.
    pub fn guess(mut self, hint: impl Into<String>) -> Self {
        if !self.observed {
            self.hint = Some(hint.into());
        }
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)
    }
}

/// `fail!("...")` builds a [`Failure`] with a formatted message.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => { $crate::harness::failure::Failure::new(format!($($arg)*)) };
}

/// Gives a failure the check's own guess, unless a more specific hint was observed.
pub trait OrHint<T> {
    /// The likely mistake in this check's situation, as a fallback: an observed hint wins.
    fn or_hint(self, hint: &str) -> Outcome<T>;
}

impl<T> OrHint<T> for Outcome<T> {
    fn or_hint(self, hint: &str) -> Outcome<T> {
        self.map_err(|f| f.guess(hint))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_observed_hint_is_never_replaced_by_a_guess() {
        let observed = Failure::new("x").hint("the reply has no newline");
        let f = Err::<(), _>(observed)
            .or_hint("read until the newline")
            .unwrap_err();
        assert_eq!(f.hint.as_deref(), Some("the reply has no newline"));
        let guessed = Failure::new("x").guess("a first guess");
        let f = Err::<(), _>(guessed)
            .or_hint("the check's guess")
            .unwrap_err();
        assert_eq!(f.hint.as_deref(), Some("the check's guess"));
        assert!(!f.observed);
        assert_eq!(
            Failure::new("x").guess("g").hint("seen").hint.as_deref(),
            Some("seen")
        );
    }
}
