//! `extends` chains: a profile's parent, and the chains that are cycles or too deep (one
//! problem each).

use std::collections::BTreeMap;

use super::load::*;
use crate::profile::diag::Problem;

/// A profile's parent: the last layer that sets `extends`, and where it does.
pub fn parent_of<'s>(set: &'s ProfileSet, name: &str) -> Option<(&'s str, Def)> {
    let (parent, d) = parent_layer(set, name)?;
    Some((
        parent,
        Def {
            file: d.file,
            pointer: format!("{}/extends", d.pointer),
        },
    ))
}

/// A profile's parent and the layer that names it (no allocation: walks run this per profile).
pub fn parent_layer<'s>(set: &'s ProfileSet, name: &str) -> Option<(&'s str, &'s Def)> {
    let entry = set.entry(Section::Profiles, name)?;
    entry
        .defs
        .iter()
        .rev()
        .find_map(|d| Some((set.value(d)?.get("extends")?.as_str()?, d)))
}

/// Every `extends` chain at once, in time linear in the number of profiles: the cycles (one
/// problem each, told from the smallest name, at its `extends`) and the chains deeper than
/// [`MAX_EXTENDS`] (one problem each, at the first profile too deep; the profiles below it
/// share that problem).
pub(crate) fn chains(set: &ProfileSet) -> BTreeMap<String, Problem> {
    #[derive(Clone)]
    enum State {
        Depth(usize, Option<String>),
        Cycle,
    }
    let mut state: BTreeMap<&str, State> = BTreeMap::new();
    let mut bad: BTreeMap<String, Problem> = BTreeMap::new();
    let names: Vec<&str> = set.names(Section::Profiles).collect();
    for start in names {
        let mut path: Vec<&str> = Vec::new();
        let mut cur = start;
        // walk up until a known profile, a root, a missing parent, or the path itself
        let base = loop {
            if let Some(s) = state.get(cur) {
                break Some(s.clone());
            }
            if let Some(i) = path.iter().position(|p| *p == cur) {
                let members = &path[i..];
                let first = members.iter().copied().min().unwrap_or(cur);
                let at = members.iter().position(|m| *m == first).unwrap_or(0);
                let mut cycle: Vec<&str> = members[at..]
                    .iter()
                    .chain(&members[..at])
                    .copied()
                    .collect();
                cycle.push(first);
                let shown = if cycle.len() > 12 {
                    format!(
                        "{} -> ... ({} profiles) ... -> {}",
                        cycle[..6].join(" -> "),
                        cycle.len() - 1,
                        cycle[cycle.len() - 3..].join(" -> ")
                    )
                } else {
                    cycle.join(" -> ")
                };
                if let Some((_, def)) = parent_of(set, first) {
                    let p = set
                        .file(&def)
                        .problem(
                            &def.pointer,
                            false,
                            format!("`extends` forms a cycle: {shown}"),
                        )
                        .with_help("remove `extends` from one of these profiles");
                    for m in members {
                        bad.insert(m.to_string(), p.clone());
                        state.insert(m, State::Cycle);
                    }
                }
                path.truncate(i);
                break Some(State::Cycle);
            }
            path.push(cur);
            match parent_layer(set, cur) {
                Some((parent, _)) if set.entry(Section::Profiles, parent).is_some() => cur = parent,
                _ => break None,
            }
        };
        // then down the path again, parents first
        let mut below = base;
        while let Some(name) = path.pop() {
            let next = match &below {
                None => State::Depth(1, None),
                Some(State::Cycle) => State::Cycle,
                Some(State::Depth(d, anchor)) => {
                    let depth = d + 1;
                    let anchor = if depth == MAX_EXTENDS + 1 {
                        if let Some((_, def)) = parent_of(set, name) {
                            let p = set
                                .file(&def)
                                .problem(&def.pointer, false, format!("the `extends` chain of profile `{name}` is longer than {MAX_EXTENDS} profiles"))
                                .with_help("profiles inherit a few levels deep; shorten the chain (`defaults` apply under every profile)");
                            bad.insert(name.to_string(), p);
                        }
                        Some(name.to_string())
                    } else {
                        anchor.clone()
                    };
                    if let Some(a) = &anchor
                        && a != name
                        && let Some(p) = bad.get(a).cloned()
                    {
                        bad.insert(name.to_string(), p);
                    }
                    State::Depth(depth, anchor)
                }
            };
            state.insert(name, next.clone());
            below = Some(next);
        }
    }
    bad
}
