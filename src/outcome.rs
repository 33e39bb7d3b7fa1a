//! What a step that may say no returns: it did its job ([`Outcome::Done`]), or a gate, a check
//! or a signature said no ([`Outcome::Refused`], exit 1). A failure of the tool itself (bad
//! input, an unreachable service) is an `Err` around it (exit 2), never a refusal.

use std::fmt;

/// The result of a step that can be refused.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub enum Outcome<T> {
    Done(T),
    Refused(Reason),
}

impl<T> Outcome<T> {
    /// A refusal saying `why`.
    pub fn refused(why: impl Into<String>) -> Outcome<T> {
        Outcome::Refused(Reason::new(why))
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Done(v) => Outcome::Done(f(v)),
            Outcome::Refused(r) => Outcome::Refused(r),
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self, Outcome::Done(_))
    }
}

/// Why a step said no: one message for the user, naming what to do next where it can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    pub fn new(why: impl Into<String>) -> Reason {
        Reason(why.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_keeps_a_refusal_and_its_reason() {
        let done: Outcome<u8> = Outcome::Done(2);
        assert_eq!(done.map(|n| n * 2), Outcome::Done(4));
        let no: Outcome<u8> = Outcome::refused("the gate said reject");
        let mapped = no.map(|n| n * 2);
        assert!(!mapped.is_done());
        match mapped {
            Outcome::Refused(r) => assert_eq!(r.to_string(), "the gate said reject"),
            Outcome::Done(_) => panic!("a refusal became done"),
        }
    }
}
