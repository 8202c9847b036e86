//! The profile files as written: serde + schemars types, straight from YAML.
//!
//! These types are the source of `schema/bprof.schema.json` (doc comments become descriptions)
//! and the shape every loaded file is checked against. Nothing here is resolved: references are
//! plain names, fields are optional where inheritance may fill them in. The resolved,
//! validated form lives in [`crate::profile::resolve`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A GUID such as a tenant or subscription id.
pub const GUID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
/// Names of tenants, bastions, vms, profiles and templates (typed on the command line).
pub const NAME_PATTERN: &str = "^[a-z0-9][a-z0-9._-]{0,62}$";
/// An Azure resource group name (Azure's rule: letters, digits, `_`, `-`, `.`, `(`, `)`, not
/// ending in `.`); a leading `-` is refused too, since az would read it as an option.
pub const RESOURCE_GROUP_PATTERN: &str = r"^[\w()](?:[-\w.()]*[-\w()])?$";
/// An Azure resource name of a bastion or VM: letters, digits, `_`, `-`, `.`, starting with a
/// letter or digit and not ending in `.` or `-` (no `/`, `?` or `#` that would reroute a request).
pub const RESOURCE_NAME_PATTERN: &str = "^[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$";
/// A bastion's data-plane host as a profile may name it: exactly Azure's public
/// `bst-<guid>.bastion.azure.com`, lower case (the person's access token is sent there).
pub const DNS_NAME_PATTERN: &str =
    r"^bst-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.bastion\.azure\.com$";
/// The names of the built-in templates (their steps are in [`crate::plan::template::BUILTIN`]).
pub const BUILTIN_TEMPLATES: [&str; 3] = ["rdp", "ssh", "tunnel"];
/// An .rdp property key as written under `rdp.properties`: `name:type`.
pub const RDP_KEY_PATTERN: &str = "^[A-Za-z][A-Za-z0-9 _.-]*:[sib]$";

/// One bprof profile file (format version 1). Shared files hold tenants, bastions, vms,
/// profiles, defaults and templates; a personal override (`*.local.yaml` or the user config
/// file) changes fields of existing entries, adds profiles, and may list `allow_programs`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "bprof profile file")]
pub struct RawFile {
    /// Format version of this file. Required in every file; only `1` exists.
    #[schemars(range(min = 1, max = 1), example = 1)]
    pub version: u32,
    /// Entra ID tenants, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("propertyNames" = {"pattern": NAME_PATTERN}))]
    pub tenants: BTreeMap<String, RawTenant>,
    /// Azure Bastion resources, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("propertyNames" = {"pattern": NAME_PATTERN}))]
    pub bastions: BTreeMap<String, RawBastion>,
    /// Target virtual machines, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("propertyNames" = {"pattern": NAME_PATTERN}))]
    pub vms: BTreeMap<String, RawVm>,
    /// Connection profiles, by the name typed on the command line (`bprof run NAME`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("propertyNames" = {"pattern": NAME_PATTERN}))]
    pub profiles: BTreeMap<String, RawProfile>,
    /// Profile fields applied under every profile of the set (a profile's own value wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<RawProfile>,
    /// User templates: a list of steps, each a list of argv tokens (handlebars, rendered one
    /// token at a time).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("propertyNames" = {"pattern": NAME_PATTERN}))]
    pub templates: BTreeMap<String, RawTemplate>,
    /// Only in a personal override: programs other than `az` that templates may run on this
    /// person's machine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 4096)), example = ["pwsh"])]
    pub allow_programs: Vec<String>,
}

/// An Entra ID tenant.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTenant {
    /// The Entra tenant id (a GUID).
    #[schemars(regex(pattern = GUID_PATTERN), example = &"00000000-0000-0000-0000-0000000000a1")]
    pub id: String,
    /// The tenant's default subscription id (a GUID), used by bastions and vms that name none.
    #[schemars(regex(pattern = GUID_PATTERN), example = &"00000000-0000-0000-0000-0000000000b1")]
    pub subscription: String,
    /// What this tenant is, for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Extra arguments for `az login` in this tenant, one argv element each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), inner(length(max = 4096)), example = ["--use-device-code"])]
    pub login: Option<Vec<String>>,
}

/// The bastion's SKU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Sku {
    Basic,
    Standard,
    Premium,
    Developer,
}

/// An Azure Bastion host.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBastion {
    /// The tenant (a `tenants` name) the bastion lives in.
    #[schemars(regex(pattern = NAME_PATTERN), example = &"contoso")]
    pub tenant: String,
    /// The bastion's subscription id; defaults to the tenant's subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = GUID_PATTERN))]
    pub subscription: Option<String>,
    /// The bastion's resource group.
    #[schemars(length(min = 1, max = 90), regex(pattern = RESOURCE_GROUP_PATTERN), example = &"rg-hub-net")]
    pub resource_group: String,
    /// The bastion's Azure resource name.
    #[schemars(length(min = 1, max = 80), regex(pattern = RESOURCE_NAME_PATTERN), example = &"bas-hub-weu")]
    pub name: String,
    /// The SKU. Native-client connections (`az network bastion rdp|ssh|tunnel`) need standard or
    /// premium.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<Sku>,
    /// Whether IP-based connection is enabled on the bastion (needed for vms given by `ip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_connect: Option<bool>,
    /// The bastion's data-plane host (`bst-<guid>.bastion.azure.com`): the native tunnel then
    /// skips one ARM read. Only Azure's public bastion host names are accepted, since the
    /// person's access token is sent there; bastions in other clouds are read from ARM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DNS_NAME_PATTERN), example = &"bst-0a1b2c3d-0000-4000-8000-0123456789ab.bastion.azure.com")]
    pub dns_name: Option<String>,
}

/// The operating system of a target VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VmOs {
    Windows,
    Linux,
}

/// A target virtual machine: exactly one of `resource_id`, `name` (with `resource_group`) or `ip`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawVm {
    /// The VM's tenant (a `tenants` name); defaults to the bastion's tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = NAME_PATTERN))]
    pub tenant: Option<String>,
    /// The VM's subscription id; defaults to its tenant's subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = GUID_PATTERN))]
    pub subscription: Option<String>,
    /// The VM's resource group (with `name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 90), regex(pattern = RESOURCE_GROUP_PATTERN), example = &"rg-prod")]
    pub resource_group: Option<String>,
    /// The VM's Azure resource name (with `resource_group`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = RESOURCE_NAME_PATTERN), example = &"vm-jumpbox-01")]
    pub name: Option<String>,
    /// The VM's full ARM resource id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = "^/subscriptions/"),
        example = &"/subscriptions/00000000-0000-0000-0000-0000000000b1/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/vm-jumpbox-01"
    )]
    pub resource_id: Option<String>,
    /// The VM's private IP address (IP-based connection; the bastion needs `ip_connect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"10.1.0.4")]
    pub ip: Option<String>,
    /// The VM's operating system (default windows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<VmOs>,
    /// The OS's own host name when it differs from the Azure resource name. Entra sign-in needs
    /// it (else AADSTS293004).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255), example = &"JUMPBOX01")]
    pub computer_name: Option<String>,
}

/// How a profile connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Remote desktop (`az network bastion rdp` on Windows; tunnel + RDP client elsewhere).
    Rdp,
    /// `az network bastion ssh`.
    Ssh,
    /// `az network bastion tunnel` alone, to any port of the VM.
    Tunnel,
}

/// How to authenticate (`--auth-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AuthType {
    /// Entra ID.
    Aad,
    /// A local user's password (typed at the prompt, never stored).
    Password,
    /// An SSH private key (ssh only).
    SshKey,
}

/// The RDP client bprof starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Client {
    /// Windows: az opens mstsc itself; Linux/macOS: a tunnel and the first client found.
    Auto,
    Mstsc,
    Xfreerdp,
    SdlFreerdp,
    Remmina,
    /// macOS `open` (the Windows App).
    Open,
    /// Start no client: keep the tunnel open and print where to connect.
    None,
}

/// Which tunnel runs where bprof opens one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TunnelEngine {
    /// bprof speaks the bastion's tunnel protocol itself (one az call for the token).
    Native,
    /// `az network bastion tunnel` (needs az's bastion extension).
    Az,
}

/// `local_port`: a port number, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum LocalPort {
    /// A fixed local port.
    Port(#[schemars(range(min = 1, max = 65535))] u16),
    /// `auto`: a port derived from the profile name (the same on every machine), or a free
    /// one when that is busy.
    Auto(AutoWord),
}

/// The word `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AutoWord {
    Auto,
}

/// Full screen or window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Screen {
    Fullscreen,
    Window,
}

/// Where sound plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Audio {
    Local,
    Remote,
    None,
}

/// A value of an extra .rdp property.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum RdpValue {
    Int(#[schemars(range(min = -2147483648i64, max = 4294967295i64))] i64),
    Text(String),
}

/// Settings written into .rdp files.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRdp {
    /// `screen mode id`: fullscreen (2) or window (1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<Screen>,
    /// `desktopwidth` in pixels (200-8192).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 200, max = 8192), example = 1920)]
    pub width: Option<u32>,
    /// `desktopheight` in pixels (200-8192).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 200, max = 8192), example = 1080)]
    pub height: Option<u32>,
    /// `use multimon`: use all monitors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multimon: Option<bool>,
    /// `redirectclipboard`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clipboard: Option<bool>,
    /// `drivestoredirect`: true redirects all local drives (`*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drives: Option<bool>,
    /// `audiomode`: local (0), remote (1), none (2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<Audio>,
    /// Any other .rdp property, keyed `name:type` (type s, i or b), written as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        extend("propertyNames" = {"pattern": RDP_KEY_PATTERN}),
        example = serde_json::json!({"smart sizing:i": 1})
    )]
    pub properties: Option<BTreeMap<String, RdpValue>>,
}

/// A profile (or `defaults`): how to connect to one VM through one bastion.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawProfile {
    /// What this profile is for, for humans (shown by `bprof list`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Another profile whose fields this one inherits (not in `defaults`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = NAME_PATTERN))]
    pub extends: Option<String>,
    /// The bastion to connect through (a `bastions` name). Required, here or inherited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = NAME_PATTERN), example = &"hub")]
    pub bastion: Option<String>,
    /// The target VM (a `vms` name). Required, here or inherited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = NAME_PATTERN), example = &"jumpbox")]
    pub vm: Option<String>,
    /// rdp, ssh or tunnel (default rdp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// rdp: pass `--enable-mfa` (Entra ID sign-in). Without it Entra sign-in fails with "The
    /// login attempt failed".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_mfa: Option<bool>,
    /// rdp: pass `--configure` (the RDP client opens its settings first, to sign in as another
    /// Entra user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configure: Option<bool>,
    /// rdp: pass `--disable-gateway`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_gateway: Option<bool>,
    /// ssh: aad, password or ssh-key (required for ssh); rdp: aad or password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_type: Option<AuthType>,
    /// ssh `--username`; the user name written into .rdp files. Personal: put it in your local
    /// override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1), example = &"alice@contoso.com")]
    pub username: Option<String>,
    /// ssh `--ssh-key`: path of the private key (`~` is expanded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1), example = &"~/.ssh/id_ed25519")]
    pub ssh_key: Option<String>,
    /// The VM's port (`--resource-port`): default 3389 for rdp, 22 for ssh; required for tunnel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535), example = 3389)]
    pub resource_port: Option<u16>,
    /// The local port of the tunnel (`--port`): a number, or `auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_port: Option<LocalPort>,
    /// Tunnel `--timeout` in seconds (closed after that total time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4294967295u32), example = 3600)]
    pub timeout: Option<u32>,
    /// ssh: arguments for ssh itself, appended after `--`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128), inner(length(max = 4096)), example = ["-L", "8080:localhost:80"])]
    pub ssh_args: Option<Vec<String>>,
    /// Arguments appended to the az command line, one argv element each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128), inner(length(max = 4096)), example = ["--only-show-errors"])]
    pub extra_args: Option<Vec<String>>,
    /// rdp: how the session is opened (default auto).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<Client>,
    /// Which tunnel runs where bprof opens one (rdp on Linux/macOS or with a named client,
    /// `mode: tunnel`, `--tunnel-only`): native (default; `BPROF_TUNNEL_ENGINE` when the
    /// profile does not say) or az.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_engine: Option<TunnelEngine>,
    /// A `templates` name to use instead of the built-in template for `mode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = NAME_PATTERN))]
    pub template: Option<String>,
    /// Settings written into .rdp files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdp: Option<RawRdp>,
}

/// A template: a list of steps, each a list of argv tokens (the first token is the program).
/// Each token is a handlebars template rendered on its own; a token that is exactly
/// `{{...profile.extra_args}}` (or `{{...extra_args}}`, `{{...ssh_args}}`) splices a list.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct RawTemplate(#[schemars(length(min = 1), inner(length(min = 1)))] pub Vec<Vec<String>>);
