//! STAND-IN of the loop helper's `src/notify/` (issue 19): only the trait the shared
//! `incident::AlertContext` names, and the notifier of a configuration without `notify:`.
//! The merge replaces this file with the real module.

/// Sends webhook messages (slack, teams, signed JSON) for incidents and events.
pub trait Notifier {}

/// No webhooks configured.
pub struct Disabled;

impl Notifier for Disabled {}
