//! A resource's running network configuration, kept so a connection can be made again.
//!
//! DRBD 8.4 forgets a connection's configuration (both addresses and the `net` options) when
//! it goes StandAlone, after a split brain as after `disconnect`, and this project does not
//! parse `drbd.conf`. The kernel tells the configuration while it holds it: every GET_STATUS
//! reply carries `CFG_CONTEXT{my_addr, peer_addr}` and the whole `NET_CONF` set (what
//! `drbdsetup show` prints; the shared secret only to CAP_SYS_ADMIN). [`NetConfig`] keeps
//! that, and [`connect_message`] replays it as the CONNECT request `drbdsetup connect` sends,
//! optionally with `discard_my_data` set.

use serde::{Deserialize, Serialize};

use crate::state::Dialect;
use crate::wire::attr::{parse_attrs, RawAttr, DRBD_GENLA_F_MANDATORY, NLA_F_NESTED};
use crate::wire::cmd::tla;
use crate::wire::sets::CfgContext;
use crate::wire::{DrbdAttrs, DrbdCommand, DrbdHeader, DrbdMessage, WireError, MINOR_NONE};

/// `NET_CONF` field `discard_my_data` (flag, invariant: only meaningful on CONNECT).
pub const NET_CONF_DISCARD_MY_DATA: u16 = 25;
/// `NET_CONF` field `tentative` (flag, invariant: `connect --tentative`, a dry run).
pub const NET_CONF_TENTATIVE: u16 = 28;
/// The highest `NET_CONF` field 8.4 declares mandatory (1..=29); 33 and 34 are optional.
const LAST_MANDATORY_FIELD: u16 = 29;

/// A connection's configuration as the kernel reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetConfig {
    /// The resource.
    pub resource: String,
    /// This node's replication address (raw `sockaddr_in`/`sockaddr_in6`).
    pub my_addr: Vec<u8>,
    /// The peer's replication address.
    pub peer_addr: Vec<u8>,
    /// The `NET_CONF` set's contents (its fields, as received).
    pub net_conf: Vec<u8>,
}

impl NetConfig {
    /// The configuration carried by one GET_STATUS reply (or DRBD_EVENT), when the reply
    /// names a resource with a configured connection.
    pub fn from_message(msg: &DrbdMessage) -> Option<Self> {
        let ctx = msg.attrs.cfg_context.as_ref()?;
        let net = msg.attrs.other.iter().find(|a| a.number == tla::NET_CONF)?;
        Some(NetConfig {
            resource: ctx.resource_name.clone()?,
            my_addr: ctx.my_addr.clone()?,
            peer_addr: ctx.peer_addr.clone()?,
            net_conf: net.value.clone(),
        })
    }

    /// The configuration of `resource` in a GET_STATUS dump, if it has one.
    pub fn from_messages(resource: &str, messages: &[DrbdMessage]) -> Option<Self> {
        messages
            .iter()
            .filter_map(NetConfig::from_message)
            .find(|c| c.resource == resource)
    }

    /// The `NET_CONF` fields (pad attributes skipped).
    pub fn fields(&self) -> Result<Vec<RawAttr>, WireError> {
        parse_attrs("NET_CONF", &self.net_conf)
    }

    /// Whether the kernel withheld the shared secret (it does so to callers without
    /// CAP_SYS_ADMIN; a replay would then connect without authentication and be refused by a
    /// peer that requires it).
    pub fn secret_withheld(&self) -> bool {
        self.fields()
            .map(|f| !f.iter().any(|a| a.number == 1))
            .unwrap_or(true)
    }

    /// The peer address as text (`10.99.0.2:7789`), for messages.
    pub fn peer_text(&self) -> String {
        sockaddr_text(&self.peer_addr)
    }
}

/// A raw `sockaddr_in`/`sockaddr_in6` as `addr:port` text (best effort, for messages).
pub fn sockaddr_text(raw: &[u8]) -> String {
    let family = raw.get(0..2).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    let port = raw.get(2..4).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let af_inet = u16::try_from(libc::AF_INET).unwrap_or(2);
    let af_inet6 = u16::try_from(libc::AF_INET6).unwrap_or(10);
    match (family, port) {
        (Some(f), Some(port)) if f == af_inet => match raw.get(4..8) {
            Some(a) => format!("{}.{}.{}.{}:{port}", a[0], a[1], a[2], a[3]),
            None => "?".to_string(),
        },
        (Some(f), Some(port)) if f == af_inet6 => match raw.get(8..24) {
            Some(a) => {
                let mut b = [0u8; 16];
                b.copy_from_slice(a);
                format!("[{}]:{port}", std::net::Ipv6Addr::from(b))
            }
            None => "?".to_string(),
        },
        _ => "?".to_string(),
    }
}

/// The CONNECT request replaying `config`, as `drbdsetup connect <res> <me> <peer> <net
/// options> [--discard-my-data]` sends it: minor `~0`, `CFG_CONTEXT{resource, my_addr,
/// peer_addr}`, `NET_CONF` with every option of the running configuration. The invariant
/// flags of the previous connect (`discard_my_data`, `tentative`) are not carried over;
/// `discard_my_data` is set only when asked.
pub fn connect_message(
    config: &NetConfig,
    discard_my_data: bool,
) -> Result<DrbdMessage, WireError> {
    let mut fields: Vec<RawAttr> = config
        .fields()?
        .into_iter()
        .filter(|a| a.number != NET_CONF_DISCARD_MY_DATA && a.number != NET_CONF_TENTATIVE)
        .map(|a| RawAttr {
            flags: if a.number <= LAST_MANDATORY_FIELD {
                DRBD_GENLA_F_MANDATORY
            } else {
                0
            },
            ..a
        })
        .collect();
    if discard_my_data {
        fields.push(RawAttr {
            number: NET_CONF_DISCARD_MY_DATA,
            flags: DRBD_GENLA_F_MANDATORY,
            value: vec![1],
        });
    }
    fields.sort_by_key(|a| a.number);
    let field_list: Vec<crate::wire::attr::Field> = fields.iter().map(Into::into).collect();
    let net_conf = crate::wire::attr::emit_fields(&field_list);
    Ok(DrbdMessage {
        cmd: DrbdCommand::Connect,
        version: Dialect::V84.family_version(),
        header: DrbdHeader {
            minor: MINOR_NONE,
            ret_code: 0,
        },
        attrs: DrbdAttrs {
            cfg_context: Some(CfgContext {
                resource_name: Some(config.resource.clone()),
                my_addr: Some(config.my_addr.clone()),
                peer_addr: Some(config.peer_addr.clone()),
                ..CfgContext::default()
            }),
            other: vec![RawAttr {
                number: tla::NET_CONF,
                flags: NLA_F_NESTED,
                value: net_conf,
            }],
            ..DrbdAttrs::default()
        },
    })
}
