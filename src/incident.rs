//! STAND-IN of the loop helper's `src/incident.rs` (issue 19), with exactly the shared signature,
//! so that `mlops monitor` calls it where the real one will sit. It does nothing but say that
//! `on_alert` was not acted on; the merge replaces this file with the real one.

pub struct AlertContext<'a> {
    pub config: &'a crate::config::Config,
    /// github or local, as configured.
    pub forge: &'a mut dyn crate::forge::Forge,
    /// Webhooks from `notify:`.
    pub notifier: &'a dyn crate::notify::Notifier,
    /// .mlops/monitor/<env>/
    pub state_dir: std::path::PathBuf,
    /// `mlops monitor --run` (local forge).
    pub run_now: bool,
}

/// Acts on one monitor result per `environments.<env>.monitor.on_alert`. Stand-in: warns that
/// nothing was done when an alert asks for actions.
pub fn handle(
    ctx: &mut AlertContext<'_>,
    summary: &crate::monitor::Summary,
) -> anyhow::Result<Vec<String>> {
    let actions = ctx
        .config
        .environments
        .get(&summary.environment)
        .and_then(|e| e.monitor.as_ref())
        .map(|m| m.on_alert.clone())
        .unwrap_or_default();
    if summary.health != crate::monitor::Health::Alert || actions.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![format!(
        "on_alert {actions:?} was not acted on: this build has no incident handling yet"
    )])
}
