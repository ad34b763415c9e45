//! `[tickle]`: the connection list handed to the peer while serving, the peer's list kept, and
//! the tickle ACKs sent from it once this host has taken the VIP over (ARCHITECTURE.md, "Where
//! a new master learns whom to tickle").
//!
//! Nothing here can hold the loop: the socket never blocks, a wake-up reads at most
//! [`MAX_PER_WAKE`] datagrams, the connection tables are read at most once per
//! [`CHECK_EVERY`] with a bound ([`iscsi_ha_net::connections::MAX_TABLE_BYTES`]), and the
//! tickles are a few raw sends per listed connection.
//!
//! The peer's list is also kept in the state directory ([`PEER_LIST_FILE`], written when it
//! changes), so a daemon restarted between the peer's last push and the peer's death still
//! knows whom to tickle. One older than [`PEER_LIST_MAX_AGE`] is not read back: its
//! connections are long gone or were pushed again since.

use super::phase;
use iscsi_ha_core::config::Config;
use iscsi_ha_net::{established_on, ConnectionList, HandoverSocket, TickleSender};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often a serving host reads its connection table: a login is in the peer's hands at most
/// this long after it happened.
pub(crate) const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How often an unchanged list is sent again (a lost datagram, a peer restarted since).
pub(crate) const RESEND_EVERY: Duration = Duration::from_secs(5);
/// The most datagrams read per wake-up; more stay for the next.
const MAX_PER_WAKE: usize = 16;
/// Tickles per connection: one may be lost, and Linux answers out-of-window segments of one
/// connection at most every 500 ms (`tcp_invalid_ratelimit`), so more would not help at once.
const TICKLES_PER_CONNECTION: usize = 3;
/// Dropped datagrams and failed reads are logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// The peer's last list, in the state directory.
pub(crate) const PEER_LIST_FILE: &str = "tickle-peer-list.json";
/// How old a kept list may be to be read back at start.
pub(crate) const PEER_LIST_MAX_AGE: Duration = Duration::from_secs(600);
/// The kept list's size bound: [`iscsi_ha_net::handover::MAX_CONNECTIONS`] entries of at most
/// 60 bytes of JSON each, and the rest.
const PEER_LIST_CAP: u64 = 64 * 1024;

/// The peer's list as kept on disk.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct KeptList {
    server: SocketAddr,
    clients: Vec<SocketAddr>,
    /// When it came, milliseconds since the Unix epoch.
    received_unix_ms: u64,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Keeps `list` in `dir` (atomically: a crash leaves the old list or the new one).
fn save_peer_list(dir: &Path, list: &ConnectionList, now: SystemTime) -> Result<(), String> {
    let kept = KeptList {
        server: list.server,
        clients: list.clients.clone(),
        received_unix_ms: unix_ms(now),
    };
    let json = serde_json::to_vec(&kept).map_err(|e| e.to_string())?;
    crate::state_file::write_atomically(&dir.join(PEER_LIST_FILE), &json).map_err(|e| {
        format!(
            "cannot keep the peer's connection list in {}: {e}",
            dir.display()
        )
    })
}

/// The list kept in `dir` for `server`, with its age at `now`; `Ok(None)` when there is none,
/// it is older than [`PEER_LIST_MAX_AGE`] or for another server (the VIP changed).
fn load_peer_list(
    dir: &Path,
    server: SocketAddr,
    now: SystemTime,
) -> Result<Option<(ConnectionList, Duration)>, String> {
    let path = dir.join(PEER_LIST_FILE);
    let text = match crate::small_file::read(&path, PEER_LIST_CAP) {
        Ok(t) => t,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let kept: KeptList = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}: not a kept connection list ({e}); it is ignored and replaced by the peer's next one",
            path.display()
        )
    })?;
    let age = Duration::from_millis(unix_ms(now).saturating_sub(kept.received_unix_ms));
    if kept.server != server || age > PEER_LIST_MAX_AGE {
        return Ok(None);
    }
    Ok(Some((
        ConnectionList {
            server: kept.server,
            clients: kept.clients,
        },
        age,
    )))
}

/// The iSCSI port initiators connect to: the backend's portal's, else 3260.
fn iscsi_port(config: &Config) -> u16 {
    if config.file.target.backend == iscsi_ha_core::config::schema::TargetBackend::Lio {
        return crate::backend::lio_config(config).map_or(3260, |c| c.portal.port());
    }
    config
        .file
        .target
        .tgt_daemon()
        .portal
        .as_deref()
        .and_then(|p| p.rsplit_once(':'))
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or(3260)
}

/// A warning that goes out at most once per [`LOG_EVERY`], counting the ones held back.
#[derive(Debug, Default)]
struct Limited {
    last: Option<Instant>,
    held: u32,
}

impl Limited {
    fn warn(&mut self, what: &str) {
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            self.held = self.held.saturating_add(1);
            return;
        }
        tracing::warn!(held_back = self.held, "tickle: {what}");
        self.last = Some(now);
        self.held = 0;
    }
}

/// The `[tickle]` machinery of one daemon; absent when `[tickle]` is off.
#[derive(Debug)]
pub(crate) struct Handover {
    socket: HandoverSocket,
    /// The VIP and the iSCSI port: the connections listed and tickled.
    server: SocketAddr,
    /// What was last sent, and when.
    sent: Option<(Vec<SocketAddr>, Instant)>,
    next_check: Instant,
    /// The peer's last list, and when it came.
    peer_list: Option<(ConnectionList, Instant)>,
    /// Where the peer's list is kept across restarts.
    state_dir: PathBuf,
    sender: TickleSender,
    drops: Limited,
    failures: Limited,
}

impl Handover {
    /// The machinery for `config`, or `None` when `[tickle]` is off or cannot bind (logged:
    /// the daemon serves without tickles rather than not at all). The peer's list kept in
    /// `state_dir` by an earlier run is read back.
    pub(crate) fn start(config: &Config, state_dir: &Path) -> Option<Handover> {
        let section = &config.file.tickle;
        let ([a, b], true) = (
            <[std::net::IpAddr; 2]>::try_from(section.hosts.as_slice()).ok()?,
            section.enabled,
        ) else {
            return None;
        };
        match HandoverSocket::bind([a, b], section.port) {
            Ok(socket) => {
                tracing::info!(
                    local = %socket.local().map_or_else(|e| e.to_string(), |l| l.to_string()),
                    peer = %socket.peer(),
                    "tickle: connection lists go to the peer while serving"
                );
                let server = SocketAddr::new(config.vip.address(), iscsi_port(config));
                let peer_list = match load_peer_list(state_dir, server, SystemTime::now()) {
                    Ok(Some((list, age))) => {
                        tracing::info!(
                            connections = list.clients.len(),
                            age_s = age.as_secs(),
                            "tickle: the peer's connection list kept before this start"
                        );
                        Instant::now().checked_sub(age).map(|at| (list, at))
                    }
                    Ok(None) => None,
                    Err(e) => {
                        tracing::warn!("tickle: {e}");
                        None
                    }
                };
                Some(Handover {
                    socket,
                    server,
                    sent: None,
                    next_check: Instant::now(),
                    peer_list,
                    state_dir: state_dir.to_path_buf(),
                    sender: TickleSender::new(),
                    drops: Limited::default(),
                    failures: Limited::default(),
                })
            }
            Err(e) => {
                tracing::error!("tickle: off: {e}");
                None
            }
        }
    }

    /// The socket to poll for the peer's lists.
    pub(crate) fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.socket)
    }

    /// Keeps the newest good list from the peer; drops the rest, saying why.
    pub(crate) fn receive(&mut self) {
        for datagram in self.socket.receive(MAX_PER_WAKE) {
            match datagram {
                Ok(list) if list.server != self.server => self.drops.warn(&format!(
                    "dropped a connection list for {}, this host serves {}",
                    list.server, self.server
                )),
                Ok(list) => {
                    tracing::debug!(
                        connections = list.clients.len(),
                        "tickle: the peer's connection list"
                    );
                    let changed = self.peer_list.as_ref().is_none_or(|(l, _)| *l != list);
                    if changed {
                        if let Err(e) = save_peer_list(&self.state_dir, &list, SystemTime::now()) {
                            self.failures.warn(&e);
                        }
                    }
                    self.peer_list = Some((list, Instant::now()));
                }
                Err(e) => self.drops.warn(&format!("dropped a datagram: {e}")),
            }
        }
    }

    /// When the serving host next reads its connections.
    pub(crate) fn due(&self, serving: bool) -> Option<Instant> {
        serving.then_some(self.next_check)
    }

    /// While serving and due: reads this host's connections and sends them to the peer when
    /// they changed or [`RESEND_EVERY`] has passed.
    pub(crate) fn push(&mut self, serving: bool, now: Instant) {
        if !serving {
            self.sent = None;
            return;
        }
        if now < self.next_check {
            return;
        }
        self.next_check = now + CHECK_EVERY;
        let clients: Vec<SocketAddr> = match established_on(self.server, Path::new("/proc/net")) {
            Ok(found) => found.into_iter().map(|c| c.client).collect(),
            Err(e) => return self.failures.warn(&format!("cannot list connections: {e}")),
        };
        let fresh = self
            .sent
            .as_ref()
            .is_none_or(|(last, at)| *last != clients || now.duration_since(*at) >= RESEND_EVERY);
        if !fresh {
            return;
        }
        if clients.len() > iscsi_ha_net::handover::MAX_CONNECTIONS {
            self.failures.warn(&format!(
                "{} connections, only the first {} are handed to the peer",
                clients.len(),
                iscsi_ha_net::handover::MAX_CONNECTIONS
            ));
        }
        match self.socket.send(self.server, &clients) {
            Ok(()) => {
                if self.sent.as_ref().is_none_or(|(last, _)| *last != clients) {
                    tracing::debug!(connections = clients.len(), peer = %self.socket.peer(), "tickle: connection list sent");
                }
                self.sent = Some((clients, now));
            }
            Err(e) => self.failures.warn(&format!(
                "cannot send the connection list to {}: {e}",
                self.socket.peer()
            )),
        }
    }

    /// Tickles every connection of the peer's last list (once this host holds and has
    /// announced the VIP), then forgets the list: those connections are the dead master's.
    pub(crate) fn tickle(&mut self) {
        let Some((list, received)) = self.peer_list.take() else {
            tracing::info!("tickle: no connection list from the peer; nothing to tickle");
            return;
        };
        let (sent, failed) = phase::step(
            "tickle",
            |(_, failed): &(usize, usize)| *failed == 0,
            || {
                let (mut sent, mut failed) = (0, 0);
                for client in &list.clients {
                    for _ in 0..TICKLES_PER_CONNECTION {
                        match self.sender.send(self.server, *client) {
                            Ok(()) => sent += 1,
                            Err(e) => {
                                failed += 1;
                                self.failures.warn(&e.to_string());
                            }
                        }
                    }
                }
                (sent, failed)
            },
        );
        tracing::info!(
            connections = list.clients.len(),
            sent,
            failed,
            list_age_ms = u64::try_from(received.elapsed().as_millis()).unwrap_or(u64::MAX),
            "tickle: tickle ACKs sent to the peer's initiators"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> ConnectionList {
        ConnectionList {
            server: "10.0.0.100:3260".parse().unwrap(),
            clients: vec![
                "10.0.0.10:51000".parse().unwrap(),
                "[fd00::10]:52000".parse().unwrap(),
            ],
        }
    }

    /// A restart between the peer's push and the takeover keeps the list; an old one, one for
    /// another VIP, a garbage file and a FIFO are not read back (the last two say why).
    #[test]
    fn the_peers_list_survives_a_restart_while_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let l = list();
        assert_eq!(load_peer_list(dir.path(), l.server, now).unwrap(), None);
        save_peer_list(dir.path(), &l, now).unwrap();
        let later = now + Duration::from_secs(30);
        let (back, age) = load_peer_list(dir.path(), l.server, later)
            .unwrap()
            .unwrap();
        assert_eq!((back, age), (l.clone(), Duration::from_secs(30)));
        let stale = now + PEER_LIST_MAX_AGE + Duration::from_secs(1);
        assert_eq!(load_peer_list(dir.path(), l.server, stale).unwrap(), None);
        let other: SocketAddr = "10.0.0.101:3260".parse().unwrap();
        assert_eq!(load_peer_list(dir.path(), other, later).unwrap(), None);
        std::fs::write(dir.path().join(PEER_LIST_FILE), b"{not json").unwrap();
        let e = load_peer_list(dir.path(), l.server, later).unwrap_err();
        assert!(e.contains(PEER_LIST_FILE) && e.contains("ignored"), "{e}");
        std::fs::remove_file(dir.path().join(PEER_LIST_FILE)).unwrap();
        nix::unistd::mkfifo(
            &dir.path().join(PEER_LIST_FILE),
            nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
        )
        .unwrap();
        assert!(load_peer_list(dir.path(), l.server, later).is_err());
    }

    #[test]
    fn a_warning_goes_out_once_per_period_and_counts_the_rest() {
        let mut l = Limited::default();
        l.warn("a");
        l.warn("b");
        l.warn("c");
        assert_eq!(l.held, 2);
        l.last = Some(Instant::now() - LOG_EVERY);
        l.warn("d");
        assert_eq!(l.held, 0);
    }
}
