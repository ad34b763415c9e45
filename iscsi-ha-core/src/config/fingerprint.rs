//! The configuration's fingerprint: a short hash of the parts that must be identical on both
//! hosts, so an operator (or `iscsi-ha doctor`) can compare two hosts by one string.
//!
//! In: the resources (in order: they are promoted in that order), the target's IQN and backend, every
//! LUN (number, device, SCSI identity, vendor/product, read-only, write cache), who may log in
//! (addresses, names, `allow_all`, CHAP user names), and the VIP's address and prefix. A
//! takeover exports these as they are configured on the *new* master, so any difference is
//! what initiators would see change.
//!
//! Out, because they may rightly differ per host: the role source (a static role is `master`
//! on one host and `slave` on the other; paths), the VIP's interface name, the target daemon's
//! program, portal and port, timers, alerts, logging, metrics, the secrets file's path. CHAP
//! passwords are left out too: the fingerprint is shown by `status` to whoever may read it, and
//! a hash of a password and known values would let them test guesses offline.

use super::schema::ConfigFile;
use super::Config;
use sha2::{Digest, Sha256};

/// Bumped when what goes into the hash changes, so two versions never compare equal by chance.
const FORMAT: &[u8] = b"iscsi-ha fingerprint 1";

/// Hex characters shown (64 bits: enough to tell two configurations apart, short to read).
pub const FINGERPRINT_HEX_LEN: usize = 16;

/// Feeds named values into the hash, each length-prefixed so no two different sequences of
/// values encode alike (`"ab","c"` vs `"a","bc"`).
struct Canonical(Sha256);

impl Canonical {
    fn put(&mut self, key: &str, value: &str) {
        for part in [key.as_bytes(), value.as_bytes()] {
            self.0.update((part.len() as u64).to_le_bytes());
            self.0.update(part);
        }
    }

    fn put_opt(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(v) => self.put(key, &format!("some:{v}")),
            None => self.put(key, "none"),
        }
    }
}

/// The fingerprint of a checked configuration: [`FINGERPRINT_HEX_LEN`] lowercase hex digits.
pub fn fingerprint(config: &Config) -> String {
    fingerprint_of(
        &config.file,
        &config.vip.address().to_string(),
        config.vip.prefix(),
    )
}

fn fingerprint_of(file: &ConfigFile, vip_address: &str, vip_prefix: u8) -> String {
    let mut c = Canonical(Sha256::new());
    c.0.update(FORMAT);
    c.put("resources", &file.replication.resources.len().to_string());
    for r in &file.replication.resources {
        c.put("resource", r.as_str());
    }
    let t = &file.target;
    c.put("target.iqn", t.iqn.as_str());
    // Each backend gives a LUN its own device identification (VPD 0x83), so initiators would
    // see another disk after a takeover by a host on the other backend. Added only when not
    // the default, so the fingerprints of configurations written before LIO stay the same.
    if t.backend != super::schema::TargetBackend::Tgt {
        c.put("target.backend", t.backend.name());
    }
    c.put("luns", &t.luns.len().to_string());
    for l in &t.luns {
        c.put("lun", &l.lun.to_string());
        c.put("lun.path", &l.path);
        c.put_opt("lun.scsi_id", l.scsi_id.as_deref());
        c.put_opt("lun.scsi_sn", l.scsi_sn.as_deref());
        c.put_opt("lun.vendor_id", l.vendor_id.as_deref());
        c.put_opt("lun.product_id", l.product_id.as_deref());
        c.put("lun.read_only", &l.read_only.to_string());
        c.put("lun.write_cache", &l.write_cache.to_string());
    }
    let a = &t.access;
    c.put("access.initiators", &a.initiators.len().to_string());
    for s in &a.initiators {
        c.put("initiator", &s.to_string());
    }
    c.put(
        "access.initiator_names",
        &a.initiator_names.len().to_string(),
    );
    for n in &a.initiator_names {
        c.put("initiator_name", n.as_str());
    }
    c.put("access.allow_all", &a.allow_all.to_string());
    c.put("access.incoming", &a.incoming.len().to_string());
    for i in &a.incoming {
        c.put("incoming.user", &i.user);
    }
    c.put_opt(
        "access.outgoing.user",
        a.outgoing.as_ref().map(|o| o.user.as_str()),
    );
    c.put("vip.address", vip_address);
    c.put("vip.prefix", &vip_prefix.to_string());
    let digest = c.0.finalize();
    digest
        .iter()
        .take(FINGERPRINT_HEX_LEN / 2)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;

    const BASE: &str = r#"
[role]
source = "static"
role = "master"

[replication]
resources = ["r0", "r1"]

[target]
iqn = "iqn.2024-01.com.example:storage"

[[target.lun]]
lun = 1
path = "/dev/drbd1"

[target.access]
initiators = ["10.10.10.0/24"]
initiator_names = ["iqn.1994-05.com.redhat:a"]

[[target.access.incoming]]
user = "alice"
password = "secret-one"

[target.daemon]
program = "/usr/sbin/tgtd"

[vip]
address = "10.10.10.3/24"
interface = "xenbr1"
"#;

    fn fp(text: &str) -> String {
        let config = Config::parse(
            Source {
                text,
                origin: "test",
            },
            None,
        )
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
        fingerprint(&config)
    }

    fn edited(from: &str, to: &str) -> String {
        assert!(BASE.contains(from), "{from}");
        BASE.replacen(from, to, 1)
    }

    #[test]
    fn is_short_hex_and_stable() {
        let f = fp(BASE);
        assert_eq!(f.len(), FINGERPRINT_HEX_LEN);
        assert!(f
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(f, fp(BASE));
    }

    #[test]
    fn host_specific_differences_keep_it() {
        let base = fp(BASE);
        for (from, to) in [
            ("role = \"master\"", "role = \"slave\""),
            ("interface = \"xenbr1\"", "interface = \"eth1\""),
            (
                "program = \"/usr/sbin/tgtd\"",
                "program = \"/opt/tgtd\"\nportal = \"10.10.10.1:3260\"\ncontrol_port = 3",
            ),
            ("secret-one", "another-password"),
            ("[target.daemon]", "[target.tgt]"),
            (
                "[vip]",
                "[monitor]\nscan_interval = \"3s\"\n[logging]\nlevel = \"debug\"\n[vip]",
            ),
            (
                "interface = \"xenbr1\"",
                "interface = \"xenbr1\"\nannounce_count = 5",
            ),
            (
                "interface = \"xenbr1\"",
                "interface = \"xenbr1\"\nrefresh_interval = \"0s\"",
            ),
        ] {
            assert_eq!(fp(&edited(from, to)), base, "{from} -> {to}");
        }
    }

    #[test]
    fn each_shared_field_changes_it() {
        let base = fp(BASE);
        let mut seen = vec![base.clone()];
        for (from, to) in [
            ("[\"r0\", \"r1\"]", "[\"r1\", \"r0\"]"),
            ("[\"r0\", \"r1\"]", "[\"r0\"]"),
            ("com.example:storage", "com.example:other"),
            ("lun = 1", "lun = 2"),
            ("/dev/drbd1", "/dev/drbd2"),
            (
                "path = \"/dev/drbd1\"",
                "path = \"/dev/drbd1\"\nscsi_id = \"x1\"",
            ),
            (
                "path = \"/dev/drbd1\"",
                "path = \"/dev/drbd1\"\nscsi_sn = \"s1\"",
            ),
            (
                "path = \"/dev/drbd1\"",
                "path = \"/dev/drbd1\"\nvendor_id = \"ACME\"",
            ),
            (
                "path = \"/dev/drbd1\"",
                "path = \"/dev/drbd1\"\nproduct_id = \"Disk\"",
            ),
            (
                "path = \"/dev/drbd1\"",
                "path = \"/dev/drbd1\"\nread_only = true",
            ),
            (
                "path = \"/dev/drbd1\"",
                "path = \"/dev/drbd1\"\nwrite_cache = true",
            ),
            ("10.10.10.0/24\"]", "10.10.11.0/24\"]"),
            ("redhat:a", "redhat:b"),
            ("initiator_names", "allow_all = true\ninitiator_names"),
            ("user = \"alice\"", "user = \"bob\""),
            (
                "[target.daemon]",
                "[target.access.outgoing]\nuser = \"out\"\npassword = \"p\"\n[target.daemon]",
            ),
            ("10.10.10.3/24", "10.10.10.4/24"),
            ("10.10.10.3/24", "10.10.10.3/25"),
        ] {
            let f = fp(&edited(from, to));
            assert!(!seen.contains(&f), "{from} -> {to} gave a seen fingerprint");
            seen.push(f);
        }
        let lio = edited("[target.daemon]\nprogram = \"/usr/sbin/tgtd\"\n", "").replacen(
            "com.example:storage\"",
            "com.example:storage\"\nbackend = \"lio\"",
            1,
        );
        assert!(
            !seen.contains(&fp(&lio)),
            "backend = \"lio\" gave a seen fingerprint"
        );
        let tgt = lio.replacen("backend = \"lio\"", "backend = \"tgt\"", 1);
        assert_eq!(fp(&tgt), base, "backend = \"tgt\" is the default");
    }
}
