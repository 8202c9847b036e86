//! Problems in profile data, and how they are shown: `error: what`, `--> file:line:col`, the
//! source line with a caret under the spot, then the fix.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::profile::yaml::Pos;

/// How bad a problem is: an error stops what depends on it; a warning is said and nothing stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Error,
    Warning,
}

/// One problem found in the profile data. Everything a user needs to find and fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    #[serde(skip)]
    pub severity: Severity,
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// The YAML path, such as `profiles.prod-jumpbox.rdp.width`.
    pub path: String,
    /// The JSON pointer of the spot, where known (which part of the file it spoils).
    #[serde(skip)]
    pub pointer: Option<String>,
    pub message: String,
    #[serde(skip)]
    pub help: Option<String>,
    #[serde(skip)]
    pub len: u32,
    #[serde(skip)]
    pub source_line: Option<String>,
}

/// Where each line of a text starts, found once: a file with many problems quotes each of
/// their lines without scanning the text again (reporting stays linear in the problems).
#[derive(Debug, Default, Clone)]
pub struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    pub fn of(text: &str) -> Lines {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i.saturating_add(1)),
        );
        Lines { starts }
    }

    /// Line `n` (1-based) of `text`, without its line break.
    pub fn line<'t>(&self, text: &'t str, n: u32) -> Option<&'t str> {
        let i = usize::try_from(n).ok()?.checked_sub(1)?;
        let start = *self.starts.get(i)?;
        let end = self
            .starts
            .get(i.saturating_add(1))
            .map_or(text.len(), |e| e.saturating_sub(1));
        text.get(start..end.max(start))
            .map(|l| l.trim_end_matches('\r'))
    }
}

impl Problem {
    /// A problem at `pos` of a file whose text is `text` (scans the text for the line: for a
    /// file with many problems, [`Problem::in_lines`]).
    pub fn new(file: &str, text: &str, pos: Pos, path: String, message: impl Into<String>) -> Self {
        Problem::in_lines(file, text, &Lines::of(text), pos, path, message)
    }

    /// [`Problem::new`] with the text's lines already found.
    pub fn in_lines(
        file: &str,
        text: &str,
        lines: &Lines,
        pos: Pos,
        path: String,
        message: impl Into<String>,
    ) -> Self {
        let source_line = lines.line(text, pos.line).map(str::to_string);
        Problem {
            severity: Severity::Error,
            file: file.to_string(),
            line: pos.line,
            column: pos.column,
            path,
            pointer: None,
            message: message.into(),
            help: None,
            len: pos.len,
            source_line,
        }
    }

    /// A problem about a whole file (or a path with no position).
    pub fn file_level(file: &str, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Error,
            file: file.to_string(),
            line: 1,
            column: 1,
            path: String::new(),
            pointer: None,
            message: message.into(),
            help: None,
            len: 0,
            source_line: None,
        }
    }

    /// A problem at a `file:line` location (as [`crate::profile::load::SourceFile::location`]
    /// writes it); a location without a line is a whole file.
    pub fn at_location(location: &str, message: impl Into<String>) -> Self {
        match location.rsplit_once(':') {
            Some((file, line)) if !file.is_empty() && line.parse::<u32>().is_ok() => {
                let mut p = Problem::file_level(file, message);
                p.line = line.parse().unwrap_or(1);
                p
            }
            _ => Problem::file_level(location, message),
        }
    }

    /// The same problem, at this JSON pointer.
    pub fn at_pointer(mut self, pointer: &str) -> Self {
        self.pointer = Some(pointer.to_string());
        self
    }

    /// The same problem as a warning.
    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The same problem without the quoted source line (for files whose lines must not be
    /// printed: not profile files, or not text).
    pub fn without_excerpt(mut self) -> Self {
        self.source_line = None;
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// The JSON form: `message` carries the fix too, since JSON has no separate help line.
    pub fn to_json(&self) -> Value {
        let message = match &self.help {
            Some(h) => format!("{}; {}", self.message, h),
            None => self.message.clone(),
        };
        serde_json::json!({
            "severity": self.severity,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": message,
        })
    }

    /// The text form, in the style of rustc and just. Data (message, help, paths, the source
    /// line) is escaped first and bprof's own color added after, so no escape sequence from a
    /// file or the network passes, even with color on.
    pub fn render(&self, color: bool) -> String {
        let clean = |s: &str| crate::terminal::text(s, false);
        let (message, file, path) = (clean(&self.message), clean(&self.file), clean(&self.path));
        let palette = crate::terminal::Palette::new(color);
        let (red, blue, bold, reset) =
            (&palette.error, &palette.help, &palette.bold, &palette.reset);
        let mut out = String::new();
        let (label, tint) = match self.severity {
            Severity::Error => ("error", &palette.error),
            Severity::Warning => ("warning", &palette.warning),
        };
        let _ = writeln!(out, "{tint}{label}{reset}{bold}: {message}{reset}");
        let gutter = " ".repeat(self.line.to_string().len());
        let at = if path.is_empty() {
            String::new()
        } else {
            format!(" (at {path})")
        };
        let _ = writeln!(
            out,
            "{gutter}{blue}-->{reset} {file}:{}:{}{at}",
            self.line, self.column
        );
        if let Some(src) = &self.source_line {
            let shown: String = clean(&src.chars().take(200).collect::<String>());
            let _ = writeln!(out, "{gutter} {blue}|{reset}");
            let _ = writeln!(out, "{blue}{}{reset} {blue}|{reset} {shown}", self.line);
            let pad: String = shown
                .chars()
                .take(self.column.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let carets = "^".repeat(self.len.clamp(1, 80) as usize);
            let _ = writeln!(out, "{gutter} {blue}|{reset} {pad}{red}{carets}{reset}");
        }
        if let Some(help) = &self.help {
            let help = clean(help);
            let _ = writeln!(out, "{gutter} {blue}={reset} {bold}help{reset}: {help}");
        }
        out
    }
}

/// Sorts problems by file, line and column, and drops exact repeats.
pub fn sort(problems: &mut Vec<Problem>) {
    problems.sort_by(|a, b| {
        (&a.file, a.line, a.column, &a.message).cmp(&(&b.file, b.line, b.column, &b.message))
    });
    problems.dedup();
}

/// The closest candidate to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(word.len().min(c.len()) / 3) && *d < word.len().max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The candidates closest to `word`, best first (for "unknown profile" lists).
pub fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    n: usize,
) -> Vec<&'a str> {
    let mut scored: Vec<(f64, &str)> = candidates
        .into_iter()
        .map(|c| {
            let contains = c.contains(word) || word.contains(c);
            let s = strsim::jaro_winkler(word, c) + if contains { 0.3 } else { 0.0 };
            (s, c)
        })
        .filter(|(s, _)| *s >= 0.7)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    scored.into_iter().take(n).map(|(_, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_found_once_and_quoted_exactly() {
        let text = "a: 1\r\nb: 2\n\nlast";
        let lines = Lines::of(text);
        assert_eq!(lines.line(text, 1), Some("a: 1"));
        assert_eq!(lines.line(text, 2), Some("b: 2"));
        assert_eq!(lines.line(text, 3), Some(""));
        assert_eq!(lines.line(text, 4), Some("last"));
        assert_eq!(lines.line(text, 5), None);
        assert_eq!(lines.line(text, 0), None);
        assert_eq!(Lines::of("").line("", 1), Some(""));
    }

    #[test]
    fn data_escape_sequences_never_pass_even_with_color() {
        let p = Problem::file_level("a\u{1b}[8m.yaml", "ARM says \u{1b}[8mhidden\u{1b}[0m")
            .with_help("\u{1b}[2Kx");
        let text = p.render(true);
        for forged in ["\u{1b}[8m", "\u{1b}[2K"] {
            assert!(!text.contains(forged), "{text:?}");
        }
        assert!(text.contains("\\e[8mhidden"), "{text:?}");
        assert!(
            text.starts_with(&format!(
                "{}error",
                crate::terminal::Palette::new(true).error
            )),
            "own color stays: {text:?}"
        );
        // and once more through the printer's rule
        let printed = crate::terminal::text(&text, true);
        assert!(!printed.contains("\u{1b}[8m"), "{printed:?}");
    }

    #[test]
    fn caret_under_the_column() {
        let p = Problem::new(
            "p.yaml",
            "version: 1\n  enable_mfaa: true\n",
            Pos {
                line: 2,
                column: 3,
                len: 11,
            },
            "profiles.x.enable_mfaa".into(),
            "unknown key",
        )
        .with_help("did you mean `enable_mfa`?");
        let text = p.render(false);
        assert!(
            text.contains("--> p.yaml:2:3 (at profiles.x.enable_mfaa)"),
            "{text}"
        );
        assert!(
            text.contains("2 |   enable_mfaa: true\n  |   ^^^^^^^^^^^\n"),
            "{text}"
        );
        assert!(
            text.contains("= help: did you mean `enable_mfa`?"),
            "{text}"
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("enable_mfaa", ["enable_mfa", "configure"]),
            Some("enable_mfa")
        );
        assert_eq!(did_you_mean("zzz", ["enable_mfa", "configure"]), None);
        assert_eq!(
            closest(
                "prod-jumpbx",
                ["prod-jumpbox", "dev-db", "prod-switch-user"],
                3
            )[0],
            "prod-jumpbox"
        );
    }
}
