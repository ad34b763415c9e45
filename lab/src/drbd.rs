//! DRBD in the lab: the `drbd.conf` both nodes share (read by the 8.4 `drbdadm`, as an
//! administrator's would be) and a small reader of `/proc/drbd` for the lab's own waits.
//!
//! The `/proc/drbd` reader here is test scaffolding; the product's parser lives in iscsi-ha-drbd.

use std::fmt::Write as _;

use crate::net::node_ip;

/// One replicated resource: a DRBD minor on its own virtio disk in each VM.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResourceSpec {
    /// Resource name, e.g. `r0`.
    pub name: String,
    /// DRBD minor (`/dev/drbd<minor>`).
    pub minor: u32,
    /// Size of each node's backing disk in MiB (internal metadata included).
    pub size_mib: u64,
}

impl ResourceSpec {
    /// A resource with the given name, minor and size.
    pub fn new(name: impl Into<String>, minor: u32, size_mib: u64) -> Self {
        Self {
            name: name.into(),
            minor,
            size_mib,
        }
    }

    /// The DRBD device path.
    pub fn device(&self) -> String {
        format!("/dev/drbd{}", self.minor)
    }
}

/// DRBD network timing: short, so that a dead peer is noticed in about two seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrbdTiming {
    /// `ping-int` in seconds.
    pub ping_int_s: u32,
    /// `ping-timeout` in tenths of a second.
    pub ping_timeout_ds: u32,
    /// `connect-int` in seconds.
    pub connect_int_s: u32,
}

impl Default for DrbdTiming {
    fn default() -> Self {
        Self {
            ping_int_s: 1,
            ping_timeout_ds: 5,
            connect_int_s: 1,
        }
    }
}

/// DRBD fencing for one resource, opt-in (the lab configures none by default): the resource
/// gets `disk { fencing resource-and-stonith; }` and `handlers { fence-peer "<fence_peer>"; }`
/// (8.4's sections). So a Primary that loses its peer freezes its I/O and the kernel calls the
/// handler (through `drbdadm fence-peer <resource>`, which reads this file at each call, so a
/// handler script may be rewritten between calls); its exit code decides whether I/O resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrbdFencing {
    /// The resource to fence, e.g. `r0`.
    pub resource: String,
    /// The handler command, run by drbdadm through `/bin/sh -c` in the guest. It is written
    /// between double quotes as is, so it may not contain `"`, `\` or a newline.
    pub fence_peer: String,
}

impl DrbdFencing {
    /// Why the handler command cannot be written into `drbd.conf`, if it cannot.
    pub fn invalid_command(&self) -> Option<String> {
        self.fence_peer.contains(['"', '\\', '\n']).then(|| {
            format!(
                "fence-peer command {:?} contains '\"', '\\' or a newline",
                self.fence_peer
            )
        })
    }
}

/// The guest device of the `index`th disk (`/dev/vda`, `/dev/vdb`, ...).
pub fn disk_device(index: usize) -> String {
    let letter = char::from(b'a' + u8::try_from(index % 26).unwrap_or(0));
    format!("/dev/vd{letter}")
}

/// The TCP port of the `index`th resource.
pub fn resource_port(index: usize) -> u32 {
    7789 + u32::try_from(index).unwrap_or(0)
}

/// Renders `/etc/drbd.conf` for both nodes (`node1`, `node2`), with each of `fencing` for the
/// resource it names.
pub fn render_conf(
    resources: &[ResourceSpec],
    timing: &DrbdTiming,
    fencing: &[DrbdFencing],
) -> String {
    let mut conf = String::new();
    let _ = writeln!(conf, "# Written by iscsi-ha-lab; identical on both nodes.");
    let _ = writeln!(conf, "global {{ usage-count no; }}");
    let _ = writeln!(conf, "common {{");
    let _ = writeln!(conf, "  protocol C;");
    let _ = writeln!(
        conf,
        "  net {{ ping-int {}; ping-timeout {}; connect-int {}; }}",
        timing.ping_int_s, timing.ping_timeout_ds, timing.connect_int_s
    );
    // A resync at full speed: the default controller takes 13 s for 64 MiB under TCG.
    let _ = writeln!(conf, "  disk {{ c-plan-ahead 0; resync-rate 4000M; }}");
    let _ = writeln!(conf, "}}");
    for (i, r) in resources.iter().enumerate() {
        let _ = writeln!(conf, "resource {} {{", r.name);
        let _ = writeln!(conf, "  device {};", r.device());
        let _ = writeln!(conf, "  disk {};", disk_device(i));
        let _ = writeln!(conf, "  meta-disk internal;");
        if let Some(f) = fencing.iter().find(|f| f.resource == r.name) {
            let _ = writeln!(conf, "  disk {{ fencing resource-and-stonith; }}");
            let _ = writeln!(conf, "  handlers {{ fence-peer \"{}\"; }}", f.fence_peer);
        }
        for id in [1u8, 2] {
            let _ = writeln!(
                conf,
                "  on node{id} {{ address {}:{}; }}",
                node_ip(id),
                resource_port(i)
            );
        }
        let _ = writeln!(conf, "}}");
    }
    conf
}

/// One minor's line of `/proc/drbd` (8.4 format), e.g.
/// ` 1: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinorState {
    /// The minor.
    pub minor: u32,
    /// Connection state (`Connected`, `WFConnection`, `StandAlone`, `SyncSource`, ...).
    pub cs: String,
    /// Local role.
    pub role: String,
    /// Peer role (`Unknown` when disconnected).
    pub peer_role: String,
    /// Local disk state.
    pub disk: String,
    /// Peer disk state.
    pub peer_disk: String,
}

impl MinorState {
    /// Connected with both disks UpToDate.
    pub fn is_healthy(&self) -> bool {
        self.cs == "Connected" && self.disk == "UpToDate" && self.peer_disk == "UpToDate"
    }
}

/// Parses the minors of `/proc/drbd`; lines that are not minor lines are skipped.
pub fn parse_proc_drbd(text: &str) -> Vec<MinorState> {
    text.lines().filter_map(parse_minor_line).collect()
}

fn parse_minor_line(line: &str) -> Option<MinorState> {
    let (minor, rest) = line.trim_start().split_once(": ")?;
    let minor = minor.parse().ok()?;
    let mut cs = None;
    let mut ro = None;
    let mut ds = None;
    for field in rest.split_whitespace() {
        if let Some(v) = field.strip_prefix("cs:") {
            cs = Some(v);
        } else if let Some(v) = field.strip_prefix("ro:") {
            ro = Some(v);
        } else if let Some(v) = field.strip_prefix("ds:") {
            ds = Some(v);
        }
    }
    let (role, peer_role) = ro?.split_once('/')?;
    let (disk, peer_disk) = ds?.split_once('/')?;
    Some(MinorState {
        minor,
        cs: cs?.to_owned(),
        role: role.to_owned(),
        peer_role: peer_role.to_owned(),
        disk: disk.to_owned(),
        peer_disk: peer_disk.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC: &str = "\
version: 8.4.11 (api:1/proto:86-101)
srcversion: 211FB288A383ED945B83420
 1: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----
    ns:65500 nr:0 dw:4 dr:65516 al:9 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0
 2: cs:WFConnection ro:Secondary/Unknown ds:UpToDate/DUnknown C r-----
";

    #[test]
    fn proc_drbd_minors_parse() {
        let minors = parse_proc_drbd(PROC);
        assert_eq!(minors.len(), 2);
        assert_eq!(minors[0].minor, 1);
        assert!(minors[0].is_healthy());
        assert_eq!(minors[0].role, "Primary");
        assert_eq!(minors[1].cs, "WFConnection");
        assert_eq!(minors[1].peer_role, "Unknown");
        assert!(!minors[1].is_healthy());
    }

    #[test]
    fn unconfigured_minor_is_skipped() {
        assert!(parse_proc_drbd(" 3: cs:Unconfigured\n").is_empty());
    }

    #[test]
    fn conf_names_both_nodes_and_short_timeouts() {
        let conf = render_conf(
            &[
                ResourceSpec::new("r0", 1, 64),
                ResourceSpec::new("r1", 2, 32),
            ],
            &DrbdTiming::default(),
            &[],
        );
        assert!(conf.contains("ping-int 1; ping-timeout 5; connect-int 1;"));
        assert!(!conf.contains("fencing"));
        assert!(conf.contains("resource r1 {\n  device /dev/drbd2;\n  disk /dev/vdb;"));
        assert!(conf.contains("on node2 { address 10.99.0.2:7790; }"));
    }

    #[test]
    fn fencing_is_written_for_its_resource_only() {
        let fencing = DrbdFencing {
            resource: "r1".into(),
            fence_peer: "/tmp/fence-peer.sh".into(),
        };
        assert_eq!(fencing.invalid_command(), None);
        let conf = render_conf(
            &[
                ResourceSpec::new("r0", 1, 64),
                ResourceSpec::new("r1", 2, 32),
            ],
            &DrbdTiming::default(),
            std::slice::from_ref(&fencing),
        );
        let (r0, r1) = conf.split_once("resource r1 {").expect("r1");
        assert!(!r0.contains("fencing"));
        assert!(r1.contains("  disk { fencing resource-and-stonith; }\n"));
        assert!(r1.contains("  handlers { fence-peer \"/tmp/fence-peer.sh\"; }\n"));
        let quoted = DrbdFencing {
            fence_peer: "sh -c \"exit 7\"".into(),
            ..fencing
        };
        assert!(quoted.invalid_command().is_some());
    }
}
