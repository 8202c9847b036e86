//! az's and the bastion's known failures, as data: what each says (verbatim, from the
//! references: az-bastion.md and bastion-data-plane.md), and what it means for a profile with
//! the field, command or portal setting that fixes it. bprof prints one hint after a failed az
//! step whose output matches, and the native engine's refusals get the same hints.

/// One known failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    /// A short name (tests, docs).
    pub id: &'static str,
    /// Texts that identify it (any of them, case-insensitive).
    pub patterns: &'static [&'static str],
    /// What it means and how to fix it; `{profile}`, `{tenant}` are filled in.
    pub hint: &'static str,
}

/// The table, most specific first (the first match wins).
pub const KNOWN: &[Known] = &[
    Known {
        id: "sku-or-native-client",
        patterns: &[
            "Bastion Host SKU must be Standard or Premium and Native Client must be enabled",
        ],
        hint: "the bastion cannot carry native-client connections: it needs SKU Standard or Premium with native client support on (portal: the bastion > Configuration > Tier and Native client support; or `az network bastion update --sku Standard --enable-tunneling true`); `bprof doctor {profile}` checks it",
    },
    Known {
        id: "tunneling-disabled",
        patterns: &["Tunneling is disabled"],
        hint: "the bastion's native client support (tunneling) is off: turn it on in the portal (the bastion > Configuration > Native client support; SKU Standard or Premium)",
    },
    Known {
        id: "ip-connect-off",
        patterns: &["flag cannot be used when IpConnect is not enabled"],
        hint: "this profile's vm is an `ip`, and the bastion has IP-based connection off: turn it on (the bastion > Configuration > IP based connection), or give the vm by `resource_id` or `name`",
    },
    Known {
        id: "aad-with-ip-or-no-gateway",
        patterns: &["AAD login is not supported for Disable Gateway & IP Connect"],
        hint: "Entra sign-in needs the gateway and a VM target: remove `disable_gateway`, give the vm by `resource_id` or `name`, or use `auth_type: password`",
    },
    Known {
        id: "invalid-resource-id",
        patterns: &["Please enter a valid resource ID"],
        hint: "az did not accept the VM's resource id: check the vm's `resource_id` (or `name` and `resource_group`) and its subscription (`bprof show {profile}`)",
    },
    Known {
        id: "rdp-file",
        patterns: &["Server could not process the request to generate RDP file"],
        hint: "the bastion could not make an .rdp file for this VM: check that the VM runs and that the bastion reaches it (`bprof doctor {profile}`)",
    },
    Known {
        id: "rdp-not-on-this-os",
        patterns: &[
            "Platform is not supported for this command",
            "cannot import name 'WinDLL'",
        ],
        hint: "`az network bastion rdp` works on Windows only: on Linux and macOS bprof opens a tunnel and an RDP client itself; remove the profile's `template` (or its rdp step) to get that",
    },
    Known {
        id: "port-unavailable",
        patterns: &["Defined port is currently unavailable"],
        hint: "the tunnel's local port is taken: close what uses it, or pass --port N (with `local_port: auto` bprof's native engine moves to a free port itself)",
    },
    Known {
        id: "computer-name",
        patterns: &["AADSTS293004"],
        hint: "Entra could not find the VM as a device in the tenant: the name used for sign-in must be the VM's computer name; set the vm's `computer_name` to its `osProfile.computerName` (`bprof doctor {profile}` compares them), or the connection crosses tenants",
    },
    Known {
        id: "mfa-required",
        patterns: &["AADSTS50076", "AADSTS50079"],
        hint: "the tenant wants multi-factor sign-in: `az login --tenant {tenant}` and complete MFA, then run again",
    },
    Known {
        id: "refresh-token-expired",
        patterns: &["AADSTS700082"],
        hint: "az's sign-in has expired: `az login --tenant {tenant}`, then run again",
    },
    Known {
        id: "not-signed-in",
        patterns: &[
            "Please run 'az login' to setup account",
            "Interactive authentication is needed",
        ],
        hint: "az is not signed in here (or its sign-in expired): `az login --tenant {tenant}`",
    },
    Known {
        id: "token-too-large",
        patterns: &["KeyError: 'authToken'"],
        hint: "the bastion refused the session and az's extension (up to 1.4.3) could not say why: users in very many Entra groups have tokens too large for the service; update the extension (`az extension update --name bastion`), or use bprof's native engine (`tunnel_engine: native`), which shows the service's own message",
    },
    Known {
        id: "bastion-extension-missing",
        patterns: &["The command requires the extension bastion"],
        hint: "az's bastion extension is missing: `az extension add --name bastion` (tunnels need none with bprof's native engine)",
    },
    Known {
        id: "ssh-extension-missing",
        patterns: &["The extension ssh is not installed"],
        hint: "az's ssh extension is missing: `az extension add --name ssh` (ssh-key and password profiles need none with bprof's native engine)",
    },
    Known {
        id: "not-found",
        patterns: &[
            "ResourceNotFound",
            "ResourceGroupNotFound",
            "could not be found",
            "was not found",
        ],
        hint: "Azure does not know a resource this profile names: check the bastion's and the vm's `subscription`, `resource_group` and `name` (`bprof show {profile}`), and that az is signed in to the right tenant",
    },
    Known {
        id: "entra-sign-in",
        patterns: &["AADSTS"],
        hint: "Entra sign-in failed (the AADSTS code above says why): `az login --tenant {tenant}` signs in again",
    },
];

/// The first known failure `text` shows.
pub fn recognise(text: &str) -> Option<&'static Known> {
    let lower = text.to_ascii_lowercase();
    KNOWN.iter().find(|k| {
        k.patterns
            .iter()
            .any(|p| lower.contains(&p.to_ascii_lowercase()))
    })
}

/// The hint for `k`, with the profile and tenant filled in.
pub fn hint(k: &Known, profile: &str, tenant: &str) -> String {
    fill(k.hint, profile, tenant)
}

/// A hint's `{profile}` and `{tenant}` filled in (`PROFILE`, `TENANT` when unknown).
pub fn fill(hint: &str, profile: &str, tenant: &str) -> String {
    let or = |v: &'static str, s: &str| {
        if s.is_empty() {
            v.to_string()
        } else {
            s.to_string()
        }
    };
    hint.replace("{profile}", &or("PROFILE", profile))
        .replace("{tenant}", &or("TENANT", tenant))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each entry with a verbatim text from the references (or az's output around it).
    const SAMPLES: &[(&str, &str)] = &[
        (
            "sku-or-native-client",
            "ERROR: Bastion Host SKU must be Standard or Premium and Native Client must be enabled.",
        ),
        (
            "tunneling-disabled",
            "Request failed with error: Tunneling is disabled",
        ),
        (
            "ip-connect-off",
            "ERROR: `--target-ip-address` flag cannot be used when IpConnect is not enabled. Please use --target-resource-id flag instead.",
        ),
        (
            "aad-with-ip-or-no-gateway",
            "ERROR: AAD login is not supported for Disable Gateway & IP Connect scenarios.",
        ),
        (
            "invalid-resource-id",
            "ERROR: Please enter a valid resource ID. If this is not working, try opening the JSON view of your resource (in the Overview tab), and copying the full resource ID.",
        ),
        (
            "rdp-file",
            "ERROR: Server could not process the request to generate RDP file.",
        ),
        (
            "rdp-not-on-this-os",
            "ERROR: Platform is not supported for this command. Supported platforms: Windows",
        ),
        (
            "rdp-not-on-this-os",
            "ImportError: cannot import name 'WinDLL' from 'ctypes'",
        ),
        (
            "port-unavailable",
            "ERROR: Defined port is currently unavailable",
        ),
        (
            "computer-name",
            "AADSTS293004: The target-device identifier in the request was not found in the tenant.",
        ),
        (
            "mfa-required",
            "AADSTS50076: Due to a configuration change made by your administrator, you must use multi-factor authentication",
        ),
        (
            "mfa-required",
            "AADSTS50079: The user is required to use multi-factor authentication.",
        ),
        (
            "refresh-token-expired",
            "AADSTS700082: The refresh token has expired due to inactivity.",
        ),
        (
            "not-signed-in",
            "ERROR: Please run 'az login' to setup account.",
        ),
        (
            "not-signed-in",
            "Interactive authentication is needed. Please run:\naz login --scope https://management.core.windows.net//.default",
        ),
        ("token-too-large", "KeyError: 'authToken'"),
        (
            "bastion-extension-missing",
            "The command requires the extension bastion. Do you want to install it now? The command will continue to run after the extension is installed. (Y/n):",
        ),
        (
            "ssh-extension-missing",
            "ERROR: The extension ssh is not installed.",
        ),
        (
            "not-found",
            "(ResourceNotFound) The Resource 'Microsoft.Compute/virtualMachines/vm-1' under resource group 'rg' was not found.",
        ),
        (
            "entra-sign-in",
            "AADSTS53003: Access has been blocked by Conditional Access policies.",
        ),
    ];

    #[test]
    fn every_entry_is_recognised_from_its_verbatim_text() {
        for (id, text) in SAMPLES {
            let k = recognise(text).unwrap_or_else(|| panic!("{id}: not recognised: {text}"));
            assert_eq!(k.id, *id, "{text}");
        }
        for k in KNOWN {
            assert!(
                SAMPLES.iter().any(|(id, _)| *id == k.id),
                "{}: no sample",
                k.id
            );
            assert!(!k.hint.is_empty());
        }
        assert!(recognise("WARNING: Opening tunnel on port 5000").is_none());
    }

    #[test]
    fn hints_name_the_profile_and_tenant() {
        let k = recognise("AADSTS700082").unwrap();
        assert!(hint(k, "p", "t-1").contains("az login --tenant t-1"));
        let k = recognise(
            "Bastion Host SKU must be Standard or Premium and Native Client must be enabled",
        )
        .unwrap();
        assert!(hint(k, "prod-jumpbox", "").contains("bprof doctor prod-jumpbox"));
    }
}
