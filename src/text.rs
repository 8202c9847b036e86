//! Text rules every layer shares: which characters never reach a terminal, an argv or an
//! .rdp line (control characters, bidirectional controls), and the shape of a GUID.

/// The first character that must never reach a terminal, an argv or an .rdp line: C0 and C1
/// controls, DEL, and the Unicode bidirectional controls (which reorder what a reviewer sees).
pub fn control_char(s: &str) -> Option<char> {
    s.chars().find(|c| is_control(*c))
}

/// Whether `c` is a character that is escaped in output and refused in values.
pub fn is_control(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Whether `s` is a GUID (8-4-4-4-12 hex digits).
pub fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// How many terminal columns `s` takes (East Asian wide characters two, combining marks none):
/// what tables are aligned by.
pub fn width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}
