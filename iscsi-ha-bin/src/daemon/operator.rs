//! Operator requests from the control socket: a fresh observation, the core's check
//! (`iscsi_ha_core::operator`, which holds every refusal), then the action through the ports.

use super::{phase, Daemon};
use crate::control::{Request, Response};
use iscsi_ha_core::observation::{ManualMode, Observation};
use iscsi_ha_core::operator::{
    become_primary_needs_probe, check_become_primary, check_become_secondary,
    check_manual_mode_disable, check_manual_mode_enable, check_split_brain_resolve,
    split_brain_reconnect_targets, ManualModeChange,
};

impl Daemon {
    pub(super) fn handle(&mut self, request: Request) -> Response {
        tracing::info!(?request, "operator request");
        match request {
            Request::Status => match self.engine.status() {
                Some(s) => Response::Status {
                    status: Box::new(s.clone()),
                },
                None => Response::Error {
                    message: "no status yet: waiting for the role source's first answer".into(),
                },
            },
            Request::Reload => match self.reload() {
                Ok(message) => {
                    let _ = self.wake("reload", phase::Stamp::now());
                    Response::Ok { message }
                }
                Err(e) => Response::Error {
                    message: format!("reload refused, the running configuration is kept:\n{e}"),
                },
            },
            Request::Reset => {
                self.engine.reset_budgets();
                let _ = self.wake("operator reset", phase::Stamp::now());
                Response::Ok {
                    message: "restart budgets and retry delays forgotten".into(),
                }
            }
            Request::ManualModeEnable => self.manual_mode_enable(),
            Request::ManualModeDisable => self.manual_mode_disable(),
            Request::BecomePrimary { force } => self.become_primary(force),
            Request::SplitBrainResolve {
                discard_local_data,
                yes,
            } => self.split_brain_resolve(discard_local_data, yes),
            Request::SplitBrainReconnect => self.split_brain_reconnect(),
            Request::BecomeSecondary => self.become_secondary(),
        }
    }

    fn fresh_observation(&mut self) -> Observation {
        self.engine
            .observe(&self.config, &mut self.host, self.manual, &mut self.around)
    }

    fn manual_mode_enable(&mut self) -> Response {
        let o = self.fresh_observation();
        let mode = match check_manual_mode_enable(&o) {
            Ok(ManualModeChange::To(mode)) => mode,
            Ok(ManualModeChange::Unchanged) => {
                return Response::Ok {
                    message: format!("already in manual mode ({:?})", o.manual),
                }
            }
            Err(r) => return r.into(),
        };
        if let Err(e) = self.set_manual(mode) {
            return Response::Error { message: e };
        }
        self.engine.reset_budgets();
        let _ = self.wake("manual mode enabled", phase::Stamp::now());
        Response::Ok {
            message: format!(
                "manual mode enabled, holding {}. The pool role is ignored until manual-mode-disable; alerts are muted. \
                 Disable HA in the cluster manager before shutting hosts down.",
                if mode == ManualMode::BecomePrimary { "primary" } else { "secondary" }
            ),
        }
    }

    fn manual_mode_disable(&mut self) -> Response {
        let o = self.fresh_observation();
        match check_manual_mode_disable(&o) {
            Ok(ManualModeChange::To(_)) => {}
            Ok(ManualModeChange::Unchanged) => {
                return Response::Ok {
                    message: "not in manual mode".into(),
                }
            }
            Err(r) => return r.into(),
        }
        if let Err(e) = self.set_manual(ManualMode::Off) {
            return Response::Error { message: e };
        }
        self.engine.reset_budgets();
        let _ = self.wake("manual mode disabled", phase::Stamp::now());
        Response::Ok {
            message: format!(
                "manual mode disabled; following the pool role ({})",
                o.role.name()
            ),
        }
    }

    fn become_primary(&mut self, force: bool) -> Response {
        let o = self.fresh_observation();
        let probe = become_primary_needs_probe(&o).then(|| self.host.vip.probe(&self.config.vip));
        let allowed = match check_become_primary(&o, force, &self.config.vip, probe) {
            Ok(allowed) => allowed,
            Err(r) => return r.into(),
        };
        for name in &allowed.forced {
            tracing::warn!(resource = %name, "operator forces promotion");
            if let Err(e) = self.host.volumes.port().promote(name, true) {
                return Response::Error {
                    message: format!("forced promotion of {name} failed: {e}"),
                };
            }
        }
        if force {
            // The operator decided this host serves: it took over, whatever it yielded to.
            self.engine.operator_forced(&mut self.around);
        }
        self.switch(ManualMode::BecomePrimary)
    }

    fn split_brain_resolve(&mut self, discard_local_data: bool, yes: bool) -> Response {
        let o = self.fresh_observation();
        let victims = match check_split_brain_resolve(&self.config, &o, discard_local_data, yes) {
            Ok(v) => v,
            Err(r) => return r.into(),
        };
        let mut done = Vec::new();
        for name in victims {
            tracing::warn!(resource = %name, "split-brain recovery: demoting and reconnecting, discarding this host's changes");
            if let Err(e) = self.host.volumes.port().demote(&name) {
                return Response::Error {
                    message: format!(
                        "{name}: demote failed: {e} (done so far: {})",
                        done.join(", ")
                    ),
                };
            }
            if let Err(e) = self.host.volumes.port().connect(&name, true) {
                return Response::Error {
                    message: format!(
                        "{name}: reconnect discarding local data failed: {e} (done so far: {})",
                        done.join(", ")
                    ),
                };
            }
            done.push(name.to_string());
        }
        let _ = self.wake("split-brain resolve", phase::Stamp::now());
        Response::Ok {
            message: format!(
                "{}: Secondary, reconnecting with this host's changes discarded. Now on the surviving host run: iscsi-cfg split-brain reconnect",
                done.join(", ")
            ),
        }
    }

    fn split_brain_reconnect(&mut self) -> Response {
        let o = self.fresh_observation();
        let names = split_brain_reconnect_targets(&o);
        if names.is_empty() {
            return Response::Ok {
                message: "nothing to reconnect: no resource is StandAlone".into(),
            };
        }
        for name in &names {
            tracing::warn!(resource = %name, "split-brain recovery: reconnecting, keeping this host's data");
            if let Err(e) = self.host.volumes.port().connect(name, false) {
                return Response::Error {
                    message: format!("{name}: reconnect failed: {e}"),
                };
            }
        }
        let _ = self.wake("split-brain reconnect", phase::Stamp::now());
        Response::Ok {
            message: format!(
                "{}: reconnecting, keeping this host's data; the peer resynchronises from here",
                names
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    fn become_secondary(&mut self) -> Response {
        if let Err(r) = check_become_secondary(self.manual) {
            return r.into();
        }
        self.switch(ManualMode::BecomeSecondary)
    }

    fn switch(&mut self, mode: ManualMode) -> Response {
        if let Err(e) = self.set_manual(mode) {
            return Response::Error { message: e };
        }
        self.engine.reset_budgets();
        let failed = self.wake("operator", phase::Stamp::now()).failures();
        let holds = self
            .engine
            .status()
            .map(|s| s.holds.clone())
            .unwrap_or_default();
        if failed.is_empty() && holds.is_empty() {
            Response::Ok {
                message: format!(
                    "{} done",
                    if mode == ManualMode::BecomePrimary {
                        "become-primary"
                    } else {
                        "become-secondary"
                    }
                ),
            }
        } else {
            Response::Error {
                message: format!(
                    "not complete yet; the daemon keeps trying: {}",
                    failed
                        .into_iter()
                        .chain(holds)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            }
        }
    }
}
