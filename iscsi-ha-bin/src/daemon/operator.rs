//! Operator requests from the control socket, answered: the engine observes, checks
//! (`iscsi_ha_core::operator`, which holds every refusal) and acts through the ports
//! (`iscsi_ha_core::engine`); this module switches manual mode, wakes the loop and words the
//! answer.

use super::{phase, Daemon};
use crate::control::{Request, Response};
use iscsi_ha_core::observation::{ManualMode, Observation};
use iscsi_ha_core::operator::{
    check_become_secondary, check_manual_mode_disable, check_manual_mode_enable, ManualModeChange,
};
use iscsi_ha_core::resource::ResourceName;

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
        let done = self.engine.become_primary(
            &self.config,
            &mut self.host,
            self.manual,
            force,
            &mut self.around,
        );
        if let Err(e) = done {
            return e.into();
        }
        self.switch(ManualMode::BecomePrimary)
    }

    fn split_brain_resolve(&mut self, discard_local_data: bool, yes: bool) -> Response {
        let done = self.engine.resolve_split_brain(
            &self.config,
            &mut self.host,
            self.manual,
            discard_local_data,
            yes,
            &mut self.around,
        );
        let done = match done {
            Ok(done) => done,
            Err(e) => return e.into(),
        };
        let _ = self.wake("split-brain resolve", phase::Stamp::now());
        Response::Ok {
            message: format!(
                "{}: Secondary, reconnecting with this host's changes discarded. Now on the surviving host run: iscsi-cfg split-brain reconnect",
                names(&done)
            ),
        }
    }

    fn split_brain_reconnect(&mut self) -> Response {
        let done = self.engine.reconnect_split_brain(
            &self.config,
            &mut self.host,
            self.manual,
            &mut self.around,
        );
        let reconnected = match done {
            Ok(names) if names.is_empty() => {
                return Response::Ok {
                    message: "nothing to reconnect: no resource is StandAlone".into(),
                }
            }
            Ok(names) => names,
            Err(e) => return e.into(),
        };
        let _ = self.wake("split-brain reconnect", phase::Stamp::now());
        Response::Ok {
            message: format!(
                "{}: reconnecting, keeping this host's data; the peer resynchronises from here",
                names(&reconnected)
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

/// Resource names for a message, comma-separated.
fn names(list: &[ResourceName]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
