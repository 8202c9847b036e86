//! A resolved profile from its merged layers: every field checked, az's run-time rules
//! quoted where a combination would fail, references to tenants, bastions and vms followed.

use std::collections::BTreeMap;

use crate::profile::allow;
use crate::profile::diag::{self};
use crate::profile::load::{Def, ProfileSet, Section};
use crate::profile::raw::{AuthType, Client, LocalPort, Mode, RawProfile, RawRdp, Sku};

use super::*;

/// Checks `rdp.properties`: each value's type matches the key's `:s`, `:i` or `:b`.
pub(super) fn check_rdp_properties(rdp: &RawRdp, ctx: &mut Ctx) {
    for (key, value) in rdp.properties.iter().flatten() {
        let ty = key.rsplit(':').next().unwrap_or("");
        let field = format!("rdp.properties.{key}");
        let bad = match (ty, value) {
            ("i", crate::profile::raw::RdpValue::Int(_)) => None,
            ("i", crate::profile::raw::RdpValue::Text(t)) if t.trim().parse::<i64>().is_ok() => {
                None
            }
            ("i", _) => Some("an integer"),
            ("s", crate::profile::raw::RdpValue::Text(t)) if t.contains(['\n', '\r']) => {
                Some("a string on one line")
            }
            ("s", _) => None,
            ("b", crate::profile::raw::RdpValue::Text(t))
                if t.chars().all(|c| c.is_ascii_hexdigit()) =>
            {
                None
            }
            ("b", _) => Some("hex digits (binary)"),
            _ => None,
        };
        if let Some(what) = bad {
            ctx.at_field(
                &field,
                false,
                format!("the .rdp property `{key}` must be {what}"),
                Some(format!(
                    "`:{ty}` sets the property's type; fix the value or the type"
                )),
            );
        }
        // matched the way clients match names: any case, spaces normalised
        let normal = allow::rdp_key(key);
        let name = normal.rsplit_once(':').map(|(n, _)| n).unwrap_or(&normal);
        if name.starts_with("password") || name.contains("token") || name.contains("secret") {
            ctx.at_field(
                &field,
                true,
                format!("the .rdp property `{name}` would store a secret"),
                Some("bprof never writes passwords or tokens into .rdp files; remove it".into()),
            );
        }
    }
}

pub(super) const AZ_AAD_RULE: &str =
    "AAD login is not supported for Disable Gateway & IP Connect scenarios.";
pub(super) const AZ_SKU_RULE: &str =
    "Bastion Host SKU must be Standard or Premium and Native Client must be enabled.";
pub(super) const AZ_IP_PORT_RULE: &str =
    "Custom ports are not allowed. Allowed ports for Tunnel with IP connect is 22, 3389.";
pub(super) const AZ_IP_CONNECT_RULE: &str = "`--target-ip-address` flag cannot be used when IpConnect is not enabled. Please use --target-resource-id flag instead.";

/// A required reference of profile `name` (`bastion`, `vm`): reported when missing or
/// unknown; the name when it is defined.
pub(super) fn reference<'r>(
    ctx: &mut Ctx,
    name: &str,
    value: Option<&'r str>,
    section: Section,
    where_else: &str,
) -> Option<&'r str> {
    let set = ctx.set;
    let field = section.noun();
    match value {
        None => {
            let help = format!(
                "add `{field}: NAME` to the profile, {where_else}; {}",
                known_names(set, section)
            );
            ctx.at_field(
                field,
                true,
                format!("profile `{name}` has no `{field}`"),
                Some(help),
            );
            None
        }
        Some(v) if ctx.needs.check(set, section, v) => None,
        Some(v) if set.entry(section, v).is_none() => {
            // no profile name in the message: a value set in `defaults` or a parent is one
            // problem, however many profiles inherit it
            let msg = format!("{field} `{v}` is not defined");
            ctx.at_field(field, false, msg, Some(unknown_name_help(set, section, v)));
            None
        }
        Some(v) => Some(v),
    }
}

pub(super) fn build(
    set: &ProfileSet,
    name: &str,
    raw: RawProfile,
    ctx: &mut Ctx,
) -> Option<Profile> {
    let mode = raw.mode.unwrap_or(Mode::Rdp);
    let bastion_tenant = reference(
        ctx,
        name,
        raw.bastion.as_deref(),
        Section::Bastions,
        "its `extends` parent or `defaults`",
    )
    .and_then(|b| bastion_cached(set, b, &mut ctx.problems, &mut ctx.needs));
    let vm_res = reference(
        ctx,
        name,
        raw.vm.as_deref(),
        Section::Vms,
        "or its `extends` parent",
    )
    .and_then(|v| {
        let default_tenant = bastion_tenant.as_ref().map(|(b, _)| b.tenant.clone());
        vm_cached(
            set,
            v,
            default_tenant.as_deref(),
            &mut ctx.problems,
            &mut ctx.needs,
        )
    });
    check_template(set, raw.template.as_deref(), ctx);

    let ip_target = vm_res.as_ref().is_some_and(|v| v.ip.is_some());
    check_mode(name, mode, &raw, ip_target, ctx);
    let resource_port = raw
        .resource_port
        .unwrap_or(if mode == Mode::Ssh { 22 } else { 3389 });
    if ip_target && ![22, 3389].contains(&resource_port) {
        ctx.at_field("resource_port", false, format!("a vm given by `ip` can only be reached on port 22 or 3389, not {resource_port} (az: \"{AZ_IP_PORT_RULE}\")"), Some("use port 22 or 3389, or give the vm by `resource_id` or `name`".into()));
    }
    if let Some((b, _)) = &bastion_tenant {
        check_bastion(set, b, ip_target, ctx);
    }
    if let Some(rdp) = &raw.rdp {
        check_rdp_properties(rdp, ctx);
    }
    for (field, value) in [("username", &raw.username), ("ssh_key", &raw.ssh_key)] {
        if let Some(v) = value
            && v.starts_with('-')
        {
            ctx.at_field(
                field,
                false,
                format!("`{field}` begins with `-`: az and ssh would read \"{v}\" as an option"),
                Some(format!("fix the value of `{field}`")),
            );
        }
    }
    let (bastion, tenant) = bastion_tenant?;
    let vm = vm_res?;
    if !ctx.problems.is_empty() {
        return None;
    }
    Some(assemble(
        set,
        name,
        raw,
        mode,
        resource_port,
        (bastion, tenant, vm),
        ctx,
    ))
}

/// A `template` that names none of the set's or the built-in ones.
fn check_template(set: &ProfileSet, template: Option<&str>, ctx: &mut Ctx) {
    if let Some(t) = template
        && !ctx.needs.check(set, Section::Templates, t)
        && set.entry(Section::Templates, t).is_none()
        && !crate::profile::raw::BUILTIN_TEMPLATES.contains(&t)
    {
        let mut candidates: Vec<&str> = set.names(Section::Templates).collect();
        candidates.extend(crate::profile::raw::BUILTIN_TEMPLATES);
        let help = match diag::did_you_mean(t, candidates.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("known templates: {}", candidates.join(", ")),
        };
        ctx.at_field(
            "template",
            false,
            format!("template `{t}` is not defined"),
            Some(help),
        );
    }
}

/// The rules of each mode: az's options that only rdp takes, ssh's `auth_type` and what it
/// needs, rdp's Entra rules, a tunnel's port.
fn check_mode(name: &str, mode: Mode, raw: &RawProfile, ip_target: bool, ctx: &mut Ctx) {
    // mode-specific fields
    for flag in ["enable_mfa", "configure", "disable_gateway"] {
        let on = match flag {
            "enable_mfa" => raw.enable_mfa,
            "configure" => raw.configure,
            _ => raw.disable_gateway,
        } == Some(true);
        if on && mode != Mode::Rdp && !ctx.set_by_defaults(flag) {
            ctx.at_field(flag, true, format!("`{flag}` is an `az network bastion rdp` option, but profile `{name}` has mode {}", mode_name(mode)), Some(format!("remove `{flag}`, or set `mode: rdp`")));
        }
    }
    match mode {
        Mode::Ssh => match raw.auth_type {
            None => ctx.at_field("mode", true, format!("ssh profile `{name}` has no `auth_type`"), Some("add `auth_type: aad`, `password` or `ssh-key` (az requires --auth-type for ssh)".into())),
            Some(AuthType::Password) if raw.username.is_none() => ctx.at_field("auth_type", false, "`auth_type: password` needs `username` (az: \"Please enter username with --username.\")".into(), Some("add `username:`; a personal user name belongs in your *.local.yaml override".into())),
            Some(AuthType::SshKey) if raw.username.is_none() || raw.ssh_key.is_none() => ctx.at_field("auth_type", false, "`auth_type: ssh-key` needs `username` and `ssh_key` (az: \"Please enter username --username and ssh cert location --ssh-key.\")".into(), Some("add `username:` and `ssh_key:` (the private key's path)".into())),
            _ => {}
        },
        Mode::Rdp => {
            if raw.auth_type == Some(AuthType::SshKey) {
                ctx.at_field("auth_type", false, "`auth_type: ssh-key` is for ssh; rdp takes `aad` or `password`".into(), None);
            }
            if raw.auth_type == Some(AuthType::Aad) && raw.disable_gateway == Some(true) {
                ctx.at_field("disable_gateway", false, format!("Entra sign-in (`auth_type: aad`) does not work with `disable_gateway: true` (az: \"{AZ_AAD_RULE}\")"), Some("remove `disable_gateway`, or use `auth_type: password`".into()));
            }
            if raw.auth_type == Some(AuthType::Aad) && ip_target {
                ctx.at_field("auth_type", false, format!("Entra sign-in (`auth_type: aad`) does not work with a vm given by `ip` (az: \"{AZ_AAD_RULE}\")"), Some("give the vm by `resource_id` or `name`, or use `auth_type: password`".into()));
            }
        }
        Mode::Tunnel => {
            if raw.resource_port.is_none() {
                ctx.at_field("mode", true, format!("tunnel profile `{name}` has no `resource_port`"), Some("add `resource_port:` (the VM's port to reach, like 5432); az requires it for tunnels".into()));
            }
        }
    }
}

/// The bastion's rules for this profile: its SKU, and IP connect for an `ip` target.
fn check_bastion(set: &ProfileSet, b: &Bastion, ip_target: bool, ctx: &mut Ctx) {
    let sku_def = || {
        set.entry(Section::Bastions, &b.key).map(|e| Def {
            file: e.defs[0].file,
            pointer: format!("{}/sku", e.defs[0].pointer),
        })
    };
    if b.sku == Some(Sku::Basic)
        && let Some(def) = sku_def()
    {
        ctx.at_def(&def, false, format!("bastion `{}` has SKU basic, which has no native client (az: \"{AZ_SKU_RULE}\")", b.key), Some("bprof connects with the native client: upgrade the bastion to standard or premium and enable native client support".into()));
    }
    // the Developer SKU: bprof's own engine serves it, from its one network, by VM only
    if b.sku == Some(Sku::Developer)
        && ip_target
        && let Some(def) = sku_def()
    {
        ctx.at_def(&def, false, format!("bastion `{}` has SKU developer, which has no IP-based connection, and the vm is given by `ip`", b.key), Some("give the vm by `resource_id` or `name`, or upgrade the bastion to standard and enable IP-based connection".into()));
    }
    if ip_target && b.ip_connect == Some(false) {
        ctx.at_field("vm", false, format!("vm is given by `ip`, but bastion `{}` has `ip_connect: false` (az: \"{AZ_IP_CONNECT_RULE}\")", b.key), Some("give the vm by `resource_id` or `name`, or enable IP-based connection on the bastion".into()));
    }
}

/// The resolved profile from its checked fields.
fn assemble(
    set: &ProfileSet,
    name: &str,
    raw: RawProfile,
    mode: Mode,
    resource_port: u16,
    (bastion, tenant, vm): (Bastion, Tenant, Vm),
    ctx: &mut Ctx,
) -> Profile {
    let raw_lists = Lists {
        ssh_args: raw.ssh_args.clone(),
        extra_args: raw.extra_args.clone(),
        properties: raw
            .rdp
            .as_ref()
            .and_then(|r| r.properties.clone())
            .unwrap_or_default(),
        drives: raw.rdp.as_ref().and_then(|r| r.drives),
    };
    let whom = Whom {
        profile: name,
        destination: destination(&tenant, &bastion, &vm, resource_port),
    };
    let asked = requests(set, ctx.origins, &raw_lists, &tenant, &whom);
    let rdp = raw.rdp.unwrap_or_default();
    // filled in by `resolve`, which owns the layers
    let origins = BTreeMap::new();
    Profile {
        name: name.to_string(),
        description: raw.description,
        mode,
        enable_mfa: raw.enable_mfa.unwrap_or(false) && mode == Mode::Rdp,
        configure: raw.configure.unwrap_or(false) && mode == Mode::Rdp,
        disable_gateway: raw.disable_gateway.unwrap_or(false) && mode == Mode::Rdp,
        auth_type: raw.auth_type,
        username: raw.username,
        ssh_key: raw
            .ssh_key
            .map(|k| crate::profile::load::expand_tilde(&k, set.home.as_deref())),
        resource_port,
        local_port: raw
            .local_port
            .unwrap_or(LocalPort::Auto(crate::profile::raw::AutoWord::Auto)),
        timeout: raw.timeout,
        ssh_args: raw.ssh_args.unwrap_or_default(),
        extra_args: raw.extra_args.unwrap_or_default(),
        client: raw.client.unwrap_or(Client::Auto),
        tunnel_engine: raw.tunnel_engine,
        template: raw.template,
        rdp: RdpSettings {
            screen: rdp.screen,
            width: rdp.width,
            height: rdp.height,
            multimon: rdp.multimon,
            clipboard: rdp.clipboard,
            drives: rdp.drives,
            audio: rdp.audio,
            properties: rdp.properties.unwrap_or_default(),
        },
        tenant,
        bastion,
        vm,
        origins,
        defined_at: set
            .file(&ctx.profile_def)
            .location(&ctx.profile_def.pointer),
        requests: asked,
    }
}
