//! The one rule for human-facing output: a control character (C0, C1, DEL, the Unicode
//! bidirectional controls) in anything bprof prints for people is shown escaped, whatever it
//! came from (a file, the environment, a program, the network), so no value can set the
//! clipboard, move the cursor, erase a line or reorder what a reviewer reads. bprof's own color
//! (SGR sequences) is the only escape sequence that passes, and only when color is on. JSON
//! output is exact and does not pass through here.

use std::io::Write;

/// `c` as people see it escaped: `\e`, `\x07`, `\u{202e}`.
fn escaped(c: char, out: &mut String) {
    use std::fmt::Write as _;
    match c {
        '\u{1b}' => out.push_str("\\e"),
        '\r' => out.push_str("\\r"),
        c if (c as u32) < 0x100 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// A value escaped for a terminal: every control character, line breaks and tabs included.
pub fn value(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(crate::text::is_control) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if crate::text::is_control(c) {
            escaped(c, &mut out);
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// A whole text for a terminal: line breaks and tabs stay; with `color`, bprof's own SGR
/// sequences (`ESC [ digits ; m`) stay; every other control character is escaped.
pub fn text(s: &str, color: bool) -> String {
    // the common case: printable ASCII, line breaks and tabs only
    if s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) || b == b'\n' || b == b'\t')
    {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\n' || c == '\t' || !crate::text::is_control(c) {
            out.push(c);
            continue;
        }
        if color && c == '\u{1b}' {
            let rest = &s[i + 1..];
            let len = rest
                .strip_prefix('[')
                .map(|r| {
                    r.bytes()
                        .take_while(|b| b.is_ascii_digit() || *b == b';')
                        .count()
                })
                .filter(|n| rest.as_bytes().get(n + 1) == Some(&b'm'));
            if let Some(n) = len {
                out.push_str(&s[i..i + 1 + 1 + n + 1]);
                for _ in 0..n + 2 {
                    chars.next();
                }
                continue;
            }
        }
        escaped(c, &mut out);
    }
    out
}

/// Writes `s` to stderr through [`text`]. A closed or failing stderr is not an error: bprof
/// goes on (and never panics over it). With color, through anstream: on a Windows console it
/// turns on virtual-terminal mode, or translates for a console without it.
pub fn eprint(s: &str, color: bool) {
    let shown = text(s, color);
    if color {
        let mut err = anstream::AutoStream::always(std::io::stderr()).lock();
        let _ = err.write_all(shown.as_bytes());
        let _ = err.flush();
    } else {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(shown.as_bytes());
        let _ = err.flush();
    }
}

/// bprof's own styles (anstyle), each rendered as its SGR sequence, or as nothing without
/// color. Added after data is escaped: no sequence from a file or the network passes.
#[derive(Debug, Clone)]
pub struct Palette {
    pub error: String,
    pub warning: String,
    pub help: String,
    pub bold: String,
    pub reset: String,
}

impl Palette {
    pub fn new(color: bool) -> Palette {
        use anstyle::{AnsiColor, Style};
        let sgr = |style: Style| {
            if color {
                style.render().to_string()
            } else {
                String::new()
            }
        };
        let colored = |c: AnsiColor| Style::new().bold().fg_color(Some(c.into()));
        Palette {
            error: sgr(colored(AnsiColor::Red)),
            warning: sgr(colored(AnsiColor::Yellow)),
            help: sgr(colored(AnsiColor::Blue)),
            bold: sgr(Style::new().bold()),
            reset: if color {
                anstyle::Reset.render().to_string()
            } else {
                String::new()
            },
        }
    }
}

/// [`eprint`] of a line, without color.
pub fn eprintln(s: &str) {
    eprint(&format!("{s}\n"), false);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_own_color_stays() {
        assert_eq!(text("a\u{1b}]52;c;x\u{7}b\n", false), "a\\e]52;c;x\\x07b\n");
        assert_eq!(text("\u{1b}[2K\rfake", true), "\\e[2K\\rfake");
        assert_eq!(
            text("\u{1b}[1;31merror\u{1b}[0m", true),
            "\u{1b}[1;31merror\u{1b}[0m"
        );
        assert_eq!(text("\u{1b}[1;31merror", false), "\\e[1;31merror");
        assert_eq!(text("x\u{202e}y\u{9b}", false), "x\\u{202e}y\\x9b");
        assert_eq!(value("a\nb\tc"), "a\\x0ab\\x09c");
        assert_eq!(value("plain"), "plain");
    }

    #[test]
    fn the_palette_is_sgr_that_the_output_rule_lets_pass() {
        let p = Palette::new(true);
        let line = format!("{}error{}", p.error, p.reset);
        assert_eq!(text(&line, true), line, "own color passes");
        assert!(p.error.starts_with("\u{1b}[") && p.error.ends_with('m'));
        let none = Palette::new(false);
        assert_eq!(format!("{}x{}", none.error, none.reset), "x");
    }
}
