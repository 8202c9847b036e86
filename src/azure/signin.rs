//! Whether az is already signed in to a subscription, read from az's own profile file
//! (`$AZURE_CONFIG_DIR/azureProfile.json`, default `~/.azure`): no az process is started.

use std::path::PathBuf;

/// The directory az keeps its profile in.
pub fn config_dir() -> Option<PathBuf> {
    match std::env::var_os("AZURE_CONFIG_DIR").filter(|v| !v.is_empty()) {
        Some(d) => Some(PathBuf::from(d)),
        None => crate::profile::load::home_dir().map(|h| h.join(".azure")),
    }
}

/// az's profile file is read up to this size; a larger one counts as no subscriptions known.
pub const MAX_PROFILE_BYTES: u64 = 16 * 1024 * 1024;

/// `azureProfile.json`, read as untrusted input: bounded, regular files only (a FIFO never
/// blocks). Missing, unreadable, oversized or not a regular file: None.
fn profile_bytes() -> Option<Vec<u8>> {
    let path = config_dir()?.join("azureProfile.json");
    crate::profile::files::read_regular(&path, MAX_PROFILE_BYTES).ok()
}

/// What az's profile file says: the subscriptions it knows (lower-case) and its default.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AzProfile {
    pub known: Vec<String>,
    pub default: Option<String>,
    /// Each known subscription's tenant id, both lower-case (where az's file says it).
    pub tenant_of: Vec<(String, String)>,
}

impl AzProfile {
    /// The local az profile, read once. No readable profile file: nothing known.
    pub fn read() -> AzProfile {
        profile_bytes()
            .map(|b| AzProfile::parse(&b))
            .unwrap_or_default()
    }

    /// Parses `azureProfile.json` (az writes it with a UTF-8 byte-order mark).
    pub fn parse(bytes: &[u8]) -> AzProfile {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else {
            return AzProfile::default();
        };
        let subs = v
            .get("subscriptions")
            .and_then(|s| s.as_array())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let id = |s: &serde_json::Value| s.get("id").and_then(|i| i.as_str()).map(str::to_string);
        AzProfile {
            known: subs
                .iter()
                .filter_map(id)
                .map(|i| i.to_ascii_lowercase())
                .collect(),
            default: subs
                .iter()
                .find(|s| s.get("isDefault").and_then(|d| d.as_bool()) == Some(true))
                .and_then(id)
                .filter(|i| crate::profile::resolve::regex_guid(i)),
            tenant_of: subs
                .iter()
                .filter_map(|s| {
                    let tenant = s.get("tenantId").and_then(|t| t.as_str())?;
                    Some((id(s)?.to_ascii_lowercase(), tenant.to_ascii_lowercase()))
                })
                .collect(),
        }
    }

    /// The tenant id of a known subscription (lower-case), when az's file says it.
    pub fn tenant_of(&self, subscription: &str) -> Option<&str> {
        let sub = subscription.to_ascii_lowercase();
        self.tenant_of
            .iter()
            .find(|(s, _)| *s == sub)
            .map(|(_, t)| t.as_str())
    }

    /// Whether `subscription` is known to the local az profile.
    pub fn knows(&self, subscription: &str) -> bool {
        self.known.contains(&subscription.to_ascii_lowercase())
    }
}

/// az's default subscription now (read again after a login).
pub fn default_subscription() -> Option<String> {
    AzProfile::read().default
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ids_after_a_bom() {
        let text = b"\xEF\xBB\xBF{\"subscriptions\": [{\"id\": \"AAAA-1\", \"tenantId\": \"t\"}]}";
        assert_eq!(AzProfile::parse(text).known, ["aaaa-1"]);
        assert_eq!(AzProfile::parse(text).tenant_of("aaaa-1"), Some("t"));
        assert_eq!(AzProfile::parse(b"not json"), AzProfile::default());
        let two = br#"{"subscriptions": [{"id": "00000000-0000-0000-0000-000000000001", "isDefault": false}, {"id": "00000000-0000-0000-0000-000000000002", "isDefault": true}]}"#;
        assert_eq!(
            AzProfile::parse(two).default.as_deref(),
            Some("00000000-0000-0000-0000-000000000002")
        );
        assert_eq!(
            AzProfile::parse(br#"{"subscriptions": [{"id": "-x", "isDefault": true}]}"#).default,
            None
        );
    }
}
