//! The command line's scope, checked, and Azure's naming rules (for the flags and for what is
//! read).

use super::{ImportError, Request};
use crate::azure::http::bounded;
use crate::text::is_guid;

/// Whether `rg` follows Azure's rule for resource group names (letters, digits, `_ - . ( )`, at
/// most 90, not ending in `.`), and does not start with `-` or `.`. Such a name cannot close a KQL
/// string: it holds no quote and no backslash.
pub fn resource_group_ok(rg: &str) -> bool {
    let n = rg.chars().count();
    let word = |c: char| c.is_alphabetic() || c.is_ascii_digit() || c == '_';
    (1..=90).contains(&n)
        && !rg.ends_with('.')
        && rg.starts_with(|c: char| word(c) || matches!(c, '(' | ')'))
        && rg
            .chars()
            .all(|c| word(c) || matches!(c, '-' | '.' | '(' | ')'))
}

/// Whether `name` follows Azure's rule for a bastion's name (as profile files check it).
pub(super) fn resource_name_ok(name: &str, max: usize) -> bool {
    let b = name.as_bytes();
    (1..=max).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && (b[b.len() - 1].is_ascii_alphanumeric() || b[b.len() - 1] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl Request {
    /// Checks the flags: subscriptions are GUIDs, the tenant a GUID or a domain name, the
    /// resource group a valid name.
    pub fn new(
        subscriptions: &[String],
        tenant: Option<&str>,
        resource_group: Option<&str>,
    ) -> Result<Request, ImportError> {
        let mut subs: Vec<String> = Vec::new();
        for s in subscriptions {
            if !is_guid(s) {
                return Err(ImportError::Usage(format!(
                    "--subscription `{}` is not a subscription id (a GUID; `az account list -o table` lists them)",
                    bounded(s, 100)
                )));
            }
            let s = s.to_ascii_lowercase();
            if !subs.contains(&s) {
                subs.push(s);
            }
        }
        if let Some(t) = tenant {
            let domain = !t.is_empty()
                && t.len() <= 253
                && !t.starts_with(['-', '.'])
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'));
            if !(is_guid(t) || domain) {
                return Err(ImportError::Usage(format!(
                    "--tenant `{}` is neither a tenant id (a GUID) nor a domain name",
                    bounded(t, 100)
                )));
            }
        }
        if let Some(rg) = resource_group
            && !resource_group_ok(rg)
        {
            return Err(ImportError::Usage(format!(
                "--resource-group `{}` is not a resource group name (letters, digits, `_ - . ( )`, at most 90, not ending in `.`)",
                bounded(rg, 100)
            )));
        }
        Ok(Request {
            subscriptions: subs,
            tenant: tenant.map(|t| t.to_ascii_lowercase()),
            resource_group: resource_group.map(str::to_string),
        })
    }
}
