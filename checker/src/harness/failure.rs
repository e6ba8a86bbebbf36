//! How a check fails: what went wrong, what was expected and what came back, and a hint that
//! names the likely mistake.

use std::fmt;

/// A failed check. Built with [`Failure::new`] and refined with the builder methods.
#[derive(Debug, Clone, Default)]
pub struct Failure {
    pub message: String,
    pub expected: Option<String>,
    pub got: Option<String>,
    pub hint: Option<String>,
}

/// What every check step returns.
pub type Outcome<T = ()> = Result<T, Failure>;

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            ..Failure::default()
        }
    }

    pub fn expected(mut self, what: impl Into<String>) -> Self {
        self.expected = Some(what.into());
        self
    }

    pub fn got(mut self, what: impl Into<String>) -> Self {
        self.got = Some(what.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
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

/// Gives a failure the hint of the check that knows best, keeping the rest.
pub trait OrHint<T> {
    /// Replaces the generic hint with one that names this check's likely mistake.
    fn or_hint(self, hint: &str) -> Outcome<T>;
}

impl<T> OrHint<T> for Outcome<T> {
    fn or_hint(self, hint: &str) -> Outcome<T> {
        self.map_err(|f| f.hint(hint))
    }
}
