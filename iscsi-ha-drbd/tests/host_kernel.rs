//! Against this host's real kernel: nlctrl is asked for the `drbd` family. Hosts without the
//! module (the development machines and CI) must get the typed "module not loaded" state, and
//! the adapter must fall back to /proc/drbd when one exists (an 8.3 module has no genl family).

use std::path::{Path, PathBuf};

use iscsi_ha_core::ports::{ReplicatedVolume, VolumeError};
use iscsi_ha_core::resource::ResourceName;
use iscsi_ha_core::volume::Connection;
use iscsi_ha_drbd::family::FamilyError;
use iscsi_ha_drbd::{DrbdError, DrbdEvents, DrbdNetlink, DrbdVolumes};

fn module_loaded() -> bool {
    Path::new("/sys/module/drbd").exists()
}

#[test]
fn family_resolution_reports_the_module_state() {
    match (module_loaded(), DrbdNetlink::connect()) {
        (false, Err(DrbdError::Family(FamilyError::ModuleNotLoaded))) => {}
        (true, Ok(nl)) => assert!(nl.family().id > 0),
        (loaded, other) => panic!("module loaded: {loaded}, connect gave {other:?}"),
    }
    match (module_loaded(), DrbdEvents::subscribe()) {
        (false, Err(DrbdError::Family(FamilyError::ModuleNotLoaded))) => {}
        (true, Ok(_)) => {}
        (loaded, other) => panic!("module loaded: {loaded}, subscribe gave {other:?}"),
    }
}

#[test]
fn without_the_module_the_adapter_says_unavailable_or_falls_back_to_proc() {
    assert!(
        !module_loaded(),
        "this test describes hosts without the drbd module; the lab suite covers the module"
    );
    let name = ResourceName::new("r0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut none =
        DrbdVolumes::with_paths(dir.path().join("no-proc-drbd"), dir.path().join("by-res"));
    assert_eq!(
        none.status(&name),
        Err(VolumeError::Unavailable(
            "the drbd kernel module is not loaded".to_string().into()
        ))
    );
    assert!(matches!(
        none.promote(&name, false),
        Err(VolumeError::Unavailable(_))
    ));
    assert!(matches!(
        none.demote(&name),
        Err(VolumeError::Unavailable(_))
    ));

    // An 8.3 host: /proc/drbd but no genl family.
    std::fs::write(dir.path().join("drbd0"), b"").unwrap();
    std::fs::create_dir(dir.path().join("by-res")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("drbd0"), dir.path().join("by-res/r0")).unwrap();
    let proc =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/drbd/proc/83-connected.txt");
    let mut legacy = DrbdVolumes::with_paths(proc, dir.path().join("by-res"));
    let status = legacy.status(&name).unwrap();
    assert_eq!(status.connection, Connection::Connected);
    assert!(!status.peer_is_primary());
}
