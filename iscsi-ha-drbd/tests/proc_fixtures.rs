//! Every /proc/drbd sample in fixtures/drbd/proc with its expected parse.

use std::path::PathBuf;

use iscsi_ha_core::resource::ResourceName;
use iscsi_ha_core::volume::{Connection, DiskState, VolumeRole};
use iscsi_ha_drbd::adapter::resource_from_proc;
use iscsi_ha_drbd::procfs::{self, ProcCounters, ProcDrbd};
use iscsi_ha_drbd::state::{ConnState, DrbdDiskState as D, DrbdRole as R};

fn fixture(name: &str) -> ProcDrbd {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/drbd/proc")
        .join(name);
    procfs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn connected_primary_84() {
    let p = fixture("84-connected-primary.txt");
    assert_eq!(p.version.release, "8.4.11");
    assert_eq!(
        (p.version.api, p.version.proto_min, p.version.proto_max),
        (1, 86, 101)
    );
    assert!(!p.version.is_drbd9());
    assert_eq!(
        p.build.as_deref(),
        Some("srcversion: 211FB288A383ED945B83420")
    );
    assert_eq!(p.minors.len(), 1);
    let m = &p.minors[0];
    assert_eq!(m.minor, 1);
    assert_eq!(m.cstate, ConnState::Connected);
    assert_eq!(m.roles, Some((R::Primary, R::Secondary)));
    assert_eq!(m.disks, Some((D::UpToDate, D::UpToDate)));
    assert_eq!(m.protocol, Some('C'));
    assert_eq!(m.flags, "r-----");
    assert!(!m.io_suspended());
    assert_eq!(
        m.counters,
        Some(ProcCounters {
            ns: 65500,
            nr: 0,
            dw: 4,
            dr: 65516,
            al: 9,
            bm: 0,
            lo: 0,
            pe: 0,
            ua: 0,
            ap: 0,
            ep: 1,
            wo: Some('f'),
            oos: Some(0),
        })
    );
    assert_eq!(m.sync, None);

    let res = resource_from_proc("r0", &p, &[(0, 1)]).unwrap();
    let core = res.to_core(ResourceName::new("r0").unwrap());
    assert_eq!(core.role, VolumeRole::Primary);
    assert_eq!(core.peer_role, VolumeRole::Secondary);
    assert_eq!(core.connection, Connection::Connected);
    assert_eq!(core.disk, DiskState::UpToDate);
    assert!(!core.suspended);
}

#[test]
fn connected_secondary_84() {
    let p = fixture("84-connected-secondary.txt");
    let m = &p.minors[0];
    assert_eq!(m.roles, Some((R::Secondary, R::Primary)));
    assert_eq!(m.counters.map(|c| c.nr), Some(65500));
}

#[test]
fn syncsource_84() {
    let p = fixture("84-syncsource.txt");
    let m = &p.minors[0];
    assert_eq!(m.cstate, ConnState::SyncSource);
    assert_eq!(m.disks, Some((D::UpToDate, D::Inconsistent)));
    let s = m.sync.clone().unwrap();
    assert!(!s.verify);
    assert!((s.percent_done - 21.9).abs() < 0.001);
    assert_eq!((s.left_kib, s.total_kib), (51200, 65532));
    assert_eq!(s.finish_secs, Some(2));
    assert_eq!(s.speed_kib_s, Some(14336));
    let res = resource_from_proc("r0", &p, &[(0, 1)]).unwrap();
    let core = res.to_core(ResourceName::new("r0").unwrap());
    assert_eq!(core.connection, Connection::SyncSource);
    let sync = core.sync.unwrap();
    assert_eq!(sync.out_of_sync_kib, 51200);
    assert!((sync.percent_done - 21.87).abs() < 0.05);
}

#[test]
fn synctarget_84_with_want() {
    let p = fixture("84-synctarget.txt");
    let m = &p.minors[0];
    assert_eq!(m.cstate, ConnState::SyncTarget);
    let s = m.sync.clone().unwrap();
    assert_eq!(s.speed_kib_s, Some(14336));
    assert_eq!(s.finish_secs, Some(2));
}

#[test]
fn standalone_84_has_no_protocol() {
    let p = fixture("84-standalone.txt");
    let m = &p.minors[0];
    assert_eq!(m.cstate, ConnState::StandAlone);
    assert_eq!(m.protocol, None);
    assert_eq!(m.flags, "r-----");
    assert_eq!(m.disks, Some((D::UpToDate, D::DUnknown)));
}

#[test]
fn diskless_84() {
    let p = fixture("84-diskless.txt");
    let m = &p.minors[0];
    assert_eq!(m.disks, Some((D::Diskless, D::UpToDate)));
    let res = resource_from_proc("r0", &p, &[(0, 1)]).unwrap();
    let core = res.to_core(ResourceName::new("r0").unwrap());
    assert_eq!(core.disk, DiskState::Diskless);
}

#[test]
fn split_brain_84() {
    let p = fixture("84-split-brain.txt");
    let m = &p.minors[0];
    assert_eq!(m.cstate, ConnState::StandAlone);
    assert_eq!(m.roles, Some((R::Primary, R::Unknown)));
    assert_eq!(m.counters.and_then(|c| c.oos), Some(4096));
    let res = resource_from_proc("r0", &p, &[(0, 1)]).unwrap();
    let core = res.to_core(ResourceName::new("r0").unwrap());
    assert_eq!(core.connection, Connection::StandAlone);
    assert_eq!(core.connection_detail, "StandAlone");
    assert_eq!(core.peer_role, VolumeRole::Unknown);
    assert_eq!(res.volumes[0].out_of_sync_kib, Some(4096));
}

#[test]
fn several_minors_84() {
    let p = fixture("84-several-minors.txt");
    let minors: Vec<u32> = p.minors.iter().map(|m| m.minor).collect();
    assert_eq!(minors, vec![0, 1, 3]);
    assert_eq!(p.minors[0].cstate, ConnState::WFConnection);
    assert!(p.minors[0].io_suspended());
    assert_eq!(p.minors[0].counters.and_then(|c| c.wo), Some('d'));
    assert_eq!(p.minors[1].cstate, ConnState::Unconfigured);
    assert_eq!(p.minors[1].roles, None);
    assert_eq!(p.minors[2].cstate, ConnState::PausedSyncT);
    assert_eq!(p.minors[2].flags, "r--u--");
    let res = resource_from_proc("r", &p, &[(0, 0), (1, 3)]).unwrap();
    assert!(res.volumes[0].suspended.any());
    assert!(res.volumes[1].resync_paused.user);
    let core = res.to_core(ResourceName::new("r").unwrap());
    // The most cautious reading: mixed roles are Unknown, the worst connection wins.
    assert_eq!(core.role, VolumeRole::Unknown);
    assert_eq!(core.connection, Connection::Connecting);
    assert_eq!(core.connection_detail, "WFConnection");
    assert_eq!(core.disk, DiskState::Inconsistent);
    assert!(core.suspended);
    assert!(resource_from_proc("r", &p, &[(0, 2)]).is_err());
}

#[test]
fn connected_83() {
    let p = fixture("83-connected.txt");
    assert_eq!(p.version.release, "8.3.13");
    assert_eq!(p.version.api, 88);
    assert!(p
        .build
        .as_deref()
        .unwrap()
        .starts_with("GIT-hash: 83ca1120"));
    let m = &p.minors[0];
    assert_eq!((m.minor, m.cstate), (0, ConnState::Connected));
    assert_eq!(m.counters.map(|c| (c.ns, c.wo)), Some((1048576, Some('b'))));
}

#[test]
fn synctarget_83_mib_branch() {
    let p = fixture("83-synctarget-mib.txt");
    let m = &p.minors[0];
    assert_eq!(m.cstate, ConnState::SyncTarget);
    let s = m.sync.clone().unwrap();
    assert!((s.percent_done - 24.6).abs() < 0.001);
    assert_eq!((s.left_kib, s.total_kib), (3919 * 1024, 5120 * 1024));
    assert_eq!(s.finish_secs, Some(130));
    assert_eq!(s.speed_kib_s, Some(30712));
}

#[test]
fn standalone_83() {
    let p = fixture("83-standalone.txt");
    let m = &p.minors[0];
    assert_eq!(m.cstate, ConnState::StandAlone);
    assert_eq!(m.disks, Some((D::Outdated, D::DUnknown)));
}

#[test]
fn diskless_83() {
    let p = fixture("83-diskless.txt");
    let m = &p.minors[0];
    assert_eq!(m.cstate, ConnState::WFConnection);
    assert_eq!(m.disks, Some((D::Diskless, D::DUnknown)));
}

#[test]
fn split_brain_83() {
    let p = fixture("83-split-brain.txt");
    let m = &p.minors[0];
    assert_eq!(m.roles, Some((R::Primary, R::Unknown)));
    assert_eq!(m.counters.and_then(|c| c.oos), Some(8192));
}

#[test]
fn drbd9_version_only() {
    let p = fixture("9-version-only.txt");
    assert!(p.version.is_drbd9());
    assert!(!p.version.compat_84);
    assert_eq!(p.version.api, 2);
    assert_eq!(p.transports.as_deref(), Some("(api:16): tcp (9.0.22-2)"));
    assert!(p.minors.is_empty());
}

#[test]
fn drbd9_compat_84() {
    let p = fixture("9-compat-84.txt");
    assert!(p.version.is_drbd9());
    assert!(p.version.compat_84);
    assert_eq!(p.minors.len(), 1);
    assert_eq!(p.minors[0].cstate, ConnState::Connected);
}

#[test]
fn garbage_is_a_typed_error() {
    assert_eq!(procfs::parse(""), Err(procfs::ProcError::NoVersion));
    assert_eq!(procfs::parse("hello\n"), Err(procfs::ProcError::NoVersion));
    let bad = "version: 8.4.11 (api:1/proto:86-101)\n 1: cs:Bogus ro:Primary/Secondary ds:UpToDate/UpToDate C r-----\n";
    assert!(matches!(
        procfs::parse(bad),
        Err(procfs::ProcError::BadLine { line: 2, .. })
    ));
    let orphan = "version: 8.4.11 (api:1/proto:86-101)\n    ns:0 nr:0\n";
    assert!(procfs::parse(orphan).is_err());
}

#[test]
fn fallback_status_finds_minors_through_by_res_links() {
    use iscsi_ha_core::ports::VolumeError;
    use iscsi_ha_drbd::DrbdVolumes;
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("dev");
    std::fs::create_dir(&dev).unwrap();
    std::fs::write(dev.join("drbd1"), b"").unwrap();
    let by_res = dir.path().join("by-res");
    // 8.4 layout: by-res/<name>/<volume> -> ../../drbdN
    std::fs::create_dir_all(by_res.join("r0")).unwrap();
    std::os::unix::fs::symlink(dev.join("drbd1"), by_res.join("r0").join("0")).unwrap();
    // 8.3 layout: by-res/<name> -> ../drbdN
    std::os::unix::fs::symlink(dev.join("drbd1"), by_res.join("legacy")).unwrap();
    let proc = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/drbd/proc");

    let adapter = DrbdVolumes::with_paths(proc.join("84-split-brain.txt"), by_res.clone());
    let r0 = adapter
        .proc_status(&ResourceName::new("r0").unwrap())
        .unwrap();
    assert_eq!(r0.volumes[0].minor, 1);
    assert_eq!(r0.volumes[0].cstate, ConnState::StandAlone);
    let legacy = adapter
        .proc_status(&ResourceName::new("legacy").unwrap())
        .unwrap();
    assert_eq!(legacy.volumes[0].role, R::Primary);
    assert_eq!(
        adapter.proc_status(&ResourceName::new("nope").unwrap()),
        Err(VolumeError::NoSuchResource("nope".to_string()))
    );

    let drbd9 = DrbdVolumes::with_paths(proc.join("9-version-only.txt"), by_res);
    assert!(matches!(
        drbd9.proc_status(&ResourceName::new("r0").unwrap()),
        Err(VolumeError::Unsupported(t)) if t.text().contains("DRBD 9 not supported yet")
    ));
}
