//! `--op show --mode system`: daemon state, drivers, backing stores, device types, iSNS.

use super::{split_key, Line};

/// The daemon as tgtd shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemInfo {
    /// `ready` or `offline`.
    pub state: Option<String>,
    /// Debug logging.
    pub debug: Option<bool>,
    /// Drivers and their state (`iscsi: ready`, `iser: error`).
    pub llds: Vec<(String, String)>,
    /// Backing store types, with their open flags when listed.
    pub backing_stores: Vec<String>,
    /// Device types.
    pub device_types: Vec<String>,
    /// iSNS settings (`iSNS=Off`...).
    pub isns: Vec<(String, String)>,
    /// Lines the parser did not recognise.
    pub unknown: Vec<String>,
}

impl SystemInfo {
    /// The state of driver `name`, if listed.
    pub fn lld_state(&self, name: &str) -> Option<&str> {
        self.llds
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.as_str())
    }
}

/// Parses the reply to `show system`. Total: unknown lines are kept.
pub fn parse_system(text: &str) -> SystemInfo {
    let mut info = SystemInfo::default();
    let mut section = "";
    for raw in text.lines() {
        if raw.trim().is_empty() {
            continue;
        }
        let line = Line::new(raw);
        if line.level == 0 {
            match line.text.strip_suffix(':') {
                Some(name) => section = name,
                None => info.unknown.push(raw.to_string()),
            }
            continue;
        }
        let known = line.level == 1
            && match section {
                "System" => match split_key(line.text) {
                    Some(("State", v)) => {
                        info.state = Some(v.to_string());
                        true
                    }
                    Some(("debug", v)) => {
                        info.debug = match v {
                            "on" => Some(true),
                            "off" => Some(false),
                            _ => None,
                        };
                        true
                    }
                    _ => false,
                },
                "LLDs" => match split_key(line.text) {
                    Some((name, state)) => {
                        info.llds.push((name.to_string(), state.to_string()));
                        true
                    }
                    None => false,
                },
                "Backing stores" => {
                    info.backing_stores.push(line.text.to_string());
                    true
                }
                "Device types" => {
                    info.device_types.push(line.text.to_string());
                    true
                }
                "iSNS" => match line.text.split_once('=') {
                    Some((k, v)) => {
                        info.isns.push((k.to_string(), v.to_string()));
                        true
                    }
                    None => false,
                },
                _ => false,
            };
        if !known {
            info.unknown.push(raw.to_string());
        }
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../../fixtures/tgt/show-system.txt");

    #[test]
    fn parses_the_captured_show() {
        let info = parse_system(FIXTURE);
        assert_eq!(info.state.as_deref(), Some("ready"));
        assert_eq!(info.debug, Some(false));
        assert_eq!(info.lld_state("iscsi"), Some("ready"));
        assert_eq!(info.lld_state("iser"), Some("error"));
        assert!(info
            .backing_stores
            .contains(&"rdwr (bsoflags sync:direct)".to_string()));
        assert!(info.device_types.contains(&"disk".to_string()));
        assert_eq!(info.isns.first(), Some(&("iSNS".into(), "Off".into())));
        assert!(info.unknown.is_empty(), "{:?}", info.unknown);
    }
}
