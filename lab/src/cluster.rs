//! iscsi-ha deployed on both lab nodes: one configuration, a daemon per node, the role file
//! each follows (the `file` role source, as a Pacemaker notify script would write it), and the
//! initiator's view through the floating address. Used by the end-to-end tests, `iha-lab demo`
//! and `iha-lab bench failover`.

use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::drbd::{DrbdFencing, ResourceSpec};
use crate::error::{LabError, Result};
use crate::lab::{Lab, LabOptions};
use crate::net::{VipFamily, INITIATOR_IP};

/// The target the lab's daemons export.
pub const IQN: &str = "iqn.2024-01.lab.iscsi-ha:disk";

/// Where each guest keeps its role file (tmpfs: a rebooted node starts without a role).
pub const ROLE_FILE: &str = "/run/iha/role";

/// Where each guest's daemon logs.
pub const DAEMON_LOG: &str = "/run/iha/daemon.log";

/// Where node `id`'s daemon keeps its state (manual mode, serving history, DRBD network
/// configurations): in the share, so that it survives a reboot of the node as `/var/lib` on a
/// real host's disk does (the guests' own root is a tmpfs).
pub fn state_dir(id: u8) -> String {
    format!("/host/state/node{id}")
}

/// How long one read attempt of [`Cluster::failover`] may take before it is abandoned.
pub const PROBE_READ_TIMEOUT: Duration = Duration::from_millis(400);

/// The configuration file, in the share (`/host/etc/iscsi-ha.toml` in the guests).
const CONFIG_NAME: &str = "iscsi-ha.toml";

/// DRBD's fence-peer handler in the guests, as the shipped example configures it
/// (`fixtures/drbd/iscsi-ha.res.example`), with the lab's paths; it reads manual mode from the
/// default state directory, which [`Cluster::start_daemon`] links to the node's own.
pub const FENCE_PEER: &str = "/host/bin/iscsi-ha fence-peer -c /host/etc/iscsi-ha.toml";

/// The lab as iscsi-ha's users should configure DRBD: the default lab, with `r0` under
/// `fencing resource-and-stonith` and [`FENCE_PEER`] as its handler. Bring it up before
/// [`Cluster::deploy`] puts the handler's binary and configuration in place; nothing calls the
/// handler before the daemons run (the bring-up promotes only a connected resource).
pub fn lab_options() -> LabOptions {
    lab_options_for(1)
}

/// [`lab_options`] with `n` resources, `r0`.. on `/dev/drbd1`.., 64 MiB each, all fenced.
pub fn lab_options_for(n: usize) -> LabOptions {
    let mut options = LabOptions {
        resources: (0..n)
            .map(|i| ResourceSpec::new(resource_name(i), minor(i), 64))
            .collect(),
        ..LabOptions::default()
    };
    if let Some(drbd) = options.drbd.as_mut() {
        drbd.fencing = options
            .resources
            .iter()
            .map(|r| DrbdFencing {
                resource: r.name.clone(),
                fence_peer: FENCE_PEER.into(),
            })
            .collect();
    }
    options
}

/// The `i`th resource's name in the lab.
fn resource_name(i: usize) -> String {
    format!("r{i}")
}

/// The `i`th resource's DRBD minor (and LUN number).
fn minor(i: usize) -> u32 {
    u32::try_from(i + 1).unwrap_or(u32::MAX)
}

/// Our binaries on the host, copied into the share.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// The daemon, `iscsi-ha`.
    pub iscsi_ha: PathBuf,
    /// The operator's tool, `iscsi-cfg`.
    pub iscsi_cfg: PathBuf,
}

impl Binaries {
    /// The binaries in a cargo target directory's profile directory (`target/release`).
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            iscsi_ha: dir.join("iscsi-ha"),
            iscsi_cfg: dir.join("iscsi-cfg"),
        }
    }
}

/// The daemons' configuration in the lab: the file role source, resource `r0` on
/// `/dev/drbd1`, a managed tgtd, the VIP on `eth0`. `extra` is appended (e.g. `[monitor]`).
pub fn lab_config(extra: &str) -> String {
    lab_config_on("eth0", extra)
}

/// [`lab_config`] with the VIP on `interface` (e.g. `eth1`, the nodes' spare NIC).
pub fn lab_config_on(interface: &str, extra: &str) -> String {
    lab_config_with(interface, 1, extra)
}

/// The lab's configuration with `resources` resources (as [`lab_options_for`] makes them),
/// each exported as the LUN of its minor's number, and the VIP on `interface`.
pub fn lab_config_with(interface: &str, resources: usize, extra: &str) -> String {
    lab_config_family(interface, resources, VipFamily::V4, extra)
}

/// [`lab_config_with`] with the VIP of `family`, and tgtd's access list admitting the lab
/// subnet of that family only (so that a login through an IPv6 VIP proves the IPv6 range
/// works). tgtd is not given a portal: by default it listens on every IPv4 and IPv6 address.
pub fn lab_config_family(
    interface: &str,
    resources: usize,
    family: VipFamily,
    extra: &str,
) -> String {
    let names: Vec<String> = (0..resources)
        .map(|i| format!("\"{}\"", resource_name(i)))
        .collect();
    let luns: String = (0..resources)
        .map(|i| {
            let n = minor(i);
            format!(
                "[[target.lun]]\nlun = {n}\npath = \"/dev/drbd{n}\"\nvendor_id = \"ISCSI-HA\"\nproduct_id = \"LAB-DISK\"\n\n"
            )
        })
        .collect();
    format!(
        r#"# Written by iscsi-ha-lab for both nodes.
[role]
source = "file"
path = "{ROLE_FILE}"

[replication]
resources = [{names}]

[target]
iqn = "{IQN}"

{luns}[target.access]
initiators = ["{subnet}"]

[vip]
address = "{vip}"
interface = "{interface}"

# The initiator's namespace stands for the gateway: a master whose link is cut hears it no more.
[fence]
witnesses = ["{INITIATOR_IP}"]

[logging]
to = "stderr"
{extra}"#,
        names = names.join(", "),
        subnet = family.subnet(),
        vip = family.vip_cidr(),
    )
}

/// [`lab_config`] for target backend `backend` (`"tgt"` or `"lio"`). LIO admits initiators
/// by name only, so its configuration lets every initiator in (`allow_all`) instead of the
/// lab's subnet; its portal is the default, the VIP.
pub fn lab_config_for(backend: &str, extra: &str) -> String {
    lab_config_for_resources(backend, 1, extra)
}

/// [`lab_config_for`] with `resources` resources ([`lab_config_with`]).
pub fn lab_config_for_resources(backend: &str, resources: usize, extra: &str) -> String {
    lab_config_for_family(backend, resources, VipFamily::V4, extra)
}

/// [`lab_config_for_resources`] with the VIP of `family` ([`lab_config_family`]); under LIO
/// the portal is the VIP, `[fd99::100]:3260` for IPv6.
pub fn lab_config_for_family(
    backend: &str,
    resources: usize,
    family: VipFamily,
    extra: &str,
) -> String {
    let text = lab_config_family("eth0", resources, family, extra);
    if backend == "tgt" {
        return text;
    }
    text.replacen(
        &format!("iqn = \"{IQN}\"\n"),
        &format!("iqn = \"{IQN}\"\nbackend = \"{backend}\"\n"),
        1,
    )
    .replacen(
        &format!("initiators = [\"{}\"]", family.subnet()),
        "allow_all = true",
        1,
    )
}

/// iscsi-ha running on both nodes of a lab.
#[derive(Debug)]
pub struct Cluster<'a> {
    lab: &'a Lab,
    iscsi_ha: String,
    iscsi_cfg: String,
    vip: VipFamily,
}

/// One measured failover.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Failover {
    /// From the role change (both role files written) to the first good read through the
    /// VIP served by the new master.
    pub role_change_to_serving: Duration,
    /// How long the role writes themselves took (the command channel; part of the figure).
    pub role_write: Duration,
    /// Reads attempted before the first good one.
    pub attempts: u32,
}

impl<'a> Cluster<'a> {
    /// Copies the binaries into the share, writes the configuration (with `extra` appended),
    /// sets both nodes' role to `slave` and starts both daemons.
    pub fn deploy(lab: &'a Lab, binaries: &Binaries, extra: &str) -> Result<Self> {
        Self::deploy_with(lab, binaries, &lab_config(extra))
    }

    /// [`Cluster::deploy_with`] for a configuration whose VIP is of `family` (e.g. from
    /// [`lab_config_for_family`]): the initiator's reads and checks go through that VIP.
    pub fn deploy_with_vip(
        lab: &'a Lab,
        binaries: &Binaries,
        family: VipFamily,
        config_text: &str,
    ) -> Result<Self> {
        // Written by deploy_with before the daemons start; the family only steers the
        // initiator's side, so setting it after is the same.
        let mut cluster = Self::deploy_with(lab, binaries, config_text)?;
        cluster.use_vip(family);
        Ok(cluster)
    }

    /// From now on the initiator reaches the target through the VIP of `family`: call it with
    /// [`Cluster::write_config`] of a configuration naming that VIP, before the daemons restart.
    pub fn use_vip(&mut self, family: VipFamily) {
        self.vip = family;
    }

    /// The VIP the initiator uses.
    pub fn vip(&self) -> VipFamily {
        self.vip
    }

    /// [`Cluster::deploy`] with a whole configuration of the caller's (its VIP the IPv4 one).
    pub fn deploy_with(lab: &'a Lab, binaries: &Binaries, config_text: &str) -> Result<Self> {
        for b in [&binaries.iscsi_ha, &binaries.iscsi_cfg] {
            if !b.exists() {
                return Err(LabError::Prerequisite(format!(
                    "{} is missing: build it first (cargo build --release -p iscsi-ha-bin)",
                    b.display()
                )));
            }
        }
        let iscsi_ha = lab.copy_in(&binaries.iscsi_ha)?;
        let iscsi_cfg = lab.copy_in(&binaries.iscsi_cfg)?;
        let cluster = Self {
            lab,
            iscsi_ha,
            iscsi_cfg,
            vip: VipFamily::V4,
        };
        cluster.write_config(config_text)?;
        for id in [1, 2] {
            cluster.set_role(id, "slave")?;
            cluster.start_daemon(id)?;
        }
        Ok(cluster)
    }

    /// Replaces the configuration both daemons read (it takes effect when they restart).
    pub fn write_config(&self, config_text: &str) -> Result<()> {
        let etc = self.lab.share_dir().join("etc");
        std::fs::create_dir_all(&etc)
            .map_err(|e| LabError::io(format!("creating {}", etc.display()), e))?;
        let config = etc.join(CONFIG_NAME);
        let tmp = etc.join(format!(".{CONFIG_NAME}.tmp"));
        std::fs::write(&tmp, config_text)
            .map_err(|e| LabError::io(format!("writing {}", tmp.display()), e))?;
        std::fs::rename(&tmp, &config)
            .map_err(|e| LabError::io(format!("renaming {}", tmp.display()), e))
    }

    /// The lab.
    pub fn lab(&self) -> &Lab {
        self.lab
    }

    /// The iSCSI URL of LUN 1 through the VIP (`iscsi://[fd99::100]/...` for IPv6).
    pub fn lun_url(&self) -> String {
        format!("iscsi://{}/{IQN}/1", self.vip.url_host())
    }

    /// Writes the role file of node `id` atomically (a new file renamed over the old one).
    pub fn set_role(&self, id: u8, role: &str) -> Result<()> {
        self.lab.node(id).run(&format!(
            "mkdir -p /run/iha && printf '%s\\n' {role} > {ROLE_FILE}.new && mv {ROLE_FILE}.new {ROLE_FILE}"
        ))?;
        Ok(())
    }

    /// Removes node `id`'s role file (the role becomes unknown).
    pub fn remove_role(&self, id: u8) -> Result<()> {
        self.lab.node(id).run(&format!("rm -f {ROLE_FILE}"))?;
        Ok(())
    }

    /// Starts the daemon on node `id` and waits until it answers.
    pub fn start_daemon(&self, id: u8) -> Result<()> {
        let node = self.lab.node(id);
        node.run(&format!(
            // The default state directory points at the node's own, so DRBD's fence-peer
            // handler (FENCE_PEER, run without options by drbdadm) reads this node's state.
            "mkdir -p /run/iha {state} /var/lib && ln -sfn {state} /var/lib/iscsi-ha && (setsid {} run -c /host/etc/{CONFIG_NAME} --host-name {} --state-dir {state} >> {DAEMON_LOG} 2>&1 < /dev/null &)",
            self.iscsi_ha,
            node.name(),
            state = state_dir(id),
        ))?;
        // A binary that the guest has not run yet is read over 9p first: seconds under TCG.
        self.wait(id, "the daemon to answer", Duration::from_secs(60), |c| {
            Ok(c.cfg(id, "status").map(|o| o.success()).unwrap_or(false))
        })?;
        Ok(())
    }

    /// Stops node `id`'s daemon with SIGTERM (the storage stays as it is).
    pub fn stop_daemon(&self, id: u8) -> Result<()> {
        self.lab
            .node(id)
            .run("kill -TERM $(pidof iscsi-ha) 2>/dev/null; sleep 0.3; true")?;
        Ok(())
    }

    fn cfg(&self, id: u8, args: &str) -> Result<crate::CommandOutput> {
        self.lab.node(id).exec_timeout(
            &format!("{} {args}", self.iscsi_cfg),
            Duration::from_secs(70),
        )
    }

    /// Runs `iscsi-cfg ARGS` on node `id`; any exit status.
    pub fn iscsi_cfg(&self, id: u8, args: &str) -> Result<crate::CommandOutput> {
        self.cfg(id, args)
    }

    /// Runs `iscsi-cfg ARGS` on node `id` and returns its standard output; a non-zero exit is
    /// [`LabError::CommandFailed`] with what the tool said.
    pub fn iscsi_cfg_ok(&self, id: u8, args: &str) -> Result<String> {
        let out = self.cfg(id, args)?;
        if out.success() {
            return Ok(out.stdout_text());
        }
        Err(LabError::CommandFailed {
            target: self.lab.node(id).name(),
            command: format!("iscsi-cfg {args}"),
            status: out.status,
            stdout: out.stdout_text(),
            stderr: out.stderr_text(),
        })
    }

    /// Node `id`'s status as JSON (`iscsi-cfg status --json`).
    pub fn status(&self, id: u8) -> Result<serde_json::Value> {
        let out = self.cfg(id, "status --json")?;
        if !out.success() {
            return Err(LabError::Invalid(format!(
                "node{id}: iscsi-cfg status failed: {}",
                out.stderr_text()
            )));
        }
        serde_json::from_slice(&out.stdout)
            .map_err(|e| LabError::Invalid(format!("node{id}: unreadable status: {e}")))
    }

    /// Node `id`'s status as text.
    pub fn status_text(&self, id: u8) -> Result<String> {
        Ok(self.cfg(id, "status")?.stdout_text())
    }

    /// Node `id`'s daemon log.
    pub fn daemon_log(&self, id: u8) -> String {
        self.lab
            .node(id)
            .run(&format!("cat {DAEMON_LOG}"))
            .unwrap_or_else(|e| format!("(no log: {e})"))
    }

    /// Polls `check` every 50 ms until it is true; the error names `what` and the statuses.
    pub fn wait(
        &self,
        id: u8,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Self) -> Result<bool>,
    ) -> Result<Duration> {
        let t0 = Instant::now();
        loop {
            if check(self)? {
                return Ok(t0.elapsed());
            }
            if t0.elapsed() > timeout {
                return Err(LabError::WaitTimeout {
                    what: format!("node{id}: {what}"),
                    timeout,
                    last: format!(
                        "status:\n{}\nlog:\n{}",
                        self.status_text(id).unwrap_or_default(),
                        self.daemon_log(id)
                    ),
                });
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until node `id` reports the target running and the VIP here.
    pub fn wait_serving(&self, id: u8, timeout: Duration) -> Result<Duration> {
        self.wait(id, "serving (target running, VIP here)", timeout, |c| {
            let s = c.status(id)?;
            Ok(s["target"]["running"] == true && s["vip"]["here"] == true)
        })
    }

    /// Writes `len` bytes of `pattern` at `offset` through the VIP with `qemu-io`.
    pub fn write_pattern(&self, pattern: u8, offset: u64, len: u64) -> Result<()> {
        self.qemu_io(
            &format!("write -P {pattern:#04x} {offset} {len}"),
            Duration::from_secs(60),
        )
        .and_then(|(ok, out)| {
            if ok {
                Ok(())
            } else {
                Err(LabError::Invalid(format!("initiator write failed: {out}")))
            }
        })
    }

    /// Whether `len` bytes at `offset` read back as `pattern` through the VIP.
    pub fn read_pattern(
        &self,
        pattern: u8,
        offset: u64,
        len: u64,
        timeout: Duration,
    ) -> Result<bool> {
        self.qemu_io(&format!("read -P {pattern:#04x} {offset} {len}"), timeout)
            .map(|(ok, _)| ok)
    }

    fn qemu_io(&self, command: &str, timeout: Duration) -> Result<(bool, String)> {
        let mut cmd = self.lab.qemu_io()?;
        cmd.args(["-f", "raw", "-c", command, &self.lun_url()]);
        let child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| {
                LabError::io("starting qemu-io in the initiator namespace".to_string(), e)
            })?;
        let out = wait_output(child, timeout)?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // qemu-io exits 0 even when a pattern check fails; it says so on its output.
        let ok = out.status.success()
            && !text.contains("Pattern verification failed")
            && !text.contains("failed");
        Ok((ok, text))
    }

    /// The link-layer address the initiator has for the VIP, if any.
    pub fn initiator_vip_mac(&self) -> Result<Option<String>> {
        let out = self
            .lab
            .initiator(&format!("ip neigh show {}", self.vip.vip()))?;
        Ok(out
            .stdout_text()
            .split_whitespace()
            .skip_while(|w| *w != "lladdr")
            .nth(1)
            .map(str::to_string))
    }

    /// A planned switch as a pool makes it: `from`'s role file says slave and `to`'s says
    /// master, both written at once.
    pub fn switch_roles(&self, from: u8, to: u8) -> Result<()> {
        thread::scope(|s| -> Result<()> {
            let old = s.spawn(|| self.set_role(from, "slave"));
            self.set_role(to, "master")?;
            old.join()
                .map_err(|_| LabError::Invalid("role writer thread panicked".into()))?
        })
    }

    /// Makes `to` master and `from` slave at once, then measures the time until the initiator
    /// reads `pattern` back through the VIP from node `to` (the initiator's neighbour entry
    /// for the VIP must name `to`'s MAC, so a read still served by `from` does not count).
    pub fn failover(&self, from: u8, to: u8, pattern: u8, timeout: Duration) -> Result<Failover> {
        let to_mac = format!("52:54:00:99:00:{to:02x}");
        let t0 = Instant::now();
        self.switch_roles(from, to)?;
        let role_write = t0.elapsed();
        let mut attempts = 0;
        loop {
            attempts += 1;
            // Short attempts, as an initiator polling every few hundred milliseconds: one
            // whose first TCP SYN went to the old owner would otherwise wait out TCP's 1 s
            // retransmission and measure that instead of the failover.
            if self.read_pattern(pattern, 0, 4096, PROBE_READ_TIMEOUT)?
                && self.initiator_vip_mac()?.as_deref() == Some(to_mac.as_str())
            {
                return Ok(Failover {
                    role_change_to_serving: t0.elapsed(),
                    role_write,
                    attempts,
                });
            }
            if t0.elapsed() > timeout {
                return Err(LabError::WaitTimeout {
                    what: format!("node{to} serving after the switch from node{from}"),
                    timeout,
                    last: format!(
                        "node{from}:\n{}\nnode{to}:\n{}\nnode{to} log:\n{}",
                        self.status_text(from).unwrap_or_default(),
                        self.status_text(to).unwrap_or_default(),
                        self.daemon_log(to)
                    ),
                });
            }
        }
    }
}

/// Waits for a child with a timeout, killing it when the time is up.
fn wait_output(mut child: std::process::Child, timeout: Duration) -> Result<std::process::Output> {
    let t0 = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => {
                return child
                    .wait_with_output()
                    .map_err(|e| LabError::io("reading qemu-io's output".to_string(), e))
            }
            Ok(None) if t0.elapsed() > timeout => {
                let _ = child.kill();
                return child
                    .wait_with_output()
                    .map_err(|e| LabError::io("reading qemu-io's output".to_string(), e));
            }
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(LabError::io("waiting for qemu-io".to_string(), e)),
        }
    }
}

/// The `p`th percentile (nearest rank, `p` in 1..=100) of sorted durations, in milliseconds.
pub fn percentile_ms(sorted: &[Duration], p: usize) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len()).div_ceil(100).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lab_config_names_the_lab_and_keeps_extras_last() {
        let text = lab_config("[monitor]\nretry_delay = \"500ms\"\n");
        assert!(text.contains(&format!("iqn = \"{IQN}\"")));
        assert!(text.contains("address = \"10.99.0.100/24\""));
        assert!(text.trim_end().ends_with("retry_delay = \"500ms\""));
    }

    #[test]
    fn the_lio_lab_config_names_the_backend_and_admits_by_name_only() {
        assert_eq!(lab_config_for("tgt", "x"), lab_config("x"));
        let lio = lab_config_for("lio", "");
        assert!(lio.contains(&format!("iqn = \"{IQN}\"\nbackend = \"lio\"\n")));
        assert!(lio.contains("allow_all = true") && !lio.contains("initiators ="));
    }

    #[test]
    fn an_ipv6_lab_config_floats_fd99_100_and_admits_the_ipv6_subnet_only() {
        let text = lab_config_for_family("tgt", 1, VipFamily::V6, "");
        assert!(text.contains("address = \"fd99::100/64\""), "{text}");
        assert!(text.contains("initiators = [\"fd99::/64\"]"), "{text}");
        assert!(!text.contains("10.99.0.100") && !text.contains("10.99.0.0/24"));
        let lio = lab_config_for_family("lio", 1, VipFamily::V6, "");
        assert!(lio.contains("allow_all = true") && !lio.contains("initiators ="));
        assert_eq!(VipFamily::V6.url_host(), "[fd99::100]");
        assert_eq!(VipFamily::V4.url_host(), "10.99.0.100");
    }

    #[test]
    fn a_lab_of_n_resources_is_configured_and_fenced_for_each() {
        assert_eq!(lab_config_with("eth0", 1, "x"), lab_config("x"));
        let text = lab_config_for_resources("tgt", 3, "");
        assert!(
            text.contains("resources = [\"r0\", \"r1\", \"r2\"]"),
            "{text}"
        );
        for n in 1..=3 {
            assert!(
                text.contains(&format!(
                    "[[target.lun]]\nlun = {n}\npath = \"/dev/drbd{n}\"\n"
                )),
                "{text}"
            );
        }
        let options = lab_options_for(3);
        let fenced: Vec<&str> = options
            .drbd
            .iter()
            .flat_map(|d| &d.fencing)
            .map(|f| f.resource.as_str())
            .collect();
        assert_eq!(fenced, ["r0", "r1", "r2"]);
        assert_eq!(options.resources[2].device(), "/dev/drbd3");
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let d: Vec<Duration> = (1..=20).map(|i| Duration::from_millis(i * 10)).collect();
        assert_eq!(percentile_ms(&d, 50), 100.0);
        assert_eq!(percentile_ms(&d, 99), 200.0);
        assert_eq!(percentile_ms(&d, 100), 200.0);
    }
}

/// The figures of `iha-lab bench failover`.
#[derive(Debug, Clone)]
pub struct FailoverBench {
    /// Each run's measurement, in order (directions alternate 1→2, 2→1, ...).
    pub runs: Vec<Failover>,
}

impl FailoverBench {
    /// The one-line summary: `failover role-change->serving: p50=.. ms p99=.. ms max=.. ms (n=..)`.
    pub fn summary(&self) -> String {
        let mut d: Vec<Duration> = self.runs.iter().map(|r| r.role_change_to_serving).collect();
        d.sort();
        format!(
            "failover role-change->serving: p50={:.0} ms p99={:.0} ms max={:.0} ms (n={})",
            percentile_ms(&d, 50),
            percentile_ms(&d, 99),
            percentile_ms(&d, 100),
            d.len()
        )
    }
}

impl Cluster<'_> {
    /// Brings node 1 up as master with a pattern written through the VIP, then switches
    /// roles `runs` times, measuring each switch with [`Cluster::failover`]. `report` is called
    /// after each run.
    pub fn bench_failover(
        &self,
        runs: usize,
        mut report: impl FnMut(usize, &Failover),
    ) -> Result<FailoverBench> {
        const PATTERN: u8 = 0x5a;
        self.set_role(1, "master")?;
        self.wait_serving(1, Duration::from_secs(120))?;
        self.write_pattern(PATTERN, 0, 4096)?;
        let mut out = Vec::with_capacity(runs);
        for i in 0..runs {
            let (from, to) = if i % 2 == 0 { (1, 2) } else { (2, 1) };
            let f = self.failover(from, to, PATTERN, Duration::from_secs(120))?;
            report(i, &f);
            out.push(f);
        }
        Ok(FailoverBench { runs: out })
    }
}
