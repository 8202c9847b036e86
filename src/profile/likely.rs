//! The likely cause first. Two slips of hand-written YAML make the schema's own words mislead:
//! a field indented too little becomes an entry (`enable_mfa` "must be a mapping") or a key of
//! the wrong mapping ("unknown key `width`"), and a typo in a required key reads first as the
//! key missing. Here each is recognised from the file's tree and said as what it most likely is.

use serde_json::Value;

use crate::profile::schema::{known_keys, required_keys, segments};
use crate::profile::yaml::{SpanIndex, escape_segment};

/// The sections whose keys are names of entries (each entry a mapping of fields).
const NAME_TABLES: [(&str, &str); 5] = [
    ("tenants", "tenant"),
    ("bastions", "bastion"),
    ("vms", "vm"),
    ("profiles", "profile"),
    ("templates", "template"),
];

/// What a problem says instead, when its likely cause is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub message: String,
    pub help: String,
}

/// `pointer` joined with one more key.
fn child(pointer: &str, key: &str) -> String {
    format!("{pointer}/{}", escape_segment(key))
}

/// An entry `/SECTION/KEY` whose value is not a mapping while KEY is a field of SECTION's
/// entries: a field of the entry above, indented too little.
pub fn entry_that_is_a_field(pointer: &str, root: &Value, index: &SpanIndex) -> Option<Cause> {
    let [section, key] = segments(pointer).try_into().ok()?;
    let (_, kind) = NAME_TABLES.iter().find(|(s, _)| *s == section)?;
    if root.pointer(pointer).is_none_or(Value::is_object) {
        return None;
    }
    if !known_keys(pointer, root).contains(&key) {
        return None;
    }
    let line = index.key_pos(pointer).line;
    let table = format!("/{section}");
    let above = root
        .get(&section)?
        .as_object()?
        .iter()
        .filter(|(_, v)| v.is_object())
        .map(|(name, _)| (name, index.key_pos(&child(&table, name)).line))
        .filter(|(_, l)| *l < line)
        .max_by_key(|(_, l)| *l);
    let help = match above {
        Some((name, l)) => {
            format!("indent `{key}:` to line up with the fields of {kind} `{name}` (line {l})")
        }
        None => format!("indent `{key}:` under the {kind} it belongs to"),
    };
    Some(Cause {
        message: format!("`{key}` is a field of a {kind}, not a {kind}: it is indented too little"),
        help,
    })
}

/// An unknown `key` of the mapping at `pointer` that is a field of one of its own mappings
/// (`width` beside `rdp:` rather than under it): indented too little. The help, naming where.
pub fn key_of_a_child(pointer: &str, key: &str, root: &Value, index: &SpanIndex) -> Option<String> {
    let object = root.pointer(pointer)?.as_object()?;
    let (field, _) = object.iter().find(|(field, v)| {
        v.is_object()
            && known_keys(&child(pointer, field), root)
                .iter()
                .any(|k| k == key)
    })?;
    let line = index.key_pos(&child(pointer, field)).line;
    Some(format!(
        "`{key}` is a field of `{field}`: indent it under `{field}:` (line {line})"
    ))
}

/// The required keys the mapping at `pointer` lacks that `key` (unknown there) is a near miss
/// of: most likely a typo of that key.
pub fn typo_of_required(pointer: &str, key: &str, root: &Value) -> Option<String> {
    let object = root.pointer(pointer)?.as_object()?;
    let missing: Vec<String> = required_keys(pointer, root)
        .into_iter()
        .filter(|r| !object.contains_key(r))
        .collect();
    crate::profile::diag::did_you_mean(key, missing.iter().map(String::as_str)).map(str::to_string)
}

/// Whether the mapping at `pointer` has an unknown key that is most likely a typo of the
/// required `prop` (then that typo is the one problem said).
pub fn required_mistyped(pointer: &str, prop: &str, root: &Value) -> bool {
    let Some(object) = root.pointer(pointer).and_then(Value::as_object) else {
        return false;
    };
    let known = known_keys(pointer, root);
    object
        .keys()
        .filter(|k| !known.contains(k))
        .any(|k| typo_of_required(pointer, k, root).as_deref() == Some(prop))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(yaml: &str) -> (Value, SpanIndex) {
        crate::profile::yaml::parse(yaml).unwrap()
    }

    #[test]
    fn a_field_indented_as_an_entry_is_named_with_the_entry_above() {
        let (v, idx) = tree("profiles:\n  p:\n    bastion: b\n  enable_mfa: true\n");
        let c = entry_that_is_a_field("/profiles/enable_mfa", &v, &idx).unwrap();
        assert!(c.message.contains("indented too little"), "{c:?}");
        assert!(c.help.contains("profile `p` (line 2)"), "{c:?}");
        // a name that is no field: not this slip
        let (v, idx) = tree("profiles:\n  p:\n    bastion: b\n  other: true\n");
        assert_eq!(entry_that_is_a_field("/profiles/other", &v, &idx), None);
    }

    #[test]
    fn a_key_beside_its_mapping_and_a_typo_of_a_required_key() {
        let (v, idx) = tree("profiles:\n  p:\n    rdp:\n      height: 1\n    width: 2\n");
        let h = key_of_a_child("/profiles/p", "width", &v, &idx).unwrap();
        assert!(h.contains("indent it under `rdp:` (line 3)"), "{h}");
        let (v, _) = tree("bastions:\n  b:\n    tenant: t\n    resource_grp: r\n    name: n\n");
        assert_eq!(
            typo_of_required("/bastions/b", "resource_grp", &v).as_deref(),
            Some("resource_group")
        );
        assert!(required_mistyped("/bastions/b", "resource_group", &v));
        assert!(!required_mistyped("/bastions/b", "name", &v));
    }
}
