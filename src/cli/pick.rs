//! `bprof run` with no profile, on a terminal: a picker over the profiles (name, description,
//! tenant, target), filtered by what is typed (fuzzy: the letters in order), then the plan of
//! the chosen one and a question before anything runs. Never on a non-terminal: there a missing
//! profile is the usage error it always was.

use std::io::{BufRead, IsTerminal};

use super::{Error, Out};
use crate::profile::load::{ProfileSet, Section};
use crate::profile::resolve;

/// One line of the picker: the profile and what it is matched against.
struct Row {
    name: String,
    shown: String,
}

/// Whether the picker may open: bprof talks with a person on a terminal.
pub(super) fn available() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Whether every character of `query` appears in `text`, in order, ignoring case.
pub fn fuzzy(query: &str, text: &str) -> bool {
    let text = text.to_lowercase();
    let mut rest = text.as_str();
    for q in query.to_lowercase().chars().filter(|c| !c.is_whitespace()) {
        match rest.find(q) {
            Some(i) => rest = &rest[i + q.len_utf8()..],
            None => return false,
        }
    }
    true
}

/// The profiles that resolve, each as one aligned line: name, mode, description, tenant,
/// target.
fn rows(set: &ProfileSet) -> Vec<Row> {
    let found: Vec<(String, [String; 5])> = set
        .names(Section::Profiles)
        .filter_map(|name| {
            let p = resolve::resolve(set, name).ok()?;
            let target =
                p.vm.ip
                    .clone()
                    .or(p.vm.name.clone())
                    .unwrap_or(p.vm.key.clone());
            let cells = [
                name.to_string(),
                resolve::mode_name(p.mode).to_string(),
                p.description.clone().unwrap_or_default(),
                p.tenant.name.clone(),
                target,
            ];
            Some((name.to_string(), cells))
        })
        .collect();
    let cells: Vec<[&str; 5]> = found
        .iter()
        .map(|(_, c)| c.each_ref().map(String::as_str))
        .collect();
    let lines = super::output::table(&cells);
    found
        .into_iter()
        .zip(lines)
        .map(|((name, _), shown)| Row { name, shown })
        .collect()
}

fn ask(prompt: &str) -> Option<String> {
    crate::terminal::eprint(prompt, false);
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim().to_string()),
    }
}

/// Lets the person choose a profile; None when they end it (empty input at the end, EOF).
pub(super) fn choose(set: &ProfileSet, _out: &Out) -> Result<Option<String>, Error> {
    let all = rows(set);
    if all.is_empty() {
        return Err(Error::Usage(
            "no usable profile to choose from (bprof validate says why)".into(),
        ));
    }
    let mut query = String::new();
    loop {
        // best first: the name holds what was typed, then the name has its letters in
        // order, then the rest of the line does
        let q = query.to_lowercase();
        let mut shown: Vec<(u8, &Row)> = all
            .iter()
            .filter_map(|r| {
                let rank = if r.name.contains(&q) {
                    0
                } else if fuzzy(&q, &r.name) {
                    1
                } else if r.shown.to_lowercase().contains(&q) {
                    2
                } else if fuzzy(&q, &r.shown) {
                    3
                } else {
                    return None;
                };
                Some((rank, r))
            })
            .collect();
        shown.sort_by_key(|(rank, _)| *rank);
        let shown: Vec<&Row> = shown.into_iter().map(|(_, r)| r).collect();
        let mut text = String::new();
        for (i, r) in shown.iter().enumerate().take(30) {
            text.push_str(&format!("{:>3}  {}\n", i + 1, r.shown));
        }
        if shown.len() > 30 {
            text.push_str(&format!(
                "     ... and {} more: type to narrow\n",
                shown.len() - 30
            ));
        }
        if shown.is_empty() {
            text.push_str("     (nothing matches)\n");
        }
        crate::terminal::eprint(&text, false);
        let Some(answer) = ask("profile (a number, or letters to filter; empty to quit): ") else {
            return Ok(None);
        };
        if answer.is_empty() {
            return Ok(None);
        }
        if let Ok(n) = answer.parse::<usize>()
            && (1..=shown.len().min(30)).contains(&n)
        {
            return Ok(Some(shown[n - 1].name.clone()));
        }
        if shown.len() == 1 && all.iter().any(|r| r.name == answer) {
            return Ok(Some(answer));
        }
        query = answer;
    }
}

/// After the plan is shown: whether to connect.
pub(super) fn confirm() -> bool {
    matches!(ask("connect? [y/N] ").as_deref(), Some("y" | "Y" | "yes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_in_order() {
        assert!(fuzzy("pjb", "prod-jumpbox"));
        assert!(fuzzy("", "anything"));
        assert!(fuzzy("JUMP", "prod-jumpbox"));
        assert!(!fuzzy("bjp", "prod-jumpbox"));
    }
}
