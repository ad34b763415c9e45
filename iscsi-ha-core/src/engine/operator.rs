//! The operator's requests that act on the replicated volumes directly (a forced promotion,
//! split-brain recovery): a fresh observation, the pure check in [`crate::operator`], then the
//! port calls it allows, each kept in the action record status shows, like a pass's steps.

use super::{Alive, Engine, Hooks, Host, Notice};
use crate::config::Config;
use crate::observation::ManualMode;
use crate::operator::{
    become_primary_needs_probe, check_become_primary, check_split_brain_resolve,
    split_brain_reconnect_targets, Refusal,
};
use crate::plan::Step;
use crate::ports::ReplicatedVolume;
use crate::ports::RetryHint;
use crate::reconcile::{ActionRecord, Outcome};
use crate::resource::ResourceName;

/// Why an operator's request did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OperatorError {
    /// The check refused it; nothing was done.
    #[error("{0}")]
    Refused(Refusal),
    /// A port call failed part-way; the message says what was done before it.
    #[error("{0}")]
    Failed(String),
}

impl From<Refusal> for OperatorError {
    fn from(r: Refusal) -> Self {
        OperatorError::Refused(r)
    }
}

impl Engine {
    /// `become-primary [--force]`, up to the manual-mode switch the caller makes next: the
    /// check (with a VIP probe when it needs one), then the forced promotions it allows; with
    /// `force`, the history records that the operator chose this host.
    pub fn become_primary(
        &mut self,
        config: &Config,
        host: &mut Host,
        manual: ManualMode,
        force: bool,
        hooks: &mut dyn Hooks,
    ) -> Result<(), OperatorError> {
        let seen = self.observe(config, host, manual, hooks);
        let probe = become_primary_needs_probe(&seen).then(|| host.vip.probe(&config.vip));
        let allowed = check_become_primary(&seen, force, &config.vip, probe)?;
        for name in &allowed.forced {
            hooks.notice(Notice::OperatorForcesPromotion(name.clone()));
            let step = Step::Promote(name.clone());
            let result = self.volume_call(host, hooks, step, |v| v.promote(name, true));
            result.map_err(|e| {
                OperatorError::Failed(format!("forced promotion of {name} failed: {e}"))
            })?;
        }
        if force {
            self.operator_forced(hooks);
        }
        Ok(())
    }

    /// `split-brain resolve`: on the side whose changes are discarded, each resource the
    /// check names is demoted and reconnected discarding its local data. Returns those done.
    #[allow(clippy::too_many_arguments)]
    pub fn resolve_split_brain(
        &mut self,
        config: &Config,
        host: &mut Host,
        manual: ManualMode,
        discard_local_data: bool,
        yes: bool,
        hooks: &mut dyn Hooks,
    ) -> Result<Vec<ResourceName>, OperatorError> {
        let seen = self.observe(config, host, manual, hooks);
        let victims = check_split_brain_resolve(config, &seen, discard_local_data, yes)?;
        let mut done: Vec<ResourceName> = Vec::new();
        let so_far = |done: &[ResourceName]| {
            done.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        for name in victims {
            hooks.notice(Notice::OperatorDiscards(name.clone()));
            self.volume_call(host, hooks, Step::Demote(name.clone()), |v| v.demote(&name))
                .map_err(|e| {
                    OperatorError::Failed(format!(
                        "{name}: demote failed: {e} (done so far: {})",
                        so_far(&done)
                    ))
                })?;
            self.volume_call(host, hooks, Step::DiscardAndReconnect(name.clone()), |v| {
                v.connect(&name, true)
            })
            .map_err(|e| {
                OperatorError::Failed(format!(
                    "{name}: reconnect discarding local data failed: {e} (done so far: {})",
                    so_far(&done)
                ))
            })?;
            done.push(name);
        }
        Ok(done)
    }

    /// `split-brain reconnect`: on the surviving side, each StandAlone resource reconnects
    /// keeping this host's data. Returns those reconnected (none: nothing was StandAlone).
    pub fn reconnect_split_brain(
        &mut self,
        config: &Config,
        host: &mut Host,
        manual: ManualMode,
        hooks: &mut dyn Hooks,
    ) -> Result<Vec<ResourceName>, OperatorError> {
        let seen = self.observe(config, host, manual, hooks);
        let names = split_brain_reconnect_targets(&seen);
        for name in &names {
            hooks.notice(Notice::OperatorReconnects(name.clone()));
            self.volume_call(host, hooks, Step::Reconnect(name.clone()), |v| {
                v.connect(name, false)
            })
            .map_err(|e| OperatorError::Failed(format!("{name}: reconnect failed: {e}")))?;
        }
        Ok(names)
    }

    /// One operator's call on the volumes, bracketed like a pass's step and kept in the
    /// action record.
    fn volume_call<E: std::fmt::Display + RetryHint>(
        &mut self,
        host: &mut Host,
        hooks: &mut dyn Hooks,
        step: Step,
        call: impl FnOnce(&mut dyn ReplicatedVolume) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut volumes = Alive {
            inner: host.volumes.port(),
            hooks: &*hooks,
        };
        let result = volumes.step(step.clone(), |v| call(v));
        let outcome = match &result {
            Ok(()) => Outcome::Done,
            Err(e) => Outcome::Failed {
                error: e.to_string(),
                retry_can_help: e.retry_can_help(),
            },
        };
        self.reconciler.record(ActionRecord {
            at: hooks.now().wall,
            step,
            outcome,
        });
        result
    }
}
