//! Names existing installations use, which tgtd accepts and RFC 3720 does not: the target the
//! noSAN installer configured is served under exactly its name, and initiators log in with
//! exactly that text (tgtd compares names with `strcmp`, so case matters).

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{run, text, Bench, INITIATOR};
use iscsi_ha_core::config::legacy::import;
use iscsi_ha_core::config::{Config, Source};
use iscsi_ha_core::iqn::Iqn;
use iscsi_ha_core::ports::IscsiTarget;
use iscsi_ha_core::target::TargetSpec;
use iscsi_ha_tgt::targets_conf;

const NOSAN: &str = "iqn.2015.com.halizard:noSAN";

fn legacy(name: &str) -> String {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/legacy");
    fs::read_to_string(path.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The target of the noSAN installer's files, imported and checked as `import-legacy` and
/// `check-config` do, with its LUN on `disk`.
fn imported_nosan_target(disk: &str) -> TargetSpec {
    let conf = legacy("nosan-iscsi-ha.conf");
    let targets = legacy("nosan-targets.conf");
    let target = targets_conf::read(&targets, None).unwrap_or_else(|e| panic!("import: {e}"));
    let imported = import(&conf, Some(target));
    let config = Config::parse(
        Source {
            text: &imported.toml,
            origin: "imported.toml",
        },
        None,
    )
    .unwrap_or_else(|e| panic!("check: {e}"));
    assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
    let mut spec = config.target;
    assert_eq!(spec.luns.len(), 1);
    spec.luns[0].path = disk.to_string();
    spec
}

/// Logs in to LUN `lun` of `target` as `initiator` and reads its capacity.
fn log_in(bench: &Bench, initiator: &str, target: &str, lun: u64) -> (bool, String) {
    let out = run(
        "iscsi-readcapacity16",
        &["-i", initiator, &bench.url(target, lun, None)],
    );
    (out.status.success(), text(&out))
}

#[test]
fn the_imported_nosan_target_is_served_under_its_exact_name() {
    let bench = Bench::new();
    let disk = bench.disk("drbd1.img", 16);
    let spec = imported_nosan_target(&disk);
    assert_eq!(spec.iqn.as_str(), NOSAN);
    let mut target = bench.managed_target();
    target.serve(&spec).unwrap_or_else(|e| panic!("serve: {e}"));
    let status = target.status().unwrap_or_else(|e| panic!("status: {e}"));
    assert!(spec.is_served_by(&status), "{status:#?}");

    // tgtadm, the witness, shows the name as configured.
    let show = bench.tgtadm_show();
    assert!(show.contains(&format!("Target 1: {NOSAN}\n")), "{show}");

    // Discovery offers it under that name, and a login with that name reaches LUN 10.
    let ls = text(&bench.discover(INITIATOR));
    assert!(ls.contains(&format!("Target:{NOSAN} ")), "{ls}");
    let (ok, out) = log_in(&bench, INITIATOR, NOSAN, 10);
    assert!(ok, "login as the SR does: {out}");
    assert!(out.contains("Total size:16777216"), "{out}");

    // tgtd matches the name byte for byte: the lower-case spelling is another target.
    let (ok, out) = log_in(&bench, INITIATOR, &NOSAN.to_ascii_lowercase(), 10);
    assert!(!ok, "a login with the name lower-cased must fail: {out}");
}

#[test]
fn an_initiator_name_acl_with_upper_case_admits_exactly_that_name() {
    let bench = Bench::new();
    let disk = bench.disk("drbd1.img", 16);
    let mut spec = imported_nosan_target(&disk);
    let upper = "iqn.1991-05.com.microsoft:HOST-1";
    spec.access.allow_all = false;
    spec.access.initiator_names = vec![Iqn::new(upper).unwrap_or_else(|e| panic!("{e}"))];
    let mut target = bench.managed_target();
    target.serve(&spec).unwrap_or_else(|e| panic!("serve: {e}"));

    let (ok, out) = log_in(&bench, upper, NOSAN, 10);
    assert!(ok, "the initiator as named in the ACL: {out}");
    let (ok, out) = log_in(&bench, &upper.to_ascii_lowercase(), NOSAN, 10);
    assert!(
        !ok,
        "the same name lower-cased is another initiator to tgtd: {out}"
    );
}
