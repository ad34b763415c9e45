//! Operator requests from the control socket, with the original `iscsi-cfg`'s safety refusals.

use super::Daemon;
use crate::control::{Request, Response};
use iscsi_ha_core::observation::{ManualMode, Observation};
use iscsi_ha_core::operator::{check_split_brain_resolve, manual_mode_holding_now};
use iscsi_ha_core::reconcile::Outcome;
use iscsi_ha_core::role::Role;
use iscsi_ha_core::vip::VipProbe;
use iscsi_ha_core::volume::VolumeRole;

impl Daemon {
    pub(super) fn handle(&mut self, request: Request) -> Response {
        tracing::info!(?request, "operator request");
        match request {
            Request::Status => match &self.status {
                Some(s) => Response::Status {
                    status: Box::new(s.clone()),
                },
                None => Response::Error {
                    message: "no status yet: waiting for the role source's first answer".into(),
                },
            },
            Request::Reload => match self.reload() {
                Ok(message) => {
                    let _ = self.wake("reload");
                    Response::Ok { message }
                }
                Err(e) => Response::Error {
                    message: format!("reload refused, the running configuration is kept:\n{e}"),
                },
            },
            Request::Reset => {
                self.reconciler.reset_budgets();
                let _ = self.wake("operator reset");
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
        let o = self.observe();
        self.observation = Some(o.clone());
        o
    }

    fn manual_mode_enable(&mut self) -> Response {
        if self.manual.is_on() {
            return Response::Ok {
                message: format!("already in manual mode ({:?})", self.manual),
            };
        }
        let o = self.fresh_observation();
        // Hold what the host does now: manual mode must not move anything by itself.
        let mode = match manual_mode_holding_now(&o) {
            Ok(mode) => mode,
            Err(r) => return r.into(),
        };
        if let Err(e) = self.set_manual(mode) {
            return Response::Error { message: e };
        }
        self.reconciler.reset_budgets();
        let _ = self.wake("manual mode enabled");
        Response::Ok {
            message: format!(
                "manual mode enabled, holding {}. The pool role is ignored until manual-mode-disable; alerts are muted. \
                 Disable HA in the cluster manager before shutting hosts down.",
                if mode == ManualMode::BecomePrimary { "primary" } else { "secondary" }
            ),
        }
    }

    fn manual_mode_disable(&mut self) -> Response {
        if !self.manual.is_on() {
            return Response::Ok {
                message: "not in manual mode".into(),
            };
        }
        let o = self.fresh_observation();
        let wants_primary =
            match &o.role {
                Role::Master => true,
                Role::Slave => false,
                Role::Unknown(reason) => return Response::Refused {
                    reason: format!("the pool role is unknown ({reason})"),
                    hint:
                        "fix the role source (pool.conf) first, then run manual-mode-disable again"
                            .into(),
                },
            };
        let unreadable: Vec<String> = o
            .volumes
            .iter()
            .filter(|v| v.status.is_err())
            .map(|v| v.name.to_string())
            .collect();
        if !unreadable.is_empty() {
            return Response::Refused {
                reason: format!(
                    "the DRBD role of {} cannot be read, so it cannot be checked against the pool role ({})",
                    unreadable.join(", "),
                    o.role.name()
                ),
                hint: "fix DRBD first (iscsi-cfg status shows why), then run manual-mode-disable again".into(),
            };
        }
        let contradicting: Vec<String> = o
            .volumes
            .iter()
            .filter(|v| {
                v.status
                    .as_ref()
                    .is_ok_and(|s| (s.role == VolumeRole::Primary) != wants_primary)
            })
            .map(|v| v.name.to_string())
            .collect();
        if !contradicting.is_empty() {
            return Response::Refused {
                reason: format!(
                    "the pool role is {} but the DRBD role of {} is not {}",
                    o.role.name(),
                    contradicting.join(", "),
                    if wants_primary { "Primary" } else { "Secondary" }
                ),
                hint: format!(
                    "run iscsi-cfg {} first so storage matches the pool role, then manual-mode-disable",
                    if wants_primary { "become-primary" } else { "become-secondary" }
                ),
            };
        }
        if let Err(e) = self.set_manual(ManualMode::Off) {
            return Response::Error { message: e };
        }
        self.reconciler.reset_budgets();
        let _ = self.wake("manual mode disabled");
        Response::Ok {
            message: format!(
                "manual mode disabled; following the pool role ({})",
                o.role.name()
            ),
        }
    }

    fn become_primary(&mut self, force: bool) -> Response {
        if !self.manual.is_on() {
            return Response::Refused {
                reason: "not in manual mode".into(),
                hint: "run iscsi-cfg manual-mode-enable first (the pool role decides otherwise)"
                    .into(),
            };
        }
        let o = self.fresh_observation();
        let peer_primary: Vec<String> = o
            .volumes
            .iter()
            .filter(|v| {
                v.status
                    .as_ref()
                    .is_ok_and(|s| s.peer_role == VolumeRole::Primary)
            })
            .map(|v| v.name.to_string())
            .collect();
        if !peer_primary.is_empty() {
            return Response::Refused {
                reason: format!("the peer is Primary on {}", peer_primary.join(", ")),
                hint: "on the peer run: iscsi-cfg manual-mode-enable && iscsi-cfg become-secondary"
                    .into(),
            };
        }
        if o.vip_here == Ok(false) {
            match self.host.vip.probe(&self.config.vip) {
                Ok(VipProbe::LiveElsewhere { owner }) => {
                    return Response::Refused {
                        reason: format!(
                            "{} answers on another host{}",
                            self.config.vip.address(),
                            owner.map(|o| format!(" ({o})")).unwrap_or_default()
                        ),
                        hint: "on the peer run: iscsi-cfg manual-mode-enable && iscsi-cfg become-secondary".into(),
                    }
                }
                Ok(VipProbe::Free) => {}
                Err(e) => {
                    return Response::Refused {
                        reason: format!("cannot probe {}: {e}", self.config.vip.address()),
                        hint: "check the VIP interface, then try again".into(),
                    }
                }
            }
        }
        if force {
            // The planner never forces; the operator may, for resources not yet Primary.
            let names: Vec<_> = o
                .volumes
                .iter()
                .filter(|v| {
                    !v.status
                        .as_ref()
                        .is_ok_and(|s| s.role == VolumeRole::Primary)
                })
                .map(|v| v.name.clone())
                .collect();
            for name in names {
                tracing::warn!(resource = %name, "operator forces promotion");
                if let Err(e) = self.host.volumes.port().promote(&name, true) {
                    return Response::Error {
                        message: format!("forced promotion of {name} failed: {e}"),
                    };
                }
            }
            // The operator decided this host serves: it took over, whatever it yielded to.
            self.history
                .history
                .operator_forced(iscsi_ha_core::time::Timestamp::from_system_time(
                    std::time::SystemTime::now(),
                ));
            self.history.save();
        }
        self.switch(ManualMode::BecomePrimary)
    }

    fn split_brain_resolve(&mut self, discard_local_data: bool, yes: bool) -> Response {
        if !(discard_local_data && yes) {
            return Response::Refused {
                reason: "this throws away every change this host made to the split-brained resources".into(),
                hint: "run it on the host whose changes are to be lost, with both --discard-local-data and --yes".into(),
            };
        }
        let o = self.fresh_observation();
        let victims = match check_split_brain_resolve(&self.config, &o) {
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
        let _ = self.wake("split-brain resolve");
        Response::Ok {
            message: format!(
                "{}: Secondary, reconnecting with this host's changes discarded. Now on the surviving host run: iscsi-cfg split-brain reconnect",
                done.join(", ")
            ),
        }
    }

    fn split_brain_reconnect(&mut self) -> Response {
        let o = self.fresh_observation();
        let names: Vec<_> = o
            .volumes
            .iter()
            .filter(|v| {
                v.split_brain.is_some()
                    || v.status.as_ref().is_ok_and(|s| {
                        s.connection == iscsi_ha_core::volume::Connection::StandAlone
                    })
            })
            .map(|v| v.name.clone())
            .collect();
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
        let _ = self.wake("split-brain reconnect");
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
        if !self.manual.is_on() {
            return Response::Refused {
                reason: "not in manual mode".into(),
                hint: "run iscsi-cfg manual-mode-enable first (the pool role decides otherwise)"
                    .into(),
            };
        }
        self.switch(ManualMode::BecomeSecondary)
    }

    fn switch(&mut self, mode: ManualMode) -> Response {
        if let Err(e) = self.set_manual(mode) {
            return Response::Error { message: e };
        }
        self.reconciler.reset_budgets();
        let failed: Vec<String> = self
            .wake("operator")
            .iter()
            .filter_map(|a| match &a.outcome {
                Outcome::Failed { error, .. } => Some(format!("{}: {error}", a.step)),
                _ => None,
            })
            .collect();
        let holds = self
            .status
            .as_ref()
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
