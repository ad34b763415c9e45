//! The TOML schema of `/etc/iscsi-ha/iscsi-ha.toml`, key by key.
//!
//! Unknown keys are errors: a typo must not silently disable a safety feature. Sections that
//! have sensible defaults may be left out; see `fixtures/config/example.toml` for every key.

use super::duration::{ConfigDuration, PeriodOrOff};
use crate::iqn::Iqn;
use crate::resource::ResourceName;
use crate::secret::Secret;
use crate::subnet::Subnet;
use crate::vip::InterfaceName;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Where this host's role comes from.
    pub role: RoleSection,
    /// The replicated resources.
    pub replication: ReplicationSection,
    /// The exported iSCSI target.
    pub target: TargetSection,
    /// The floating address.
    pub vip: VipSection,
    /// Timers and restart budgets.
    #[serde(default)]
    pub monitor: MonitorSection,
    /// Alerts and mail.
    #[serde(default)]
    pub alerts: AlertsSection,
    /// Logging.
    #[serde(default)]
    pub logging: LoggingSection,
    /// The Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsSection,
    /// The original's files that HA-Lizard reads.
    #[serde(default)]
    pub ha_lizard: HaLizardSection,
    /// What is asked of XenServer / XCP-ng's XAPI.
    #[serde(default)]
    pub xapi: XapiSection,
    /// Tickle ACKs at a takeover, and the connection list they need from the peer.
    #[serde(default)]
    pub tickle: TickleSection,
    /// DRBD's fence-peer handler (`iscsi-ha fence-peer`).
    #[serde(default)]
    pub fence: FenceSection,
    /// A separate file holding the secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<SecretsSection>,
}

/// Kinds of role source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleSourceKind {
    /// XenServer / XCP-ng: `/etc/xensource/pool.conf` (`master`, `slave:<ip>`).
    Xapi,
    /// A file holding `master` or `slave` (Pacemaker or keepalived notify scripts write it).
    File,
    /// A program whose output (`master`/`slave`) or exit code (0 master, 1 slave) gives the role.
    Command,
    /// Fixed in this file.
    Static,
}

/// `[role]`: where this host's role comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSection {
    /// Which kind of source.
    pub source: RoleSourceKind,
    /// `xapi`: the pool.conf path (default `/etc/xensource/pool.conf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_conf: Option<String>,
    /// `xapi`: also ask XAPI (`[xapi] xe`) who the pool master is; a disagreement is `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xapi_check: Option<bool>,
    /// `file`: the role file's path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `command`: the program and its arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// `command` and `xapi_check`: how long to wait for an answer (default 13s, the original's XE_TIMEOUT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<ConfigDuration>,
    /// `static`: `master` or `slave`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<StaticRole>,
}

/// A role fixed in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StaticRole {
    /// Serve.
    Master,
    /// Do not serve.
    Slave,
}

/// `[replication]`: the replicated resources, all promoted and demoted together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicationSection {
    /// Resource names as in drbd.conf (the original's DRBD_RESOURCES).
    pub resources: Vec<ResourceName>,
}

/// `[target]`: the iSCSI target exported by the master.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSection {
    /// The target's iSCSI name.
    pub iqn: Iqn,
    /// The logical units (`[[target.lun]]`).
    #[serde(rename = "lun")]
    pub luns: Vec<LunSection>,
    /// Who may log in.
    pub access: AccessSection,
    /// Which target implementation exports it.
    #[serde(default)]
    pub backend: TargetBackend,
    /// `[target.tgt]`: how tgtd is run (backend `tgt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tgt: Option<DaemonSection>,
    /// `[target.daemon]`: the old name of `[target.tgt]`, still read (never beside it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon: Option<DaemonSection>,
    /// `[target.lio]`: backend `lio`'s settings. Kept as TOML here: the LIO adapter crate
    /// owns their meaning and checks them (the core knows no backend's vocabulary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lio: Option<toml::Table>,
}

impl TargetSection {
    /// tgtd's settings: `[target.tgt]` (or its old name), defaults where neither is written.
    pub fn tgt_daemon(&self) -> DaemonSection {
        self.tgt
            .clone()
            .or_else(|| self.daemon.clone())
            .unwrap_or_default()
    }

    /// The key of tgtd's table as the file writes it (`target.daemon` in files written before
    /// `[target.tgt]`), so that what is said about it points at what is written.
    pub fn tgt_key(&self) -> &'static str {
        if self.daemon.is_some() && self.tgt.is_none() {
            "target.daemon"
        } else {
            "target.tgt"
        }
    }
}

/// The target implementations the daemon can drive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetBackend {
    /// The user-space tgtd, over its management socket (the original's target).
    #[default]
    Tgt,
    /// The kernel's LIO target, through configfs.
    Lio,
}

impl TargetBackend {
    /// The name as written in the file.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tgt => "tgt",
            Self::Lio => "lio",
        }
    }
}

/// `[[target.lun]]`: one logical unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LunSection {
    /// LUN number, 1 or more.
    pub lun: u64,
    /// Backing device, e.g. `/dev/drbd1`.
    pub path: String,
    /// SCSI device id; default derived from the IQN and LUN, identical on both hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scsi_id: Option<String>,
    /// SCSI serial number; default derived like `scsi_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scsi_sn: Option<String>,
    /// INQUIRY vendor (8 bytes at most); default: the daemon's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_id: Option<String>,
    /// INQUIRY product (16 bytes at most); default: the daemon's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// Export read-only.
    #[serde(default)]
    pub read_only: bool,
    /// Let this host cache acknowledged writes in memory and tell initiators it has a
    /// volatile write cache. Off (the default): every write is on the backing device (with
    /// DRBD protocol C, on both disks) before the initiator sees it complete. On: a write
    /// acknowledged to the initiator may be lost when this host dies before it flushes; only
    /// for initiators that send SYNCHRONIZE CACHE and tolerate that. Faster (see
    /// `iscsi-ha-tgt`'s `durability` docs for tgt's mechanics and measured cost).
    #[serde(default)]
    pub write_cache: bool,
}

/// `[target.access]`: who may log in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessSection {
    /// Initiator addresses or ranges allowed (`10.10.10.0/24`, `10.10.10.7`).
    #[serde(default)]
    pub initiators: Vec<Subnet>,
    /// Initiator names allowed.
    #[serde(default)]
    pub initiator_names: Vec<Iqn>,
    /// Allow every initiator. Off unless set: an open target is a choice, not a default.
    #[serde(default)]
    pub allow_all: bool,
    /// Incoming CHAP accounts (`[[target.access.incoming]]`).
    #[serde(default)]
    pub incoming: Vec<ChapSection>,
    /// Outgoing (mutual) CHAP account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outgoing: Option<ChapSection>,
}

/// A CHAP account; the password may live in the secrets file instead (`[chap]` user = password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChapSection {
    /// User name.
    pub user: String,
    /// Password; leave out to take it from the secrets file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
}

/// `[target.tgt]` (formerly `[target.daemon]`): how tgtd is run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonSection {
    /// Start and stop the daemon ourselves (`true`), or adopt one the system runs (`false`).
    #[serde(default = "default_true")]
    pub managed: bool,
    /// The daemon's control port (tgtd `-C N`, socket `/var/run/tgtd/socket.N`).
    #[serde(default)]
    pub control_port: u16,
    /// The daemon's executable when managed.
    #[serde(default = "default_tgtd")]
    pub program: String,
    /// Portal to listen on when managed (`address:port`); default: every address, port 3260.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portal: Option<String>,
    /// Keep the managed daemon running, with no target, while this host does not serve: it
    /// exports nothing, and a takeover does not wait for it to start (a faster failover).
    /// `false` stops it on release, as the original stopped the tgtd service on the slave.
    #[serde(default = "default_true")]
    pub keep_running: bool,
}

impl Default for DaemonSection {
    fn default() -> Self {
        Self {
            managed: true,
            control_port: 0,
            program: default_tgtd(),
            portal: None,
            keep_running: true,
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_tgtd() -> String {
    "/usr/sbin/tgtd".into()
}

/// `[vip]`: the floating address initiators use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VipSection {
    /// Address and prefix, e.g. `10.10.10.3/24` or `fd00::3/64`.
    pub address: String,
    /// Interface it goes on (the original's DRBD_INTERFACE), e.g. `xenbr1`.
    pub interface: InterfaceName,
    /// Gratuitous ARPs / unsolicited NAs sent when the address is taken.
    #[serde(default = "default_announce_count")]
    pub announce_count: u32,
    /// Time between them.
    #[serde(default = "default_announce_interval")]
    pub announce_interval: ConfigDuration,
    /// Send a second burst this long after taking the address (for initiators that missed the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_after: Option<ConfigDuration>,
    /// While this host serves, announce the address again this often (one gratuitous ARP /
    /// unsolicited NA), so that a switch or initiator whose entry aged out or went astray
    /// learns it again; only while nothing contests it (see `iscsi_ha_core::refresh`).
    /// `"0s"` turns it off; at least 1 s otherwise.
    #[serde(default = "default_refresh_interval")]
    pub refresh_interval: PeriodOrOff,
    /// How long to wait for an answer to the probe sent before taking the address.
    #[serde(default = "default_probe_timeout")]
    pub probe_timeout: ConfigDuration,
    /// Also ping the address before taking it (the original did), as a second opinion.
    #[serde(default)]
    pub icmp_check: bool,
}

fn default_announce_count() -> u32 {
    3
}

fn default_announce_interval() -> ConfigDuration {
    ConfigDuration::new(Duration::from_millis(200))
}

fn default_refresh_interval() -> PeriodOrOff {
    // keepalived's `garp_master_refresh` and IPaddr2's `arp_count_refresh` serve the same
    // end; a minute is well inside the common switch MAC ageing (300 s), and one frame a
    // minute costs nothing.
    PeriodOrOff::new(Duration::from_secs(60))
}

fn default_probe_timeout() -> ConfigDuration {
    // An owner on the same segment answers an ARP probe within a millisecond; 100 ms is ample
    // and is spent on every takeover.
    ConfigDuration::new(Duration::from_millis(100))
}

/// `[monitor]`: timers and restart budgets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorSection {
    /// Safety scan: observe and reconcile at least this often even without events.
    #[serde(default = "default_scan_interval")]
    pub scan_interval: ConfigDuration,
    /// Starts of one component allowed within `start_window` (the original's MONITOR_MAX_STARTS).
    #[serde(default = "default_max_starts")]
    pub max_starts: u32,
    /// The window `max_starts` counts in.
    #[serde(default = "default_start_window")]
    pub start_window: ConfigDuration,
    /// Wait this long after a failed step before trying it again (the original's MONITOR_DELAY).
    #[serde(default = "default_retry_delay")]
    pub retry_delay: ConfigDuration,
}

impl Default for MonitorSection {
    fn default() -> Self {
        Self {
            scan_interval: default_scan_interval(),
            max_starts: default_max_starts(),
            start_window: default_start_window(),
            retry_delay: default_retry_delay(),
        }
    }
}

fn default_scan_interval() -> ConfigDuration {
    ConfigDuration::new(Duration::from_secs(10))
}

fn default_max_starts() -> u32 {
    5
}

fn default_start_window() -> ConfigDuration {
    ConfigDuration::new(Duration::from_secs(600))
}

fn default_retry_delay() -> ConfigDuration {
    ConfigDuration::new(Duration::from_secs(1))
}

/// `[alerts]`: what is sent where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSection {
    /// An identical alert is not repeated within this window (the original's MAIL_SCREEN_TIME).
    #[serde(default = "default_screen")]
    pub screen: ConfigDuration,
    /// Mail delivery; alerts are always logged.
    #[serde(default)]
    pub mail: MailSection,
}

impl Default for AlertsSection {
    fn default() -> Self {
        Self {
            screen: default_screen(),
            mail: MailSection::default(),
        }
    }
}

fn default_screen() -> ConfigDuration {
    ConfigDuration::new(Duration::from_secs(30 * 60))
}

/// How the mail connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTls {
    /// Plain SMTP.
    None,
    /// SMTP upgraded with STARTTLS.
    Starttls,
    /// SMTP inside TLS from the start (port 465).
    Tls,
}

/// `[alerts.mail]`: SMTP delivery (the original's MAIL_* and SMTP_* settings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSection {
    /// Send mail.
    #[serde(default)]
    pub enabled: bool,
    /// Sender address.
    #[serde(default = "default_mail_from")]
    pub from: String,
    /// Recipients.
    #[serde(default)]
    pub to: Vec<String>,
    /// Subject; `{host}` becomes the host name.
    #[serde(default = "default_subject")]
    pub subject: String,
    /// SMTP server.
    #[serde(default = "default_smtp_server")]
    pub server: String,
    /// SMTP port.
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// Connection security.
    #[serde(default = "default_tls")]
    pub tls: MailTls,
    /// SMTP user, if the server wants authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// SMTP password; or `smtp_password` in the secrets file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
}

impl Default for MailSection {
    fn default() -> Self {
        Self {
            enabled: false,
            from: default_mail_from(),
            to: Vec::new(),
            subject: default_subject(),
            server: default_smtp_server(),
            port: default_smtp_port(),
            tls: default_tls(),
            user: None,
            password: None,
        }
    }
}

fn default_mail_from() -> String {
    "root@localhost".into()
}

fn default_subject() -> String {
    "iSCSI-HA alert from host {host}".into()
}

fn default_smtp_server() -> String {
    "127.0.0.1".into()
}

fn default_smtp_port() -> u16 {
    25
}

fn default_tls() -> MailTls {
    MailTls::None
}

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogTarget {
    /// journald when present, else syslog, else stderr.
    Auto,
    /// The systemd journal.
    Journald,
    /// syslog, tag `iscsi-ha`.
    Syslog,
    /// Standard error.
    Stderr,
}

/// `[logging]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingSection {
    /// `error`, `warn`, `info`, `debug` or `trace`; `RUST_LOG` overrides it.
    #[serde(default = "default_level")]
    pub level: LogLevel,
    /// Where to log.
    #[serde(default = "default_log_target")]
    pub to: LogTarget,
}

impl Default for LoggingSection {
    fn default() -> Self {
        Self {
            level: default_level(),
            to: default_log_target(),
        }
    }
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// And warnings.
    Warn,
    /// And notable changes.
    Info,
    /// And each decision.
    Debug,
    /// Everything.
    Trace,
}

fn default_level() -> LogLevel {
    LogLevel::Info
}

fn default_log_target() -> LogTarget {
    LogTarget::Auto
}

/// `[metrics]`: an optional Prometheus text endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// Serve `/metrics`. Off unless set.
    #[serde(default)]
    pub enabled: bool,
    /// Where to listen; keep it on loopback (there is no authentication).
    #[serde(default = "default_metrics_listen")]
    pub listen: std::net::SocketAddr,
}

impl Default for MetricsSection {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: default_metrics_listen(),
        }
    }
}

fn default_metrics_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 9725))
}

/// `[ha_lizard]`: the original's files that HA-Lizard (the pool HA that drove the original)
/// reads, kept in the original's format. HA-Lizard's fencing guard for two-host pools blocks
/// fencing a peer whose DRBD link is still connected, but only while `status_file` was
/// modified within the last hour and `conf_file` names `DRBD_RESOURCES`; without these files
/// it fences a live peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaLizardSection {
    /// Keep the files. On unless set: a pool that needs them and lacks them loses its fencing
    /// guard silently, an hour after the original stopped writing them.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The status file, rewritten on every change and at least every `refresh`.
    #[serde(default = "default_ha_lizard_status_file")]
    pub status_file: String,
    /// Present exactly while manual mode is on, holding `become_primary` or `become_secondary`.
    #[serde(default = "default_ha_lizard_manual_file")]
    pub manual_file: String,
    /// The original's configuration file; written only when missing or written by iscsi-ha,
    /// so an original file imported from stays as it was.
    #[serde(default = "default_ha_lizard_conf_file")]
    pub conf_file: String,
    /// The longest time between two writes of `status_file` while the daemon runs (at most
    /// 30 minutes: HA-Lizard's window is one hour).
    #[serde(default = "default_ha_lizard_refresh")]
    pub refresh: ConfigDuration,
}

impl Default for HaLizardSection {
    fn default() -> Self {
        Self {
            enabled: true,
            status_file: default_ha_lizard_status_file(),
            manual_file: default_ha_lizard_manual_file(),
            conf_file: default_ha_lizard_conf_file(),
            refresh: default_ha_lizard_refresh(),
        }
    }
}

/// `[tickle]`: while serving, this host pushes its iSCSI connection list to its peer over the
/// replication link (one small UDP datagram on change and every few seconds); after a takeover
/// the peer sends a tickle ACK to each listed initiator, which then resets its connection to
/// the dead master and logs in again at once instead of waiting for its timers. Off unless
/// `hosts` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TickleSection {
    /// Both hosts' replication addresses (the ones DRBD connects): each host listens on the one
    /// that is its own and sends to the other, so both hosts can share this file. Empty: off.
    #[serde(default)]
    pub hosts: Vec<std::net::IpAddr>,
    /// The UDP port both hosts use.
    #[serde(default = "default_tickle_port")]
    pub port: u16,
    /// `false` keeps `hosts` but neither pushes lists nor tickles (to measure without).
    #[serde(default = "default_true")]
    pub enabled: bool,
}

impl Default for TickleSection {
    fn default() -> Self {
        Self {
            hosts: Vec::new(),
            port: default_tickle_port(),
            enabled: true,
        }
    }
}

fn default_tickle_port() -> u16 {
    3261
}

/// `[fence]`: what DRBD's fence-peer handler (`iscsi-ha fence-peer`) needs besides the role
/// and the VIP. A master that loses its peer may go on writing alone only if it is not the
/// one cut off: with `witnesses`, one of them must answer a ping through the VIP's interface
/// (HA-Lizard's `FENCE_HEURISTICS_IPS` plays the same part for the pool).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FenceSection {
    /// Addresses on the initiators' network that answer pings and are neither host (the
    /// gateway, a switch, an initiator that is always up), at most 8. Empty: a master whose
    /// link is cut cannot tell that from a dead peer, and goes on writing alone; writes it
    /// acknowledges when the link returns, before it yields, are lost (the doctor warns).
    #[serde(default)]
    pub witnesses: Vec<std::net::IpAddr>,
    /// How long the handler waits for the witnesses' answers (all are pinged at once).
    #[serde(default = "default_witness_timeout")]
    pub witness_timeout: ConfigDuration,
}

impl Default for FenceSection {
    fn default() -> Self {
        Self {
            witnesses: Vec::new(),
            witness_timeout: default_witness_timeout(),
        }
    }
}

fn default_witness_timeout() -> ConfigDuration {
    // A witness on the same segment answers within a millisecond; DRBD holds the I/O frozen
    // while the handler runs.
    ConfigDuration::new(Duration::from_millis(500))
}

/// `[xapi]`: what this host asks of XenServer / XCP-ng's XAPI through `xe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XapiSection {
    /// Once this host serves after not serving (a takeover, a start), plug the unattached PBDs
    /// of the pool's `lvmoiscsi` SRs whose target is the VIP and whose IQN is ours (or `*`),
    /// on every host of the pool. Off unless set.
    #[serde(default)]
    pub replug_pbds: bool,
    /// The `xe` program (the original called /usr/bin/xe).
    #[serde(default = "default_xe")]
    pub xe: String,
    /// How long each `xe` call may take before it is killed (the original's XE_TIMEOUT).
    #[serde(default = "default_xe_timeout")]
    pub timeout: ConfigDuration,
    /// How long this host serves before the first re-plug (initiators that reconnect by
    /// themselves do so meanwhile).
    #[serde(default = "default_replug_delay")]
    pub replug_delay: ConfigDuration,
    /// XenServer's inventory, whose `INSTALLATION_UUID` names this host in the pool database
    /// (the key its configuration fingerprint is published under, and the host `[role]
    /// xapi_check` compares with XAPI's pool master). Settable so tests and unusual installs
    /// need not touch `/etc`.
    #[serde(default = "default_inventory")]
    pub inventory: String,
}

impl Default for XapiSection {
    fn default() -> Self {
        Self {
            replug_pbds: false,
            xe: default_xe(),
            timeout: default_xe_timeout(),
            replug_delay: default_replug_delay(),
            inventory: default_inventory(),
        }
    }
}

fn default_ha_lizard_status_file() -> String {
    "/etc/iscsi-ha/state/status".into()
}

fn default_ha_lizard_manual_file() -> String {
    "/etc/iscsi-ha/state/manual".into()
}

fn default_ha_lizard_conf_file() -> String {
    "/etc/iscsi-ha/iscsi-ha.conf".into()
}

fn default_ha_lizard_refresh() -> ConfigDuration {
    // Sixty times inside HA-Lizard's one-hour window: a run of failed writes or a slow disk
    // does not lapse the guard, at the cost of one small write a minute.
    ConfigDuration::new(Duration::from_secs(60))
}

fn default_xe() -> String {
    "/usr/bin/xe".into()
}

fn default_xe_timeout() -> ConfigDuration {
    ConfigDuration::new(Duration::from_secs(13))
}

fn default_inventory() -> String {
    "/etc/xensource-inventory".into()
}

fn default_replug_delay() -> ConfigDuration {
    ConfigDuration::new(Duration::from_secs(10))
}

/// `[secrets]`: a separate file for passwords, readable by root only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsSection {
    /// Path of the secrets file.
    pub file: String,
}

/// The secrets file: `smtp_password = "..."` and a `[chap]` table of user = password.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsFile {
    /// The SMTP password.
    #[serde(default)]
    pub smtp_password: Option<Secret>,
    /// CHAP passwords by user name.
    #[serde(default)]
    pub chap: std::collections::BTreeMap<String, Secret>,
}
