//! Neighbour advertisements as the initiator sees them: tcpdump in the initiator namespace is
//! the witness that a new master announced an IPv6 floating address (the unsolicited
//! advertisement of RFC 4861 §7.2.6, Override set, that moves the initiator's neighbour entry).

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::Ipv6Addr;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::{LabError, Result};
use crate::lab::Lab;

/// How long tcpdump may take to say it listens.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// One neighbour advertisement on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    /// The frame's Ethernet source, lower case (`52:54:00:99:00:02`).
    pub src_mac: String,
    /// The frame's Ethernet destination (`33:33:00:00:00:01` for all-nodes).
    pub dst_mac: String,
    /// The address the advertisement is for.
    pub target: Ipv6Addr,
    /// The Override flag: the receiver replaces the link-layer address it has.
    pub override_flag: bool,
    /// The Solicited flag: an answer to a solicitation, not an announcement.
    pub solicited: bool,
}

/// Reads the advertisements in the text of `tcpdump -e -t -n -vv` (other lines are skipped,
/// as are advertisement lines that lack a field: a witness that cannot read a frame has not
/// seen it). The first line of each packet reads
/// `SRC > DST, ethertype IPv6 (0x86dd), ...: ICMP6, neighbor advertisement, length 32, tgt is
/// fd99::100, Flags [override]`.
pub fn parse_adverts(text: &str) -> Vec<Advert> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Advert> {
    let (_, after) = line.split_once("neighbor advertisement")?;
    let mut words = line.split_whitespace();
    let src_mac = words.next()?.to_ascii_lowercase();
    (words.next()? == ">").then_some(())?;
    let dst_mac = words.next()?.trim_end_matches(',').to_ascii_lowercase();
    let target = after
        .split_once("tgt is ")?
        .1
        .split(|c: char| c == ',' || c.is_whitespace())
        .next()?
        .parse()
        .ok()?;
    let flags = after.split_once("Flags [")?.1.split_once(']')?.0;
    let has = |name: &str| flags.split(", ").any(|f| f == name);
    Some(Advert {
        src_mac,
        dst_mac,
        target,
        override_flag: has("override"),
        solicited: has("solicited"),
    })
}

/// tcpdump capturing neighbour advertisements on the initiator's `eth0` until stopped.
#[derive(Debug)]
pub struct AdvertWatch {
    child: Child,
    stdout: Option<JoinHandle<String>>,
    ended: bool,
}

impl AdvertWatch {
    /// Starts tcpdump in the initiator namespace and returns once it listens, so nothing sent
    /// after this returns is missed.
    pub fn start(lab: &Lab) -> Result<Self> {
        let mut cmd = lab.initiator_command("tcpdump")?;
        cmd.args([
            "-i",
            "eth0",
            "-e",
            "-t",
            "-n",
            "-l",
            "-vv",
            "icmp6 and ip6[40] == 136",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| {
            LabError::io(
                "starting tcpdump in the initiator namespace (is it installed?)",
                e,
            )
        })?;
        let mut stdout = child.stdout.take();
        let stdout = thread::spawn(move || {
            let mut text = String::new();
            if let Some(out) = stdout.as_mut() {
                let _ = out.read_to_string(&mut text);
            }
            text
        });
        let stderr = child.stderr.take();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut said = String::new();
            for line in stderr.into_iter().flat_map(|e| BufReader::new(e).lines()) {
                let Ok(line) = line else { break };
                // "tcpdump: listening on eth0, link-type EN10MB ..." (with -v; without it,
                // older versions leave out the "tcpdump: ").
                let listening = line.contains("listening on ");
                said.push_str(&line);
                said.push('\n');
                if listening {
                    let _ = tx.send(Ok(()));
                }
            }
            let _ = tx.send(Err(said));
        });
        let mut watch = Self {
            child,
            stdout: Some(stdout),
            ended: false,
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(())) => Ok(watch),
            Ok(Err(said)) => {
                watch.end();
                Err(LabError::Invalid(format!(
                    "tcpdump in the initiator namespace stopped before listening: {said}"
                )))
            }
            Err(_) => {
                watch.end();
                Err(LabError::Invalid(format!(
                    "tcpdump in the initiator namespace did not listen within {START_TIMEOUT:?}"
                )))
            }
        }
    }

    /// Stops tcpdump and returns the advertisements it saw, in order, with its whole text
    /// (for a failing test's message).
    pub fn stop(mut self) -> Result<(Vec<Advert>, String)> {
        self.end();
        let text = self
            .stdout
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        Ok((parse_adverts(&text), text))
    }

    /// SIGTERM (tcpdump flushes what it printed), then reaps it; once only, so a reaped
    /// process id that the system may reuse is never signalled.
    fn end(&mut self) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

impl Drop for AdvertWatch {
    fn drop(&mut self) {
        self.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packets as tcpdump 4.99 (`-e -t -n -vv`) prints them: the layout is that of a capture
    /// of a kernel's own unsolicited advertisement (`ndisc_notify`) between two namespaces,
    /// with the lab's addresses put in; the option lines under the first are not
    /// advertisements.
    const SEEN: &str = "\
52:54:00:99:00:02 > 33:33:00:00:00:01, ethertype IPv6 (0x86dd), length 86: (hlim 255, next-header ICMPv6 (58) payload length: 32) fd99::100 > ff02::1: [icmp6 sum ok] ICMP6, neighbor advertisement, length 32, tgt is fd99::100, Flags [override]
\t  destination link-address option (2), length 8 (1): 52:54:00:99:00:02
\t    0x0000:  5254 0099 0002
52:54:00:99:00:01 > 3a:bc:4e:11:22:33, ethertype IPv6 (0x86dd), length 86: (hlim 255, next-header ICMPv6 (58) payload length: 32) fd99::1 > fd99::10: [icmp6 sum ok] ICMP6, neighbor advertisement, length 32, tgt is fd99::1, Flags [solicited, override]
";

    #[test]
    fn advertisements_are_read_with_their_frame_source_target_and_flags() {
        let adverts = parse_adverts(SEEN);
        assert_eq!(
            adverts,
            vec![
                Advert {
                    src_mac: "52:54:00:99:00:02".into(),
                    dst_mac: "33:33:00:00:00:01".into(),
                    target: "fd99::100".parse().unwrap(),
                    override_flag: true,
                    solicited: false,
                },
                Advert {
                    src_mac: "52:54:00:99:00:01".into(),
                    dst_mac: "3a:bc:4e:11:22:33".into(),
                    target: "fd99::1".parse().unwrap(),
                    override_flag: true,
                    solicited: true,
                },
            ]
        );
    }

    #[test]
    fn an_advertisement_without_override_or_unreadable_is_not_taken_for_one() {
        let no_override = SEEN.lines().next().unwrap().replace("[override]", "[none]");
        assert!(!parse_adverts(&no_override)[0].override_flag);
        let cut = "52:54:00:99:00:02 > 33:33:00:00:00:01, ethertype IPv6: ICMP6, neighbor advertisement, length 32";
        assert!(parse_adverts(cut).is_empty());
        assert!(parse_adverts("fd99::10 > ff02::1: ICMP6, neighbor solicitation").is_empty());
    }
}
