//! The bastion's data plane: one tunnel session is `POST /api/tokens` (a form, the ARM token
//! in it), a websocket to `/webtunnelv2/{websocketToken}?X-Node-Id={nodeId}`, and
//! `DELETE /api/tokens/{authToken}` at its end.
//!
//! Where the token may go: a [`DataPlane`] is made only from the `dnsName` ARM returned for
//! the bastion, or from a profile's `dns_name` that is exactly `bst-<guid>.bastion.azure.com`,
//! or (the Developer SKU, `developer`) from a data pod the broker named, under its domain.

use std::time::Duration;

use serde_json::Value;

use super::AzureError;
use super::arm::{error_text, is_html};
use super::http::{Endpoint, Net, Request, bounded, form, form_value, segment};
use super::token::Secret;

/// How long the session request may take.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the websocket handshake may take.
pub const WEBSOCKET_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the DELETE at a session's end may take.
pub const DELETE_TIMEOUT: Duration = Duration::from_secs(10);
/// The service's answers are read up to this size.
const MAX_BODY: usize = 1024 * 1024;
/// Tokens near this size are reported too large by users in many Entra groups.
pub const LARGE_TOKEN: usize = 6000;

/// The bastion's data-plane host: the only place besides ARM that sees the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPlane {
    endpoint: Endpoint,
    /// A Developer SKU data pod (its websocket is `/omni/webtunnel/...`, no node query).
    pod: bool,
}

/// Where a listener's sessions are asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The bastion's own host (Basic, Standard, Premium).
    Host(DataPlane),
    /// The Developer SKU's broker, which names a data pod per session.
    Broker(super::developer::Broker),
}

/// A bastion as a profile names it.
#[derive(Debug, Clone, Copy)]
pub struct Located<'a> {
    pub subscription: &'a str,
    pub resource_group: &'a str,
    pub name: &'a str,
    /// The profile's `dns_name`: then ARM is not asked.
    pub dns_name: Option<&'a str>,
}

/// Where a bastion's sessions are asked for: the profile's `dns_name`, or ARM's read (which
/// also refuses a SKU or setting that cannot carry a native client, before anything listens):
/// the bastion's host, or the Developer SKU's broker.
pub async fn route(
    net: &Net,
    azure: &super::Config,
    token: &Secret,
    at: &Located<'_>,
    ip_target: bool,
) -> Result<Route, AzureError> {
    if let Some(d) = at.dns_name {
        return DataPlane::from_profile(d).map(Route::Host);
    }
    let unusable = |why: String| AzureError::Unusable {
        bastion: at.name.to_string(),
        why,
    };
    let arm = super::arm::Arm::from_config(net.clone(), azure)?;
    let facts =
        super::arm::bastion(&arm, token, at.subscription, at.resource_group, at.name).await?;
    if let Some(why) = facts.refusal(ip_target) {
        return Err(unusable(why));
    }
    let Some(dns) = facts.dns_name.as_deref().filter(|d| !d.is_empty()) else {
        return Err(unusable("ARM's answer has no dnsName".into()));
    };
    if facts.developer() {
        let id = facts.id.clone().unwrap_or_else(|| {
            format!(
                "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/bastionHosts/{}",
                at.subscription, at.resource_group, at.name
            )
        });
        return super::developer::Broker::from_arm(dns, &id).map(Route::Broker);
    }
    DataPlane::from_arm(dns).map(Route::Host)
}

/// Whether `s` is exactly `bst-<guid>.bastion.azure.com`, lower case.
pub fn is_public_bastion_host(s: &str) -> bool {
    let Some(guid) = s
        .strip_prefix("bst-")
        .and_then(|r| r.strip_suffix(".bastion.azure.com"))
    else {
        return false;
    };
    let groups: Vec<&str> = guid.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

impl DataPlane {
    /// From the `dnsName` in ARM's answer (ARM is trusted: the endpoint is the person's own):
    /// a host name with an optional port, nothing else.
    pub fn from_arm(dns_name: &str) -> Result<DataPlane, AzureError> {
        Endpoint::parse_authority(dns_name)
            .map(|endpoint| DataPlane {
                endpoint,
                pod: false,
            })
            .map_err(|why| AzureError::Protocol {
                what: "the bastion's dnsName from ARM".into(),
                why: format!("`{}`: {why}", bounded(dns_name, 100)),
            })
    }

    /// From a profile's `dns_name`: only Azure's public bastion host names.
    pub fn from_profile(dns_name: &str) -> Result<DataPlane, AzureError> {
        if !is_public_bastion_host(dns_name) {
            return Err(AzureError::Name {
                what: "dns_name".into(),
                value: dns_name.into(),
                rule: "exactly bst-<guid>.bastion.azure.com".into(),
            });
        }
        Ok(DataPlane {
            endpoint: Endpoint {
                host: dns_name.to_string(),
                port: 443,
            },
            pod: false,
        })
    }

    /// A Developer SKU data pod, as the broker named it (checked by the caller).
    pub(super) fn pod(host: &str) -> DataPlane {
        DataPlane {
            endpoint: Endpoint {
                host: host.to_string(),
                port: 443,
            },
            pod: true,
        }
    }

    /// Whether it is a Developer SKU data pod.
    pub fn is_pod(&self) -> bool {
        self.pod
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }
}

/// What a session connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A VM by its ARM id.
    Vm { resource_id: String },
    /// IP connect: the `bh-hostConnect` id in the bastion's resource group.
    Ip {
        subscription: String,
        resource_group: String,
        ip: String,
    },
}

impl Target {
    fn fields(&self) -> (String, Option<&str>) {
        match self {
            Target::Vm { resource_id } => (resource_id.clone(), None),
            Target::Ip {
                subscription,
                resource_group,
                ip,
            } => (
                format!(
                    "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Network/bh-hostConnect/{ip}"
                ),
                Some(ip.as_str()),
            ),
        }
    }
}

/// A session the service granted.
#[derive(Clone)]
pub struct Grant {
    /// The session's id (`authToken`): the DELETE names it.
    pub auth_token: String,
    pub node_id: String,
    websocket_token: String,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

/// A value from the service that goes into a header, path or query: printable ASCII, bounded.
fn service_value(v: Option<&Value>, name: &str) -> Result<String, AzureError> {
    match v.and_then(Value::as_str) {
        Some(s) if !s.is_empty() && s.len() <= 8192 && s.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(s.to_string())
        }
        _ => Err(AzureError::Protocol {
            what: "the bastion's session answer".into(),
            why: format!("it has no usable `{name}`"),
        }),
    }
}

/// Why a refused session was refused, in bprof's words, when the cause is known.
pub fn refusal_hint(status: u16, message: &str, token_len: usize) -> Option<String> {
    // `{profile}` and `{tenant}` stay for the caller to fill in
    if let Some(k) = super::known::recognise(message) {
        return Some(k.hint.to_string());
    }
    if matches!(status, 401 | 403) && token_len >= LARGE_TOKEN {
        return Some(format!(
            "your access token is {token_len} characters: users in very many Entra groups hit the service's limit near {LARGE_TOKEN}; ask for fewer group memberships or a dedicated account"
        ));
    }
    match status {
        401 | 403 => Some("az may be signed in as someone who cannot use this bastion or VM (`az account show`); a bastion in another tenant needs a sign-in to that tenant".into()),
        404 => Some("check the VM (its resource id) and that the bastion can reach it".into()),
        500..=599 => Some("the service or a gateway on the way failed; try again, and check the bastion's health in the portal".into()),
        _ => None,
    }
}

/// Opens a session: `POST /api/tokens`. `previous` is an earlier session of the same listener
/// that is still open (its `authToken` and `nodeId`).
pub async fn create_session(
    net: &Net,
    dp: &DataPlane,
    target: &Target,
    port: u16,
    token: &Secret,
    previous: Option<(&str, &str)>,
) -> Result<Grant, AzureError> {
    let (resource_id, hostname) = target.fields();
    let port = port.to_string();
    let mut fields = vec![
        ("resourceId", resource_id.as_str()),
        ("protocol", "tcptunnel"),
        ("workloadHostPort", port.as_str()),
        ("aztoken", token.expose()),
    ];
    if let Some(h) = hostname {
        fields.push(("hostname", h));
    }
    let mut headers = vec![
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Accept", "application/json"),
    ];
    if let Some((auth_token, node_id)) = previous {
        fields.push(("token", auth_token));
        headers.push(("X-Node-Id", node_id));
    }
    let body = form(&fields);
    let req = Request {
        method: "POST",
        target: "/api/tokens",
        headers,
        body: body.as_bytes(),
    };
    let resp = net
        .send(&dp.endpoint, &req, MAX_BODY, SESSION_TIMEOUT)
        .await?;
    if resp.status != 200 {
        return Err(refused(&resp, token, ""));
    }
    let v: Value = serde_json::from_slice(&resp.body).map_err(|_| AzureError::Protocol {
        what: "the bastion's session answer".into(),
        why: "it is not JSON".into(),
    })?;
    Ok(Grant {
        auth_token: service_value(v.get("authToken"), "authToken")?,
        node_id: service_value(v.get("nodeId"), "nodeId")?,
        websocket_token: service_value(v.get("websocketToken"), "websocketToken")?,
    })
}

/// The service's refusal of a request made with `token`: its message (an HTML page by its
/// title), after `what` when given, and the hint for it.
pub(super) fn refused(resp: &super::http::Response, token: &Secret, what: &str) -> AzureError {
    let (_, message) = error_text(resp);
    let message = if is_html(resp) {
        format!(
            "an HTML error page{}",
            html_title(&resp.body)
                .map(|t| format!(" ({t})"))
                .unwrap_or_default()
        )
    } else {
        message
    };
    AzureError::Refused {
        status: resp.status,
        hint: refusal_hint(resp.status, &message, token.expose().len()),
        message: if what.is_empty() {
            message
        } else {
            format!("{what}: {message}")
        },
    }
}

/// The `<title>` of an HTML page, bounded.
fn html_title(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]);
    let lower = text.to_ascii_lowercase();
    let start = lower.find("<title>")? + 7;
    let end = start + lower[start..].find("</title>")?;
    let t = text.get(start..end)?.trim();
    (!t.is_empty()).then(|| bounded(t, 80))
}

/// A websocket upgrade's answer head is read up to this size.
const MAX_UPGRADE_HEAD: usize = 16 * 1024;

/// A session's websocket once the service agreed to the upgrade: its TLS connection in
/// halves (what the service sent right after its answer is the next read's).
pub struct Websocket {
    pub incoming: super::tls::Incoming,
    pub outgoing: super::tls::Outgoing,
}

/// The session's websocket (`101` with the right `Sec-WebSocket-Accept`); whatever the service
/// sends after the answer's head stays with the tunnel.
pub async fn connect_websocket(
    net: &Net,
    dp: &DataPlane,
    grant: &Grant,
) -> Result<Websocket, AzureError> {
    let authority = dp.endpoint.authority();
    let what = || format!("the websocket to {authority}");
    let fail = |why: String| AzureError::Protocol { what: what(), why };
    let token = segment(&grant.websocket_token).map_err(fail)?;
    let path = if dp.pod {
        format!("/omni/webtunnel/{token}")
    } else {
        format!(
            "/webtunnelv2/{token}?X-Node-Id={}",
            form_value(&grant.node_id)
        )
    };
    let key = websocket_key().map_err(|e| fail(e.to_string()))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: https://{authority}\r\nUser-Agent: bprof/{}\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    let work = async {
        let (mut incoming, mut outgoing) = net.connect_halves(&dp.endpoint).await?;
        let io = |e: std::io::Error| fail(e.to_string());
        outgoing.data(request.as_bytes()).map_err(io)?;
        outgoing.send().await.map_err(io)?;
        let mut head = Vec::with_capacity(512);
        while !head.ends_with(b"\r\n\r\n") {
            if !incoming.read().await.map_err(io)? {
                return Err(fail("the connection ended during the upgrade".into()));
            }
            let mut taken = 0;
            'read: for piece in incoming.pieces() {
                for &b in piece {
                    if head.len() >= MAX_UPGRADE_HEAD {
                        return Err(fail("the upgrade's answer is too long".into()));
                    }
                    head.push(b);
                    taken += 1;
                    if head.ends_with(b"\r\n\r\n") {
                        break 'read;
                    }
                }
            }
            // the rest is the tunnel's first bytes
            incoming.give_back(taken);
        }
        upgraded(&head, &accept_value(&key)).map_err(|e| match e {
            Upgrade::Refused(status) => AzureError::Refused {
                status,
                message: "the websocket was refused".into(),
                hint: refusal_hint(status, "", 0),
            },
            Upgrade::Bad(why) => fail(why),
        })?;
        Ok(Websocket { incoming, outgoing })
    };
    tokio::time::timeout(WEBSOCKET_TIMEOUT, work)
        .await
        .map_err(|_| AzureError::Timeout {
            what: what(),
            secs: WEBSOCKET_TIMEOUT.as_secs(),
        })?
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes, base64.
fn websocket_key() -> Result<String, getrandom::Error> {
    let mut key = [0u8; 16];
    getrandom::fill(&mut key)?;
    Ok(data_encoding::BASE64.encode(&key))
}

/// The `Sec-WebSocket-Accept` the service must answer `key` with (RFC 6455, 4.2.2).
fn accept_value(key: &str) -> String {
    use sha1::Digest;
    let mut h = sha1::Sha1::new();
    h.update(key.as_bytes());
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    data_encoding::BASE64.encode(&h.finalize())
}

/// Why an upgrade's answer is not a websocket.
#[derive(Debug, PartialEq, Eq)]
enum Upgrade {
    /// Another status.
    Refused(u16),
    Bad(String),
}

/// Checks an upgrade's answer head: `101`, `Upgrade: websocket`, `Connection: upgrade`, and
/// the accept value of this request's key.
fn upgraded(head: &[u8], accept: &str) -> Result<(), Upgrade> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(Upgrade::Bad("the upgrade's answer is not HTTP".into())),
    }
    let status = resp.code.unwrap_or(0);
    if status != 101 {
        return Err(Upgrade::Refused(status));
    }
    let value = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
    };
    if !value("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        return Err(Upgrade::Bad(
            "the answer does not upgrade to a websocket".into(),
        ));
    }
    if !value("connection").is_some_and(|v| {
        v.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    }) {
        return Err(Upgrade::Bad(
            "the answer's Connection is not upgrade".into(),
        ));
    }
    if value("sec-websocket-accept").as_deref() != Some(accept) {
        return Err(Upgrade::Bad(
            "the answer's Sec-WebSocket-Accept does not match".into(),
        ));
    }
    if value("sec-websocket-extensions").is_some() {
        return Err(Upgrade::Bad(
            "the answer asks for an extension that was not offered".into(),
        ));
    }
    Ok(())
}

/// Ends a session: `DELETE /api/tokens/{authToken}`. 200 and 204 are done, 404 was done
/// already; anything else is an error worth a warning.
pub async fn delete_session(net: &Net, dp: &DataPlane, grant: &Grant) -> Result<(), AzureError> {
    let target = format!(
        "/api/tokens/{}",
        segment(&grant.auth_token).map_err(|why| AzureError::Protocol {
            what: "the session's DELETE".into(),
            why,
        })?
    );
    let req = Request {
        method: "DELETE",
        target: &target,
        headers: vec![("X-Node-Id", grant.node_id.as_str())],
        body: b"",
    };
    let resp = net
        .send(&dp.endpoint, &req, MAX_BODY, DELETE_TIMEOUT)
        .await?;
    match resp.status {
        200 | 204 | 404 => Ok(()),
        status => {
            let (_, message) = error_text(&resp);
            Err(AzureError::Refused {
                status,
                message,
                hint: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_value_is_rfc_6455s() {
        // the example of RFC 6455, section 1.3
        assert_eq!(
            accept_value("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        let k = websocket_key().unwrap();
        assert_eq!(
            data_encoding::BASE64.decode(k.as_bytes()).unwrap().len(),
            16
        );
        assert_ne!(k, websocket_key().unwrap());
    }

    #[test]
    fn an_upgrade_is_checked_as_a_client_must() {
        let ok = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: abc=\r\n\r\n";
        assert_eq!(upgraded(ok, "abc="), Ok(()));
        assert_eq!(
            upgraded(ok, "xyz="),
            Err(Upgrade::Bad(
                "the answer's Sec-WebSocket-Accept does not match".into()
            ))
        );
        assert_eq!(
            upgraded(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", "a"),
            Err(Upgrade::Refused(403))
        );
        for bad in [
            &b"HTTP/1.1 101 x\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: a\r\n\r\n"[..],
            b"HTTP/1.1 101 x\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: a\r\n\r\n",
            b"HTTP/1.1 101 x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: a\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
            b"SSH-2.0-x\r\n\r\n",
        ] {
            assert!(matches!(upgraded(bad, "a"), Err(Upgrade::Bad(_))), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn only_azure_bastion_hosts_from_profiles() {
        let good = "bst-0a1b2c3d-0000-4000-8000-0123456789ab.bastion.azure.com";
        assert!(DataPlane::from_profile(good).is_ok());
        for bad in [
            "bst-0a1b2c3d-0000-4000-8000-0123456789ab.bastion.azure.com.",
            "bst-0a1b2c3d-0000-4000-8000-0123456789ab.bastion.azure.com:443",
            "BST-0A1B2C3D-0000-4000-8000-0123456789AB.bastion.azure.com",
            "user@bst-0a1b2c3d-0000-4000-8000-0123456789ab.bastion.azure.com",
            "bst-0a1b2c3d-0000-4000-8000-0123456789ab.bastion.azure.com.evil.com",
            "evil.com/bst-0a1b2c3d-0000-4000-8000-0123456789ab.bastion.azure.com",
            "bst-0a1b2c3d00004000800001234567890ab.bastion.azure.com",
            "bst-x.bastion.azure.com",
            "127.0.0.1",
            "",
        ] {
            assert!(DataPlane::from_profile(bad).is_err(), "{bad}");
        }
        assert!(DataPlane::from_arm("bst-1.bastion.usgovcloudapi.net").is_ok());
        assert!(DataPlane::from_arm("a.com/x").is_err() && DataPlane::from_arm("u@a.com").is_err());
    }

    #[test]
    fn known_refusals_get_hints() {
        assert!(
            refusal_hint(400, "Tunneling is disabled", 10)
                .unwrap()
                .contains("Native client")
        );
        assert!(
            refusal_hint(401, "", 7000)
                .unwrap()
                .contains("7000 characters")
        );
        assert!(
            refusal_hint(401, "", 100)
                .unwrap()
                .contains("az account show")
        );
        assert!(refusal_hint(418, "", 100).is_none());
        assert_eq!(
            html_title(b"<html><head><TITLE> 502 Bad Gateway </title>").as_deref(),
            Some("502 Bad Gateway")
        );
    }

    #[test]
    fn ip_targets_use_host_connect() {
        let t = Target::Ip {
            subscription: "s".into(),
            resource_group: "rg".into(),
            ip: "10.0.0.4".into(),
        };
        let (id, host) = t.fields();
        assert_eq!(
            id,
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/bh-hostConnect/10.0.0.4"
        );
        assert_eq!(host, Some("10.0.0.4"));
    }
}
