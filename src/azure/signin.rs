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

/// The subscription ids az knows locally (lower-case). Missing, unreadable, oversized or
/// not a regular file (a FIFO never blocks): none.
pub fn known_subscriptions() -> Vec<String> {
    let Some(dir) = config_dir() else {
        return Vec::new();
    };
    let path = dir.join("azureProfile.json");
    match crate::profile::files::read_regular(&path, MAX_PROFILE_BYTES) {
        Ok(bytes) => parse_subscriptions(&bytes),
        Err(_) => Vec::new(),
    }
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
    }
}
