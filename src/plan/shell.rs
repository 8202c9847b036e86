//! Quoting argv for display only: bprof never runs a shell, but `plan` prints each step as a
//! line a person can paste into POSIX sh or PowerShell.

/// Quotes one argument for POSIX sh.
pub fn sh_quote(arg: &str) -> String {
    let safe = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:@%+=,".contains(c));
    if safe {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// Quotes one argument for PowerShell (single quotes: nothing inside is expanded).
pub fn ps_quote(arg: &str) -> String {
    let safe = !arg.is_empty()
        && arg != "--"
        && !arg.starts_with('@')
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:\\=+".contains(c));
    if safe {
        arg.to_string()
    } else {
        // PowerShell also treats the typographic quotes as quotes: double them all
        let mut out = String::from("'");
        for c in arg.chars() {
            if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
                out.push(c);
            }
            out.push(c);
        }
        out.push('\'');
        out
    }
}

/// One command line for the shell of `windows` (PowerShell) or otherwise sh.
pub fn join(argv: &[String], windows: bool) -> String {
    argv.iter()
        .map(|a| if windows { ps_quote(a) } else { sh_quote(a) })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sh_quotes_what_a_shell_would_touch() {
        assert_eq!(sh_quote("--name"), "--name");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
        assert_eq!(sh_quote("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(sh_quote("~/.ssh/id"), "'~/.ssh/id'");
        assert_eq!(sh_quote(""), "''");
    }

    #[test]
    fn powershell_quotes() {
        assert_eq!(ps_quote("--"), "'--'");
        assert_eq!(ps_quote("it's"), "'it''s'");
        assert_eq!(ps_quote("$env:x"), "'$env:x'");
        assert_eq!(ps_quote("C:\\x"), "C:\\x");
    }
}
