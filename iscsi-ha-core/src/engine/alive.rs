//! The ports as the engine drives them, each call preceded and followed by a keep-alive: a
//! wake-up that runs several bounded steps (a demotion, a target stop, a VIP release) keeps
//! telling the service manager the loop is alive between them, so its watchdog needs to exceed
//! the longest single step, not their sum.
//!
//! Every call that changes something is also a step of the plan, reported to the
//! [`Hooks`] at its start and end under the name the plan gives it.

use super::Hooks;
use crate::plan::Step;
use crate::ports::{
    FloatingIp, FloatingIpError, IscsiTarget, ReplicatedVolume, TargetError, VolumeError,
};
use crate::resource::ResourceName;
use crate::target::{TargetSpec, TargetStatus};
use crate::vip::{Vip, VipProbe, VipRefresh};
use crate::volume::{SplitBrain, VolumeStatus};

/// A port whose calls are bracketed by keep-alives.
pub(super) struct Alive<'a, P: ?Sized> {
    pub(super) inner: &'a mut P,
    pub(super) hooks: &'a dyn Hooks,
}

impl<P: ?Sized> Alive<'_, P> {
    fn call<T>(&mut self, f: impl FnOnce(&mut P) -> T) -> T {
        self.hooks.keepalive();
        let result = f(self.inner);
        self.hooks.keepalive();
        result
    }

    /// [`Self::call`], reported as the plan's step `step` (also an operator's call, which the
    /// engine reports under the step it records).
    pub(super) fn step<T, E>(
        &mut self,
        step: Step,
        f: impl FnOnce(&mut P) -> Result<T, E>,
    ) -> Result<T, E> {
        self.hooks.step_started(&step);
        let result = self.call(f);
        self.hooks.step_ended(&step, result.is_ok());
        result
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
    use crate::time::Moment;
    use std::cell::RefCell;

    /// Records what the engine told it, in order.
    #[derive(Default)]
    struct Told(RefCell<Vec<String>>);

    impl Hooks for Told {
        fn now(&self) -> Moment {
            Moment {
                instant: std::time::Instant::now(),
                wall: crate::time::Timestamp::from_unix_millis(0),
            }
        }
        fn keepalive(&self) {
            self.0.borrow_mut().push("alive".into());
        }
        fn step_started(&self, step: &Step) {
            self.0.borrow_mut().push(format!("start {step}"));
        }
        fn step_ended(&self, step: &Step, ok: bool) {
            self.0.borrow_mut().push(format!("end {step} {ok}"));
        }
    }

    /// A volume port whose demotion fails.
    struct Failing;

    impl ReplicatedVolume for Failing {
        fn status(&mut self, _: &ResourceName) -> Result<VolumeStatus, VolumeError> {
            Err(VolumeError::Unavailable("not here".into()))
        }
        fn promote(&mut self, _: &ResourceName, _: bool) -> Result<(), VolumeError> {
            Ok(())
        }
        fn demote(&mut self, _: &ResourceName) -> Result<(), VolumeError> {
            Err(VolumeError::Unavailable("busy".into()))
        }
    }

    #[test]
    fn every_port_call_is_bracketed_by_keepalives_and_a_step_by_its_edges() {
        let told = Told::default();
        let mut port = Failing;
        let mut volumes = Alive {
            inner: &mut port,
            hooks: &told,
        };
        let r0 = ResourceName::new("r0".to_string()).unwrap();
        let _ = volumes.status(&r0);
        volumes.promote(&r0, false).unwrap();
        assert!(volumes.demote(&r0).is_err());
        assert_eq!(
            told.0.into_inner(),
            [
                "alive",
                "alive",
                "start promote r0",
                "alive",
                "alive",
                "end promote r0 true",
                "start demote r0",
                "alive",
                "alive",
                "end demote r0 false",
            ]
        );
    }
}
