//! What a reload of the configuration file may change in a running daemon. A changed VIP,
//! resource list or target backend is refused: the daemon would go on holding the old
//! address, Primary role or exported target with nothing left to release them. A changed
//! `[role]` (or the `[xapi]` keys pool.conf's cross-check uses) rebuilds the role source; the
//! target, monitor and alert-screen settings apply at the next pass; the sections read only at
//! start are named, so the operator knows a restart is needed for them.

use super::Config;

/// How a new configuration compares with the running one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reload {
    /// What changed that a reload must refuse, as the operator would name it.
    pub refused: Vec<&'static str>,
    /// Whether the role source must be rebuilt (`[role]`, `[xapi] xe`, `[xapi] inventory`).
    pub role_source: bool,
    /// The sections that changed and apply only at the next start.
    pub at_restart: Vec<&'static str>,
}

impl Reload {
    /// Compares the running configuration `old` with the file's new one.
    pub fn between(old: &Config, new: &Config) -> Self {
        let mut refused = Vec::new();
        if old.vip != new.vip {
            refused.push("[vip] address, prefix or interface");
        }
        if old.resources != new.resources {
            refused.push("[replication] resources");
        }
        if old.file.target.backend != new.file.target.backend {
            // The new backend would not know the old one's target, which would stay exported.
            refused.push("[target] backend");
        }
        let (old, new) = (&old.file, &new.file);
        let role_source = old.role != new.role
            || old.xapi.xe != new.xapi.xe
            || old.xapi.inventory != new.xapi.inventory;
        let vip_timings = |v: &super::schema::VipSection| {
            (
                v.announce_count,
                v.announce_interval,
                v.refresh_after,
                v.probe_timeout,
                v.icmp_check,
            )
        };
        let at_restart = [
            (
                old.target.tgt_daemon() != new.target.tgt_daemon(),
                "[target.tgt]",
            ),
            (old.target.lio != new.target.lio, "[target.lio]"),
            (
                vip_timings(&old.vip) != vip_timings(&new.vip),
                "[vip] timings",
            ),
            (old.alerts.mail != new.alerts.mail, "[alerts.mail]"),
            (old.logging != new.logging, "[logging]"),
            (old.metrics != new.metrics, "[metrics]"),
            (old.ha_lizard != new.ha_lizard, "[ha_lizard]"),
            (old.tickle != new.tickle, "[tickle]"),
        ]
        .into_iter()
        .filter_map(|(changed, name)| changed.then_some(name))
        .collect();
        Self {
            refused,
            role_source,
            at_restart,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;

    /// A static master with one resource, one LUN and a VIP.
    fn base() -> String {
        crate::tests::fakes::config_text(&["r0"])
    }

    fn parse(text: &str) -> Config {
        Config::parse(
            Source {
                text,
                origin: "test",
            },
            None,
        )
        .unwrap()
    }

    /// The base file with `from` (which must be there) replaced by `to`.
    fn changed(from: &str, to: &str) -> Config {
        let base = base();
        assert!(base.contains(from), "{from}");
        parse(&base.replacen(from, to, 1))
    }

    #[test]
    fn the_same_file_changes_nothing() {
        assert_eq!(
            Reload::between(&parse(&base()), &parse(&base())),
            Reload::default()
        );
    }

    #[test]
    fn what_a_running_daemon_holds_is_refused_each_named() {
        let old = parse(&base());
        let cases = [
            (
                changed("10.0.0.100/24", "10.0.0.101/24"),
                "[vip] address, prefix or interface",
            ),
            (
                changed("interface = \"eth0\"", "interface = \"eth1\""),
                "[vip] address, prefix or interface",
            ),
            (
                changed("resources = [\"r0\"]", "resources = [\"r0\", \"r1\"]"),
                "[replication] resources",
            ),
            (
                changed("[target]\n", "[target]\nbackend = \"lio\"\n"),
                "[target] backend",
            ),
        ];
        for (new, name) in cases {
            let reload = Reload::between(&old, &new);
            assert_eq!(reload.refused, [name]);
        }
    }

    #[test]
    fn a_changed_role_or_its_xapi_keys_rebuilds_the_role_source() {
        let old = parse(&base());
        for new in [
            changed("role = \"master\"", "role = \"slave\""),
            parse(&format!("{}[xapi]\nxe = \"/opt/xe\"\n", base())),
            parse(&format!(
                "{}[xapi]\ninventory = \"/tmp/inventory\"\n",
                base()
            )),
        ] {
            let reload = Reload::between(&old, &new);
            assert!(reload.role_source, "{new:?}");
            assert!(reload.refused.is_empty() && reload.at_restart.is_empty());
        }
    }

    #[test]
    fn sections_read_only_at_start_are_named_and_the_rest_applies_now() {
        let old = parse(&base());
        let cases = [
            ("[target.tgt]\nkeep_running = false\n", "[target.tgt]"),
            ("[vip]\n", "[vip] timings"),
            ("[logging]\nlevel = \"debug\"\n", "[logging]"),
            ("[tickle]\nenabled = false\n", "[tickle]"),
        ];
        for (extra, name) in cases {
            let text = if extra == "[vip]\n" {
                base().replacen("[vip]\n", "[vip]\nannounce_count = 9\n", 1)
            } else {
                format!("{}{extra}", base())
            };
            let reload = Reload::between(&old, &parse(&text));
            assert_eq!(reload.at_restart, [name], "{extra}");
            assert!(reload.refused.is_empty());
        }
        // The monitor's limits apply at the next pass: nothing to say.
        let monitor = changed("max_starts = 3", "max_starts = 9");
        assert_eq!(Reload::between(&old, &monitor), Reload::default());
    }
}
