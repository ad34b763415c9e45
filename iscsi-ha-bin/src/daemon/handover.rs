//! `[tickle]`: the connection list handed to the peer while serving, the peer's list kept, and
//! the tickle ACKs sent from it once this host has taken the VIP over (ARCHITECTURE.md, "Where
//! a new master learns whom to tickle").
//!
//! Nothing here can hold the loop: the socket never blocks, a wake-up reads at most
//! [`MAX_PER_WAKE`] datagrams, the connection tables are read at most once per
//! [`CHECK_EVERY`] with a bound ([`iscsi_ha_net::connections::MAX_TABLE_BYTES`]), and the
//! tickles are a few raw sends per listed connection.

use super::phase;
use iscsi_ha_core::config::Config;
use iscsi_ha_net::{established_on, ConnectionList, HandoverSocket, TickleSender};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

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
    sender: TickleSender,
    drops: Limited,
    failures: Limited,
}

impl Handover {
    /// The machinery for `config`, or `None` when `[tickle]` is off or cannot bind (logged:
    /// the daemon serves without tickles rather than not at all).
    pub(crate) fn start(config: &Config) -> Option<Handover> {
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
                Some(Handover {
                    socket,
                    server: SocketAddr::new(config.vip.address(), iscsi_port(config)),
                    sent: None,
                    next_check: Instant::now(),
                    peer_list: None,
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
