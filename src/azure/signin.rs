//! Whether az is already signed in to a subscription, read from az's own profile file
//! (`$AZURE_CONFIG_DIR/azureProfile.json`, default `~/.azure`): no az process is started.

/// az's profile file is read up to this size; a larger one counts as no subscriptions known.
pub const MAX_PROFILE_BYTES: u64 = 16 * 1024 * 1024;

/// `azureProfile.json`, read as untrusted input: bounded, regular files only (a FIFO never
/// blocks). Missing, unreadable, oversized or not a regular file: None.
fn profile_bytes(cfg: &super::Config) -> Option<Vec<u8>> {
    let path = cfg.az_config_dir.as_ref()?.join("azureProfile.json");
    crate::files::read_regular(&path, MAX_PROFILE_BYTES).ok()
}

/// What az's profile file says: the subscriptions it knows (lower-case), its default, and the
/// tenant of each subscription that names one (both lower-case).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AzProfile {
    pub known: Vec<String>,
    pub default: Option<String>,
    pub tenants: Vec<(String, String)>,
}

impl AzProfile {
    /// The local az profile, read once. No readable profile file: nothing known.
    pub fn read(cfg: &super::Config) -> AzProfile {
        profile_bytes(cfg)
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
        let lower = |s: &serde_json::Value, key: &str| {
            s.get(key)
                .and_then(|i| i.as_str())
                .map(str::to_ascii_lowercase)
        };
        AzProfile {
            known: subs
                .iter()
                .filter_map(id)
                .map(|i| i.to_ascii_lowercase())
                .collect(),
            tenants: subs
                .iter()
                .filter_map(|s| Some((lower(s, "id")?, lower(s, "tenantId")?)))
                .collect(),
            default: subs
                .iter()
                .find(|s| s.get("isDefault").and_then(|d| d.as_bool()) == Some(true))
                .and_then(id)
                .filter(|i| crate::text::is_guid(i)),
        }
    }

    /// The tenant az has `subscription` in, when the file says.
    pub fn tenant_of(&self, subscription: &str) -> Option<&str> {
        let sub = subscription.to_ascii_lowercase();
        self.tenants
            .iter()
            .find(|(s, _)| *s == sub)
            .map(|(_, t)| t.as_str())
    }

    /// The distinct tenants az is signed in to, in the file's order.
    pub fn tenant_ids(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for (_, t) in &self.tenants {
            if !out.contains(&t.as_str()) {
                out.push(t);
            }
        }
        out
    }

    /// Whether `subscription` is known to the local az profile.
    pub fn knows(&self, subscription: &str) -> bool {
        self.known.contains(&subscription.to_ascii_lowercase())
    }
}

/// az's default subscription now (read again after a login).
pub fn default_subscription(cfg: &super::Config) -> Option<String> {
    AzProfile::read(cfg).default
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ids_after_a_bom() {
        let text = b"\xEF\xBB\xBF{\"subscriptions\": [{\"id\": \"AAAA-1\", \"tenantId\": \"t\"}]}";
        assert_eq!(AzProfile::parse(text).known, ["aaaa-1"]);
        assert_eq!(AzProfile::parse(text).tenant_of("Aaaa-1"), Some("t"));
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
