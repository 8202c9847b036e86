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

/// The subscription ids az knows locally (lower-case). No readable profile file: none.
pub fn known_subscriptions() -> Vec<String> {
    profile_bytes()
        .map(|b| parse_subscriptions(&b))
        .unwrap_or_default()
}
/// az's default subscription (`isDefault`), if any.
pub fn default_subscription() -> Option<String> {
    parse_default(&profile_bytes()?)
}

/// The subscription `azureProfile.json` marks `isDefault`.
pub fn parse_default(bytes: &[u8]) -> Option<String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    v.get("subscriptions")?
        .as_array()?
        .iter()
        .find(|s| s.get("isDefault").and_then(|d| d.as_bool()) == Some(true))?
        .get("id")?
        .as_str()
        .filter(|id| crate::profile::resolve::regex_guid(id))
        .map(str::to_string)
}

/// Parses `azureProfile.json` (az writes it with a UTF-8 byte-order mark).
pub fn parse_subscriptions(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Vec::new();
    };
    v.get("subscriptions")
        .and_then(|s| s.as_array())
        .map(|subs| {
            subs.iter()
                .filter_map(|s| s.get("id").and_then(|i| i.as_str()))
                .map(str::to_ascii_lowercase)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `subscription` is known to the local az profile.
pub fn is_signed_in(subscription: &str) -> bool {
    let want = subscription.to_ascii_lowercase();
    known_subscriptions().contains(&want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ids_after_a_bom() {
        let text = b"\xEF\xBB\xBF{\"subscriptions\": [{\"id\": \"AAAA-1\", \"tenantId\": \"t\"}]}";
        assert_eq!(parse_subscriptions(text), ["aaaa-1"]);
        assert!(parse_subscriptions(b"not json").is_empty());
        let two = br#"{"subscriptions": [{"id": "00000000-0000-0000-0000-000000000001", "isDefault": false}, {"id": "00000000-0000-0000-0000-000000000002", "isDefault": true}]}"#;
        assert_eq!(
            parse_default(two).as_deref(),
            Some("00000000-0000-0000-0000-000000000002")
        );
        assert_eq!(
            parse_default(br#"{"subscriptions": [{"id": "-x", "isDefault": true}]}"#),
            None
        );
    }
}
