//! ARM reads around a connection, beside the bastion's (`arm::bastion`): a VM with its instance
//! view, its extensions, the role assignments that reach a principal at its scope, a network
//! interface, a virtual network; and what `bprof doctor` reads out of their JSON. Every path is
//! built by [`arm::id_path`], segment by segment, whether the id comes from a profile (checked
//! when it loaded) or from ARM (a NIC's or a subnet's id): a path, never a URL, so the request
//! goes to the same ARM endpoint as every other.

use serde_json::Value;

use super::AzureError;
use super::arm::{BASTION_API, id_path};
use super::http::segment;

/// The api-version of Microsoft.Compute reads (VMs, their extensions).
pub const COMPUTE_API: &str = "2024-07-01";
/// The api-version of Microsoft.Network reads (network interfaces, virtual networks).
pub const NETWORK_API: &str = BASTION_API;
/// The api-version of role assignment lists.
pub const AUTHORIZATION_API: &str = "2022-04-01";
/// The built-in role "Virtual Machine Administrator Login".
pub const ADMIN_LOGIN: &str = "1c0163c0-47e6-4577-8991-ea5c82e286e4";
/// The built-in role "Virtual Machine User Login".
pub const USER_LOGIN: &str = "fb879df8-f326-4884-b1cf-06f3ad86be52";
/// The publisher of the Entra login extensions.
pub const ENTRA_PUBLISHER: &str = "Microsoft.Azure.ActiveDirectory";

/// A VM with its instance view (power state).
pub fn vm_target(vm_id: &str) -> Result<String, AzureError> {
    Ok(format!(
        "{}?$expand=instanceView&api-version={COMPUTE_API}",
        id_path(vm_id)?
    ))
}

/// A VM's extensions.
pub fn extensions_target(vm_id: &str) -> Result<String, AzureError> {
    Ok(format!(
        "{}/extensions?api-version={COMPUTE_API}",
        id_path(vm_id)?
    ))
}

/// The role assignments that reach `oid` (groups included) at `scope` or above it.
pub fn role_assignments_target(scope: &str, oid: &str) -> Result<String, AzureError> {
    let filter = segment(&format!("atScope() and assignedTo('{oid}')")).map_err(|rule| {
        AzureError::Name {
            what: "principal id".into(),
            value: oid.into(),
            rule,
        }
    })?;
    Ok(format!(
        "{}/providers/Microsoft.Authorization/roleAssignments?$filter={filter}&api-version={AUTHORIZATION_API}",
        id_path(scope)?
    ))
}

/// A network resource by its id (a NIC, a virtual network).
pub fn network_target(id: &str) -> Result<String, AzureError> {
    Ok(format!("{}?api-version={NETWORK_API}", id_path(id)?))
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
}

/// The entry of a list marked `properties.primary`, else the first.
fn primary(list: Option<&Value>) -> Option<&Value> {
    let list = list?.as_array()?;
    list.iter()
        .find(|e| e.pointer("/properties/primary").and_then(Value::as_bool) == Some(true))
        .or_else(|| list.first())
}

/// What doctor reads from a VM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmFacts {
    pub name: Option<String>,
    /// `osProfile.computerName` (absent for VMs made from a specialized disk).
    pub computer_name: Option<String>,
    /// `storageProfile.osDisk.osType`: Windows or Linux.
    pub os_type: Option<String>,
    /// The `PowerState/...` code's state: running, deallocated, stopped, starting...
    pub power: Option<String>,
    /// The primary network interface's id.
    pub nic: Option<String>,
}

impl VmFacts {
    pub fn from_json(v: &Value) -> VmFacts {
        let props = v.get("properties").unwrap_or(&Value::Null);
        let power = props
            .pointer("/instanceView/statuses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("code").and_then(Value::as_str))
            .find_map(|c| c.strip_prefix("PowerState/"))
            .map(str::to_string);
        VmFacts {
            name: text(v, &["name"]).map(str::to_string),
            computer_name: text(props, &["osProfile", "computerName"]).map(str::to_string),
            os_type: text(props, &["storageProfile", "osDisk", "osType"]).map(str::to_string),
            power,
            nic: primary(props.pointer("/networkProfile/networkInterfaces"))
                .and_then(|n| text(n, &["id"]))
                .map(str::to_string),
        }
    }
}

/// One VM extension: publisher, type and provisioning state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    pub publisher: String,
    pub kind: String,
    pub state: Option<String>,
}

/// The extensions of a VM's extension list (`{"value": [...]}`).
pub fn extensions(list: &Value) -> Vec<Extension> {
    list.get("value")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let props = e.get("properties")?;
            Some(Extension {
                publisher: text(props, &["publisher"])?.to_string(),
                kind: text(props, &["type"])?.to_string(),
                state: text(props, &["provisioningState"]).map(str::to_string),
            })
        })
        .collect()
}

/// The subnet id of a NIC's primary IP configuration.
pub fn nic_subnet(nic: &Value) -> Option<String> {
    primary(nic.pointer("/properties/ipConfigurations"))
        .and_then(|c| text(c, &["properties", "subnet", "id"]))
        .map(str::to_string)
}

/// The virtual network a subnet id belongs to (the id up to `/subnets/`).
pub fn vnet_of(subnet_id: &str) -> Option<String> {
    let i = subnet_id.to_ascii_lowercase().find("/subnets/")?;
    Some(subnet_id[..i].to_string())
}

/// The virtual network a bastion is in: its first IP configuration's subnet, or (Developer
/// SKU) its `virtualNetwork`.
pub fn bastion_vnet(bastion: &Value) -> Option<String> {
    bastion
        .pointer("/properties/ipConfigurations/0/properties/subnet/id")
        .and_then(Value::as_str)
        .and_then(vnet_of)
        .or_else(|| text(bastion, &["properties", "virtualNetwork", "id"]).map(str::to_string))
}

/// A virtual network's peering: the remote network and the peering's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peering {
    pub remote: String,
    pub state: Option<String>,
}

pub fn peerings(vnet: &Value) -> Vec<Peering> {
    vnet.pointer("/properties/virtualNetworkPeerings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some(Peering {
                remote: text(p, &["properties", "remoteVirtualNetwork", "id"])?.to_string(),
                state: text(p, &["properties", "peeringState"]).map(str::to_string),
            })
        })
        .collect()
}

/// The login roles among role assignments: (role name, scope), Administrator Login first.
pub fn login_roles(assignments: &[Value]) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (id, name) in [
        (ADMIN_LOGIN, "Virtual Machine Administrator Login"),
        (USER_LOGIN, "Virtual Machine User Login"),
    ] {
        for a in assignments {
            let role = text(a, &["properties", "roleDefinitionId"])
                .and_then(|r| r.rsplit('/').next())
                .unwrap_or("");
            if role.eq_ignore_ascii_case(id) {
                let scope = text(a, &["properties", "scope"]).unwrap_or("").to_string();
                out.push((name, scope));
            }
        }
    }
    out
}

/// Whether two ARM ids name the same resource (ARM ids compare without case).
pub fn same_id(a: &str, b: &str) -> bool {
    a.trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const VM: &str =
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-1";

    #[test]
    fn targets_are_checked_paths_with_their_api_versions() {
        assert_eq!(
            vm_target(VM).unwrap(),
            format!("{VM}?$expand=instanceView&api-version=2024-07-01")
        );
        assert_eq!(
            extensions_target(VM).unwrap(),
            format!("{VM}/extensions?api-version=2024-07-01")
        );
        assert_eq!(
            role_assignments_target(VM, "0000-oid").unwrap(),
            format!(
                "{VM}/providers/Microsoft.Authorization/roleAssignments?$filter=atScope%28%29%20and%20assignedTo%28%270000-oid%27%29&api-version=2022-04-01"
            )
        );
        // an oid cannot end the filter or add parameters
        let hostile = role_assignments_target(VM, "x')&api-version=1&y=('").unwrap();
        assert_eq!(hostile.matches('&').count(), 1, "{hostile}");
        assert!(
            hostile.ends_with("%27%29&api-version=2022-04-01"),
            "{hostile}"
        );
        for bad in [
            "/subscriptions/s/../x",
            "https://evil.example/subscriptions/s",
            "/subscriptions/s/resourceGroups/r?x=1",
        ] {
            assert!(network_target(bad).is_err(), "{bad}");
            assert!(vm_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn vm_facts_from_arm_json() {
        let v = json!({"name": "vm-1", "properties": {
            "osProfile": {"computerName": "JUMPBOX01"},
            "storageProfile": {"osDisk": {"osType": "Windows"}},
            "networkProfile": {"networkInterfaces": [
                {"id": "/subscriptions/s/x/nic-2"},
                {"id": "/subscriptions/s/x/nic-1", "properties": {"primary": true}}]},
            "instanceView": {"statuses": [
                {"code": "ProvisioningState/succeeded"}, {"code": "PowerState/deallocated"}]}}});
        let f = VmFacts::from_json(&v);
        assert_eq!(f.computer_name.as_deref(), Some("JUMPBOX01"));
        assert_eq!(f.os_type.as_deref(), Some("Windows"));
        assert_eq!(f.power.as_deref(), Some("deallocated"));
        assert_eq!(f.nic.as_deref(), Some("/subscriptions/s/x/nic-1"));
        assert_eq!(VmFacts::from_json(&json!("junk")), VmFacts::default());
    }

    #[test]
    fn networks_extensions_and_roles() {
        let nic = json!({"properties": {"ipConfigurations": [{"properties": {"subnet": {"id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/virtualNetworks/spoke/subnets/default"}}}]}});
        let subnet = nic_subnet(&nic).unwrap();
        assert_eq!(
            vnet_of(&subnet).as_deref(),
            Some(
                "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/virtualNetworks/spoke"
            )
        );
        assert_eq!(vnet_of("/no/subnet/here"), None);
        let dev = json!({"properties": {"virtualNetwork": {"id": "/subscriptions/s/v"}}});
        assert_eq!(bastion_vnet(&dev).as_deref(), Some("/subscriptions/s/v"));
        let vnet = json!({"properties": {"virtualNetworkPeerings": [
            {"properties": {"remoteVirtualNetwork": {"id": "/a"}, "peeringState": "Connected"}},
            {"properties": {}}]}});
        assert_eq!(
            peerings(&vnet),
            [Peering {
                remote: "/a".into(),
                state: Some("Connected".into())
            }]
        );
        let exts = extensions(&json!({"value": [
            {"name": "whatever", "properties": {"publisher": "Microsoft.Azure.ActiveDirectory", "type": "AADLoginForWindows", "provisioningState": "Succeeded"}},
            {"properties": {"publisher": "x"}}]}));
        assert_eq!(exts.len(), 1);
        assert_eq!(exts[0].kind, "AADLoginForWindows");
        let roles = [
            json!({"properties": {"roleDefinitionId": format!("/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/{USER_LOGIN}"), "scope": "/subscriptions/s"}}),
            json!({"properties": {"roleDefinitionId": "/x/acdd72a7-3385-48ef-bd42-f606fba81ae7"}}),
        ];
        assert_eq!(
            login_roles(&roles),
            [("Virtual Machine User Login", "/subscriptions/s".to_string())]
        );
        assert!(same_id("/A/b/", "/a/B"));
    }
}
