//! The TCP connections this host serves on one address and port, read from the kernel's
//! `/proc/net/tcp` and `/proc/net/tcp6` tables: the list a takeover needs to tickle the
//! initiators of a dead master (see [`crate::tickle`]).
//!
//! Both tables are read whatever the server's family, because a dual-stack listener shows
//! its IPv4 connections in `tcp6` as IPv4-mapped addresses; those come back as IPv4.

use std::fs::File;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::frame::canonical;

/// The most bytes read from one table (about 100,000 sockets). A storage host has far fewer;
/// a larger table is refused rather than read without bound.
pub const MAX_TABLE_BYTES: usize = 16 << 20;

/// The kernel's `TCP_ESTABLISHED`, as the `st` column prints it.
const STATE_ESTABLISHED: u8 = 0x01;

/// One TCP connection as this host's stack holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TcpConnection {
    /// This host's end: the VIP and the iSCSI port.
    pub server: SocketAddr,
    /// The initiator's end: where a tickle goes.
    pub client: SocketAddr,
}

/// Why the connection tables could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionsError {
    /// Opening or reading a table failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The table.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A table is larger than [`MAX_TABLE_BYTES`].
    #[error("{path} is larger than {limit} bytes")]
    TooLarge {
        /// The table.
        path: PathBuf,
        /// [`MAX_TABLE_BYTES`].
        limit: usize,
    },
    /// A line of a table is not in the kernel's format.
    #[error("line {line} of a /proc/net/tcp table is malformed: {why}")]
    Malformed {
        /// Its number, counting the header as 1.
        line: usize,
        /// What is wrong.
        why: String,
    },
}

/// The established connections whose local end is `server` (an IPv4-mapped address counts as
/// IPv4), from the `tcp` and `tcp6` tables under `proc_net`: `/proc/net` for the daemon's own
/// namespace, `/proc/thread-self/net` for the calling thread's. A missing `tcp6` (IPv6
/// disabled) holds no connection. Sorted, without duplicates.
pub fn established_on(
    server: SocketAddr,
    proc_net: &Path,
) -> Result<Vec<TcpConnection>, ConnectionsError> {
    let server = canonical(server);
    let mut found = Vec::new();
    for (name, ipv6) in [("tcp", false), ("tcp6", true)] {
        let path = proc_net.join(name);
        let text = match read_bounded(&path) {
            Ok(text) => text,
            Err(ConnectionsError::Read { source, .. })
                if ipv6 && source.kind() == io::ErrorKind::NotFound =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        found.extend(
            parse_table(&text, ipv6)?
                .into_iter()
                .filter(|c| c.server == server),
        );
    }
    found.sort();
    found.dedup();
    Ok(found)
}

fn read_bounded(path: &Path) -> Result<String, ConnectionsError> {
    let read_error = |source| ConnectionsError::Read {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    // One byte over the limit tells a table at the limit from a larger one.
    let limit = u64::try_from(MAX_TABLE_BYTES).unwrap_or(u64::MAX);
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() > MAX_TABLE_BYTES {
        return Err(ConnectionsError::TooLarge {
            path: path.to_owned(),
            limit: MAX_TABLE_BYTES,
        });
    }
    String::from_utf8(bytes).map_err(|e| ConnectionsError::Malformed {
        line: 0,
        why: format!("not UTF-8: {e}"),
    })
}

/// The established connections in the text of `/proc/net/tcp` (`ipv6` false) or
/// `/proc/net/tcp6` (`ipv6` true); addresses canonical (IPv4-mapped ones as IPv4). The kernel
/// prints each address as the 32-bit words of its network-order bytes in host order, so the
/// words are read back with the host's byte order (`seq_printf("%08X", __be32)` in
/// `tcp4_seq_show` / `get_tcp6_sock`).
pub fn parse_table(text: &str, ipv6: bool) -> Result<Vec<TcpConnection>, ConnectionsError> {
    let mut out = Vec::new();
    // The first line is the column header.
    for (index, line) in text.lines().enumerate().skip(1) {
        let number = index.saturating_add(1);
        let malformed = |why: String| ConnectionsError::Malformed { line: number, why };
        let mut fields = line.split_whitespace();
        let (Some(_slot), Some(local), Some(remote), Some(state)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(malformed(format!("too few columns: {line:?}")));
        };
        let state = u8::from_str_radix(state, 16)
            .map_err(|e| malformed(format!("state {state:?}: {e}")))?;
        if state != STATE_ESTABLISHED {
            continue;
        }
        out.push(TcpConnection {
            server: canonical(endpoint(local, ipv6).map_err(malformed)?),
            client: canonical(endpoint(remote, ipv6).map_err(malformed)?),
        });
    }
    Ok(out)
}

/// `ADDRESS:PORT` in the table's hex.
fn endpoint(text: &str, ipv6: bool) -> Result<SocketAddr, String> {
    let (address, port) = text
        .split_once(':')
        .ok_or_else(|| format!("no port in {text:?}"))?;
    let port = u16::from_str_radix(port, 16).map_err(|e| format!("port in {text:?}: {e}"))?;
    let words = if ipv6 { 4 } else { 1 };
    if address.len() != words * 8 || !address.is_ascii() {
        return Err(format!("address {address:?} is not {words} hex words"));
    }
    let mut bytes = Vec::with_capacity(words * 4);
    for chunk in address.as_bytes().chunks(8) {
        let hex = std::str::from_utf8(chunk).map_err(|e| e.to_string())?;
        let word = u32::from_str_radix(hex, 16).map_err(|e| format!("{address:?}: {e}"))?;
        bytes.extend_from_slice(&word.to_ne_bytes());
    }
    let ip: IpAddr = if ipv6 {
        let octets: [u8; 16] = bytes.try_into().map_err(|_| "not 16 bytes".to_owned())?;
        Ipv6Addr::from(octets).into()
    } else {
        let octets: [u8; 4] = bytes.try_into().map_err(|_| "not 4 bytes".to_owned())?;
        Ipv4Addr::from(octets).into()
    };
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};

    use super::*;

    /// An address as the kernel prints it on this host.
    fn hex4(ip: Ipv4Addr) -> String {
        format!("{:08X}", u32::from_ne_bytes(ip.octets()))
    }

    fn hex6(ip: Ipv6Addr) -> String {
        ip.octets()
            .chunks(4)
            .map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
            .collect()
    }

    const HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";

    fn row(local: String, remote: String, state: &str) -> String {
        format!("   0: {local} {remote} {state} 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 20 4 30 10 -1")
    }

    #[test]
    fn only_established_rows_are_kept_and_addresses_read_back() {
        let vip = Ipv4Addr::new(10, 213, 0, 100);
        let text = [
            HEADER.to_owned(),
            // The listener (0A) and a closing connection (08) are no one to tickle.
            row(
                format!("{}:0CBC", hex4(Ipv4Addr::UNSPECIFIED)),
                format!("{}:0000", hex4(Ipv4Addr::UNSPECIFIED)),
                "0A",
            ),
            row(
                format!("{}:0CBC", hex4(vip)),
                format!("{}:C738", hex4(Ipv4Addr::new(10, 213, 0, 3))),
                "01",
            ),
            row(
                format!("{}:0CBC", hex4(vip)),
                format!("{}:C739", hex4(Ipv4Addr::new(10, 213, 0, 4))),
                "08",
            ),
        ]
        .join("\n");
        assert_eq!(
            parse_table(&text, false).unwrap(),
            vec![TcpConnection {
                server: "10.213.0.100:3260".parse().unwrap(),
                client: "10.213.0.3:51000".parse().unwrap(),
            }]
        );
    }

    #[test]
    fn ipv6_rows_read_back_and_mapped_ones_become_ipv4() {
        let vip: Ipv6Addr = "fd00:213::100".parse().unwrap();
        let client: Ipv6Addr = "fd00:213::3".parse().unwrap();
        let mapped = Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped();
        let text = [
            HEADER.to_owned(),
            row(
                format!("{}:0CBC", hex6(vip)),
                format!("{}:9C40", hex6(client)),
                "01",
            ),
            row(
                format!("{}:0CBC", hex6(mapped)),
                format!("{}:9C41", hex6(Ipv4Addr::new(10, 0, 0, 2).to_ipv6_mapped())),
                "01",
            ),
        ]
        .join("\n");
        assert_eq!(
            parse_table(&text, true).unwrap(),
            vec![
                TcpConnection {
                    server: "[fd00:213::100]:3260".parse().unwrap(),
                    client: "[fd00:213::3]:40000".parse().unwrap(),
                },
                TcpConnection {
                    server: "10.0.0.1:3260".parse().unwrap(),
                    client: "10.0.0.2:40001".parse().unwrap(),
                },
            ]
        );
    }

    #[test]
    fn malformed_rows_are_errors_not_panics() {
        for bad in [
            "   0: 0100007F 0100007F:0001 01",
            "   0: 0100007F:0CBC 0100007F:0001 ZZ",
            "   0: 0100007:0CBC 0100007F:0001 01",
            "   0: 0100007F:0CBC 0100007F:10000 01",
            "   0: 0100007F:0CBC",
            "   0: é100007F:0CBC 0100007F:0001 01",
        ] {
            let text = format!("{HEADER}\n{bad}");
            assert!(
                matches!(
                    parse_table(&text, false),
                    Err(ConnectionsError::Malformed { line: 2, .. })
                ),
                "{bad:?} was accepted"
            );
        }
        // A table with only its header (or nothing) holds no connection.
        assert_eq!(parse_table(HEADER, false).unwrap(), vec![]);
        assert_eq!(parse_table("", true).unwrap(), vec![]);
    }

    #[test]
    fn the_kernels_own_tables_show_a_live_connection_on_loopback() {
        for bind in ["127.0.0.1:0", "[::1]:0"] {
            let listener = TcpListener::bind(bind).unwrap();
            let server = listener.local_addr().unwrap();
            let stream = TcpStream::connect(server).unwrap();
            let (_accepted, _) = listener.accept().unwrap();
            let found = established_on(server, Path::new("/proc/thread-self/net")).unwrap();
            assert_eq!(
                found,
                vec![TcpConnection {
                    server,
                    client: stream.local_addr().unwrap(),
                }],
                "{bind}"
            );
        }
    }

    #[test]
    fn a_missing_table_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = established_on("10.0.0.1:3260".parse().unwrap(), dir.path()).unwrap_err();
        assert!(
            matches!(&err, ConnectionsError::Read { path, .. } if path.ends_with("tcp")),
            "{err}"
        );
        // Without tcp6 (IPv6 disabled) the IPv4 table alone is read.
        std::fs::write(dir.path().join("tcp"), HEADER).unwrap();
        assert_eq!(
            established_on("10.0.0.1:3260".parse().unwrap(), dir.path()).unwrap(),
            vec![]
        );
    }

    #[test]
    fn a_table_over_the_bound_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tcp");
        std::fs::write(&path, vec![b' '; MAX_TABLE_BYTES + 1]).unwrap();
        assert!(matches!(
            read_bounded(&path),
            Err(ConnectionsError::TooLarge { .. })
        ));
        std::fs::write(&path, vec![b' '; MAX_TABLE_BYTES]).unwrap();
        assert!(read_bounded(&path).is_ok());
    }
}
