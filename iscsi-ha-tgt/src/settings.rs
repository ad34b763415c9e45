//! What of the core's `[target]` tgtd cannot take. The core holds a LUN's identity only to
//! what SCSI limits; tgtd keeps less (`SCSI_ID_LEN` and `SCSI_SN_LEN`, 36 bytes) and splits
//! its request parameters on ',' and '=', so a value it could not carry whole is refused at
//! its key by `check-config`, the daemon's start and a reload, before any request is built
//! (the adapter's guards refuse the same when serving: [`guard::check_identity_field`]).

use iscsi_ha_core::config::{KeyPath, SettingProblem};
use iscsi_ha_core::target::{LunSpec, TargetSpec};

use crate::guard;

/// Every identity field of `spec` tgtd could not carry whole, each at `target.lun[i].<field>`
/// where `i` is the LUN's place in `spec.luns` (LUN order).
pub fn unsupported(spec: &TargetSpec) -> Vec<SettingProblem> {
    let luns = KeyPath::keys(&["target", "lun"]);
    let mut out = Vec::new();
    for (i, lun) in spec.luns.iter().enumerate() {
        for (field, value) in identity_fields(lun) {
            let max = guard::identity_limit(field);
            if guard::check_identity_field(field, value, max).is_err() {
                out.push(SettingProblem::new(
                    luns.index(i).key(field),
                    why(field, value, max),
                ));
            }
        }
    }
    out
}

fn identity_fields(lun: &LunSpec) -> impl Iterator<Item = (&'static str, &str)> {
    let id = &lun.identity;
    [
        ("scsi_id", Some(id.scsi_id.as_str())),
        ("scsi_sn", Some(id.scsi_sn.as_str())),
        ("vendor_id", id.vendor_id.as_deref()),
        ("product_id", id.product_id.as_deref()),
    ]
    .into_iter()
    .filter_map(|(field, value)| Some((field, value?)))
}

/// The reason, in the operator's terms: the core already refused what SCSI cannot carry, so
/// what is left is tgtd's length or its separators.
fn why(field: &str, value: &str, max: usize) -> String {
    if value.len() > max {
        format!(
            "{value:?} is {} bytes; tgtd keeps at most {max} bytes of {field}: write a shorter value",
            value.len()
        )
    } else {
        format!(
            "{value:?} holds ',' or '=', on which tgtd splits its requests: write {field} without them"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iscsi_ha_core::iqn::Iqn;
    use iscsi_ha_core::target::{Access, LunId, LunIdentity};

    fn spec(identities: &[(&str, &str, Option<&str>, Option<&str>)]) -> TargetSpec {
        let iqn = Iqn::new("iqn.2024-01.com.example:disk").unwrap_or_else(|e| panic!("{e}"));
        let luns = identities
            .iter()
            .zip(1..)
            .map(|(&(id, sn, vendor, product), n)| LunSpec {
                lun: LunId::new(n).unwrap_or_else(|e| panic!("{e}")),
                path: format!("/dev/drbd{n}"),
                identity: LunIdentity::new(
                    id.into(),
                    sn.into(),
                    vendor.map(Into::into),
                    product.map(Into::into),
                )
                .unwrap_or_else(|e| panic!("{e}")),
                read_only: false,
                volatile_cache_reported: false,
                stable_writes: true,
            })
            .collect();
        TargetSpec {
            iqn,
            luns,
            access: Access::default(),
        }
    }

    fn found(spec: &TargetSpec) -> Vec<String> {
        unsupported(spec)
            .into_iter()
            .map(|p| format!("{}: {}", p.at, p.message))
            .collect()
    }

    #[test]
    fn what_tgtd_keeps_whole_is_taken() {
        let longest = "s".repeat(MAX);
        let taken = spec(&[
            (
                &longest,
                &longest,
                Some("ACME ACM"),
                Some("Widget 16 bytes!"),
            ),
            ("id-2", "SN 2", None, None),
        ]);
        assert_eq!(found(&taken), Vec::<String>::new());
        // The identity derived for a LUN without one always fits.
        let derived =
            LunIdentity::derived(&taken.iqn, LunId::new(9).unwrap_or_else(|e| panic!("{e}")));
        assert!(derived.scsi_id.len() <= guard::MAX_SCSI_ID_LEN);
        assert!(derived.scsi_sn.len() <= guard::MAX_SCSI_SN_LEN);
    }

    const MAX: usize = guard::MAX_SCSI_SN_LEN;

    #[test]
    fn a_value_tgtd_would_cut_or_split_is_named_at_its_key() {
        let over = "s".repeat(MAX + 1);
        let refused = spec(&[
            ("id-1", "SN-1", None, None),
            (&over, "SN,2", Some("A=B"), Some("ok")),
        ]);
        assert_eq!(
            found(&refused),
            vec![
                format!("target.lun[1].scsi_id: {over:?} is 37 bytes; tgtd keeps at most 36 bytes of scsi_id: write a shorter value"),
                "target.lun[1].scsi_sn: \"SN,2\" holds ',' or '=', on which tgtd splits its requests: write scsi_sn without them".to_string(),
                "target.lun[1].vendor_id: \"A=B\" holds ',' or '=', on which tgtd splits its requests: write vendor_id without them".to_string(),
            ]
        );
        let long_sn = spec(&[("id", &over, None, None)]);
        assert_eq!(
            found(&long_sn),
            vec![format!("target.lun[0].scsi_sn: {over:?} is 37 bytes; tgtd keeps at most 36 bytes of scsi_sn: write a shorter value")]
        );
    }
}
