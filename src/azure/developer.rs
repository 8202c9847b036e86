//! The Developer SKU's data plane (az bastion 1.4.1+, `developer_sku_helper`): the bastion's
//! ARM `dnsName` is a regional connection broker (`omnibrain.<region>.bastionglobal.azure.com`)
//! that, asked with `POST /api/connection`, names the data pod that carries one session; the
//! session is then asked of that pod as for the other SKUs, and its websocket is
//! `/omni/webtunnel/{websocketToken}` (no `X-Node-Id` query).
//!
//! Where the token may go: the broker is ARM's `dnsName` (the person's own ARM said so); a pod
//! is believed only when it is a DNS name (no IP literal, port or userinfo) under the last three
//! labels of the broker's name (`bastionglobal.azure.com` in the public cloud, so other clouds
//! work the same way). Anything else is refused, naming the host, before the token leaves.

use std::time::Duration;

use super::AzureError;
use super::bastion::{DataPlane, Target};
use super::http::{Endpoint, Net, Request, bounded};
use super::token::Secret;

/// How long asking the broker for a data pod may take.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// The broker's answer is read up to this size (a host name).
const MAX_ANSWER: usize = 4096;

/// The Developer SKU's broker: where sessions are asked for a data pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    endpoint: Endpoint,
    /// The last three labels of its name: every data pod's name ends with them.
    suffix: String,
    /// The bastion's ARM id (`bastionResourceId`).
    bastion_id: String,
}

impl Broker {
    /// From ARM's `dnsName` for the bastion (a host name with an optional port) and its id.
    pub fn from_arm(dns_name: &str, bastion_id: &str) -> Result<Broker, AzureError> {
        let bad = |why: String| AzureError::Protocol {
            what: "the Developer SKU bastion's dnsName from ARM".into(),
            why: format!("`{}`: {why}", bounded(dns_name, 100)),
        };
        let endpoint = Endpoint::parse_authority(dns_name).map_err(bad)?;
        let host = endpoint.host.to_ascii_lowercase();
        let labels: Vec<&str> = host.split('.').collect();
        if labels.len() < 3 || host.parse::<std::net::IpAddr>().is_ok() {
            return Err(bad("not a DNS name of at least three labels".into()));
        }
        Ok(Broker {
            suffix: labels[labels.len() - 3..].join("."),
            endpoint,
            bastion_id: bastion_id.to_string(),
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The domain every data pod's name ends with.
    pub fn suffix(&self) -> &str {
        &self.suffix
    }
}

/// Whether `host` (the broker's answer) may be given the token: a DNS name of letters, digits
/// and hyphens under `.{suffix}`, with at least one label of its own; no IP literal, port,
/// userinfo, path or trailing dot.
pub fn pod_ok(host: &str, suffix: &str) -> Result<(), String> {
    let lower = host.to_ascii_lowercase();
    let Some(own) = lower.strip_suffix(suffix).and_then(|r| r.strip_suffix('.')) else {
        return Err(format!("it is not a host under {suffix}"));
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if own.is_empty() || lower.len() > 253 || !own.split('.').all(label_ok) {
        return Err("it is not a DNS host name".into());
    }
    if lower.parse::<std::net::IpAddr>().is_ok() {
        return Err("it is an IP address".into());
    }
    Ok(())
}

/// The broker's answer as a host name: the body as text, trimmed, without quotes around it.
fn answer_host(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let t = text.trim();
    let t = t
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(t);
    t.to_string()
}

/// `POST /api/connection` to the broker: the data pod that carries one session to `target`'s
/// `port`. The answer is checked ([`pod_ok`]) before anything is sent there.
pub async fn data_pod(
    net: &Net,
    broker: &Broker,
    target: &Target,
    port: u16,
    token: &Secret,
) -> Result<DataPlane, AzureError> {
    let Target::Vm { resource_id } = target else {
        return Err(AzureError::Unusable {
            bastion: broker.bastion_id.clone(),
            why: "the Developer SKU has no IP-based connection".into(),
        });
    };
    let body = serde_json::json!({
        "resourceId": resource_id,
        "bastionResourceId": broker.bastion_id,
        "vmPort": port,
        "azToken": token.expose(),
        "connectionType": "nativeclient",
    })
    .to_string();
    let req = Request {
        method: "POST",
        target: "/api/connection",
        headers: vec![
            ("Content-Type", "application/json"),
            ("Accept", "text/plain, application/json"),
        ],
        body: body.as_bytes(),
    };
    let resp = net
        .send(&broker.endpoint, &req, MAX_ANSWER, CONNECTION_TIMEOUT)
        .await;
    // the body held the token: it is not kept
    super::token::wipe(body.into_bytes());
    let resp = resp?;
    if !(200..300).contains(&resp.status) {
        return Err(super::bastion::refused(
            &resp,
            token,
            "the Developer SKU's connection request failed",
        ));
    }
    let host = answer_host(&resp.body);
    pod_ok(&host, &broker.suffix).map_err(|why| AzureError::Protocol {
        what: format!(
            "the data pod `{}` that the broker named",
            bounded(&host, 100)
        ),
        why: format!("{why}: the token is not sent there"),
    })?;
    Ok(DataPlane::pod(&host.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_is_a_host_under_the_brokers_domain_only() {
        let b = Broker::from_arm("omnibrain.westeurope.bastionglobal.azure.com", "/id").unwrap();
        assert_eq!(b.suffix(), "bastionglobal.azure.com");
        let s = b.suffix();
        for good in [
            "pod-1.westeurope.bastionglobal.azure.com",
            "X.bastionglobal.azure.com",
        ] {
            assert_eq!(pod_ok(good, s), Ok(()), "{good}");
        }
        for bad in [
            "bastionglobal.azure.com",
            ".bastionglobal.azure.com",
            "evil.com",
            "pod.bastionglobal.azure.com.evil.com",
            "pod.bastionglobal.azure.com:8443",
            "user@pod.bastionglobal.azure.com",
            "pod.bastionglobal.azure.com.",
            "pod.bastionglobal.azure.com/x",
            "evilbastionglobal.azure.com",
            "10.0.0.1",
            "pod_1.bastionglobal.azure.com",
            "",
        ] {
            assert!(pod_ok(bad, s).is_err(), "{bad}");
        }
        assert!(Broker::from_arm("10.0.0.1", "/id").is_err());
        assert!(Broker::from_arm("azure.com", "/id").is_err());
        let other = Broker::from_arm("omnibrain.x.bastionglobal.azure.us", "/id").unwrap();
        assert_eq!(other.suffix(), "bastionglobal.azure.us");
    }

    #[test]
    fn the_answer_is_the_host_as_text() {
        assert_eq!(answer_host(b" pod-1.a.b.c\n"), "pod-1.a.b.c");
        assert_eq!(answer_host(b"\"pod-1.a.b.c\""), "pod-1.a.b.c");
    }
}
