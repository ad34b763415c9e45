//! The ports as the reconciler drives them, each call preceded and followed by a watchdog
//! keep-alive: a wake-up that runs several bounded steps (a demotion, a target stop, a VIP
//! release) keeps telling systemd the loop is alive between them, so WatchdogSec needs to
//! exceed the longest single step, not their sum.
//!
//! Every call that changes something is also a step of the plan, stamped at its start and end
//! ([`super::phase`]) under the name the plan gives it.

use super::{phase, Notifier};
use iscsi_ha_core::plan::Step;
use iscsi_ha_core::ports::{
    FloatingIp, FloatingIpError, IscsiTarget, ReplicatedVolume, TargetError, VolumeError,
};
use iscsi_ha_core::resource::ResourceName;
use iscsi_ha_core::target::{TargetSpec, TargetStatus};
use iscsi_ha_core::vip::{Vip, VipProbe, VipRefresh};
use iscsi_ha_core::volume::{SplitBrain, VolumeStatus};

/// A port whose calls are bracketed by keep-alives.
pub(super) struct Alive<'a, P: ?Sized> {
    pub(super) inner: &'a mut P,
    pub(super) notifier: &'a Notifier,
}

impl<P: ?Sized> Alive<'_, P> {
    fn call<T>(&mut self, f: impl FnOnce(&mut P) -> T) -> T {
        self.notifier.keepalive();
        let result = f(self.inner);
        self.notifier.keepalive();
        result
    }

    /// [`Self::call`], stamped as the plan's step `step`.
    fn step<T, E>(&mut self, step: Step, f: impl FnOnce(&mut P) -> Result<T, E>) -> Result<T, E> {
        phase::step(&step.to_string(), Result::is_ok, || self.call(f))
    }
}

impl<P: ReplicatedVolume + ?Sized> ReplicatedVolume for Alive<'_, P> {
    fn status(&mut self, resource: &ResourceName) -> Result<VolumeStatus, VolumeError> {
        self.call(|p| p.status(resource))
    }
    fn promote(&mut self, resource: &ResourceName, force: bool) -> Result<(), VolumeError> {
        self.step(Step::Promote(resource.clone()), |p| {
            p.promote(resource, force)
        })
    }
    fn demote(&mut self, resource: &ResourceName) -> Result<(), VolumeError> {
        self.step(Step::Demote(resource.clone()), |p| p.demote(resource))
    }
    fn resume_io(&mut self, resource: &ResourceName) -> Result<(), VolumeError> {
        self.step(Step::ResumeIo(resource.clone()), |p| p.resume_io(resource))
    }
    fn split_brain(&mut self, resource: &ResourceName) -> Result<Option<SplitBrain>, VolumeError> {
        self.call(|p| p.split_brain(resource))
    }
    fn connect(
        &mut self,
        resource: &ResourceName,
        discard_local_data: bool,
    ) -> Result<(), VolumeError> {
        self.call(|p| p.connect(resource, discard_local_data))
    }
}

impl<P: IscsiTarget + ?Sized> IscsiTarget for Alive<'_, P> {
    fn status(&mut self) -> Result<TargetStatus, TargetError> {
        self.call(|p| p.status())
    }
    fn serve(&mut self, spec: &TargetSpec) -> Result<(), TargetError> {
        self.step(Step::ServeTarget, |p| p.serve(spec))
    }
    fn stop(&mut self, spec: &TargetSpec) -> Result<(), TargetError> {
        self.step(Step::StopTarget, |p| p.stop(spec))
    }
}

impl<P: FloatingIp + ?Sized> FloatingIp for Alive<'_, P> {
    fn is_assigned(&mut self, vip: &Vip) -> Result<bool, FloatingIpError> {
        self.call(|p| p.is_assigned(vip))
    }
    fn probe(&mut self, vip: &Vip) -> Result<VipProbe, FloatingIpError> {
        self.step(Step::ProbeVip, |p| p.probe(vip))
    }
    fn assign(&mut self, vip: &Vip) -> Result<(), FloatingIpError> {
        self.step(Step::AssignVip, |p| p.assign(vip))
    }
    fn announce(&mut self, vip: &Vip) -> Result<(), FloatingIpError> {
        self.step(Step::AnnounceVip, |p| p.announce(vip))
    }
    fn refresh(&mut self, vip: &Vip) -> Result<VipRefresh, FloatingIpError> {
        self.call(|p| p.refresh(vip))
    }
    fn release(&mut self, vip: &Vip) -> Result<(), FloatingIpError> {
        self.step(Step::ReleaseVip, |p| p.release(vip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;
    use std::time::{Duration, Instant};

    /// A volume port whose demotion takes `step`.
    struct Slow {
        step: Duration,
    }

    impl ReplicatedVolume for Slow {
        fn status(&mut self, _: &ResourceName) -> Result<VolumeStatus, VolumeError> {
            Err(VolumeError::Unavailable("not here".into()))
        }
        fn promote(&mut self, _: &ResourceName, _: bool) -> Result<(), VolumeError> {
            Ok(())
        }
        fn demote(&mut self, _: &ResourceName) -> Result<(), VolumeError> {
            std::thread::sleep(self.step);
            Ok(())
        }
    }

    #[test]
    fn keep_alives_go_out_between_the_steps_of_one_wake_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let systemd = UnixDatagram::bind(&path).unwrap();
        systemd.set_nonblocking(true).unwrap();
        // Only this test sets it, before the first notification of this process.
        std::env::set_var("NOTIFY_SOCKET", &path);
        // systemd's WatchdogSec=1s: a keep-alive is due every 500 ms; three demotions of
        // 400 ms each (1.2 s) would trip it if nothing went out between them.
        let notifier = Notifier::with_watchdog(Some(Duration::from_secs(1)));
        let mut port = Slow {
            step: Duration::from_millis(400),
        };
        let mut volumes = Alive {
            inner: &mut port,
            notifier: &notifier,
        };
        let r0 = ResourceName::new("r0".to_string()).unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            volumes.demote(&r0).unwrap();
        }
        let mut keepalives = 0;
        let mut buf = [0u8; 256];
        while let Ok(n) = systemd.recv(&mut buf) {
            assert_eq!(&buf[..n], b"WATCHDOG=1\n");
            keepalives += 1;
        }
        assert!(t0.elapsed() >= Duration::from_millis(1200));
        assert_eq!(
            keepalives, 4,
            "one before the first step and one after each"
        );
    }
}
