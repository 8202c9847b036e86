//! Names: the name pattern, names made from Azure names, and new names made unique in their
//! section.

use std::collections::{BTreeMap, BTreeSet};

/// The longest a name may be (the name pattern).
const MAX_NAME: usize = 63;

/// Whether `s` matches the name pattern `^[a-z0-9][a-z0-9._-]{0,62}$`.
pub fn name_ok(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=MAX_NAME).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        })
}

/// A name from an Azure name: lower case, characters outside `[a-z0-9._-]` as `-` (runs of
/// them as one), starting with a letter or digit, at most 63 long; `fallback` when nothing is
/// left.
pub fn base_name(azure: &str, fallback: &str) -> String {
    let mut out = String::new();
    for c in azure.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-') {
            c
        } else {
            '-'
        };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        if out.is_empty() && !(c.is_ascii_lowercase() || c.is_ascii_digit()) {
            continue;
        }
        out.push(c);
        if out.len() >= MAX_NAME {
            break;
        }
    }
    let out = out.trim_end_matches(['-', '.', '_']).to_string();
    if out.is_empty() {
        fallback.to_string()
    } else {
        out
    }
}

/// The longest start of `s` of at most `n` bytes that ends on a character boundary.
pub(super) fn cut(s: &str, n: usize) -> &str {
    let mut i = n.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    &s[..i]
}

/// `base` with `suffix` after it, `base` shortened so that the whole is at most 63 long.
pub(super) fn with_suffix(base: &str, suffix: &str) -> String {
    let room = MAX_NAME.saturating_sub(suffix.len());
    format!(
        "{}{suffix}",
        cut(base, room).trim_end_matches(['-', '.', '_'])
    )
}

/// The names of one section: those taken, and new ones made unique.
#[derive(Debug, Default)]
pub(super) struct Names {
    pub(super) taken: BTreeSet<String>,
}

impl Names {
    pub(super) fn free(&self, n: &str) -> bool {
        !self.taken.contains(n)
    }

    /// `wanted`, or `wanted-2`, `wanted-3`... whichever is free first; taken from now on.
    pub(super) fn fresh(&mut self, wanted: &str) -> String {
        let mut candidate = wanted.to_string();
        let mut i = 2u32;
        while !self.free(&candidate) {
            candidate = with_suffix(wanted, &format!("-{i}"));
            i += 1;
        }
        self.taken.insert(candidate.clone());
        candidate
    }
}

/// New names for `items` (Azure name, resource group, sort key), in a deterministic order: a
/// name that two of them share, or that is taken, is qualified by the resource group
/// (`web-rg-app`), and made unique with a number if it must.
pub(super) fn name_all(
    items: &[(String, String, String)],
    names: &mut Names,
    fallback: &str,
) -> Vec<String> {
    let bases: Vec<String> = items
        .iter()
        .map(|(n, _, _)| base_name(n, fallback))
        .collect();
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for b in &bases {
        *count.entry(b).or_default() += 1;
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| {
        (&bases[a], items[a].1.to_ascii_lowercase(), &items[a].2).cmp(&(
            &bases[b],
            items[b].1.to_ascii_lowercase(),
            &items[b].2,
        ))
    });
    let mut out = vec![String::new(); items.len()];
    for i in order {
        let base = &bases[i];
        let shared = count.get(base.as_str()).copied().unwrap_or(0) > 1;
        let wanted = if shared || !names.free(base) {
            let rg = base_name(&items[i].1, "rg");
            let rg = cut(&rg, 30);
            with_suffix(base, &format!("-{}", rg.trim_end_matches(['-', '.', '_'])))
        } else {
            base.clone()
        };
        out[i] = names.fresh(&wanted);
    }
    out
}
