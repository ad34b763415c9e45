//! The host end of a VM's command channel: a unix socket that qemu connects to the guest's
//! virtio-serial port `lab.ctl`, where `guest/agent` answers.
//!
//! Framing (one request line, one reply header line plus length-counted payload):
//! ```text
//! host  -> guest   P <id>\n                          ping
//! guest -> host    P <id>\n
//! host  -> guest   X <id> <timeout_s> <base64 script>\n
//! guest -> host    R <id> <status> <outlen> <errlen>\n <stdout bytes> <stderr bytes>
//! ```
//! Replies to an older id (a command the host gave up on) are read and dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;

/// Exit status the guest reports for a command killed by its timeout (128 + SIGKILL).
const KILLED_STATUS: i32 = 137;

/// The output of a command run in a VM or in the initiator namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// The exit status (128 + signal when killed by a signal).
    pub status: i32,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

impl CommandOutput {
    /// Whether the command exited 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// Standard output as text (lossy UTF-8).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard error as text (lossy UTF-8).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// One frame from the guest.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReplyHeader {
    /// `P <id>`
    Pong(u64),
    /// `R <id> <status> <outlen> <errlen>`
    Result {
        id: u64,
        status: i32,
        out_len: usize,
        err_len: usize,
    },
}

/// Parses a reply header line (without its newline); `None` for a line that is not one.
pub(crate) fn parse_reply_header(line: &str) -> Option<ReplyHeader> {
    let mut parts = line.split_whitespace();
    match parts.next()? {
        "P" => {
            let id = parts.next()?.parse().ok()?;
            parts.next().is_none().then_some(ReplyHeader::Pong(id))
        }
        "R" => {
            let id = parts.next()?.parse().ok()?;
            let status = parts.next()?.parse().ok()?;
            let out_len = parts.next()?.parse().ok()?;
            let err_len = parts.next()?.parse().ok()?;
            parts.next().is_none().then_some(ReplyHeader::Result {
                id,
                status,
                out_len,
                err_len,
            })
        }
        _ => None,
    }
}

/// Renders a command request line.
pub(crate) fn request_line(id: u64, timeout: Duration, script: &str) -> String {
    let secs = timeout.as_secs().max(1);
    let b64 = base64::engine::general_purpose::STANDARD.encode(script);
    format!("X {id} {secs} {b64}\n")
}

/// Why a channel call failed (the node wraps it into a `LabError`).
#[derive(Debug)]
pub(crate) enum ChannelFailure {
    /// No reply before the deadline.
    Timeout,
    /// The command ran into its guest-side timeout and was killed.
    Killed,
    /// The socket broke or the guest sent garbage.
    Broken(String),
}

/// A connected channel.
#[derive(Debug)]
pub(crate) struct Channel {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
    next_id: u64,
}

/// Extra time the host waits beyond a command's own timeout before declaring the agent dead.
const HOST_GRACE: Duration = Duration::from_secs(5);

impl Channel {
    /// Connects to qemu's socket and waits until the agent answers a ping (or `deadline`).
    pub(crate) fn connect(path: &Path, deadline: Instant) -> Result<Self, ChannelFailure> {
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                // qemu creates the socket a moment after it starts.
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(ChannelFailure::Broken(format!(
                        "connecting {}: {e}",
                        path.display()
                    )))
                }
            }
        };
        let reader = stream
            .try_clone()
            .map_err(|e| ChannelFailure::Broken(format!("cloning the socket: {e}")))?;
        let mut channel = Self {
            writer: stream,
            reader: BufReader::new(reader),
            next_id: u64::from(std::process::id()) << 20,
        };
        channel.handshake(deadline)?;
        Ok(channel)
    }

    /// Pings every second until a pong arrives: data sent before the agent opens the port is
    /// discarded by the guest's driver, so a single ping could be lost.
    fn handshake(&mut self, deadline: Instant) -> Result<(), ChannelFailure> {
        loop {
            let id = self.take_id();
            self.send(&format!("P {id}\n"))?;
            let round = (Instant::now() + Duration::from_secs(1)).min(deadline);
            match self.wait_for(id, round) {
                Ok(_) => return Ok(()),
                Err(ChannelFailure::Timeout) if Instant::now() < deadline => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn take_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn send(&mut self, text: &str) -> Result<(), ChannelFailure> {
        self.writer
            .write_all(text.as_bytes())
            .map_err(|e| ChannelFailure::Broken(format!("writing: {e}")))
    }

    /// Runs `script` with a guest-side `timeout`.
    pub(crate) fn exec(
        &mut self,
        script: &str,
        timeout: Duration,
    ) -> Result<CommandOutput, ChannelFailure> {
        let id = self.take_id();
        let started = Instant::now();
        self.send(&request_line(id, timeout, script))?;
        let out = self
            .wait_for(id, started + timeout + HOST_GRACE)?
            .ok_or_else(|| ChannelFailure::Broken("pong where a result was due".into()))?;
        if out.status == KILLED_STATUS && started.elapsed() >= timeout {
            return Err(ChannelFailure::Killed);
        }
        Ok(out)
    }

    /// Reads frames until the one for `id`; `Ok(None)` for a pong.
    fn wait_for(
        &mut self,
        id: u64,
        deadline: Instant,
    ) -> Result<Option<CommandOutput>, ChannelFailure> {
        loop {
            let line = self.read_line(deadline)?;
            let Some(header) = parse_reply_header(line.trim_end()) else {
                continue;
            };
            match header {
                ReplyHeader::Pong(got) if got == id => return Ok(None),
                ReplyHeader::Pong(_) => {}
                ReplyHeader::Result {
                    id: got,
                    status,
                    out_len,
                    err_len,
                } => {
                    let stdout = self.read_exact(out_len, deadline)?;
                    let stderr = self.read_exact(err_len, deadline)?;
                    if got == id {
                        return Ok(Some(CommandOutput {
                            status,
                            stdout,
                            stderr,
                        }));
                    }
                }
            }
        }
    }

    fn set_deadline(&mut self, deadline: Instant) -> Result<(), ChannelFailure> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ChannelFailure::Timeout);
        }
        self.reader
            .get_ref()
            .set_read_timeout(Some(left))
            .map_err(|e| ChannelFailure::Broken(format!("setting a timeout: {e}")))
    }

    fn read_line(&mut self, deadline: Instant) -> Result<String, ChannelFailure> {
        let mut buf = Vec::new();
        loop {
            self.set_deadline(deadline)?;
            match self.reader.read_until(b'\n', &mut buf) {
                Ok(0) => return Err(ChannelFailure::Broken("qemu closed the socket".into())),
                Ok(_) if buf.ends_with(b"\n") => {
                    return Ok(String::from_utf8_lossy(&buf).into_owned())
                }
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {}
                Err(e) => return Err(ChannelFailure::Broken(format!("reading: {e}"))),
            }
        }
    }

    fn read_exact(&mut self, len: usize, deadline: Instant) -> Result<Vec<u8>, ChannelFailure> {
        let mut buf = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            self.set_deadline(deadline)?;
            match self.reader.read(&mut buf[filled..]) {
                Ok(0) => return Err(ChannelFailure::Broken("qemu closed the socket".into())),
                Ok(n) => filled += n,
                Err(e) if is_timeout(&e) => {}
                Err(e) => return Err(ChannelFailure::Broken(format!("reading: {e}"))),
            }
        }
        Ok(buf)
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock
            | std::io::ErrorKind::TimedOut
            | std::io::ErrorKind::Interrupted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_headers_parse() {
        assert_eq!(parse_reply_header("P 7"), Some(ReplyHeader::Pong(7)));
        assert_eq!(
            parse_reply_header("R 9 1 12 0"),
            Some(ReplyHeader::Result {
                id: 9,
                status: 1,
                out_len: 12,
                err_len: 0
            })
        );
    }

    #[test]
    fn garbage_lines_are_not_headers() {
        for line in [
            "",
            "hello",
            "R 1 2 3",
            "R x 0 0 0",
            "P",
            "P 1 2",
            "R 1 0 0 0 9",
            "R 1 0 -1 0",
        ] {
            assert_eq!(parse_reply_header(line), None, "{line:?}");
        }
    }

    #[test]
    fn request_line_carries_the_script_in_base64_on_one_line() {
        let line = request_line(5, Duration::from_millis(200), "echo 'a b'\nexit 3\n");
        assert!(line.starts_with("X 5 1 "), "{line}");
        assert_eq!(line.matches('\n').count(), 1);
        let b64 = line.trim_end().rsplit(' ').next().unwrap();
        let script = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(script, b"echo 'a b'\nexit 3\n");
    }

    /// A fake agent on a socketpair: stale replies are skipped, payloads are length-counted.
    #[test]
    fn exec_skips_stale_replies_and_reads_binary_payloads() {
        let (host, mut guest) = UnixStream::pair().unwrap();
        let reader = BufReader::new(host.try_clone().unwrap());
        let mut channel = Channel {
            writer: host,
            reader,
            next_id: 100,
        };
        let agent = std::thread::spawn(move || {
            let mut line = String::new();
            BufReader::new(guest.try_clone().unwrap())
                .read_line(&mut line)
                .unwrap();
            assert!(line.starts_with("X 101 "));
            guest.write_all(b"noise\nR 99 0 3 0\nold").unwrap();
            guest.write_all(b"R 101 2 4 3\n\0\n\xffxerr").unwrap();
        });
        let out = channel.exec("whatever", Duration::from_secs(5)).unwrap();
        agent.join().unwrap();
        assert_eq!(out.status, 2);
        assert_eq!(out.stdout, b"\0\n\xffx");
        assert_eq!(out.stderr, b"err");
    }
}
