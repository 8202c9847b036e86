//! The layers of a profile (built-in defaults < `defaults` < the `extends` chain < the profile
//! < personal overrides), merged into one value with where each field came from.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::profile::load::{Def, ProfileSet};

/// The fields and origins of a merge of layers.
#[derive(Debug, Default)]
pub(super) struct Layered {
    pub(super) value: Map<String, Value>,
    /// field path -> (file, pointer) of the layer that set it, or None for built-in.
    pub(super) origins: BTreeMap<String, Option<Def>>,
}

impl Layered {
    pub(super) fn apply(&mut self, set: &ProfileSet, def: &Def, skip: &[&str]) {
        if let Some(Value::Object(obj)) = set.value(def) {
            let mut at = Cursor {
                file: def.file,
                pointer: def.pointer.clone(),
                path: String::new(),
            };
            merge(&mut self.value, &mut self.origins, obj, &mut at, skip);
        }
    }
}

/// Where a merge is: the layer's file, the JSON pointer in it, and the field path (`rdp.width`).
/// Both strings grow and shrink as the merge descends; only the recorded origins allocate.
pub(super) struct Cursor {
    pub(super) file: usize,
    pub(super) pointer: String,
    pub(super) path: String,
}

impl Cursor {
    fn enter(&mut self, key: &str) -> (usize, usize) {
        let lens = (self.pointer.len(), self.path.len());
        self.pointer.push('/');
        crate::profile::yaml::push_segment(&mut self.pointer, key);
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(key);
        lens
    }

    fn leave(&mut self, (pointer, path): (usize, usize)) {
        self.pointer.truncate(pointer);
        self.path.truncate(path);
    }

    /// Notes the cursor's place as the origin of its field.
    fn record(&self, origins: &mut BTreeMap<String, Option<Def>>) {
        match origins.get_mut(self.path.as_str()) {
            Some(Some(def)) => {
                def.file = self.file;
                def.pointer.clone_from(&self.pointer);
            }
            Some(slot) => {
                *slot = Some(Def {
                    file: self.file,
                    pointer: self.pointer.clone(),
                })
            }
            None => {
                origins.insert(
                    self.path.clone(),
                    Some(Def {
                        file: self.file,
                        pointer: self.pointer.clone(),
                    }),
                );
            }
        }
    }
}

pub(super) fn merge(
    into: &mut Map<String, Value>,
    origins: &mut BTreeMap<String, Option<Def>>,
    from: &Map<String, Value>,
    at: &mut Cursor,
    skip: &[&str],
) {
    for (k, v) in from {
        if at.path.is_empty() && skip.contains(&k.as_str()) {
            continue;
        }
        let lens = at.enter(k);
        match (into.get_mut(k), v) {
            (Some(Value::Object(existing)), Value::Object(new)) => {
                merge(existing, origins, new, at, &[]);
            }
            (Some(slot), _) => {
                *slot = v.clone();
                record_origins(origins, v, at);
                at.record(origins);
            }
            (None, _) => {
                into.insert(k.clone(), v.clone());
                record_origins(origins, v, at);
                at.record(origins);
            }
        }
        at.leave(lens);
    }
}

/// Notes the layer as the origin of every field below `v` (a mapping set as a whole).
pub(super) fn record_origins(
    origins: &mut BTreeMap<String, Option<Def>>,
    v: &Value,
    at: &mut Cursor,
) {
    if let Value::Object(new) = v {
        for (sub, item) in new {
            let lens = at.enter(sub);
            record_origins(origins, item, at);
            at.record(origins);
            at.leave(lens);
        }
    }
}
