//! The JSON schema: generated from the raw types by schemars, and enforced at run time by the
//! jsonschema crate on every loaded file, each error mapped back to file:line:column.

use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::{Map, Value};

use crate::profile::diag::{self, Problem};
use crate::profile::likely;
use crate::profile::raw::{
    DNS_NAME_PATTERN, GUID_PATTERN, NAME_PATTERN, RDP_KEY_PATTERN, RESOURCE_GROUP_PATTERN,
    RESOURCE_NAME_PATTERN, RawFile,
};
use crate::profile::yaml::SpanIndex;

/// The schema as a JSON value, generated from [`RawFile`].
pub fn schema_value() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let schema = schemars::generate::SchemaSettings::draft2020_12()
            .into_generator()
            .into_root_schema_for::<RawFile>();
        let mut value = schema.to_value();
        forbid_null(&mut value);
        value
    })
}

/// The schema exactly as `bprof schema` prints it and `schema/bprof.schema.json` holds it.
pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(schema_value()).unwrap_or_default();
    text.push('\n');
    text
}

/// schemars makes every `Option` nullable; in a profile file a key without a value is a
/// mistake (`username:` with nothing after it), so null is never allowed.
fn forbid_null(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let t = types.remove(0);
                    map.insert("type".into(), t);
                }
            }
            for key in ["anyOf", "oneOf"] {
                if let Some(Value::Array(branches)) = map.get_mut(key) {
                    branches.retain(|b| b.get("type").and_then(Value::as_str) != Some("null"));
                    if branches.len() == 1 {
                        let only = branches.remove(0);
                        map.remove(key);
                        if let Value::Object(o) = only {
                            for (k, val) in o {
                                map.entry(k).or_insert(val);
                            }
                        }
                    }
                }
            }
            for child in map.values_mut() {
                forbid_null(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(forbid_null),
        _ => {}
    }
}

/// The same schema with no `required` below the top level: personal overrides change single
/// fields of entries defined elsewhere.
fn override_schema() -> Value {
    fn strip(v: &mut Value, top: bool) {
        match v {
            Value::Object(map) => {
                if !top {
                    map.remove("required");
                }
                for child in map.values_mut() {
                    strip(child, false);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| strip(i, false)),
            _ => {}
        }
    }
    let mut s = schema_value().clone();
    strip(&mut s, true);
    s
}

fn validator(for_override: bool) -> &'static jsonschema::Validator {
    static SHARED: OnceLock<jsonschema::Validator> = OnceLock::new();
    static OVERRIDE: OnceLock<jsonschema::Validator> = OnceLock::new();
    let build = |s: &Value| match jsonschema::validator_for(s) {
        Ok(v) => v,
        // The schema is generated from our own types: failing to compile it is a bug.
        Err(e) => panic!("bprof's own JSON schema does not compile: {e}"),
    };
    if for_override {
        OVERRIDE.get_or_init(|| build(&override_schema()))
    } else {
        SHARED.get_or_init(|| build(schema_value()))
    }
}

/// Validates one file's value against the schema; every error becomes a positioned problem.
pub fn check(
    file: &str,
    text: &str,
    value: &Value,
    index: &SpanIndex,
    for_override: bool,
) -> Vec<Problem> {
    let mut out = Vec::new();
    if !value.is_object() {
        let what = if value.is_null() {
            "empty"
        } else {
            "not a mapping"
        };
        out.push(
            Problem::file_level(file, format!("the file is {what}"))
                .at_pointer("")
                .with_help("a profile file is a YAML mapping that starts with `version: 1`"),
        );
        return out;
    }
    let validator = validator(for_override);
    // most files are valid: `is_valid` stops early and collects nothing
    if validator.is_valid(value) {
        return out;
    }
    let lines = crate::profile::diag::Lines::of(text);
    let spot = Spot {
        file,
        text,
        lines: &lines,
        index,
        value,
    };
    for err in validator.iter_errors(value) {
        explain(&spot, &err, &mut out);
    }
    out
}

/// Where a schema error is said: the file, its text and lines, its tree and positions.
struct Spot<'a> {
    file: &'a str,
    text: &'a str,
    lines: &'a crate::profile::diag::Lines,
    index: &'a SpanIndex,
    value: &'a Value,
}

impl Spot<'_> {
    /// A problem at the key (`key`) or the value at `ptr`.
    fn at(&self, ptr: &str, key: bool, msg: String) -> Problem {
        let pos = if key {
            self.index.key_pos(ptr)
        } else {
            self.index.value_pos(ptr)
        };
        let path = human_path(self.value, ptr);
        Problem::in_lines(self.file, self.text, self.lines, pos, path, msg).at_pointer(ptr)
    }
}

/// One schema error as the problems people read.
fn explain(spot: &Spot, err: &jsonschema::ValidationError, out: &mut Vec<Problem>) {
    let pointer = err.instance_path().as_str().to_string();
    let at = |ptr: &str, key: bool, msg: String| spot.at(ptr, key, msg);
    let name = last_segment(&pointer);
    let instance = err.instance();
    match err.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            unknown_keys(spot, &pointer, unexpected, out);
        }
        ValidationErrorKind::Required { property } => {
            out.extend(required(
                spot,
                &pointer,
                property.as_str().unwrap_or_default(),
            ));
        }
        ValidationErrorKind::Type { kind } => out.push(wrong_type(spot, &pointer, kind, instance)),
        ValidationErrorKind::Pattern { pattern } => {
            out.push(pattern_problem(
                at(&pointer, false, String::new()),
                name,
                instance,
                pattern,
            ));
        }
        ValidationErrorKind::PropertyNames { error } => {
            let key = error.instance().as_str().unwrap_or_default().to_string();
            let ptr = format!("{pointer}/{}", crate::profile::yaml::escape_segment(&key));
            let pat = match error.kind() {
                ValidationErrorKind::Pattern { pattern } => pattern.clone(),
                _ => String::new(),
            };
            out.push(pattern_problem(
                at(&ptr, true, String::new()),
                &key,
                &Value::String(key.clone()),
                &pat,
            ));
        }
        ValidationErrorKind::Enum { options } => {
            let opts: Vec<String> = options
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|o| o.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            out.push(enum_problem(
                at(&pointer, false, String::new()),
                name,
                instance,
                &opts,
            ));
        }
        ValidationErrorKind::Minimum { limit } | ValidationErrorKind::Maximum { limit } => {
            let below = matches!(err.kind(), ValidationErrorKind::Minimum { .. });
            out.push(out_of_range(spot, &pointer, instance, limit, below));
        }
        ValidationErrorKind::MinLength { .. } => {
            out.push(
                at(&pointer, false, format!("`{name}` is empty"))
                    .with_help("give a value, or remove the key"),
            );
        }
        ValidationErrorKind::MaxLength { limit } => {
            out.push(at(
                &pointer,
                false,
                format!("`{name}` is longer than {limit} characters"),
            ));
        }
        ValidationErrorKind::MaxItems { limit } => {
            out.push(
                at(
                    &pointer,
                    false,
                    format!(
                        "`{name}` has {} items; at most {limit}",
                        instance.as_array().map_or(0, Vec::len)
                    ),
                )
                .with_help("profiles pass a few arguments; is this list generated by mistake?"),
            );
        }
        ValidationErrorKind::MinItems { .. } => {
            out.push(
                at(&pointer, false, format!("`{name}` is an empty list"))
                    .with_help("give at least one item, or remove the key"),
            );
        }
        ValidationErrorKind::AnyOf { .. } | ValidationErrorKind::OneOfNotValid { .. } => {
            out.push(wrong_form(spot, &pointer, instance));
        }
        _ => out.push(at(&pointer, false, format!("`{name}`: {err}"))),
    }
}

/// Unknown keys of the mapping at `pointer`: each with the likely key meant, the mapping it
/// belongs under, or the keys known there.
fn unknown_keys(spot: &Spot, pointer: &str, unexpected: &[String], out: &mut Vec<Problem>) {
    let (value, index) = (spot.value, spot.index);
    let at = |ptr: &str, key: bool, msg: String| spot.at(ptr, key, msg);
    let known = known_keys(pointer, value);
    for key in unexpected {
        let ptr = format!("{pointer}/{}", crate::profile::yaml::escape_segment(key));
        let mut p = at(
            &ptr,
            true,
            format!("unknown key `{key}` in {}", describe(pointer)),
        );
        let required = likely::typo_of_required(pointer, key, value);
        let beside = || likely::key_of_a_child(pointer, key, value, index);
        p = match diag::did_you_mean(key, known.iter().map(String::as_str)) {
            Some(s) if required.as_deref() == Some(s) => p.with_help(format!(
                "did you mean `{s}`? ({} has no `{s}`, which is required)",
                describe(pointer)
            )),
            Some(s) => p.with_help(format!("did you mean `{s}`?")),
            None if let Some(h) = beside() => p.with_help(h),
            None if !known.is_empty() => {
                p.with_help(format!("known keys here: {}", known.join(", ")))
            }
            None => p,
        };
        out.push(p);
    }
}

/// A required key that is missing (none when an unknown key there is most likely its typo,
/// which is said instead).
fn required(spot: &Spot, pointer: &str, prop: &str) -> Option<Problem> {
    // a typo of it is the one problem said (with the "did you mean")
    if likely::required_mistyped(pointer, prop, spot.value) {
        return None;
    }
    let help = if pointer.is_empty() && prop == "version" {
        "add `version: 1` at the top of the file".to_string()
    } else {
        format!("add `{prop}:` to {}", describe(pointer))
    };
    let message = format!("{} has no `{prop}`, which is required", describe(pointer));
    Some(spot.at(pointer, true, message).with_help(help))
}

/// A value of the wrong type, or (the likely cause) a field indented as an entry.
fn wrong_type(spot: &Spot, pointer: &str, kind: &TypeKind, instance: &Value) -> Problem {
    let expected = match kind {
        TypeKind::Single(t) => t.to_string(),
        TypeKind::Multiple(ts) => ts
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(" or "),
    };
    if let Some(cause) = likely::entry_that_is_a_field(pointer, spot.value, spot.index) {
        return spot.at(pointer, true, cause.message).with_help(cause.help);
    }
    let name = last_segment(pointer);
    let mut p = spot.at(
        pointer,
        false,
        format!(
            "`{name}` must be {}, not {}",
            article(&expected),
            show_value(instance)
        ),
    );
    if let Some(h) = type_help(&expected, instance) {
        p = p.with_help(h);
    }
    p
}

/// A number outside its range (the file's `version` said as such).
fn out_of_range(
    spot: &Spot,
    pointer: &str,
    instance: &Value,
    limit: &Value,
    below: bool,
) -> Problem {
    let name = last_segment(pointer);
    let (lo, hi) = range_of(pointer, spot.value);
    let msg = if pointer == "/version" {
        format!(
            "unsupported version {}: bprof reads format version 1",
            show_value(instance)
        )
    } else {
        match (lo, hi) {
            (Some(lo), Some(hi)) => format!("`{name}` is {instance}, outside {lo}..={hi}"),
            _ if below => format!("`{name}` is {instance}, below the minimum {limit}"),
            _ => format!("`{name}` is {instance}, above the maximum {limit}"),
        }
    };
    let help = if pointer == "/version" {
        "write `version: 1`"
    } else {
        "use a value in the allowed range"
    };
    spot.at(pointer, false, msg).with_help(help)
}

/// A value none of whose allowed forms fits.
fn wrong_form(spot: &Spot, pointer: &str, instance: &Value) -> Problem {
    let name = last_segment(pointer);
    let words = allowed_words(pointer, spot.value);
    let at = |msg: String| spot.at(pointer, false, msg);
    if parent_segment(pointer) == "properties" {
        at(format!(
            "the .rdp property `{name}` must be a number or a string, not {}",
            show_value(instance)
        ))
    } else if name == "local_port" {
        at(format!(
            "`local_port` must be a port number (1-65535) or `auto`, not {}",
            show_value(instance)
        ))
    } else if !words.is_empty() {
        enum_problem(at(String::new()), name, instance, &words)
    } else {
        at(format!(
            "`{name}` has the wrong form: {}",
            show_value(instance)
        ))
    }
}

fn pattern_problem(base: Problem, name: &str, instance: &Value, pattern: &str) -> Problem {
    let shown = show_value(instance);
    let (message, help) = if pattern == GUID_PATTERN {
        (
            format!("`{name}` is {shown}, which is not a GUID"),
            "write 32 hex digits as 8-4-4-4-12, like 00000000-0000-0000-0000-000000000000"
                .to_string(),
        )
    } else if pattern == DNS_NAME_PATTERN {
        (
            format!("`{name}` is {shown}, which is not an Azure bastion host name"),
            "only bst-<guid>.bastion.azure.com (lower case, no port) is accepted, since your access token is sent there; leave it out and bprof reads the bastion's host from ARM (bastions in other clouds too)".to_string(),
        )
    } else if pattern == NAME_PATTERN {
        (
            format!("{shown} is not a valid name"),
            "names use lower-case letters, digits, `.`, `_` and `-`, start with a letter or digit, and have at most 63 characters".to_string(),
        )
    } else if pattern == RDP_KEY_PATTERN {
        (
            format!("{shown} is not an .rdp property key"),
            "write the key as `name:type`, where type is s (string), i (integer) or b (binary), like `smart sizing:i`".to_string(),
        )
    } else if pattern == RESOURCE_GROUP_PATTERN {
        (
            format!("`{name}` is {shown}, which is not an Azure resource group name"),
            "Azure allows letters, digits, `_`, `-`, `.`, `(` and `)`, not ending in `.` (and az reads a leading `-` as an option)".to_string(),
        )
    } else if pattern == RESOURCE_NAME_PATTERN {
        (
            format!("`{name}` is {shown}, which is not an Azure resource name"),
            "write the Azure name: letters, digits, `_`, `-` and `.`, starting with a letter or digit".to_string(),
        )
    } else if pattern == "^/subscriptions/" {
        (
            format!("`{name}` is {shown}, which is not an Azure resource id"),
            "write /subscriptions/<GUID>/resourceGroups/<group>/providers/Microsoft.Compute/virtualMachines/<name>".to_string(),
        )
    } else {
        (
            format!("`{name}` is {shown}, which does not match {pattern}"),
            String::new(),
        )
    };
    let mut p = Problem { message, ..base };
    if !help.is_empty() {
        p = p.with_help(help);
    }
    p
}

fn enum_problem(base: Problem, name: &str, instance: &Value, options: &[String]) -> Problem {
    let mut p = Problem {
        message: format!(
            "`{name}` is {}, which is not one of: {}",
            show_value(instance),
            options.join(", ")
        ),
        ..base
    };
    if let Some(s) = instance
        .as_str()
        .and_then(|v| diag::did_you_mean(&v.to_lowercase(), options.iter().map(String::as_str)))
    {
        p = p.with_help(format!("did you mean `{s}`?"));
    }
    p
}

/// The words a `oneOf`/`anyOf` of constants allows at `pointer` (enums with documented
/// variants are generated that way).
fn allowed_words(pointer: &str, root: &Value) -> Vec<String> {
    let schema = schema_value();
    let Some(sub) = subschema_at(pointer, root) else {
        return Vec::new();
    };
    let mut words = Vec::new();
    for key in ["oneOf", "anyOf"] {
        for branch in sub.get(key).and_then(Value::as_array).into_iter().flatten() {
            let b = deref(schema, branch);
            if let Some(c) = b.get("const").and_then(Value::as_str) {
                words.push(c.to_string());
            }
            for e in b
                .get("enum")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(e) = e.as_str() {
                    words.push(e.to_string());
                }
            }
        }
    }
    words
}

fn type_help(expected: &str, instance: &Value) -> Option<String> {
    let s = instance.as_str();
    match expected {
        "boolean" => match s.map(str::to_lowercase).as_deref() {
            Some("yes" | "on" | "y") => {
                Some("only `true` and `false` are booleans (YAML 1.2): write `true`".into())
            }
            Some("no" | "off" | "n") => {
                Some("only `true` and `false` are booleans (YAML 1.2): write `false`".into())
            }
            _ => Some("write `true` or `false`".into()),
        },
        "integer" | "number" if s.is_some_and(|s| s.trim().parse::<i64>().is_ok()) => {
            Some("write the number without quotes".into())
        }
        _ if instance.is_null() => Some("the key has no value: give one, or remove the key".into()),
        "string" if instance.is_number() || instance.is_boolean() => Some(format!(
            "put it in quotes: \"{instance}\" (YAML reads it as a {})",
            if instance.is_number() {
                "number"
            } else {
                "boolean"
            }
        )),
        _ => None,
    }
}

fn article(t: &str) -> String {
    match t {
        "object" => "a mapping".into(),
        "array" => "a list".into(),
        "integer" => "a whole number".into(),
        "null" => "empty".into(),
        t if t.starts_with(['a', 'e', 'i', 'o', 'u']) => format!("an {t}"),
        t => format!("a {t}"),
    }
}

/// A value as a user would recognise it in a message.
pub fn show_value(v: &Value) -> String {
    match v {
        Value::Null => "empty (no value)".into(),
        Value::String(s) => format!("the string \"{}\"", s.chars().take(60).collect::<String>()),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
        other => other.to_string(),
    }
}

pub(crate) fn segments(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

fn last_segment(pointer: &str) -> &str {
    pointer.rsplit('/').next().unwrap_or("")
}

fn parent_segment(pointer: &str) -> &str {
    pointer.rsplit('/').nth(1).unwrap_or("")
}

/// A JSON pointer as a YAML path: `profiles.prod-jumpbox.rdp.width`, `templates.t[0][2]`;
/// segments with dots are quoted.
pub fn human_path(root: &Value, pointer: &str) -> String {
    let mut out = String::new();
    let mut cur = Some(root);
    for seg in segments(pointer) {
        match cur {
            Some(Value::Array(items)) => {
                out.push_str(&format!("[{seg}]"));
                cur = seg.parse::<usize>().ok().and_then(|i| items.get(i));
            }
            other => {
                if !out.is_empty() {
                    out.push('.');
                }
                if seg.contains(['.', ' ', '"']) || seg.is_empty() {
                    out.push_str(&format!("{seg:?}"));
                } else {
                    out.push_str(&seg);
                }
                cur = other.and_then(|v| v.get(&seg));
            }
        }
    }
    out
}

/// "profile `prod`", "the rdp settings of profile `prod`", "the top level" ...
fn describe(pointer: &str) -> String {
    let segs = segments(pointer);
    let kind = |s: &str| match s {
        "tenants" => "tenant",
        "bastions" => "bastion",
        "vms" => "vm",
        "profiles" => "profile",
        "templates" => "template",
        _ => "entry",
    };
    match segs.as_slice() {
        [] => "the top level of the file".into(),
        [d] if d == "defaults" => "`defaults`".into(),
        [d, rest @ ..] if d == "defaults" => format!("`defaults.{}`", rest.join(".")),
        [section, name] => format!("{} `{name}`", kind(section)),
        [section, name, rest @ ..] => format!("`{}` of {} `{name}`", rest.join("."), kind(section)),
        [only] => format!("`{only}`"),
    }
}

/// The subschema that describes the value at `pointer`, found by walking the schema along
/// the instance path (following `$ref`, `properties`, `additionalProperties`, `items`).
fn subschema_at<'a>(pointer: &str, root: &'a Value) -> Option<&'a Value> {
    let schema = schema_value();
    let mut cur = deref(schema, schema);
    let mut inst = Some(root);
    for seg in segments(pointer) {
        let next = if let Some(p) = cur.get("properties").and_then(|p| p.get(&seg)) {
            Some(p)
        } else if let Some(Value::Array(_)) = inst {
            cur.get("items")
        } else {
            cur.get("additionalProperties").filter(|v| v.is_object())
        }?;
        cur = deref(schema, next);
        inst = inst.and_then(|v| match v {
            Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
            other => other.get(&seg),
        });
    }
    Some(cur)
}

fn deref<'a>(schema: &'a Value, v: &'a Value) -> &'a Value {
    let mut v = v;
    for _ in 0..8 {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => match r.strip_prefix('#').and_then(|p| schema.pointer(p)) {
                Some(target) => v = target,
                None => break,
            },
            None => break,
        }
    }
    v
}

pub(crate) fn known_keys(pointer: &str, root: &Value) -> Vec<String> {
    subschema_at(pointer, root)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|m: &Map<String, Value>| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// The keys the schema requires of the mapping at `pointer`.
pub(crate) fn required_keys(pointer: &str, root: &Value) -> Vec<String> {
    subschema_at(pointer, root)
        .and_then(|s| s.get("required"))
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn range_of(pointer: &str, root: &Value) -> (Option<Value>, Option<Value>) {
    let s = subschema_at(pointer, root);
    let get = |k: &str| s.and_then(|s| s.get(k)).cloned();
    (get("minimum"), get("maximum"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(yaml: &str) -> Vec<Problem> {
        let (v, idx) = crate::profile::yaml::parse(yaml).unwrap();
        check("t.yaml", yaml, &v, &idx, false)
    }

    #[test]
    fn schema_is_strict() {
        let s = schema_value();
        assert_eq!(s["additionalProperties"], Value::Bool(false));
        assert!(
            s["required"]
                .as_array()
                .unwrap()
                .contains(&Value::from("version"))
        );
    }

    #[test]
    fn unknown_key_suggests_the_nearest() {
        let p = problems("version: 1\nprofiles:\n  prod:\n    enable_mfaa: true\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!((p[0].line, p[0].column), (4, 5));
        assert_eq!(p[0].path, "profiles.prod.enable_mfaa");
        assert_eq!(p[0].help.as_deref(), Some("did you mean `enable_mfa`?"));
    }

    #[test]
    fn yes_is_not_a_boolean() {
        let p = problems("version: 1\nprofiles:\n  prod:\n    enable_mfa: yes\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].help.as_deref().unwrap().contains("write `true`"),
            "{p:?}"
        );
        assert_eq!((p[0].line, p[0].column), (4, 17));
    }

    #[test]
    fn every_problem_at_once() {
        let p = problems(
            "version: 2\ntenants:\n  t:\n    id: nope\nprofiles:\n  Bad:\n    mode: rdpp\n    resource_port: 70000\n",
        );
        let msgs: Vec<_> = p.iter().map(|p| (p.line, p.message.as_str())).collect();
        assert!(p.len() >= 5, "{msgs:?}");
        assert!(
            p.iter().any(|p| p.message.contains("not a GUID")),
            "{msgs:?}"
        );
        assert!(
            p.iter().any(|p| p.message.contains("not a valid name")),
            "{msgs:?}"
        );
        assert!(
            p.iter()
                .any(|p| p.message.contains("has no `subscription`")),
            "{msgs:?}"
        );
    }
}
