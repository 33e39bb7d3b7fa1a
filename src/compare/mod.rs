//! The champion/challenger gate: rules, verdict, significance.

pub mod metrics;
