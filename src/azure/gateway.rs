//! The bastion's RD gateway file, as az's Windows `rdp` fetches it when it keeps the gateway
//! (no `--disable-gateway`, no IP connect): `GET /api/rdpfile?resourceId={vm id}&format=rdp&
//! rdpport={port}&enablerdsaad={True|False}` on the bastion's host, the ARM token as a bearer.
//! The answer is an .rdp file for the bastion's gateway with a short-lived gateway token in it:
//! a secret, held here in memory only ([`GatewayFile`] shows no content) and handed on to be
//! written where mstsc alone reads it.
//!
//! Where the token may go: only to a [`DataPlane`] (ARM's `dnsName`, or a profile's
//! `bst-<guid>.bastion.azure.com`), as for every session.

use std::time::Duration;

use super::AzureError;
use super::bastion::{DataPlane, refused};
use super::http::{Net, Request, query_value};
use super::token::{Secret, wipe};

/// How long the request may take.
pub const GATEWAY_TIMEOUT: Duration = Duration::from_secs(30);
/// The file is read up to this size (real ones are a few KiB, the token included).
pub const MAX_FILE: usize = 256 * 1024;

/// The request's target (path and query) for `vm_id`'s `port`: the id as az sends it (its
/// `/` kept), every other character outside `A-Z a-z 0-9 - . _ ~` percent-encoded.
pub fn target(vm_id: &str, port: u16, entra: bool) -> String {
    format!(
        "/api/rdpfile?resourceId={}&format=rdp&rdpport={port}&enablerdsaad={}",
        query_value(vm_id).replace("%2F", "/"),
        if entra { "True" } else { "False" }
    )
}

/// The gateway's .rdp file as text. Its `Debug` shows the size only; the text is wiped when
/// it is dropped.
pub struct GatewayFile {
    text: String,
}

impl GatewayFile {
    pub fn new(text: String) -> GatewayFile {
        GatewayFile { text }
    }

    /// The file's text (it holds the gateway token: never print it).
    pub fn expose(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Debug for GatewayFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GatewayFile({} bytes)", self.text.len())
    }
}

impl Drop for GatewayFile {
    fn drop(&mut self) {
        wipe(std::mem::take(&mut self.text).into_bytes());
    }
}

/// The body as text: UTF-16LE with its byte-order mark (as mstsc writes files), or UTF-8 with
/// or without one. Anything else is not an .rdp file.
pub fn decode(body: &[u8]) -> Result<String, String> {
    if let Some(rest) = body.strip_prefix(&[0xFF, 0xFE]) {
        if rest.len() % 2 != 0 {
            return Err("an odd number of bytes after a UTF-16 byte-order mark".into());
        }
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        return String::from_utf16(&units).map_err(|_| "it is not valid UTF-16".into());
    }
    let rest = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    std::str::from_utf8(rest)
        .map(str::to_string)
        .map_err(|_| "it is neither UTF-8 nor UTF-16 text".into())
}

/// Fetches the gateway file for `vm_id`'s `port` from the bastion's host. A refusal says what
/// the service said (bounded); an answer that is not an .rdp file is an error.
pub async fn rdp_file(
    net: &Net,
    dp: &DataPlane,
    vm_id: &str,
    port: u16,
    entra: bool,
    token: &Secret,
) -> Result<GatewayFile, AzureError> {
    let bearer = format!("Bearer {}", token.expose());
    let target = target(vm_id, port, entra);
    let req = Request {
        method: "GET",
        target: &target,
        headers: vec![("Authorization", bearer.as_str()), ("Accept", "*/*")],
        body: &[],
    };
    let resp = net
        .send(dp.endpoint(), &req, MAX_FILE, GATEWAY_TIMEOUT)
        .await;
    wipe(bearer.into_bytes());
    let resp = resp?;
    if resp.status != 200 {
        return Err(refused(&resp, token, "the gateway file was refused"));
    }
    let bad = |why: String| AzureError::Protocol {
        what: format!("the gateway file from {}", dp.endpoint().authority()),
        why,
    };
    let text = decode(&resp.body).map_err(bad)?;
    wipe(resp.body);
    let file = GatewayFile::new(text);
    if !file.expose().lines().any(|l| {
        l.trim_start()
            .to_ascii_lowercase()
            .starts_with("full address:s:")
    }) {
        return Err(bad("it is not an .rdp file (no `full address`)".into()));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_azs_query_with_the_id_readable() {
        let id =
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm 1";
        assert_eq!(
            target(id, 3389, true),
            "/api/rdpfile?resourceId=/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm%201&format=rdp&rdpport=3389&enablerdsaad=True"
        );
        assert!(
            target("/x&rdpport=1#", 22, false).ends_with(
                "resourceId=/x%26rdpport%3D1%23&format=rdp&rdpport=22&enablerdsaad=False"
            )
        );
    }

    #[test]
    fn utf16_utf8_and_nothing_else() {
        let mut u16le = vec![0xFF, 0xFE];
        for u in "full address:s:vm\r\n".encode_utf16() {
            u16le.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(decode(&u16le).unwrap(), "full address:s:vm\r\n");
        assert_eq!(decode(b"\xEF\xBB\xBFa:s:b").unwrap(), "a:s:b");
        assert_eq!(decode(b"a:s:b").unwrap(), "a:s:b");
        assert!(decode(b"\xFF\xFEa").is_err());
        assert!(decode(b"\xFF\xFE\x00\xD8").is_err(), "a lone surrogate");
        assert!(decode(b"a:s:\xC3").is_err());
        assert_eq!(
            format!("{:?}", GatewayFile::new("secret".into())),
            "GatewayFile(6 bytes)"
        );
    }
}
