//! The smaller `show` replies: accounts, connections, a target's iSCSI parameters, portals.

use super::{split_key, Line};

/// Parses `show account`: `Account list:` and one user per line. Returns the users and the
/// lines not recognised.
pub fn parse_accounts(text: &str) -> (Vec<String>, Vec<String>) {
    let mut users = Vec::new();
    let mut unknown = Vec::new();
    for raw in text.lines() {
        if raw.trim().is_empty() {
            continue;
        }
        let line = Line::new(raw);
        match (line.level, line.text) {
            (0, "Account list:") => {}
            (1, user) => users.push(user.to_string()),
            _ => unknown.push(raw.to_string()),
        }
    }
    (users, unknown)
}

/// One connection as `show conn --tid N` lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// Session id (TSIH).
    pub sid: u64,
    /// Connection id.
    pub cid: u32,
    /// Initiator name.
    pub initiator: Option<String>,
    /// Initiator address.
    pub address: Option<String>,
}

/// Parses `show conn --tid N`. Returns the connections and the lines not recognised.
pub fn parse_connections(text: &str) -> (Vec<ConnectionInfo>, Vec<String>) {
    let mut out: Vec<ConnectionInfo> = Vec::new();
    let mut unknown = Vec::new();
    let mut sid: Option<u64> = None;
    for raw in text.lines() {
        if raw.trim().is_empty() {
            continue;
        }
        let line = Line::new(raw);
        let known = match (line.level, split_key(line.text)) {
            (0, Some(("Session", v))) => {
                sid = v.parse().ok();
                sid.is_some()
            }
            (1, Some(("Connection", v))) => match (sid, v.parse()) {
                (Some(sid), Ok(cid)) => {
                    out.push(ConnectionInfo {
                        sid,
                        cid,
                        ..ConnectionInfo::default()
                    });
                    true
                }
                _ => false,
            },
            (2, Some(("Initiator", v))) => out
                .last_mut()
                .map(|c| c.initiator = Some(v.to_string()))
                .is_some(),
            (2, Some(("IP Address", v))) => out
                .last_mut()
                .map(|c| c.address = Some(v.to_string()))
                .is_some(),
            _ => false,
        };
        if !known {
            unknown.push(raw.to_string());
        }
    }
    (out, unknown)
}

/// Parses `show target --tid N`: `Key=Value` lines. Returns the pairs and the lines not
/// recognised.
pub fn parse_params(text: &str) -> (Vec<(String, String)>, Vec<String>) {
    let mut pairs = Vec::new();
    let mut unknown = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        match line.split_once('=') {
            Some((k, v)) if !k.is_empty() => pairs.push((k.to_string(), v.to_string())),
            _ => unknown.push(line.to_string()),
        }
    }
    (pairs, unknown)
}

/// Parses `show portal`: `Portal: addr:port,tpgt` lines. Returns the portals (text after
/// `Portal: `) and the lines not recognised.
pub fn parse_portals(text: &str) -> (Vec<String>, Vec<String>) {
    let mut portals = Vec::new();
    let mut unknown = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        match line.strip_prefix("Portal: ") {
            Some(p) => portals.push(p.to_string()),
            None => unknown.push(line.to_string()),
        }
    }
    (portals, unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_captured_lists() {
        let (users, unknown) =
            parse_accounts(include_str!("../../../fixtures/tgt/show-account.txt"));
        assert_eq!(users, vec!["tgtout".to_string(), "alice".to_string()]);
        assert!(unknown.is_empty());
        assert_eq!(parse_accounts(""), (vec![], vec![]));

        let (conns, unknown) =
            parse_connections(include_str!("../../../fixtures/tgt/show-conn.txt"));
        assert!(unknown.is_empty(), "{unknown:?}");
        assert_eq!(
            conns,
            vec![ConnectionInfo {
                sid: 1,
                cid: 0,
                initiator: Some("iqn.2024-01.com.example:init1".into()),
                address: Some("127.0.0.1".into()),
            }]
        );

        let (params, unknown) =
            parse_params(include_str!("../../../fixtures/tgt/show-target-params.txt"));
        assert!(unknown.is_empty(), "{unknown:?}");
        assert!(params.contains(&("MaxRecvDataSegmentLength".into(), "8192".into())));
        assert!(params.contains(&("nop_interval".into(), "0".into())));

        let (portals, unknown) =
            parse_portals(include_str!("../../../fixtures/tgt/show-portal.txt"));
        assert!(unknown.is_empty());
        assert_eq!(portals, vec!["127.0.0.1:3299,1".to_string()]);
    }

    #[test]
    fn keeps_what_it_does_not_know() {
        let (conns, unknown) = parse_connections("    Connection: 1\nSession: x\n");
        assert!(conns.is_empty());
        assert_eq!(unknown.len(), 2);
        let (users, unknown) = parse_accounts("Accounts?\n        deep\n");
        assert!(users.is_empty());
        assert_eq!(unknown.len(), 2);
    }
}
