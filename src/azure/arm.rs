//! Azure Resource Manager over REST: bearer auth, JSON, paging (`nextLink` on the same
//! endpoint only), a bounded retry on 429 and 5xx that honours `Retry-After`, and errors that
//! carry ARM's `error.code` and `error.message`. Paths are built from checked, percent-encoded
//! segments: a name with `..`, `/` or `?` can never reroute an authenticated request.

use std::time::Duration;

use serde_json::Value;

use super::AzureError;
use super::http::{Endpoint, Net, Request, Response, bounded, segment};
use super::token::Secret;

/// The public cloud's ARM.
pub const DEFAULT_ENDPOINT: &str = "https://management.azure.com";
/// The api-version of bastion reads.
pub const BASTION_API: &str = "2024-05-01";
/// How long one ARM call may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts of one call (the first and the retries).
const ATTEMPTS: u32 = 3;
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// An ARM answer is read up to this size.
const MAX_BODY: usize = 32 * 1024 * 1024;
/// Pages followed at most.
const MAX_PAGES: usize = 1000;

/// An ARM client for one endpoint.
#[derive(Clone)]
pub struct Arm {
    net: Net,
    endpoint: Endpoint,
    /// The endpoint URL's path, usually empty.
    base: String,
}

/// Checks a name that becomes a path segment: not empty, at most 260 characters, no path or
/// query characters, no control characters, not `.` or `..`. (Azure's own rules are narrower
/// and are checked when profiles load; this is the last line.)
pub fn checked_segment(what: &str, value: &str) -> Result<String, AzureError> {
    let bad = |rule: &str| AzureError::Name {
        what: what.to_string(),
        value: value.to_string(),
        rule: rule.to_string(),
    };
    if value.chars().count() > 260 {
        return Err(bad("at most 260 characters"));
    }
    if value
        .chars()
        .any(|c| c.is_control() || matches!(c, '/' | '\\' | '?' | '#' | '%' | '&' | '@'))
    {
        return Err(bad("no `/ \\ ? # % & @` and no control characters"));
    }
    segment(value).map_err(|_| bad("not empty, `.` or `..`"))
}

/// `/subscriptions/{sub}/resourceGroups/{rg}/providers/{provider}/{name}`, each segment
/// checked and encoded. `provider` is bprof's own text (`Microsoft.Network/bastionHosts`).
pub fn resource_path(
    subscription: &str,
    resource_group: &str,
    provider: &str,
    name: &str,
) -> Result<String, AzureError> {
    Ok(format!(
        "/subscriptions/{}/resourceGroups/{}/providers/{provider}/{}",
        checked_segment("subscription", subscription)?,
        checked_segment("resource group", resource_group)?,
        checked_segment("name", name)?
    ))
}

/// Re-encodes an ARM resource id (`/subscriptions/.../name`) segment by segment.
pub fn id_path(id: &str) -> Result<String, AzureError> {
    let parts: Vec<&str> = id.trim_start_matches('/').split('/').collect();
    if !id.starts_with('/') || parts.len() < 2 || !parts[0].eq_ignore_ascii_case("subscriptions") {
        return Err(AzureError::Name {
            what: "resource id".into(),
            value: id.into(),
            rule: "/subscriptions/{id}/resourceGroups/{group}/providers/...".into(),
        });
    }
    let mut out = String::new();
    for p in parts {
        out.push('/');
        out.push_str(&checked_segment("resource id", p)?);
    }
    Ok(out)
}

/// ARM's error object: `{"error": {"code", "message"}}` (or the body's start when it is not
/// JSON, marked as such).
pub fn error_text(resp: &Response) -> (Option<String>, String) {
    let body = String::from_utf8_lossy(&resp.body);
    if let Ok(v) = serde_json::from_slice::<Value>(&resp.body) {
        let e = v.get("error").unwrap_or(&v);
        let code = e
            .get("code")
            .and_then(Value::as_str)
            .map(|s| bounded(s, 80));
        let message = e
            .get("message")
            .or_else(|| e.get("Message"))
            .and_then(Value::as_str)
            .map(|s| bounded(s, 400));
        if code.is_some() || message.is_some() {
            return (code, message.unwrap_or_default());
        }
    }
    if is_html(resp) {
        return (
            None,
            "an HTML error page (from a gateway or proxy on the way)".into(),
        );
    }
    (None, bounded(body.trim(), 200))
}

pub fn is_html(resp: &Response) -> bool {
    resp.header("content-type")
        .is_some_and(|c| c.to_ascii_lowercase().contains("html"))
        || String::from_utf8_lossy(&resp.body[..resp.body.len().min(512)])
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("<")
}

fn retry_after(resp: &Response, attempt: u32) -> Duration {
    resp.header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1 << attempt))
        .min(MAX_RETRY_AFTER)
}

impl Arm {
    /// The endpoint the settings name (`BPROF_ARM_ENDPOINT`: other clouds, tests) or the
    /// public cloud's.
    pub fn from_config(net: Net, cfg: &super::Config) -> Result<Arm, AzureError> {
        Arm::new(net, cfg.arm_endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT))
    }

    pub fn new(net: Net, url: &str) -> Result<Arm, AzureError> {
        let (endpoint, base) = Endpoint::parse_url(url).map_err(|why| AzureError::ArmEndpoint {
            value: url.to_string(),
            why,
        })?;
        Ok(Arm {
            net,
            endpoint,
            base,
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn net(&self) -> &Net {
        &self.net
    }

    /// One call with the bounded retry; a non-2xx answer is an error with ARM's code/message.
    async fn call(
        &self,
        token: &Secret,
        method: &str,
        target: &str,
        body: Option<&Value>,
    ) -> Result<Value, AzureError> {
        let bearer = format!("Bearer {}", token.expose());
        let body_bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let target = format!("{}{target}", self.base);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut headers = vec![
                ("Authorization", bearer.as_str()),
                ("Accept", "application/json"),
            ];
            if body.is_some() {
                headers.push(("Content-Type", "application/json"));
            }
            let req = Request {
                method,
                target: &target,
                headers,
                body: &body_bytes,
            };
            let resp = self
                .net
                .send(&self.endpoint, &req, MAX_BODY, TIMEOUT)
                .await?;
            if (200..300).contains(&resp.status) {
                if resp.body.is_empty() {
                    return Ok(Value::Null);
                }
                return serde_json::from_slice(&resp.body).map_err(|_| AzureError::Protocol {
                    what: format!("{method} {}", super::http::path_only(&target)),
                    why: "ARM's answer is not JSON".into(),
                });
            }
            let retryable = resp.status == 429 || (500..600).contains(&resp.status);
            if retryable && attempt < ATTEMPTS {
                tokio::time::sleep(retry_after(&resp, attempt)).await;
                continue;
            }
            let (code, message) = error_text(&resp);
            return Err(AzureError::Arm {
                what: format!("{method} {}", super::http::path_only(&target)),
                status: resp.status,
                code,
                message,
            });
        }
    }

    /// GET a path (with its query) on this endpoint.
    pub async fn get(&self, token: &Secret, target: &str) -> Result<Value, AzureError> {
        self.call(token, "GET", target, None).await
    }

    /// POST JSON.
    pub async fn post(
        &self,
        token: &Secret,
        target: &str,
        body: &Value,
    ) -> Result<Value, AzureError> {
        self.call(token, "POST", target, Some(body)).await
    }

    /// GET every page of a list: `value` of each, following `nextLink` while it points at
    /// this same endpoint (a link elsewhere is refused: the token goes nowhere else).
    pub async fn get_all(&self, token: &Secret, target: &str) -> Result<Vec<Value>, AzureError> {
        let mut out = Vec::new();
        let mut next = target.to_string();
        for _ in 0..MAX_PAGES {
            let page = self.get(token, &next).await?;
            if let Some(Value::Array(items)) = page.get("value") {
                out.extend(items.iter().cloned());
            }
            match page.get("nextLink").and_then(Value::as_str) {
                Some(link) if !link.is_empty() => next = self.same_endpoint(link)?,
                _ => return Ok(out),
            }
        }
        Ok(out)
    }

    /// The path and query of `link` when it is on this endpoint.
    pub fn same_endpoint(&self, link: &str) -> Result<String, AzureError> {
        let refused = || AzureError::Protocol {
            what: "following ARM's nextLink".into(),
            why: format!(
                "it points away from {} (refused: the token goes to ARM only)",
                self.endpoint.authority()
            ),
        };
        let rest = link.strip_prefix("https://").ok_or_else(refused)?;
        let i = rest.find('/').ok_or_else(refused)?;
        let ep = Endpoint::parse_authority(&rest[..i]).map_err(|_| refused())?;
        let target = &rest[i..];
        if ep != self.endpoint
            || !target.starts_with(&self.base)
            || !target.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(refused());
        }
        Ok(target[self.base.len()..].to_string())
    }
}

/// What ARM says about a bastion (missing booleans are false).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BastionFacts {
    /// Its ARM id, as ARM gave it.
    pub id: Option<String>,
    pub dns_name: Option<String>,
    pub sku: Option<String>,
    pub tunneling: bool,
    pub ip_connect: bool,
    /// The Developer SKU's one virtual network (it serves no other, not even a peered one).
    pub virtual_network: Option<String>,
}

impl BastionFacts {
    pub fn from_json(v: &Value) -> BastionFacts {
        let props = v.get("properties");
        let flag = |k: &str| {
            props
                .and_then(|p| p.get(k))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        BastionFacts {
            id: v.get("id").and_then(Value::as_str).map(str::to_string),
            virtual_network: props
                .and_then(|p| p.get("virtualNetwork"))
                .and_then(|n| n.get("id"))
                .and_then(Value::as_str)
                .map(str::to_string),
            dns_name: props
                .and_then(|p| p.get("dnsName"))
                .and_then(Value::as_str)
                .map(str::to_string),
            sku: v
                .get("sku")
                .and_then(|s| s.get("name"))
                .and_then(Value::as_str)
                .map(str::to_string),
            tunneling: flag("enableTunneling"),
            ip_connect: flag("enableIpConnect"),
        }
    }

    /// Whether it is the Developer SKU (a broker names a data pod per session).
    pub fn developer(&self) -> bool {
        self.sku
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("developer"))
    }

    /// Whether its SKU carries bprof's native tunnels (Standard, Premium, Developer).
    pub fn sku_ok(&self) -> bool {
        self.developer()
            || self.sku.as_deref().is_some_and(|s| {
                s.eq_ignore_ascii_case("standard") || s.eq_ignore_ascii_case("premium")
            })
    }

    /// Its SKU cannot carry native-client tunnels.
    pub fn sku_refusal(&self) -> Option<Refusal> {
        (!self.sku_ok()).then(|| Refusal {
            why: format!(
                "its SKU is {}, and native-client tunnels need Standard, Premium or Developer",
                self.sku
                    .as_deref()
                    .map(|s| bounded(s, 40))
                    .unwrap_or_else(|| "unknown".into())
            ),
            fix: "upgrade it in the portal (the bastion > Configuration > Tier) or with `az network bastion update --sku Standard`".into(),
        })
    }

    /// Native client support (tunneling) is off (the Developer SKU has no such setting).
    pub fn tunneling_refusal(&self) -> Option<Refusal> {
        (!self.tunneling && !self.developer()).then(|| Refusal {
            why: "native client support (tunneling) is off".into(),
            fix: "turn it on in the portal (the bastion > Configuration > Native client support) or with `az network bastion update --enable-tunneling true`".into(),
        })
    }

    /// IP-based connection is off, for a target given by IP.
    pub fn ip_connect_refusal(&self) -> Option<Refusal> {
        if self.developer() {
            return Some(Refusal {
                why: "the Developer SKU has no IP-based connection, and this profile's target is an IP".into(),
                fix: "target the VM by name or resource id, or upgrade the bastion to Standard (Configuration > Tier) and turn on IP-based connection".into(),
            });
        }
        (!self.ip_connect).then(|| Refusal {
            why: "IP-based connection is off, and this profile's target is an IP".into(),
            fix: "turn on the bastion's Configuration > IP-based connection, or target the VM by name".into(),
        })
    }

    /// Why the native client cannot use it, with the setting that fixes it.
    pub fn refusal(&self, ip_target: bool) -> Option<String> {
        self.sku_refusal()
            .or_else(|| self.tunneling_refusal())
            .or_else(|| ip_target.then(|| self.ip_connect_refusal()).flatten())
            .map(|r| format!("{}: {}", r.why, r.fix))
    }
}

/// One reason a bastion cannot carry a native tunnel: what is wrong, and what fixes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub why: String,
    pub fix: String,
}

/// Reads a bastion.
pub async fn bastion(
    arm: &Arm,
    token: &Secret,
    subscription: &str,
    resource_group: &str,
    name: &str,
) -> Result<BastionFacts, AzureError> {
    let path = resource_path(
        subscription,
        resource_group,
        "Microsoft.Network/bastionHosts",
        name,
    )?;
    let v = arm
        .get(token, &format!("{path}?api-version={BASTION_API}"))
        .await?;
    Ok(BastionFacts::from_json(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_never_reroute() {
        let p = resource_path("s", "rg", "Microsoft.Network/bastionHosts", "b").unwrap();
        assert_eq!(
            p,
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/bastionHosts/b"
        );
        for bad in ["..", ".", "", "a/b", "a?b", "a#b", "x%2Fy", "a\nb", "a\\b"] {
            assert!(resource_path("s", bad, "P/t", "b").is_err(), "{bad:?}");
            assert!(resource_path("s", "rg", "P/t", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            id_path("/subscriptions/s/resourceGroups/r g/providers/P/t/n").unwrap(),
            "/subscriptions/s/resourceGroups/r%20g/providers/P/t/n"
        );
        assert!(id_path("/subscriptions/s/../x").is_err());
        assert!(id_path("https://evil/subscriptions/s").is_err());
    }

    fn arm(url: &str) -> Arm {
        let tls = super::super::tls::Tls::with(Vec::new(), false).unwrap();
        Arm::new(Net::new(tls, None, Default::default()), url).unwrap()
    }

    #[test]
    fn next_links_stay_on_the_endpoint() {
        let a = arm("https://management.azure.com");
        assert_eq!(
            a.same_endpoint("https://management.azure.com/subscriptions?x=1&$skiptoken=a")
                .unwrap(),
            "/subscriptions?x=1&$skiptoken=a"
        );
        for bad in [
            "https://evil.com/subscriptions",
            "https://management.azure.com.evil.com/x",
            "https://management.azure.com@evil.com/x",
            "http://management.azure.com/x",
            "https://management.azure.com:444/x",
            "//evil.com/x",
            "https://management.azure.com/x y",
        ] {
            assert!(a.same_endpoint(bad).is_err(), "{bad}");
        }
        assert!(Arm::new(a.net().clone(), "http://x").is_err());
    }

    #[test]
    fn bastion_facts_and_refusals() {
        let v: Value = serde_json::from_str(r#"{"sku": {"name": "Standard"}, "properties": {"dnsName": "bst-1.bastion.azure.com", "enableTunneling": true}}"#).unwrap();
        let f = BastionFacts::from_json(&v);
        assert_eq!(f.dns_name.as_deref(), Some("bst-1.bastion.azure.com"));
        assert_eq!(f.refusal(false), None);
        assert!(f.refusal(true).unwrap().contains("IP-based"));
        // a missing enableTunneling is false (az crashed on it)
        let v: Value =
            serde_json::from_str(r#"{"sku": {"name": "Premium"}, "properties": {}}"#).unwrap();
        assert!(
            BastionFacts::from_json(&v)
                .refusal(false)
                .unwrap()
                .contains("Native client support")
        );
        let v: Value = serde_json::from_str(
            r#"{"sku": {"name": "Basic"}, "properties": {"enableTunneling": true}}"#,
        )
        .unwrap();
        assert!(
            BastionFacts::from_json(&v)
                .refusal(false)
                .unwrap()
                .contains("Basic")
        );
    }

    #[test]
    fn arm_errors_keep_code_and_message() {
        let resp = |ct: &str, body: &str| Response {
            status: 404,
            headers: vec![("content-type".into(), ct.into())],
            body: body.as_bytes().to_vec(),
        };
        let (c, m) = error_text(&resp(
            "application/json",
            r#"{"error": {"code": "ResourceNotFound", "message": "not found"}}"#,
        ));
        assert_eq!(
            (c.as_deref(), m.as_str()),
            (Some("ResourceNotFound"), "not found")
        );
        let (c, m) = error_text(&resp("text/html", "<html><body>502</body></html>"));
        assert!(c.is_none() && m.contains("HTML"), "{m}");
    }
}
