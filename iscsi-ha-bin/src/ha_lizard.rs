//! The original's files that HA-Lizard reads, kept in the original's format so that a pool
//! migrated from the original keeps HA-Lizard's fencing guard (`[ha_lizard]` in the
//! configuration).
//!
//! | file | what HA-Lizard does with it (ha-lizard 2.4, `ha-lizard.func`, `scripts/ha-cfg`) | kept here |
//! |---|---|---|
//! | `status_file` | `check_replication_link_state`: with `FENCE_METHOD=POOL`, a file modified less than 3600 s ago (`stat -c %Y`) means "a noSAN pool": fencing the peer is blocked while `drbdadm cstate` says Connected; `ha-cfg cluster-status` prints it | the original's tab-separated text, rewritten on every change and at least every `refresh`, never when the loop stops |
//! | `manual_file` | `ha-cfg cluster-status`: present means "Manual Mode [content]" | `become_primary` / `become_secondary` while manual mode is on, absent otherwise |
//! | `conf_file` | the guard evaluates the lines containing `DRBD_RESOURCES` as shell; `ha-cfg cluster-status` prints its non-comment lines | written when missing (or ours and stale); an original's file is left alone and checked |
//!
//! The files are written by a thread of their own, so a slow disk never holds the poll loop:
//! the loop hands over the newest content (a newer one replaces one not yet written) and goes
//! on. Something other than a regular file at a path (a FIFO, a symlink, a device) is refused,
//! not replaced; a failure is logged as an error once per file (and once when it works again).

use crate::small_file::{self, CONFIG_FILE_CAP};
use crate::state_file::write_atomically_with_mode;
use iscsi_ha_core::config::schema::HaLizardSection;
use iscsi_ha_core::observation::ManualMode;
use iscsi_ha_core::plan::Intent;
use iscsi_ha_core::resource::ResourceName;
use iscsi_ha_core::status::{ResourceView, Status};
use iscsi_ha_core::volume::{DiskState, VolumeRole};
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The first line of a `conf_file` that iscsi-ha wrote, so that it is told apart from the
/// original's (which is never overwritten). It must not name the key: HA-Lizard 2.4 joins
/// every line holding `DRBD_RESOURCES` into one before evaluating it, and a comment first
/// would swallow the assignment.
const CONF_MARKER: &str =
    "# Written by iscsi-ha for HA-Lizard; iscsi-ha itself does not read this file.";

/// The original's files are read by root and by tools run as other users; they hold no secret.
const FILE_MODE: u32 = 0o644;

/// The original's files for HA-Lizard: what is due, and the thread that writes them.
#[derive(Debug)]
pub struct HaLizardFiles {
    inner: Option<Active>,
}

#[derive(Debug)]
struct Active {
    status_file: PathBuf,
    manual_file: PathBuf,
    refresh: Duration,
    pid: u32,
    writer: Writer,
    /// The last status handed to the writer without its date, to tell a change.
    last_body: Option<String>,
    last_write: Option<Instant>,
}

impl HaLizardFiles {
    /// Starts the writer when the section is enabled and queues `conf_file` (written when
    /// missing or ours, checked when it is the original's) and `manual_file` for `manual`.
    pub fn start(
        section: &HaLizardSection,
        resources: &[ResourceName],
        manual: ManualMode,
    ) -> Self {
        if !section.enabled {
            return Self { inner: None };
        }
        let writer = Writer::spawn();
        writer.queue(
            PathBuf::from(&section.conf_file),
            Op::EnsureConf {
                text: conf_text(resources),
                resources: resources_value(resources),
            },
        );
        let mut files = Self {
            inner: Some(Active {
                status_file: PathBuf::from(&section.status_file),
                manual_file: PathBuf::from(&section.manual_file),
                refresh: section.refresh.get(),
                pid: std::process::id(),
                writer,
                last_body: None,
                last_write: None,
            }),
        };
        files.manual(manual);
        files
    }

    /// Hands the status to the writer when it changed (its date aside) or `refresh` has
    /// passed since the last write; otherwise does nothing.
    pub fn publish(&mut self, status: Option<&Status>, now: Instant) {
        let (Some(a), Some(status)) = (self.inner.as_mut(), status) else {
            return;
        };
        let body = render_status(status, a.pid, "");
        let due = a.last_write.is_none_or(|at| now >= at + a.refresh);
        if !due && a.last_body.as_deref() == Some(body.as_str()) {
            return;
        }
        let text = render_status(status, a.pid, &local_date());
        a.writer.queue(
            a.status_file.clone(),
            Op::Write {
                bytes: text.into_bytes(),
            },
        );
        a.last_body = Some(body);
        a.last_write = Some(now);
    }

    /// When the status file must be written again although nothing changed.
    pub fn due(&self) -> Option<Instant> {
        let a = self.inner.as_ref()?;
        a.last_write.map(|at| at + a.refresh)
    }

    /// Makes `manual_file` say `mode`: present with the original's word while manual mode is
    /// on, absent otherwise.
    pub fn manual(&mut self, mode: ManualMode) {
        let Some(a) = self.inner.as_ref() else {
            return;
        };
        let op = match mode {
            ManualMode::Off => Op::Remove,
            ManualMode::BecomePrimary => Op::Write {
                bytes: b"become_primary\n".to_vec(),
            },
            ManualMode::BecomeSecondary => Op::Write {
                bytes: b"become_secondary\n".to_vec(),
            },
        };
        a.writer.queue(a.manual_file.clone(), op);
    }
}

/// The original's `DRBD_RESOURCES` value: the names joined by `:`.
/// The manual mode the original's manual file holds (`become_primary` / `become_secondary`, as
/// the original's `iscsi-cfg` wrote it); `None` when the section is off or there is no file.
/// Read once, at a first start, so that a host migrated while in the original's manual mode
/// stays in manual mode instead of following the pool role at once.
pub fn original_manual_mode(section: &HaLizardSection) -> Result<Option<ManualMode>, String> {
    if !section.enabled {
        return Ok(None);
    }
    let path = Path::new(&section.manual_file);
    match small_file::read(path, small_file::WORD_FILE_CAP) {
        Ok(text) => match text.trim() {
            "become_primary" => Ok(Some(ManualMode::BecomePrimary)),
            "become_secondary" => Ok(Some(ManualMode::BecomeSecondary)),
            other => Err(format!(
                "{} (the original's manual mode) holds {other:?}, neither become_primary nor become_secondary: write the one this host should follow, or remove the file to follow the pool role",
                path.display()
            )),
        },
        Err(e) if e.is_not_found() => Ok(None),
        // Not a readable regular file (a FIFO, a path through a non-directory): not the
        // original's manual file; the writer reports the path when it cannot keep it.
        Err(e) => {
            tracing::warn!("{e}: not taken as the original's manual mode");
            Ok(None)
        }
    }
}

fn resources_value(resources: &[ResourceName]) -> String {
    resources
        .iter()
        .map(ResourceName::as_str)
        .collect::<Vec<_>>()
        .join(":")
}

/// The `conf_file` iscsi-ha writes. Resource names hold only `[A-Za-z0-9_.+-]`, so single
/// quotes make the value one word for `source` and for HA-Lizard's unquoted `eval $(grep …)`
/// alike, and no character in it is a glob.
fn conf_text(resources: &[ResourceName]) -> String {
    format!(
        "{CONF_MARKER}\n# It lists the replicated resources of iscsi-ha's TOML configuration ([replication] resources);\n# change them there.\nDRBD_RESOURCES='{}'\n",
        resources_value(resources)
    )
}

/// The value an original file gives the key as HA-Lizard reads it, or why HA-Lizard would
/// not read it: exactly one line may hold the key (HA-Lizard 2.4 evaluates all of them as
/// one line), an assignment, its value plain or quoted.
fn conf_value(text: &str) -> Result<String, String> {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("DRBD_RESOURCES"))
        .collect();
    let [line] = lines.as_slice() else {
        return Err(format!(
            "{} lines hold DRBD_RESOURCES; HA-Lizard needs exactly one, DRBD_RESOURCES=\"name:name\"",
            lines.len()
        ));
    };
    let value = line.trim().strip_prefix("DRBD_RESOURCES=").ok_or_else(|| {
        format!(
            "{:?} is not an assignment DRBD_RESOURCES=\"name:name\"",
            line.trim()
        )
    })?;
    let unquoted = ['"', '\'']
        .iter()
        .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
        .unwrap_or(value);
    if unquoted.is_empty()
        || unquoted.contains(|c: char| c.is_whitespace() || "\"'$`;#*?[".contains(c))
    {
        return Err(format!(
            "{:?} is not a plain list of resource names",
            line.trim()
        ));
    }
    Ok(unquoted.to_string())
}

/// The original's status file for `status`, in its layout (`iscsi-ha.sh` 2.3): a master lists
/// its Primary roles, links, disk states, target and VIP; a slave its VIP (when not here),
/// target, Secondary roles and links; both end with an empty line. `date` is the `Last
/// Updated` text. A host whose role is unknown gets the slave's layout with `UNKNOWN`.
pub fn render_status(status: &Status, pid: u32, date: &str) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!("iSCSI-HA Status: Running {pid}"));
    line(format!("Last Updated: {date}"));
    let target = if status.target.running {
        "Running"
    } else {
        "Stopped"
    };
    let vip = status
        .vip
        .address
        .split('/')
        .next()
        .unwrap_or(&status.vip.address);
    let links = |line: &mut dyn FnMut(String)| {
        for r in &status.resources {
            line(connection_line(r));
        }
    };
    if status.intent == Intent::Serve {
        line("HOST ROLE:\t\tMASTER".into());
        for r in &status.resources {
            if r.role == Some(VolumeRole::Primary) {
                line(format!("DRBD ROLE:\t\t{}=Primary", r.name));
            }
        }
        links(&mut line);
        for r in &status.resources {
            let dstate = format!("{}/{}", disk_word(r.disk), disk_word(r.peer_disk));
            if dstate == "UpToDate/UpToDate" {
                line(format!(
                    "DRBD Disk State:\t{} in {dstate} disk state",
                    r.name
                ));
            } else {
                line(format!("DRBD Disk State: \t{} in {dstate} state", r.name));
            }
        }
        line(format!("ISCSI TARGET:\t\t{target} [expected running]"));
        if status.vip.here == Some(true) {
            line(format!("VIRTUAL IP:\t\t{vip} is local"));
        } else if status.retrying.iter().any(|r| r.component == "VIP") {
            line(format!(
                "VIRTUAL IP:\t\tFailed to add {vip} on local interface {}",
                status.vip.interface
            ));
        }
    } else {
        let (role, expected) = match status.intent {
            Intent::Release => ("SLAVE", "stopped"),
            _ => ("UNKNOWN", "unchanged while the role is unknown"),
        };
        // The original wrote this line with spaces, not tabs.
        line(format!("HOST ROLE:              {role}"));
        if status.vip.here == Some(false) {
            line(format!("VIRTUAL IP:\t\t{vip} is not local"));
        }
        line(format!("ISCSI TARGET:\t\t{target} [expected {expected}]"));
        for r in &status.resources {
            if r.role == Some(VolumeRole::Secondary) {
                line(format!("DRBD ROLE:\t\t{}=Secondary", r.name));
            }
        }
        links(&mut line);
    }
    // The original ended with `echo "$BREAK"`, a variable it never set: an empty line.
    line(String::new());
    out
}

/// The link line, in the original's three spacings (Connected; syncing; anything else).
fn connection_line(r: &ResourceView) -> String {
    let cstate = r.connection.as_deref().unwrap_or("Unknown");
    match cstate {
        "Connected" => format!("DRBD CONNECTION:\t{} in {cstate} state", r.name),
        "SyncSource" | "SyncTarget" => format!("DRBD CONNECTION:  {} in {cstate} state", r.name),
        _ => format!("DRBD CONNECTION: \t{} in {cstate} state", r.name),
    }
}

/// A disk state in `drbdadm dstate`'s words.
fn disk_word(disk: Option<DiskState>) -> String {
    match disk {
        Some(DiskState::Unknown) | None => "DUnknown".into(),
        Some(d) => d.to_string(),
    }
}

/// Now in `date`'s default format (`Tue Mar  5 14:02:11 UTC 2024`), local time, as the
/// original's `Last Updated` line.
fn local_date() -> String {
    let now = nix::libc::time_t::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
    .unwrap_or(0);
    // SAFETY: `tm` is plain data (all-zero is a valid value) that localtime_r fills in.
    let mut tm: nix::libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call and a null result is checked; glibc's
    // localtime_r reads the zone (TZ, /etc/localtime) on its first use.
    if unsafe { nix::libc::localtime_r(&now, &mut tm) }.is_null() {
        return String::new();
    }
    let mut buf = [0u8; 128];
    // SAFETY: the buffer's length is passed; strftime writes at most that many bytes and
    // returns how many it wrote (0 when it did not fit); the format is NUL-terminated.
    let n = unsafe {
        nix::libc::strftime(
            buf.as_mut_ptr().cast(),
            buf.len(),
            c"%a %b %e %H:%M:%S %Z %Y".as_ptr(),
            &tm,
        )
    };
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// What the writer does at one path.
#[derive(Debug)]
enum Op {
    Write {
        bytes: Vec<u8>,
    },
    Remove,
    /// Writes `text` when nothing is there or our earlier file is; checks an original's.
    EnsureConf {
        text: String,
        resources: String,
    },
}

type Pending = Mutex<BTreeMap<PathBuf, Op>>;

/// A thread that does the newest operation queued for each path.
#[derive(Debug)]
struct Writer {
    shared: Arc<(Pending, Condvar)>,
}

impl Writer {
    fn spawn() -> Self {
        let shared: Arc<(Pending, Condvar)> = Arc::default();
        let theirs = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("ha-lizard-files".into())
            .spawn(move || work(&theirs));
        if let Err(e) = spawned {
            tracing::error!("cannot start the thread that writes HA-Lizard's files: {e}");
        }
        Self { shared }
    }

    /// Queues `op` for `path`, replacing one not yet done. Never waits for a write: the
    /// worker holds the lock only to take the queue.
    fn queue(&self, path: PathBuf, op: Op) {
        let (pending, ready) = &*self.shared;
        let mut queue = pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        queue.insert(path, op);
        ready.notify_one();
    }
}

fn work(shared: &(Pending, Condvar)) {
    let (pending, ready) = shared;
    let mut failing: HashMap<PathBuf, String> = HashMap::new();
    loop {
        let batch = {
            let mut queue = pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            while queue.is_empty() {
                queue = ready
                    .wait(queue)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            std::mem::take(&mut *queue)
        };
        for (path, op) in batch {
            let done = match op {
                Op::Write { bytes } => write(&path, &bytes),
                Op::Remove => remove(&path),
                Op::EnsureConf { text, resources } => ensure_conf(&path, &text, &resources),
            };
            match done {
                Ok(()) => {
                    if failing.remove(&path).is_some() {
                        tracing::info!("{}: written again; HA-Lizard reads it", path.display());
                    }
                }
                Err(e) => {
                    if failing.get(&path) != Some(&e) {
                        tracing::error!("HA-Lizard's file {e}");
                        failing.insert(path, e);
                    }
                }
            }
        }
    }
}

/// What is at `path` when it is not a regular file (a symlink is not followed), or `None`
/// when a regular file or nothing is there.
fn not_regular(path: &Path) -> Result<Option<&'static str>, String> {
    match fs::symlink_metadata(path) {
        Ok(m) => {
            let t = m.file_type();
            Ok(if t.is_file() {
                None
            } else if t.is_symlink() {
                Some("a symbolic link")
            } else if t.is_fifo() {
                Some("a FIFO")
            } else if t.is_dir() {
                Some("a directory")
            } else if t.is_socket() {
                Some("a socket")
            } else {
                Some("a device")
            })
        }
        // ENOTDIR: a file where a directory should be, so nothing can be at the path.
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.raw_os_error() == Some(nix::libc::ENOTDIR) =>
        {
            Ok(None)
        }
        Err(e) => Err(format!("{}: cannot inspect it: {e}", path.display())),
    }
}

fn refuse(path: &Path, kind: &str) -> String {
    format!(
        "{} is {kind}, not a regular file: it is left alone and not written; remove it so that iscsi-ha can keep the file HA-Lizard reads",
        path.display()
    )
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(kind) = not_regular(path)? {
        return Err(refuse(path, kind));
    }
    if let Some(dir) = path.parent() {
        if fs::metadata(dir).is_ok_and(|m| !m.is_dir()) {
            return Err(format!(
                "{}: cannot write it: {} is not a directory; remove it or choose another path in [ha_lizard]",
                path.display(),
                dir.display()
            ));
        }
    }
    write_atomically_with_mode(path, bytes, FILE_MODE)
        .map_err(|e| format!("{}: cannot write it: {e}", path.display()))
}

fn remove(path: &Path) -> Result<(), String> {
    if let Some(kind) = not_regular(path)? {
        return Err(refuse(path, kind));
    }
    match fs::remove_file(path) {
        Err(e)
            if e.kind() != std::io::ErrorKind::NotFound
                && e.raw_os_error() != Some(nix::libc::ENOTDIR) =>
        {
            Err(format!("{}: cannot remove it: {e}", path.display()))
        }
        _ => Ok(()),
    }
}

fn ensure_conf(path: &Path, text: &str, resources: &str) -> Result<(), String> {
    if let Some(kind) = not_regular(path)? {
        return Err(refuse(path, kind));
    }
    let existing = match small_file::read(path, CONFIG_FILE_CAP) {
        Ok(existing) => existing,
        Err(e) if e.is_not_found() => return write(path, text.as_bytes()),
        Err(e) => return Err(e.to_string()),
    };
    if existing.lines().next() == Some(CONF_MARKER) {
        return if existing == text {
            Ok(())
        } else {
            write(path, text.as_bytes())
        };
    }
    // Someone else's file, most likely the original's: it is theirs to keep (a rollback needs
    // it), so it is only checked.
    match conf_value(&existing) {
        Ok(found) if found == resources => {
            tracing::info!(
                "{}: kept as it is (not written by iscsi-ha); it names DRBD_RESOURCES {found} as HA-Lizard needs",
                path.display()
            );
            Ok(())
        }
        Ok(found) => Err(format!(
            "{}: not written by iscsi-ha and left alone, but its DRBD_RESOURCES is {found:?} where this host replicates {resources:?}; HA-Lizard checks those resources' link before fencing. Set DRBD_RESOURCES=\"{resources}\" there, or remove the file and iscsi-ha writes it at its next start",
            path.display()
        )),
        Err(why) => Err(format!(
            "{}: not written by iscsi-ha and left alone, but HA-Lizard cannot read the resources from it: {why}. Set DRBD_RESOURCES=\"{resources}\" there, or remove the file and iscsi-ha writes it at its next start",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iscsi_ha_core::status::{TargetView, VipView};
    use iscsi_ha_core::time::Timestamp;

    fn resource(
        name: &str,
        role: VolumeRole,
        link: &str,
        disks: (DiskState, DiskState),
    ) -> ResourceView {
        ResourceView {
            name: name.into(),
            role: Some(role),
            peer_role: None,
            connection: Some(link.into()),
            connection_state: None,
            disk: Some(disks.0),
            peer_disk: Some(disks.1),
            sync: None,
            suspended: None,
            error: None,
            split_brain: None,
        }
    }

    fn status(
        intent: Intent,
        resources: Vec<ResourceView>,
        running: bool,
        vip_here: bool,
    ) -> Status {
        Status {
            host: "h".into(),
            host_role: "master".into(),
            role_reason: None,
            intent,
            manual_mode: ManualMode::Off,
            resources,
            target: TargetView {
                running,
                iqn: "iqn.2024-01.com.example:t".into(),
                luns: vec![],
                sessions: 0,
                daemon_running: running,
                error: None,
            },
            vip: VipView {
                address: "10.10.10.3/24".into(),
                interface: "xenbr1".into(),
                here: Some(vip_here),
                error: None,
            },
            holds: vec![],
            warnings: vec![],
            exhausted: vec![],
            retrying: vec![],
            last_actions: vec![],
            alerts: vec![],
            fingerprint: "0123456789abcdef".into(),
            pbd_replug: None,
            updated_at: Timestamp::from_unix_millis(0),
        }
    }

    use DiskState::{Inconsistent, Unknown, UpToDate};

    #[test]
    fn a_master_is_written_in_the_originals_layout() {
        let s = status(
            Intent::Serve,
            vec![
                resource(
                    "iscsi1",
                    VolumeRole::Primary,
                    "Connected",
                    (UpToDate, UpToDate),
                ),
                resource(
                    "iscsi2",
                    VolumeRole::Primary,
                    "SyncSource",
                    (UpToDate, Inconsistent),
                ),
                resource(
                    "iscsi3",
                    VolumeRole::Primary,
                    "WFConnection",
                    (UpToDate, Unknown),
                ),
            ],
            true,
            true,
        );
        assert_eq!(
            render_status(&s, 42, "Tue Mar  5 14:02:11 UTC 2024"),
            "iSCSI-HA Status: Running 42\n\
             Last Updated: Tue Mar  5 14:02:11 UTC 2024\n\
             HOST ROLE:\t\tMASTER\n\
             DRBD ROLE:\t\tiscsi1=Primary\n\
             DRBD ROLE:\t\tiscsi2=Primary\n\
             DRBD ROLE:\t\tiscsi3=Primary\n\
             DRBD CONNECTION:\tiscsi1 in Connected state\n\
             DRBD CONNECTION:  iscsi2 in SyncSource state\n\
             DRBD CONNECTION: \tiscsi3 in WFConnection state\n\
             DRBD Disk State:\tiscsi1 in UpToDate/UpToDate disk state\n\
             DRBD Disk State: \tiscsi2 in UpToDate/Inconsistent state\n\
             DRBD Disk State: \tiscsi3 in UpToDate/DUnknown state\n\
             ISCSI TARGET:\t\tRunning [expected running]\n\
             VIRTUAL IP:\t\t10.10.10.3 is local\n\
             \n"
        );
    }

    #[test]
    fn a_master_that_cannot_take_the_vip_says_so() {
        let mut s = status(
            Intent::Serve,
            vec![resource(
                "r0",
                VolumeRole::Secondary,
                "Connected",
                (UpToDate, UpToDate),
            )],
            false,
            false,
        );
        s.retrying.push(iscsi_ha_core::status::RetryView {
            component: "VIP".into(),
            retry_in_ms: 1000,
        });
        let text = render_status(&s, 1, "d");
        assert!(!text.contains("DRBD ROLE"), "{text}");
        assert!(
            text.contains("ISCSI TARGET:\t\tStopped [expected running]\n"),
            "{text}"
        );
        assert!(
            text.ends_with("VIRTUAL IP:\t\tFailed to add 10.10.10.3 on local interface xenbr1\n\n"),
            "{text}"
        );
    }

    #[test]
    fn a_slave_is_written_in_the_originals_layout() {
        let s = status(
            Intent::Release,
            vec![resource(
                "iscsi1",
                VolumeRole::Secondary,
                "Connected",
                (UpToDate, UpToDate),
            )],
            false,
            false,
        );
        assert_eq!(
            render_status(&s, 7, "D"),
            "iSCSI-HA Status: Running 7\n\
             Last Updated: D\n\
             HOST ROLE:              SLAVE\n\
             VIRTUAL IP:\t\t10.10.10.3 is not local\n\
             ISCSI TARGET:\t\tStopped [expected stopped]\n\
             DRBD ROLE:\t\tiscsi1=Secondary\n\
             DRBD CONNECTION:\tiscsi1 in Connected state\n\
             \n"
        );
    }

    #[test]
    fn the_written_conf_names_the_key_on_one_line_only_and_reads_back() {
        let names: Vec<ResourceName> = ["iscsi1", "r.2+x"]
            .iter()
            .map(|n| ResourceName::new(*n).unwrap())
            .collect();
        let text = conf_text(&names);
        assert_eq!(
            text.lines()
                .filter(|l| l.contains("DRBD_RESOURCES"))
                .count(),
            1
        );
        assert!(text.starts_with(CONF_MARKER));
        assert_eq!(conf_value(&text).unwrap(), "iscsi1:r.2+x");
    }

    #[test]
    fn an_originals_conf_is_read_as_ha_lizard_reads_it() {
        assert_eq!(conf_value("DRBD_RESOURCES=iscsi1\n").unwrap(), "iscsi1");
        assert_eq!(conf_value("A=1\nDRBD_RESOURCES=\"a:b\"\n").unwrap(), "a:b");
        assert!(conf_value("# DRBD_RESOURCES lists them\nDRBD_RESOURCES=a\n").is_err());
        assert!(conf_value("MAIL_ON=1\n").is_err());
        assert!(conf_value("DRBD_RESOURCES=$(x)\n").is_err());
    }

    #[test]
    fn an_originals_conf_is_kept_and_a_stale_one_of_ours_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("iscsi-ha.conf");
        let original = "DRBD_RESOURCES=\"iscsi1\"\nMAIL_ON=1\n";
        fs::write(&p, original).unwrap();
        let ours = conf_text(&[ResourceName::new("iscsi1").unwrap()]);
        ensure_conf(&p, &ours, "iscsi1").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), original);
        let err = ensure_conf(&p, &ours, "r0").unwrap_err();
        assert!(
            err.contains("left alone") && err.contains("DRBD_RESOURCES=\"r0\""),
            "{err}"
        );
        assert_eq!(fs::read_to_string(&p).unwrap(), original);

        fs::write(&p, conf_text(&[ResourceName::new("old").unwrap()])).unwrap();
        ensure_conf(&p, &ours, "iscsi1").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), ours);
        fs::remove_file(&p).unwrap();
        ensure_conf(&p, &ours, "iscsi1").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), ours);
    }

    #[test]
    fn a_file_where_the_directory_should_be_is_reported_and_left() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        fs::write(&state, "x").unwrap();
        let err = write(&state.join("status"), b"s").unwrap_err();
        assert!(err.contains("is not a directory"), "{err}");
        assert_eq!(
            remove(&state.join("manual")),
            Ok(()),
            "nothing can be there"
        );
        assert_eq!(fs::read_to_string(&state).unwrap(), "x");
    }

    #[test]
    fn the_date_reads_like_dates_default_output() {
        let d = local_date();
        // "Tue Mar  5 14:02:11 UTC 2024": weekday, month, day, time, zone, year.
        let words: Vec<&str> = d.split_whitespace().collect();
        assert_eq!(words.len(), 6, "{d}");
        assert_eq!(words[3].matches(':').count(), 2, "{d}");
        assert!(words[5].parse::<u32>().is_ok(), "{d}");
    }
}
