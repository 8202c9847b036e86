//! Templates: lists of steps, each a list of argv tokens. Every token is a handlebars template
//! rendered on its own in strict mode, so a value never splits into several arguments and an
//! unknown variable is an error that names template, step and token.

use handlebars::Handlebars;
use serde_json::Value;

use crate::profile::diag::Problem;
use crate::profile::load::{Def, ProfileSet, Section};

/// The built-in templates, as data. `bprof templates NAME` prints them; copy one into
/// `templates:` to adapt it.
pub const BUILTIN: &[(&str, &str, &[&[&str]])] = &[
    (
        "rdp",
        "Windows: az opens mstsc through the bastion's gateway (Entra sign-in works here)",
        &[&[
            "az",
            "network",
            "bastion",
            "rdp",
            "--name",
            "{{bastion.name}}",
            "--resource-group",
            "{{bastion.resource_group}}",
            "--subscription",
            "{{bastion.subscription}}",
            "{{#if vm.ip}}--target-ip-address{{else}}--target-resource-id{{/if}}",
            "{{#if vm.ip}}{{vm.ip}}{{else}}{{vm.resource_id}}{{/if}}",
            "--resource-port",
            "{{profile.resource_port}}",
            "{{#if profile.auth_type}}--auth-type{{/if}}",
            "{{profile.auth_type}}",
            "{{#if profile.enable_mfa}}--enable-mfa{{/if}}",
            "{{#if profile.disable_gateway}}--disable-gateway{{/if}}",
            "{{#if profile.configure}}--configure{{/if}}",
            "{{...profile.extra_args}}",
        ]],
    ),
    (
        "ssh",
        "az network bastion ssh; every az option before `--`, ssh's own arguments after it",
        &[&[
            "az",
            "network",
            "bastion",
            "ssh",
            "--name",
            "{{bastion.name}}",
            "--resource-group",
            "{{bastion.resource_group}}",
            "--subscription",
            "{{bastion.subscription}}",
            "{{#if vm.ip}}--target-ip-address{{else}}--target-resource-id{{/if}}",
            "{{#if vm.ip}}{{vm.ip}}{{else}}{{vm.resource_id}}{{/if}}",
            "--resource-port",
            "{{profile.resource_port}}",
            "--auth-type",
            "{{profile.auth_type}}",
            "{{#if profile.username}}--username{{/if}}",
            "{{profile.username}}",
            "{{#if profile.ssh_key}}--ssh-key{{/if}}",
            "{{profile.ssh_key}}",
            "{{...profile.extra_args}}",
            "{{#if profile.ssh_args}}--{{/if}}",
            "{{...profile.ssh_args}}",
        ]],
    ),
    (
        "tunnel",
        "az network bastion tunnel on a local port (also rdp on Linux and macOS)",
        &[&[
            "az",
            "network",
            "bastion",
            "tunnel",
            "--name",
            "{{bastion.name}}",
            "--resource-group",
            "{{bastion.resource_group}}",
            "--subscription",
            "{{bastion.subscription}}",
            "{{#if vm.ip}}--target-ip-address{{else}}--target-resource-id{{/if}}",
            "{{#if vm.ip}}{{vm.ip}}{{else}}{{vm.resource_id}}{{/if}}",
            "--resource-port",
            "{{profile.resource_port}}",
            "--port",
            "{{port}}",
            "{{#if profile.timeout}}--timeout{{/if}}",
            "{{profile.timeout}}",
            "{{...profile.extra_args}}",
        ]],
    ),
];

/// A built-in template's steps.
pub fn builtin(name: &str) -> Option<Vec<Vec<String>>> {
    BUILTIN
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, steps)| {
            steps
                .iter()
                .map(|s| s.iter().map(|t| t.to_string()).collect())
                .collect()
        })
}

/// A built-in template as YAML, as `bprof templates NAME` prints it.
pub fn builtin_yaml(name: &str) -> Option<String> {
    let (_, about, steps) = BUILTIN.iter().find(|(n, _, _)| *n == name)?;
    let header = format!(
        "# built-in template `{name}`: {about}\n# copy it under `templates:` with a new name to adapt it\n"
    );
    Some(to_yaml(
        &header,
        name,
        steps.iter().map(|s| s.iter().copied()),
    ))
}

/// A user template as YAML, as `bprof templates NAME` prints it.
pub fn user_yaml(set: &ProfileSet, name: &str) -> Option<String> {
    let def = set.entry(Section::Templates, name)?.defs.last()?;
    let steps = user_template(set, name)?;
    let header = format!(
        "# template `{name}`, defined at {}\n",
        set.file(def).location(&def.pointer)
    );
    Some(to_yaml(
        &header,
        name,
        steps.iter().map(|s| s.iter().map(String::as_str)),
    ))
}

fn to_yaml<'a, S: Iterator<Item = &'a str>>(
    header: &str,
    name: &str,
    steps: impl Iterator<Item = S>,
) -> String {
    let mut out = format!("{header}{name}:\n");
    for step in steps {
        let toks: Vec<String> = step.map(yaml_scalar).collect();
        out.push_str(&format!("  - [{}]\n", toks.join(", ")));
    }
    out
}

fn yaml_scalar(t: &str) -> String {
    let plain = !t.is_empty()
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        && !t.starts_with('-');
    if plain {
        t.to_string()
    } else {
        // a JSON string is a valid YAML double-quoted scalar
        serde_json::to_string(t).unwrap_or_default()
    }
}

/// Where a rendered argv element came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgKind {
    /// A token with no `{{`: the template's own text.
    Literal,
    /// A rendered token: values from profiles, bastions, vms. `dash` when the token's own
    /// text (outside every `{{...}}`) begins with `-`, so a leading `-` is the template's.
    Data { dash: bool },
    /// One element of a spliced list (`{{...path}}`).
    Splice { path: String },
}

/// One element of a rendered step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    pub value: String,
    pub kind: ArgKind,
    /// The step and token (0-based) of the template it was rendered from.
    pub step: usize,
    pub token: usize,
}

/// The most steps, tokens per step, bytes per token and nested blocks a template may have.
pub const MAX_STEPS: usize = 32;
pub const MAX_TOKENS: usize = 256;
pub const MAX_TOKEN_BYTES: usize = 2048;
pub const MAX_NESTING: usize = 8;
/// The most bytes one template renders to, every step and argument together. A command line
/// is far smaller (Linux takes at most 2 MiB for a whole argv, Windows 32 KiB); without a bound
/// a token that repeats a long value, or a list spliced into many tokens, fills the memory.
pub const MAX_RENDERED_BYTES: usize = 1024 * 1024;

/// A writer that refuses to hold more than `room` bytes.
struct Bounded {
    buf: Vec<u8>,
    room: usize,
    over: bool,
}

impl std::io::Write for Bounded {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if bytes.len() > self.room.saturating_sub(self.buf.len()) {
            self.over = true;
            return Err(std::io::Error::other("the rendered template is too long"));
        }
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a `{{` opens: the text after it without the whitespace, `~`, `{` and `&` that
/// handlebars allows in any order before a tag's sigil (`{{ ~#`, `{{~ >`, `{{{`).
fn tag_text(after: &str) -> &str {
    after.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, '~' | '{' | '&'))
}

/// The helper a tag names: `#NAME`, or a chained inverse `else NAME` / `^NAME`.
fn block_helper(tag: &str) -> Option<&str> {
    let rest = match tag.strip_prefix('#').or_else(|| tag.strip_prefix('^')) {
        Some(r) => r,
        // handlebars reads `{{elseeach x}}` as `{{else each x}}`
        None => tag.strip_prefix("else")?,
    };
    let rest = rest.trim_start();
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || "-_$:".contains(c) || !c.is_ascii()))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Checks one token before it is compiled: no partials, inline partials or decorators (an
/// inline partial that includes itself recurses until the stack overflows), no `each` (nested,
/// it renders the product of its lists: a few tokens that never finish), and bounded size and
/// nesting (handlebars recurses on both). Whitespace and `~` anywhere before a sigil count.
pub fn check_token(token: &str) -> Result<(), String> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(format!(
            "the token is {} bytes long; at most {MAX_TOKEN_BYTES}",
            token.len()
        ));
    }
    let mut depth: usize = 0;
    let mut rest = token;
    while let Some(i) = rest.find("{{") {
        let tag = tag_text(&rest[i + 2..]);
        let sigil = tag.strip_prefix('#').map_or(tag, str::trim_start);
        if sigil.starts_with('>') || sigil.starts_with('*') {
            return Err(
                "partials, inline partials and decorators are not allowed in templates".into(),
            );
        }
        if block_helper(tag) == Some("each") {
            return Err(
                "`each` is not allowed in templates: splice a list as separate arguments with `{{...path}}`".into(),
            );
        }
        if tag.starts_with('#') {
            depth += 1;
            if depth > MAX_NESTING {
                return Err(format!("blocks are nested more than {MAX_NESTING} deep"));
            }
        } else if tag.starts_with('/') {
            depth = depth.saturating_sub(1);
        }
        rest = &rest[i + 2..];
    }
    Ok(())
}

/// Checks a template's shape: bounded steps and tokens.
pub fn check_shape(steps: &[Vec<String>]) -> Result<(), String> {
    if steps.len() > MAX_STEPS {
        return Err(format!("{} steps; at most {MAX_STEPS}", steps.len()));
    }
    if let Some(s) = steps.iter().find(|s| s.len() > MAX_TOKENS) {
        return Err(format!(
            "a step of {} tokens; at most {MAX_TOKENS}",
            s.len()
        ));
    }
    Ok(())
}

/// A token as quoted in a message: at most 80 characters.
fn shorten(token: &str) -> String {
    match token.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &token[..i]),
        None => token.to_string(),
    }
}

/// The token's own text outside every `{{...}}`.
fn literal_text(token: &str) -> String {
    let mut out = String::new();
    let mut rest = token;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        match rest[i..].find("}}") {
            Some(j) => rest = &rest[i + j + 2..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

/// Errors of this layer; each names the template, step and token.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template `{template}`, step {step}, token {token} `{text}`: {reason}")]
    Token {
        template: String,
        step: usize,
        token: usize,
        text: String,
        reason: String,
    },
    #[error(
        "template `{template}`, step {step} runs `{program}`; your own templates run only `az` and the programs your user config lists in `allow_programs`"
    )]
    ProgramNotAllowed {
        template: String,
        step: usize,
        program: String,
    },
    #[error("template `{template}`: {reason}")]
    Shape { template: String, reason: String },
}

impl TemplateError {
    pub fn hint(&self) -> String {
        match self {
            TemplateError::Token { .. } => "the context holds profile, tenant, bastion, vm and port (no environment variables: they could leak secrets); see `bprof templates`".into(),
            TemplateError::ProgramNotAllowed { program, .. } => format!(
                "add `allow_programs: [{program}]` to your user config file (local.yaml in bprof's config directory: ~/.config/bprof on Linux and macOS, %APPDATA%\\bprof on Windows)"
            ),
            TemplateError::Shape { .. } => "keep templates small: a few steps of plain az command lines".into(),
        }
    }
}

/// A token that splices a list: exactly `{{...path}}`.
fn splice_path(token: &str) -> Option<&str> {
    let inner = token.strip_prefix("{{...")?.strip_suffix("}}")?.trim();
    (!inner.is_empty() && !inner.contains(['{', '}', ' '])).then_some(inner)
}

fn lookup<'a>(ctx: &'a Value, path: &str) -> Option<&'a Value> {
    let direct = path.split('.').try_fold(ctx, |v, seg| v.get(seg));
    // `{{...extra_args}}` is short for `{{...profile.extra_args}}`
    direct.or_else(|| ctx.get("profile").and_then(|p| p.get(path)))
}

/// Renders a template's steps with `ctx`; each token on its own, empty results dropped.
/// What a step may run is checked by [`crate::plan::check`].
pub fn render(
    template: &str,
    steps: &[Vec<String>],
    ctx: &Value,
) -> Result<Vec<Vec<Arg>>, TemplateError> {
    check_shape(steps).map_err(|reason| TemplateError::Shape {
        template: template.to_string(),
        reason,
    })?;
    // the context converted once per render, not once per token
    let hb_ctx = handlebars::Context::from(ctx.clone());
    let too_long = || TemplateError::Shape {
        template: template.to_string(),
        reason: format!(
            "it renders to more than {} MiB",
            MAX_RENDERED_BYTES / (1024 * 1024)
        ),
    };
    // bytes rendered so far, one more for each argument
    let mut used: usize = 0;
    let mut out = Vec::with_capacity(steps.len());
    for (si, step) in steps.iter().enumerate() {
        let mut argv = Vec::with_capacity(step.len());
        for (ti, token) in step.iter().enumerate() {
            let err = |reason: String| TemplateError::Token {
                template: template.to_string(),
                step: si + 1,
                token: ti + 1,
                text: shorten(token),
                reason,
            };
            let arg = |value: String, kind: ArgKind| Arg {
                value,
                kind,
                step: si,
                token: ti,
            };
            if token.len() > MAX_TOKEN_BYTES {
                return Err(err(format!(
                    "the token is {} bytes long; at most {MAX_TOKEN_BYTES}",
                    token.len()
                )));
            }
            if let Some(path) = splice_path(token) {
                match lookup(ctx, path) {
                    Some(Value::Array(items)) => {
                        for item in items {
                            let s = match item {
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            };
                            if !s.is_empty() {
                                used += s.len() + 1;
                                if used > MAX_RENDERED_BYTES {
                                    return Err(too_long());
                                }
                                argv.push(arg(
                                    s,
                                    ArgKind::Splice {
                                        path: path.to_string(),
                                    },
                                ));
                            }
                        }
                    }
                    Some(Value::Null) => {}
                    Some(_) => return Err(err(format!("`{path}` is not a list"))),
                    None => return Err(err(format!("`{path}` is not in the context"))),
                }
                continue;
            }
            let (rendered, kind) = if token.contains("{{") {
                check_token(token).map_err(&err)?;
                let mut w = Bounded {
                    buf: Vec::new(),
                    room: MAX_RENDERED_BYTES - used,
                    over: false,
                };
                if let Err(e) = render_token(token, &hb_ctx, ctx, &mut w) {
                    return Err(if w.over {
                        too_long()
                    } else {
                        err(render_reason(&e))
                    });
                }
                (
                    String::from_utf8_lossy(&w.buf).into_owned(),
                    ArgKind::Data {
                        dash: literal_text(token).starts_with('-'),
                    },
                )
            } else {
                (token.clone(), ArgKind::Literal)
            };
            if !rendered.is_empty() {
                used += rendered.len() + 1;
                if used > MAX_RENDERED_BYTES {
                    return Err(too_long());
                }
                argv.push(arg(rendered, kind));
            }
        }
        if !argv.is_empty() {
            out.push(argv);
        }
    }
    Ok(out)
}

/// The tokens compiled so far on this thread, by their text: the same few tokens (the built-in
/// templates', a set's own) are rendered for every profile, and compiling is most of the work.
/// Emptied when it holds [`MAX_CACHED_TOKENS`].
const MAX_CACHED_TOKENS: usize = 4096;

thread_local! {
    static COMPILED: std::cell::RefCell<Handlebars<'static>> = std::cell::RefCell::new({
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(handlebars::no_escape);
        hb
    });
}

/// Renders one token into `w`: from the thread's compiled tokens, or, when it does not compile,
/// the way handlebars reports it for a template string (the same error text as ever).
fn render_token(
    token: &str,
    hb_ctx: &handlebars::Context,
    ctx: &Value,
    w: &mut Bounded,
) -> Result<(), handlebars::RenderError> {
    let cached = COMPILED.with(|cell| {
        let mut hb = cell.borrow_mut();
        if !hb.has_template(token) {
            let Ok(t) = handlebars::Template::compile(token) else {
                return None;
            };
            if hb.get_templates().len() >= MAX_CACHED_TOKENS {
                hb.clear_templates();
            }
            hb.register_template(token, t);
        }
        Some(hb.render_with_context_to_write(token, hb_ctx, &mut *w))
    });
    match cached {
        Some(result) => result,
        None => {
            let mut hb = Handlebars::new();
            hb.set_strict_mode(true);
            hb.register_escape_fn(handlebars::no_escape);
            hb.render_template_to_write(token, ctx, w)
        }
    }
}

fn render_reason(e: &handlebars::RenderError) -> String {
    let text = e.to_string();
    // "Error rendering \"...\" line 1, col 3: Failed to access variable in strict mode Some(\"x\")"
    let msg = text.rsplit(": ").next().unwrap_or(&text).to_string();
    if msg.contains("strict mode") {
        let var = msg.split('"').nth(1).unwrap_or("?");
        format!("unknown variable `{var}`")
    } else {
        msg
    }
}

/// Syntax and program checks of every user template, with positions.
pub fn check_all(set: &ProfileSet) -> Vec<Problem> {
    let mut problems = Vec::new();
    for name in set.names(Section::Templates) {
        let Some(entry) = set.entry(Section::Templates, name) else {
            continue;
        };
        let Some(def) = entry.defs.last() else {
            continue;
        };
        let Some(Value::Array(steps)) = set.value(def) else {
            continue;
        };
        let file = set.file(def);
        for (si, step) in steps.iter().enumerate() {
            let Some(tokens) = step.as_array() else {
                continue;
            };
            for (ti, tok) in tokens.iter().enumerate() {
                let Some(t) = tok.as_str() else { continue };
                let ptr = format!("{}/{si}/{ti}", def.pointer);
                let compiled = if splice_path(t).is_none() && t.contains("{{") {
                    check_token(t).and_then(|()| {
                        handlebars::Template::compile(t)
                            .map(|_| ())
                            .map_err(|e| e.reason().to_string())
                    })
                } else {
                    Ok(())
                };
                if let Err(e) = compiled {
                    problems.push(
                        file.problem(
                            &ptr,
                            false,
                            format!(
                                "template `{name}`, step {}, token {}: {}",
                                si + 1,
                                ti + 1,
                                e
                            ),
                        )
                        .with_help(
                            "fix the handlebars syntax; see `bprof templates rdp` for examples",
                        ),
                    );
                }
            }
        }
    }
    problems
}

/// The steps of a user template (the last layer that defines it).
pub fn user_template(set: &ProfileSet, name: &str) -> Option<Vec<Vec<String>>> {
    let def: &Def = set.entry(Section::Templates, name)?.defs.last()?;
    serde_json::from_value(set.value(def)?.clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Value {
        json!({"profile": {"enable_mfa": true, "configure": false, "auth_type": null, "extra_args": ["--debug", "a b"], "ssh_args": []},
               "bastion": {"name": "bas; rm -rf / $(x)"}, "vm": {"ip": null, "resource_id": "/subscriptions/x"}, "port": 5000})
    }

    #[test]
    fn tokens_render_alone_and_empty_ones_drop() {
        let steps = vec![vec![
            "az".into(),
            "--name".into(),
            "{{bastion.name}}".into(),
            "{{#if profile.enable_mfa}}--enable-mfa{{/if}}".into(),
            "{{#if profile.configure}}--configure{{/if}}".into(),
            "{{profile.auth_type}}".into(),
            "{{...extra_args}}".into(),
            "{{#if profile.ssh_args}}--{{/if}}".into(),
        ]];
        let out = render("t", &steps, &ctx()).unwrap();
        let values: Vec<&str> = out[0].iter().map(|a| a.value.as_str()).collect();
        assert_eq!(
            values,
            [
                "az",
                "--name",
                "bas; rm -rf / $(x)",
                "--enable-mfa",
                "--debug",
                "a b"
            ]
        );
    }

    #[test]
    fn unknown_variable_names_template_step_and_token() {
        let steps = vec![vec!["az".into(), "{{bastion.nmae}}".into()]];
        let e = render("mine", &steps, &ctx()).unwrap_err().to_string();
        assert!(e.contains("template `mine`, step 1, token 2"), "{e}");
        assert!(e.contains("bastion.nmae"), "{e}");
    }

    #[test]
    fn partials_deep_nesting_and_long_tokens_are_refused_before_compiling() {
        for bad in [
            "{{> evil}}".to_string(),
            "{{#> layout}}x{{/layout}}".into(),
            "{{#*inline \"p\"}}x{{/inline}}".into(),
            "{{~> evil}}".into(),
            // handlebars allows whitespace and `~` in any order before the sigil
            "{{ ~> evil}}".into(),
            "{{# *inline \"p\"}}{{ ~> p}}{{/inline}}{{ ~> p}}".into(),
            "{{ ~#*inline \"p\"}}{{ ~>p}}{{/inline}}{{ ~>p}}".into(),
            "{{# > layout}}x{{/layout}}".into(),
            // each, nested, renders the product of its lists
            "{{#each profile.extra_args}}x{{/each}}".into(),
            "{{ ~# each profile.extra_args}}x{{/each}}".into(),
            "{{#if vm.ip}}{{else each profile.extra_args}}x{{/if}}".into(),
            "{{#if vm.ip}}{{elseeach profile.extra_args}}x{{/if}}".into(),
            "{{#if vm.ip}}{{^each profile.extra_args}}x{{/if}}".into(),
            "{{#if a}}".repeat(5000),
            "x".repeat(MAX_TOKEN_BYTES + 1),
        ] {
            let steps = vec![vec!["az".into(), bad.clone()]];
            let e = render("t", &steps, &ctx());
            assert!(
                matches!(e, Err(TemplateError::Token { .. })),
                "{}",
                &bad[..bad.len().min(40)]
            );
        }
        let too_many = vec![vec!["az".to_string()]; MAX_STEPS + 1];
        assert!(matches!(
            render("t", &too_many, &ctx()),
            Err(TemplateError::Shape { .. })
        ));
    }

    #[test]
    fn what_a_template_renders_is_bounded() {
        let long = "x".repeat(100_000);
        let mut c = ctx();
        c["bastion"]["name"] = Value::String(long.clone());
        c["profile"]["extra_args"] = Value::Array(vec![Value::String(long); 4]);
        let repeated = vec![vec!["az".to_string(), "{{bastion.name}}".repeat(20)]];
        let spliced = vec![vec!["{{...extra_args}}".to_string(); 4]];
        for steps in [repeated, spliced] {
            let e = render("t", &steps, &c).unwrap_err().to_string();
            assert!(e.contains("renders to more than 1 MiB"), "{e}");
        }
        let fine = vec![vec![
            "{{bastion.name}}".to_string(),
            "{{...extra_args}}".into(),
        ]];
        assert_eq!(render("t", &fine, &c).unwrap()[0].len(), 5);
        // names that only look like the refused ones pass
        for ok in [
            "{{#if profile.enable_mfa}}each{{/if}}",
            "{{profile.each}}",
            "{{else}}",
        ] {
            assert!(check_token(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn tokens_know_where_a_leading_dash_comes_from() {
        let steps = vec![vec![
            "az".into(),
            "{{#if profile.enable_mfa}}--enable-mfa{{/if}}".into(),
            "{{bastion.name}}".into(),
            "{{...extra_args}}".into(),
        ]];
        let out = render("t", &steps, &ctx()).unwrap();
        assert_eq!(out[0][0].kind, ArgKind::Literal);
        assert_eq!(out[0][1].kind, ArgKind::Data { dash: true });
        assert_eq!(out[0][2].kind, ArgKind::Data { dash: false });
        assert_eq!(
            out[0][3].kind,
            ArgKind::Splice {
                path: "extra_args".into()
            }
        );
    }

    #[test]
    fn builtins_exist() {
        let names: Vec<&str> = BUILTIN.iter().map(|(n, _, _)| *n).collect();
        assert_eq!(names, crate::profile::raw::BUILTIN_TEMPLATES);
        for n in crate::profile::raw::BUILTIN_TEMPLATES {
            assert!(builtin(n).is_some());
            assert!(builtin_yaml(n).unwrap().contains(&format!("{n}:")));
        }
    }
}
