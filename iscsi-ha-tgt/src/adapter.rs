//! [`TgtTarget`]: the [`IscsiTarget`] port over tgtd.

use std::os::fd::{AsFd, BorrowedFd};
use std::process::ExitStatus;
use std::thread;

use iscsi_ha_core::ports::{IscsiTarget, TargetError};
use iscsi_ha_core::target::{ObservedLun, ObservedTarget, TargetSpec, TargetStatus};

use crate::client::Client;
use crate::config::{Lifecycle, TgtConfig};
use crate::daemon::ManagedTgtd;
use crate::durability;
use crate::error::TgtError;
use crate::exit_watch::ExitWatch;
use crate::ops::{State, Tgt};
use crate::plan::{self, fingerprint, Applied, Deferred, LunKey, Step};
use crate::show::{TargetInfo, ALL};
use crate::wire::{ReplyCode, Request};

/// The tgt adapter: converges one tgtd on a [`TargetSpec`].
#[derive(Debug)]
pub struct TgtTarget {
    config: TgtConfig,
    tgt: Tgt,
    daemon: Option<ManagedTgtd>,
    /// A managed configuration found tgtd already answering on its socket (left running by
    /// a previous daemon instance) and uses it instead of starting a second one.
    adopted: bool,
    /// The adopted tgtd's pid and exit watch, when its pid could be learnt: its exit is then
    /// seen at once (a pidfd) or within the fallback's period, as a child's is.
    adopted_watch: Option<(u32, ExitWatch)>,
    applied: Applied,
    /// When tgtd was last started again after an exit ([`crate::restart`]).
    pub(crate) pacing: crate::restart::RestartPacing,
}

impl TgtTarget {
    /// An adapter for `config`. Starts nothing: a managed tgtd is started by the first
    /// [`IscsiTarget::serve`] (or [`TgtTarget::ensure_daemon`]).
    pub fn new(config: TgtConfig) -> Self {
        let client = Client::new(config.socket_path(), config.request_timeout);
        Self {
            config,
            tgt: Tgt::new(client),
            daemon: None,
            adopted: false,
            adopted_watch: None,
            applied: Applied::default(),
            pacing: crate::restart::RestartPacing::default(),
        }
    }

    /// The typed operations on this tgtd.
    pub fn tgt(&self) -> &Tgt {
        &self.tgt
    }

    /// The configuration.
    pub fn config(&self) -> &TgtConfig {
        &self.config
    }

    /// The managed tgtd child, if one is running: its pid and exit descriptor let the
    /// daemon's poll loop notice an exit (see [`ManagedTgtd::exit_fd`]).
    pub fn managed(&self) -> Option<&ManagedTgtd> {
        self.daemon.as_ref()
    }

    /// Reaps a managed child that has exited, returning its status; `None` while it runs or
    /// when there is no child. After an exit, the next `serve` starts a new one.
    pub fn reap_exited(&mut self) -> Result<Option<ExitStatus>, TgtError> {
        let Some(d) = self.daemon.as_mut() else {
            return Ok(None);
        };
        let status = d.try_wait()?;
        if status.is_some() {
            tracing::warn!(pid = d.pid(), ?status, "managed tgtd exited");
            self.daemon = None;
            // Its state died with it.
            self.applied = Applied::default();
        }
        Ok(status)
    }

    /// The tgtd whose exit the daemon should notice at once: the managed child, or the tgtd
    /// adopted on our control port. Its pid, and a descriptor that becomes readable when it
    /// may have exited (then call [`TgtTarget::forget_exited`]): a pidfd, or where the kernel
    /// has none (before 5.3) a timer ticking every
    /// [`EXIT_CHECK_PERIOD`](crate::exit_watch::EXIT_CHECK_PERIOD). `None` without a tgtd, or
    /// when the adopted tgtd's pid is not to be had (its exit is then seen at the next status).
    pub fn exit_watch(&self) -> Option<(u32, BorrowedFd<'_>)> {
        match &self.daemon {
            Some(child) => Some((child.pid(), child.exit_fd()?)),
            None => self
                .adopted_watch
                .as_ref()
                .map(|(pid, fd)| (*pid, fd.as_fd())),
        }
    }

    /// Forgets the watched tgtd if it has exited (reaping our own child): returns whether it
    /// had. Its state died with it; the next `serve` (or [`TgtTarget::ensure_daemon`]) starts
    /// a new one.
    pub fn forget_exited(&mut self) -> Result<bool, TgtError> {
        if self.reap_exited()?.is_some() {
            return Ok(true);
        }
        let Some((pid, watch)) = &self.adopted_watch else {
            return Ok(false);
        };
        let exited = watch.process_exited(*pid);
        if exited {
            tracing::warn!(pid, "the adopted tgtd exited");
            self.adopted_watch = None;
            self.adopted = false;
            self.applied = Applied::default();
        }
        Ok(exited)
    }

    /// Takes a tgtd found answering on our socket as ours: remembers it and, when its pid can
    /// be learnt, watches it (a pidfd, or the periodic look on kernels without pidfds).
    fn adopt(&mut self) {
        if self.adopted {
            return;
        }
        self.adopted = true;
        self.applied = Applied::default();
        self.adopted_watch = self.watch_running();
        let socket = self.config.socket_path();
        match &self.adopted_watch {
            Some((pid, _)) => {
                tracing::info!(pid, socket = %socket.display(), "adopting the tgtd already running on our control port")
            }
            None => {
                tracing::warn!(socket = %socket.display(), "adopting the tgtd already running on our control port; its pid is unknown, so its exit is seen only at the next scan")
            }
        }
    }

    /// An exit watch on the tgtd listening on our socket. The pid is read again after the
    /// watch is made, so a pid reused in between is not watched in its place.
    fn watch_running(&self) -> Option<(u32, ExitWatch)> {
        let client = self.tgt.client();
        let pid = client.server_pid().ok()?;
        let watch = ExitWatch::process(pid)?;
        (client.server_pid().ok()? == pid).then_some((pid, watch))
    }

    /// Makes sure tgtd answers: starts the managed child if there is none (or it exited);
    /// for an adopted tgtd, checks that it answers.
    pub fn ensure_daemon(&mut self) -> Result<(), TgtError> {
        if !self.start_if_managed()? {
            self.tgt.system_show()?;
        }
        Ok(())
    }

    /// Starts the managed child if there is none (or it exited). Returns whether tgtd is
    /// known to run (a managed child that is alive) without asking it.
    fn start_if_managed(&mut self) -> Result<bool, TgtError> {
        self.reap_exited()?;
        let Lifecycle::Managed(m) = &self.config.lifecycle else {
            return Ok(false);
        };
        if self.daemon.is_none() {
            let ready_timeout = m.ready_timeout;
            let Some(command) = self.config.tgtd_command() else {
                return Ok(false);
            };
            // A tgtd already answering on our socket was left running by a previous daemon
            // instance (its exit leaves the storage as it is): use it rather than disturb it.
            match self.tgt.system_show() {
                Ok(_) => {
                    self.adopt();
                    return Ok(true);
                }
                Err(TgtError::NotRunning { .. }) => {
                    self.adopted = false;
                    self.adopted_watch = None;
                }
                Err(e) => return Err(e),
            }
            let child = ManagedTgtd::start(&command, self.tgt.client(), ready_timeout)?;
            self.applied = Applied::default();
            self.daemon = Some(child);
        }
        Ok(true)
    }

    /// Lets a managed tgtd run on after this adapter is dropped (the daemon's exit leaves the
    /// storage as it is; the next instance adopts the tgtd).
    pub fn detach(&mut self) {
        if let Some(child) = self.daemon.take() {
            tracing::info!(pid = child.pid(), "leaving tgtd running");
            child.detach();
        }
    }

    /// Takes everything down, for the daemon's own exit: every target offline and removed
    /// (bounded retries under I/O), then a managed tgtd stopped. An adopted tgtd only loses
    /// the targets of `specs`.
    pub fn shutdown(&mut self, specs: &[TargetSpec]) -> Result<(), TgtError> {
        for spec in specs {
            self.stop_spec(spec)?;
        }
        if self.daemon.is_none() {
            return Ok(());
        }
        for t in self.tgt.targets()? {
            self.remove_target(&t)?;
        }
        self.stop_daemon()
    }

    /// Stops the managed tgtd (if any): `system delete`, which tgtd accepts only when no
    /// target is left, then waits for the exit; kills it if it does not exit in time.
    pub fn stop_daemon(&mut self) -> Result<(), TgtError> {
        let Lifecycle::Managed(m) = &self.config.lifecycle else {
            return Ok(());
        };
        let stop_timeout = m.stop_timeout;
        let Some(mut child) = self.daemon.take() else {
            return self.stop_adopted(stop_timeout);
        };
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        match self.tgt.system_delete() {
            Ok(()) | Err(TgtError::NotRunning { .. }) => {}
            Err(e) => {
                self.daemon = Some(child);
                return Err(e);
            }
        }
        if child.wait_timeout(stop_timeout)?.is_none() {
            tracing::warn!(
                pid = child.pid(),
                "tgtd did not exit after system delete; killing"
            );
            child.kill()?;
        }
        self.applied = Applied::default();
        Ok(())
    }

    /// Stops an adopted tgtd: `system delete`, then waits until its socket stops answering.
    fn stop_adopted(&mut self, stop_timeout: std::time::Duration) -> Result<(), TgtError> {
        if !self.adopted {
            return Ok(());
        }
        match self.tgt.system_delete() {
            Ok(()) | Err(TgtError::NotRunning { .. }) => {}
            Err(e) => return Err(e),
        }
        let start = std::time::Instant::now();
        while start.elapsed() < stop_timeout {
            if let Err(TgtError::NotRunning { .. }) = self.tgt.system_show() {
                self.adopted = false;
                self.adopted_watch = None;
                self.applied = Applied::default();
                return Ok(());
            }
            thread::sleep(std::time::Duration::from_millis(10));
        }
        tracing::warn!("the adopted tgtd still answers after system delete");
        Ok(())
    }

    /// Serves `spec` (the port's `serve`, with this crate's error).
    pub fn serve_spec(&mut self, spec: &TargetSpec) -> Result<(), TgtError> {
        plan::validate(spec, &self.config.backing)?;
        self.start_if_managed()?;
        let targets = self.tgt.targets()?;
        let observed = targets.iter().find(|t| t.name == spec.iqn.as_str());
        let accounts = self.tgt.accounts()?;
        let (steps, deferred) = plan::plan_with_deferred(
            spec,
            observed,
            &accounts,
            &self.applied,
            &self.config.backing,
        );
        for d in &deferred {
            match d {
                Deferred::OpenFlags { lun, have, want } => tracing::warn!(
                    target = %spec.iqn, lun, have = %have, want = %want,
                    "LUN backing-store flags differ; tgtd sets them only when a LUN is created, so \
                     it is re-created once no initiator is logged in (stable writes need `sync`)"
                ),
                Deferred::VolatileCache { lun } => tracing::warn!(
                    target = %spec.iqn, lun,
                    "reporting a volatile write cache waits until no initiator is logged in: one \
                     that read WCE=0 would never flush"
                ),
            }
        }
        if steps.is_empty() {
            return Ok(());
        }
        let tid = match observed {
            Some(t) => i64::from(t.tid),
            None => free_tid(&targets),
        };
        let requests = steps
            .iter()
            .map(|s| plan::request(s, tid, spec))
            .collect::<Result<Vec<Request>, _>>()?;
        tracing::info!(target = %spec.iqn, tid, steps = steps.len(), "converging tgtd");
        for (step, request) in steps.iter().zip(&requests) {
            self.tgt.client().send(request)?;
            self.remember(step, spec);
        }
        Ok(())
    }

    fn remember(&mut self, step: &Step, spec: &TargetSpec) {
        match step {
            Step::NewAccount(user) => {
                if let Some(c) = spec
                    .access
                    .incoming
                    .iter()
                    .chain(spec.access.outgoing.iter())
                    .find(|c| &c.user == user)
                {
                    self.applied
                        .secrets
                        .insert(user.clone(), fingerprint(c.password.expose()));
                }
            }
            Step::DeleteAccount(user) => {
                self.applied.secrets.remove(user);
            }
            Step::UpdateLun(n, settings) => {
                if let Some(l) = spec.luns.iter().find(|l| l.lun.get() == *n) {
                    let key = (spec.iqn.to_string(), *n, l.path.clone());
                    if let Some(wce) = settings.write_cache {
                        self.applied.write_cache.insert(key.clone(), wce);
                    }
                    self.applied.inquiry.insert(
                        key,
                        (l.identity.vendor_id.clone(), l.identity.product_id.clone()),
                    );
                }
            }
            Step::DeleteLun(n) | Step::NewLun(n, _) => {
                // A new LU starts with tgtd's defaults (WCE=1), whatever was set before.
                let iqn = spec.iqn.to_string();
                let gone = |(t, lun, _): &LunKey| t == &iqn && lun == n;
                self.applied.inquiry.retain(|k, _| !gone(k));
                self.applied.write_cache.retain(|k, _| !gone(k));
            }
            _ => {}
        }
    }

    /// Stops serving `spec` (the port's `stop`, with this crate's error).
    pub fn stop_spec(&mut self, spec: &TargetSpec) -> Result<(), TgtError> {
        self.reap_exited()?;
        let targets = match self.tgt.targets() {
            Ok(t) => t,
            Err(TgtError::NotRunning { .. }) => {
                self.daemon = None;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if let Some(t) = targets.iter().find(|t| t.name == spec.iqn.as_str()) {
            self.remove_target(t)?;
        }
        let iqn = spec.iqn.to_string();
        self.applied.inquiry.retain(|(t, _, _), _| t != &iqn);
        self.applied.write_cache.retain(|(t, _, _), _| t != &iqn);
        self.delete_accounts(spec)?;
        let others = self.tgt.targets()?;
        if others.is_empty() && !self.config.keep_daemon_running {
            self.stop_daemon()?;
        } else if self.daemon.is_some() && !others.is_empty() {
            let names: Vec<&str> = others.iter().map(|t| t.name.as_str()).collect();
            tracing::warn!(?names, "managed tgtd keeps running: it holds other targets");
        }
        Ok(())
    }

    /// Offline, drop connections, force-delete with bounded retries while tgtd says busy.
    fn remove_target(&mut self, t: &TargetInfo) -> Result<(), TgtError> {
        let tid = i64::from(t.tid);
        ignore_gone(self.tgt.target_set_state(tid, State::Offline))?;
        for nexus in &t.nexuses {
            for conn in &nexus.connections {
                ignore_gone(self.tgt.connection_delete(tid, nexus.id, conn.cid))?;
            }
        }
        let mut attempt = 0;
        loop {
            match self.tgt.target_delete(tid, true) {
                Ok(()) => return Ok(()),
                Err(e) if e.code() == Some(ReplyCode::NoTarget) => return Ok(()),
                Err(e) if e.is_busy() && attempt < self.config.stop_retries => {
                    attempt += 1;
                    tracing::debug!(tid, attempt, "tgtd busy deleting the target; retrying");
                    thread::sleep(self.config.stop_retry_interval);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Deletes the spec's accounts unless another target still uses them.
    fn delete_accounts(&mut self, spec: &TargetSpec) -> Result<(), TgtError> {
        let targets = self.tgt.targets()?;
        let accounts = self.tgt.accounts()?;
        for c in spec
            .access
            .incoming
            .iter()
            .chain(spec.access.outgoing.iter())
        {
            let in_use = targets.iter().any(|t| {
                t.incoming_users.contains(&c.user) || t.outgoing_user.as_ref() == Some(&c.user)
            });
            if accounts.contains(&c.user) && !in_use {
                match self.tgt.account_delete(&c.user) {
                    Ok(()) => {}
                    Err(e) if e.code() == Some(ReplyCode::NoUser) => {}
                    Err(e) => return Err(e),
                }
            }
            self.applied.secrets.remove(&c.user);
        }
        Ok(())
    }

    /// What tgtd exports now (the port's `status`, with this crate's error).
    pub fn target_status(&mut self) -> Result<TargetStatus, TgtError> {
        self.reap_exited()?;
        // Without a child of ours, a tgtd answering on our socket is still the truth (one
        // left running by a previous daemon instance): a managed configuration adopts it now,
        // so that its exit is noticed.
        match self.tgt.targets() {
            Ok(targets) => {
                if self.daemon.is_none() && matches!(self.config.lifecycle, Lifecycle::Managed(_)) {
                    self.adopt();
                }
                Ok(TargetStatus {
                    daemon_running: true,
                    targets: targets.iter().map(observe).collect(),
                })
            }
            Err(TgtError::NotRunning { .. }) => Ok(TargetStatus::default()),
            Err(e) => Err(e),
        }
    }
}

fn ignore_gone(result: Result<(), TgtError>) -> Result<(), TgtError> {
    match result {
        Err(e)
            if matches!(
                e.code(),
                Some(ReplyCode::NoTarget | ReplyCode::NoSession | ReplyCode::NoConnection)
            ) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// The lowest target id ≥ 1 not in use.
fn free_tid(targets: &[TargetInfo]) -> i64 {
    let mut tid = 1_i64;
    while targets.iter().any(|t| i64::from(t.tid) == tid) {
        tid += 1;
    }
    tid
}

/// A target as the port reports it: tgtd's `ALL` entry becomes `allow_all`, its other address
/// entries are the ranges as tgtd shows them.
pub fn observe(t: &TargetInfo) -> ObservedTarget {
    ObservedTarget {
        iqn: t.name.clone(),
        ready: t.is_ready(),
        luns: t
            .data_luns()
            .map(|l| ObservedLun {
                lun: l.lun,
                path: l.path.clone(),
                scsi_id: l.scsi_id.clone(),
                scsi_sn: l.scsi_sn.clone(),
                read_only: l.readonly,
                stable_writes: l
                    .backing_flags
                    .as_deref()
                    .map(durability::flags_make_writes_stable),
                // tgtd shows no mode page; only an initiator's MODE SENSE sees WCE.
                volatile_cache_reported: None,
            })
            .collect(),
        allow_all: t.acl_addresses().iter().any(|a| a == ALL),
        initiator_addresses: t.acl_addresses().into_iter().filter(|a| a != ALL).collect(),
        initiator_names: t.acl_names(),
        incoming_users: t.incoming_users.clone(),
        outgoing_user: t.outgoing_user.clone(),
        sessions: u32::try_from(t.nexuses.len()).unwrap_or(u32::MAX),
    }
}

impl IscsiTarget for TgtTarget {
    fn status(&mut self) -> Result<TargetStatus, TargetError> {
        self.target_status().map_err(Into::into)
    }

    fn serve(&mut self, spec: &TargetSpec) -> Result<(), TargetError> {
        self.serve_spec(spec).map_err(Into::into)
    }

    fn stop(&mut self, spec: &TargetSpec) -> Result<(), TargetError> {
        self.stop_spec(spec).map_err(Into::into)
    }

    /// The watched tgtd's exit ([`crate::restart`]); its descriptor is there while a tgtd is
    /// watched (our child, or an adopted one whose pid could be learnt).
    fn events(&mut self) -> Option<&mut dyn iscsi_ha_core::engine::EventSource> {
        Some(self)
    }
}

/// Dropping the adapter with [`TgtConfig::leave_running_on_drop`] (the daemon's exit, however
/// it ends) detaches a managed tgtd instead of killing it: the storage is left as it is, and
/// the next instance adopts that tgtd.
impl Drop for TgtTarget {
    fn drop(&mut self) {
        if self.config.leave_running_on_drop {
            self.detach();
        }
    }
}
