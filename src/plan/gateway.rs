//! Windows' RDP through the bastion's RD gateway, without az: the steps (the token, the
//! gateway's .rdp file fetched by bprof, that file merged with the profile's settings and
//! written for mstsc alone, mstsc) and the merge itself.
//!
//! The gateway's file comes from the network: of it only the properties that make the
//! connection (address, gateway, its token, sign-in) and display settings are kept; a
//! redirection only when it is off; anything else (programs, a redirection turned on) is left
//! out and named. Its gateway must be the bastion's own host or under its domain.

use super::*;
use crate::profile::allow::{RDP_REDIRECTIONS, RDP_SETTINGS, rdp_key, rdp_property};
use crate::profile::raw::RdpValue;

/// Properties of the gateway's file that make the connection: kept as the gateway wrote
/// them, whatever the profile says.
pub const CONNECTION: &[&str] = &[
    "full address:s",
    "alternate full address:s",
    "server port:i",
    "gatewayhostname:s",
    "gatewayusagemethod:i",
    "gatewaycredentialssource:i",
    "gatewayprofileusagemethod:i",
    "gatewayaccesstoken:s",
    "gatewaybrokeringtype:i",
    "loadbalanceinfo:s",
    "use redirection server name:i",
    "promptcredentialonce:i",
    "prompt for credentials:i",
    "prompt for credentials on client:i",
    "authentication level:i",
    "enablecredsspsupport:i",
    "negotiate security layer:i",
    "enablerdsaadauth:i",
    "targetisaadjoined:i",
    "kdcproxyname:s",
    "disableconnectionsharing:i",
];

/// Kept from the gateway's file, but the profile's own value wins.
const PERSONAL: &[&str] = &["username:s", "domain:s"];

/// What the gateway path fetches (the session layer makes the request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    /// The bastion: subscription (the token's), resource group, Azure name, `dns_name`.
    pub subscription: String,
    pub resource_group: String,
    pub bastion: String,
    pub dns_name: Option<String>,
    /// The VM's ARM id and port.
    pub vm_id: String,
    pub resource_port: u16,
    /// `enable_mfa`: the gateway's file asks for Entra sign-in (`enablerdsaad=True`).
    pub entra: bool,
}

impl Gateway {
    /// The request's URL as the plan shows it (the host is ARM's unless the profile names it;
    /// the token goes in a header, never here).
    pub fn url(&self) -> String {
        let host = match &self.dns_name {
            Some(d) => d.as_str(),
            None => "<the bastion's dnsName from ARM>",
        };
        format!(
            "https://{host}{}",
            crate::azure::gateway::target(&self.vm_id, self.resource_port, self.entra)
        )
    }
}

/// Whether an rdp profile on Windows with `client: auto` can use the gateway: a VM by its id,
/// the gateway kept, a SKU with a gateway (not the Developer SKU).
pub fn possible(profile: &Profile) -> bool {
    profile.vm.ip.is_none()
        && !profile.disable_gateway
        && profile.bastion.sku != Some(crate::profile::raw::Sku::Developer)
}

/// The gateway path's steps after sign-in: token, gateway-file, write-rdp, client.
pub(super) fn steps(profile: &Profile, opts: &PlanOptions, out: &mut Vec<Step>) {
    let b = &profile.bastion;
    out.push(super::steps::token_step(
        &b.subscription,
        "the ARM access token, kept in memory only",
    ));
    let gateway = Gateway {
        subscription: b.subscription.clone(),
        resource_group: b.resource_group.clone(),
        bastion: b.name.clone(),
        dns_name: b.dns_name.clone(),
        vm_id: profile.vm.resource_id.clone(),
        resource_port: profile.resource_port,
        entra: profile.enable_mfa,
    };
    let read = match &b.dns_name {
        Some(_) => String::new(),
        None => format!(
            " (ARM's read of bastion `{}` names the host; it must be Standard or Premium with native client support)",
            b.name
        ),
    };
    out.push(Step {
        name: "gateway-file".into(),
        argv: Vec::new(),
        when: None,
        detail: Some(format!(
            "the bastion's RD gateway file for vm `{}`{read}, with `Authorization: Bearer <the ARM token, elided>`; it holds a short-lived gateway token, never printed",
            profile.vm.name.clone().unwrap_or_else(|| profile.vm.key.clone())
        )),
        kind: StepKind::Gateway(gateway),
    });
    let path = temp_rdp_path(&opts.host, &profile.name);
    out.push(Step::internal(
        "write-rdp",
        format!(
            "{path}: the gateway's file with the profile's display settings merged in, readable by you only, removed when mstsc exits"
        ),
        StepKind::WriteRdp {
            path: path.clone(),
            lines: crate::plan::rdp::settings(profile),
        },
    ));
    let mstsc = crate::plan::client::ClientCmd {
        program: "mstsc".into(),
        freerdp3: false,
    };
    out.push(client_step(profile, opts, &mstsc, &path));
}

/// The gateway's file merged with the profile's settings, and what of the gateway's file was
/// left out (property names, escaped, bounded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    pub lines: Vec<String>,
    pub left_out: Vec<String>,
}

impl std::fmt::Display for Merged {
    /// The lines hold the gateway token: only the number of lines is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} lines", self.lines.len())
    }
}

/// Whether `value` (`host[:port]`) names the bastion's host, or a host under the last three
/// labels of its name (`bastion.azure.com` for `bst-<guid>.bastion.azure.com`).
fn gateway_ok(value: &str, bastion_host: &str) -> bool {
    let host = match value.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => value,
    }
    .to_ascii_lowercase();
    let own = bastion_host.to_ascii_lowercase();
    if host == own {
        return true;
    }
    let labels: Vec<&str> = own.split('.').collect();
    if labels.len() < 3 || own.parse::<std::net::IpAddr>().is_ok() {
        return false;
    }
    let suffix = labels[labels.len() - 3..].join(".");
    crate::azure::developer::pod_ok(&host, &suffix).is_ok()
}

/// Merges the gateway's .rdp text with the profile's `settings` lines ([`crate::plan::rdp::settings`]):
/// the gateway's connection properties stay; the profile's settings replace the gateway's
/// display settings of the same name or are added. Refused: a file without an address or a
/// gateway, or whose gateway is not the bastion's (`bastion_host`) or under its domain.
pub fn merge(file: &str, settings: &[String], bastion_host: &str) -> Result<Merged, String> {
    // (the name as clients match it, as written, the value)
    let mut kept: Vec<(String, String, String)> = Vec::new();
    let mut left_out = Vec::new();
    let mut leave = |what: String| {
        if left_out.len() < 20 {
            left_out.push(what);
        }
    };
    for line in file.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, ':');
        let (Some(name), Some(ty), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
            leave("a line that is not name:type:value".into());
            continue;
        };
        let written = format!("{name}:{ty}");
        let shown = crate::terminal::value(&crate::azure::http::bounded(&written, 60)).into_owned();
        let key = rdp_key(&written);
        if line.chars().any(char::is_control) {
            leave(format!("{shown} (a control character)"));
            continue;
        }
        if kept.iter().any(|(k, _, _)| *k == key) {
            leave(format!("{shown} (a second time)"));
            continue;
        }
        let value_of = || match value.trim().parse::<i64>() {
            Ok(i) if ty.trim() == "i" => RdpValue::Int(i),
            _ => RdpValue::Text(value.to_string()),
        };
        let keep = CONNECTION.contains(&key.as_str())
            || PERSONAL.contains(&key.as_str())
            || RDP_SETTINGS.contains(&key.as_str())
            || (RDP_REDIRECTIONS.contains(&key.as_str())
                && rdp_property(&key, &value_of()).is_ok());
        if !keep {
            leave(shown);
            continue;
        }
        // judged as written: the value mstsc gets is the value checked (no trimming)
        if key == "gatewayhostname:s" && !gateway_ok(value, bastion_host) {
            return Err(format!(
                "the gateway file names the gateway {}, which is neither the bastion's host {bastion_host} nor under its domain",
                crate::terminal::value(&crate::azure::http::bounded(value, 100))
            ));
        }
        kept.push((key, written, value.to_string()));
    }
    for needed in ["full address:s", "gatewayhostname:s"] {
        if !kept.iter().any(|(k, _, _)| k == needed) {
            return Err(format!("the gateway file has no `{needed}`"));
        }
    }
    for line in settings {
        let mut parts = line.splitn(3, ':');
        let (Some(name), Some(ty), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let written = format!("{name}:{ty}");
        let key = rdp_key(&written);
        if CONNECTION.contains(&key.as_str()) {
            continue;
        }
        match kept.iter_mut().find(|(k, _, _)| *k == key) {
            Some(existing) => existing.2 = value.to_string(),
            None => kept.push((key, written, value.to_string())),
        }
    }
    Ok(Merged {
        lines: kept
            .into_iter()
            .map(|(_, w, v)| format!("{w}:{v}"))
            .collect(),
        left_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "bst-0b6c3c6e-0000-4000-8000-000000000001.bastion.azure.com";

    fn file(extra: &str) -> String {
        format!(
            "full address:s:10.0.0.4:3389\r\ngatewayhostname:s:{HOST}:443\r\ngatewayusagemethod:i:1\r\ngatewayaccesstoken:s:SECRET-TOKEN\r\nscreen mode id:i:2\r\nredirectprinters:i:0\r\n{extra}"
        )
    }

    #[test]
    fn the_connection_stays_the_gateways_and_the_display_the_profiles() {
        let settings = vec![
            "screen mode id:i:1".to_string(),
            "desktopwidth:i:1280".into(),
            "username:s:alice".into(),
            "gatewayhostname:s:evil.example.com".into(),
            "full address:s:127.0.0.1:1".into(),
        ];
        let m = merge(&file("username:s:gw\r\n"), &settings, HOST).unwrap();
        assert_eq!(
            m.lines,
            [
                "full address:s:10.0.0.4:3389".to_string(),
                format!("gatewayhostname:s:{HOST}:443"),
                "gatewayusagemethod:i:1".into(),
                "gatewayaccesstoken:s:SECRET-TOKEN".into(),
                "screen mode id:i:1".into(),
                "redirectprinters:i:0".into(),
                "username:s:alice".into(),
                "desktopwidth:i:1280".into(),
            ]
        );
        assert!(m.left_out.is_empty(), "{:?}", m.left_out);
        assert_eq!(m.to_string(), "8 lines", "the token is never shown");
    }

    #[test]
    fn programs_redirections_and_junk_from_the_network_are_left_out() {
        let hostile = "alternate shell:s:cmd /c calc\r\nremoteapplicationprogram:s:x\r\ndrivestoredirect:s:*\r\nredirectdrives:i:1\r\nredirectclipboard:i:1\r\nno colons\r\nwinposstr:s:0,1\x1b[2J\r\nFull Address:s:evil:3389\r\n";
        let m = merge(&file(hostile), &[], HOST).unwrap();
        let text = m.lines.join("\n");
        for gone in [
            "alternate shell",
            "remoteapplication",
            "drivestoredirect",
            "redirectdrives",
            "evil",
            "\x1b",
        ] {
            assert!(!text.contains(gone), "{gone}: {text}");
        }
        assert!(text.contains("redirectclipboard:i:1"), "a display setting");
        assert_eq!(m.left_out.len(), 7, "{:?}", m.left_out);
        assert!(m.left_out.iter().all(|l| !l.contains('\x1b')));
    }

    #[test]
    fn the_gateway_must_be_the_bastions() {
        for ok in [
            HOST.to_string(),
            format!("{HOST}:443"),
            "gw-1.bastion.azure.com".into(),
        ] {
            let f = format!("full address:s:vm\ngatewayhostname:s:{ok}\n");
            assert!(merge(&f, &[], HOST).is_ok(), "{ok}");
        }
        for bad in [
            "evil.example.com",
            "gw.bastion.azure.com ",
            " gw.bastion.azure.com",
            "bastion.azure.com.evil.com",
            "10.0.0.1",
            "x.bastion.azure.com:44x",
            "user@gw.bastion.azure.com",
        ] {
            let f = format!("full address:s:vm\ngatewayhostname:s:{bad}\n");
            let e = merge(&f, &[], HOST).unwrap_err();
            assert!(e.contains("neither the bastion's host"), "{bad}: {e}");
        }
        // a one-label host (the tests' `localhost`) is matched exactly
        assert!(gateway_ok("localhost:8443", "localhost"));
        assert!(!gateway_ok("other", "localhost"));
        assert!(
            merge("gatewayhostname:s:localhost\n", &[], "localhost").is_err(),
            "no address"
        );
        assert!(
            merge("full address:s:vm\n", &[], "localhost").is_err(),
            "no gateway"
        );
    }
}
