//! YAML text to a JSON value plus an index of where every key and value was written.
//!
//! serde-saphyr parses (strict YAML 1.2 booleans, duplicate keys refused, budgets on aliases,
//! depth and nodes); each node keeps its line and column through `Spanned`. The tree is then
//! flattened into a `serde_json::Value` (what the JSON schema validates) and a [`SpanIndex`] that
//! maps a JSON pointer (`/profiles/prod/rdp/width`) back to the source.

use std::collections::HashMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::Spanned;

/// A 1-based line and column, and the length of the token there (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
    pub len: u32,
}

impl Pos {
    pub const START: Pos = Pos {
        line: 1,
        column: 1,
        len: 0,
    };

    fn from_spanned<T>(s: &Spanned<T>) -> Pos {
        let loc = s.referenced;
        Pos {
            line: u32::try_from(loc.line()).unwrap_or(u32::MAX).max(1),
            column: u32::try_from(loc.column()).unwrap_or(u32::MAX).max(1),
            len: u32::try_from(loc.span().len()).unwrap_or(0),
        }
    }
}

/// Where one entry was written: its key (for mapping entries) and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub key: Option<Pos>,
    pub value: Pos,
}

/// JSON pointer -> position of the key and value written there.
#[derive(Debug, Default, Clone)]
pub struct SpanIndex {
    map: HashMap<String, Entry, std::hash::BuildHasherDefault<Fnv>>,
}

impl SpanIndex {
    /// How many keys and values it holds (about the file's nodes).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn get(&self, pointer: &str) -> Option<Entry> {
        self.map.get(pointer).copied()
    }

    /// The position of the value at `pointer`, or of its nearest written ancestor.
    pub fn value_pos(&self, pointer: &str) -> Pos {
        self.nearest(pointer).map(|e| e.value).unwrap_or(Pos::START)
    }

    /// The position of the key at `pointer` (the value for sequence items), or of its nearest
    /// written ancestor.
    pub fn key_pos(&self, pointer: &str) -> Pos {
        self.nearest(pointer)
            .map(|e| e.key.unwrap_or(e.value))
            .unwrap_or(Pos::START)
    }

    fn nearest(&self, pointer: &str) -> Option<Entry> {
        let mut p = pointer;
        loop {
            if let Some(e) = self.map.get(p) {
                return Some(*e);
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return None,
            }
        }
    }
}

/// Escapes one JSON-pointer segment (RFC 6901).
pub fn escape_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_segment(&mut out, s);
    out
}

/// Appends one escaped JSON-pointer segment to `out`.
pub(crate) fn push_segment(out: &mut String, s: &str) {
    if !s.contains(['~', '/']) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
}

/// FNV-1a: the index's keys are short pointers from the user's own files, so a fast
/// non-keyed hash is enough.
#[derive(Default, Clone, Copy)]
pub struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// A YAML syntax or limit error, with where it happened.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Nodes deeper than this are refused (profiles need about six levels).
const MAX_DEPTH: usize = 32;
/// Events replayed from aliases in one file.
const MAX_ALIAS_EVENTS: usize = 20_000;
/// Nodes in one file, aliases expanded (a set of 10,000 profiles in 20 files needs ~10% of it).
const MAX_NODES: usize = 500_000;

/// A key that YAML reads as something other than text (`007:` is the number 7): the value is
/// kept under the key as text, and the key is a problem of its own.
#[derive(Debug, Clone)]
pub struct KeyProblem {
    pub pointer: String,
    pub pos: Pos,
    pub message: String,
}

/// Parses one document; a key that is not text is an error.
pub fn parse(text: &str) -> Result<(Value, SpanIndex), SyntaxError> {
    let (value, index, keys) = parse_all(text)?;
    match keys.into_iter().next() {
        Some(k) => Err(SyntaxError {
            pos: k.pos,
            message: k.message,
        }),
        None => Ok((value, index)),
    }
}

/// Tabs in the indentation of any line, each with its position (YAML forbids them there).
pub fn indentation_tabs(text: &str) -> Vec<Pos> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let lead: String = line
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .collect();
        if let Some(col) = lead.chars().position(|c| c == '\t') {
            out.push(Pos {
                line: u32::try_from(i + 1).unwrap_or(u32::MAX),
                column: u32::try_from(col + 1).unwrap_or(u32::MAX),
                len: 1,
            });
        }
    }
    out
}

/// Parses one document (an empty one is `Value::Null`), with the keys that are not text.
/// Profile files take the fast path ([`fast`]); a document with anything it leaves alone takes
/// the full one, with the same result.
pub fn parse_all(text: &str) -> Result<(Value, SpanIndex, Vec<KeyProblem>), SyntaxError> {
    match fast::parse_or_over(text) {
        Ok(Some((value, index))) => Ok((value, index, Vec::new())),
        Ok(None) => parse_full(text),
        Err(pos) => Err(SyntaxError {
            pos,
            message: budget_message(&format!(
                "budget breached: Nodes {{ nodes: {} }}",
                MAX_NODES.saturating_add(1)
            )),
        }),
    }
}

/// A budget breach, said with the limits.
fn budget_message(msg: &str) -> String {
    format!(
        "{msg}: the file is nested too deeply or expands too many aliases; bprof reads at most {MAX_DEPTH} levels, {MAX_NODES} nodes and {MAX_ALIAS_EVENTS} nodes from aliases"
    )
}

/// Checks that the fast path, where it answers, gives exactly what the full parse gives;
/// panics otherwise (the differential fuzz target and the tests). Returns whether it answered.
#[doc(hidden)]
pub fn fast_path_agrees(text: &str) -> bool {
    let Some((fv, fi)) = fast::parse(text) else {
        return false;
    };
    let (sv, si, keys) = match parse_full(text) {
        Ok(r) => r,
        Err(e) => panic!(
            "the fast path took a document the full parse refuses ({}): {text:?}",
            e.message
        ),
    };
    assert!(
        keys.is_empty(),
        "the fast path took a key problem: {text:?}"
    );
    assert_eq!(fv, sv, "{text:?}");
    let mut fk: Vec<_> = fi.map.iter().collect();
    let mut sk: Vec<_> = si.map.iter().collect();
    fk.sort_by(|a, b| a.0.cmp(b.0));
    sk.sort_by(|a, b| a.0.cmp(b.0));
    assert_eq!(fk, sk, "{text:?}");
    true
}

/// serde-saphyr's parse of a `Spanned` tree, flattened.
fn parse_full(text: &str) -> Result<(Value, SpanIndex, Vec<KeyProblem>), SyntaxError> {
    let mut options = serde_saphyr::options! { strict_booleans: true };
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.max_nodes = MAX_NODES;
    budget.max_documents = 1;
    options.budget = Some(budget);
    // profiles barely use aliases: a few thousand replayed events are plenty, and an alias
    // bomb stops here long before it costs time or memory
    options.alias_limits.max_total_replayed_events = MAX_ALIAS_EVENTS;
    let tree: Spanned<Node> =
        serde_saphyr::from_str_with_options(text, options).map_err(|e| SyntaxError {
            pos: e
                .location()
                .map(|l| Pos {
                    line: u32::try_from(l.line()).unwrap_or(u32::MAX).max(1),
                    column: u32::try_from(l.column()).unwrap_or(u32::MAX).max(1),
                    len: 1,
                })
                .unwrap_or(Pos::START),
            message: clean_message(&e.without_snippet().to_string()),
        })?;
    // about one node per line: sized once instead of rehashed as it grows
    let lines = text.bytes().filter(|b| *b == b'\n').count();
    let mut index = SpanIndex {
        map: HashMap::with_capacity_and_hasher(lines + 1, Default::default()),
    };
    let mut keys = Vec::new();
    let value = flatten(
        tree,
        &mut String::with_capacity(128),
        None,
        &mut index,
        &mut keys,
    )?;
    Ok((value, index, keys))
}

/// serde-saphyr prefixes "line L column C: " and sometimes appends option hints meant for
/// programmers; keep only what a user can act on.
fn clean_message(raw: &str) -> String {
    let first = raw.lines().next().unwrap_or(raw);
    let mut msg = first.trim_start_matches("error: ");
    if let Some(rest) = msg.strip_prefix("line ")
        && let Some(i) = rest.find(": ")
    {
        msg = &rest[i + 2..];
    }
    // the position is printed beside the message already
    if let Some(i) = msg.rfind(" at line ") {
        msg = &msg[..i];
    }
    let indentation = [
        "mapping values are not allowed",
        "did not find expected key",
        "did not find expected '-' indicator",
        "block sequence entries are not allowed",
        "could not find expected ':'",
    ];
    if indentation.iter().any(|m| msg.contains(m)) {
        return format!(
            "the indentation does not fit here ({msg}): check the indentation of this line and the one above; keys of one mapping line up with the same number of spaces"
        );
    }
    let msg = msg
        .split(", set DuplicateKeyPolicy")
        .next()
        .unwrap_or(msg)
        .trim();
    if msg.starts_with("duplicate mapping key") {
        return format!("{msg}: a key may appear only once in a mapping; remove one of them");
    }
    if msg.contains("budget breached") || msg.contains("recursion limit") || msg.contains("alias") {
        return budget_message(msg);
    }
    msg.to_string()
}

fn flatten(
    node: Spanned<Node>,
    pointer: &mut String,
    key: Option<Pos>,
    index: &mut SpanIndex,
    keys: &mut Vec<KeyProblem>,
) -> Result<Value, SyntaxError> {
    let pos = Pos::from_spanned(&node);
    let len = pointer.len();
    let value = match node.value {
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Bool(b),
        Node::Int(i) => Value::Number(i.into()),
        Node::Float(f) => Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Node::Str(s) => Value::String(s),
        Node::Seq(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                pointer.push('/');
                pointer.push_str(&i.to_string());
                out.push(flatten(item, pointer, None, index, keys)?);
                pointer.truncate(len);
            }
            Value::Array(out)
        }
        Node::Map(entries) => {
            let mut out = Map::with_capacity(entries.len());
            for (k, v) in entries {
                let kpos = Pos::from_spanned(&k);
                let (name, read_as) = match k.value {
                    Node::Str(s) => (s, None),
                    Node::Int(i) => (i.to_string(), Some("the number")),
                    Node::Bool(b) => (b.to_string(), Some("the boolean")),
                    Node::Float(f) => (f.to_string(), Some("the number")),
                    Node::Null => ("null".to_string(), Some("null,")),
                    Node::Seq(_) | Node::Map(_) => {
                        return Err(SyntaxError {
                            pos: kpos,
                            message: "a mapping key must be a plain name, not a list or mapping"
                                .into(),
                        });
                    }
                };
                pointer.push('/');
                push_segment(pointer, &name);
                if let Some(what) = read_as {
                    keys.push(KeyProblem {
                        pointer: pointer.clone(),
                        pos: kpos,
                        message: format!(
                            "YAML reads this key as {what} {name}, not as the text written: quote it (`\"...\":`)"
                        ),
                    });
                }
                let value = flatten(v, pointer, Some(kpos), index, keys)?;
                pointer.truncate(len);
                out.insert(name, value);
            }
            Value::Object(out)
        }
    };
    index.map.insert(pointer.clone(), Entry { key, value: pos });
    Ok(value)
}

mod fast;

/// A YAML node whose children keep their positions.
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<Node>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Node, E> {
        Ok(Node::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Node, E> {
        Ok(Node::Int(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Node, E> {
        Ok(i64::try_from(u).map_or(Node::Float(u as f64), Node::Int))
    }
    fn visit_i128<E>(self, i: i128) -> Result<Node, E> {
        Ok(i64::try_from(i).map_or(Node::Float(i as f64), Node::Int))
    }
    fn visit_u128<E>(self, u: u128) -> Result<Node, E> {
        Ok(i64::try_from(u).map_or(Node::Float(u as f64), Node::Int))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Node, E> {
        Ok(Node::Float(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<Node, E> {
        Ok(Node::Str(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Node, E> {
        Ok(Node::Str(s))
    }
    fn visit_bytes<E>(self, b: &[u8]) -> Result<Node, E> {
        Ok(Node::Str(String::from_utf8_lossy(b).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = map.next_key::<Spanned<Node>>()? {
            let v = map.next_value::<Spanned<Node>>()?;
            entries.push((k, v));
        }
        Ok(Node::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_node_budget_both_paths_say_the_same() {
        // a flat mapping here (the debug build is slow); a long sequence and flow sequences
        // agreed too when this was written
        let doc: String = (0..250_100).map(|i| format!("k{i}: 1\n")).collect();
        let (Err(fast), Err(full)) = (parse_all(&doc), parse_full(&doc)) else {
            panic!("both paths refuse a document over the budget");
        };
        assert_eq!(fast.message, full.message);
        assert_eq!(
            (fast.pos.line, fast.pos.column),
            (full.pos.line, full.pos.column)
        );
    }

    #[test]
    fn positions_of_keys_and_values() {
        let (v, idx) = parse("version: 1\nprofiles:\n  prod:\n    enable_mfa: true\n").unwrap();
        assert_eq!(v["profiles"]["prod"]["enable_mfa"], Value::Bool(true));
        let e = idx.get("/profiles/prod/enable_mfa").unwrap();
        assert_eq!(e.key.unwrap().line, 4);
        assert_eq!(e.key.unwrap().column, 5);
        assert_eq!(e.value.column, 17);
    }

    #[test]
    fn yes_is_a_string() {
        let (v, _) = parse("a: yes\nb: on\nc: false\n").unwrap();
        assert_eq!(v["a"], Value::String("yes".into()));
        assert_eq!(v["b"], Value::String("on".into()));
        assert_eq!(v["c"], Value::Bool(false));
    }

    #[test]
    fn duplicate_key_is_refused_with_position() {
        let e = parse("a: 1\nb:\n  c: 2\n  c: 3\n").unwrap_err();
        assert_eq!((e.pos.line, e.pos.column), (4, 3));
        assert!(e.message.contains("duplicate"), "{}", e.message);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = "[".repeat(20_000) + &"]".repeat(20_000);
        let e = parse(&text).unwrap_err();
        assert_eq!(e.pos.line, 1);
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
        for i in 0..9u8 {
            let (p, n) = ((b'a' + i) as char, (b'b' + i) as char);
            text += &format!("{n}: &{n} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n");
        }
        assert!(parse(&text).is_err());
    }

    fn same(text: &str) -> bool {
        fast_path_agrees(text)
    }

    #[test]
    fn the_fast_path_agrees_with_the_full_parse() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["profiles", "tests/fuzz-regressions/load_validate_plan"] {
            for e in std::fs::read_dir(root.join(dir))
                .into_iter()
                .flatten()
                .flatten()
            {
                if e.path().extension().is_some_and(|x| x == "yaml") {
                    files.push(e.path());
                }
            }
        }
        assert!(files.len() >= 4);
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            let took = same(&text);
            if f.starts_with(root.join("profiles")) {
                assert!(
                    took,
                    "the bundled {} should take the fast path",
                    f.display()
                );
            }
        }
        let taken = [
            "a: 1\nb: [x, 'y', \"z\"]\nc: {d: e, f: ~}\n",
            "k:\n  - a: 1\n    b: 2\n  - - x\n    - y\n",
            "x: |\n  line one\n  line two\ny: >-\n  folded\n  text\n",
            "plain: several words here\nmulti: first\n  second\n",
            "\"quoted key\": 1\n'single': 2\na/b~c: 3\n",
            "guid: 55555555-5555-5555-5555-555555555555\nip: 10.20.0.4\ndate: 2024-05-01\n",
            "empty:\nnothing: ~\nt: True\nf: FALSE\nz: 0\nbig: 123456789012345678\n",
            "# a comment\n---\na: b # trailing\n...\n",
            "\u{feff}version: 1\n",
            "a: b\r\nc: d\r\n",
            "ünï: cödé\n",
            "[]\n",
            "{}\n",
            "- 1\n- two\n",
            "a: {}\nb: []\n",
            "key: value, with colon:x\n",
            "a:\tb\n",
            "u: _under\nslash: /path/x\nat: \"@x\"\n",
        ];
        for t in taken {
            assert!(same(t), "the fast path should take {t:?}");
        }
        // left to the full parse: it alone says what these are
        for t in [
            "key: value with: colon\n",
            "a: -.inf\n",
            "a: +.5\n",
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "<<: {a: 1}\n",
            "007: x\n",
            "true: x\n",
            "a: 1\na: 2\n",
            "a: 1.5\n",
            "a: 0x1f\n",
            "a: .inf\n",
            "a: 1e5\n",
            "a: 0123\n",
            "a: -1\n",
            "a: nan\n",
            "a: b\n---\nc: d\n",
            "",
            "a: [\n",
            "? [a]\n: b\n",
            "a: 1234567890123456789012\n",
        ] {
            assert!(
                fast::parse(t).is_none(),
                "{t:?} should go to the full parse"
            );
        }
    }

    use proptest::prelude::*;

    /// Scalars as written (plain, quoted, or anything a person might type).
    fn scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "x",
                "true",
                "False",
                "null",
                "~",
                "",
                "0",
                "7",
                "007",
                "1.5",
                "-1",
                "+2",
                "1e3",
                ".inf",
                "-.nan",
                "nan",
                "Infinity",
                "0x1f",
                "10.0.0.4",
                "2024-05-01",
                "55555555-5555-5555-5555-555555555555",
                "-L",
                "--flag",
                "a b",
                "yes",
                "on",
                "'q'",
                "\"d\"",
                "\"a\\nb\"",
                "'it''s'",
                "[a, b]",
                "{a: 1}",
                "&a x",
                "*a",
                "!!str 1",
                "a: b",
                "#c",
                "a #c",
                "@x",
                "`x`",
                "<<",
                "é",
                "123456789012345678901",
            ])
            .prop_map(str::to_string),
            "[a-z0-9 ._/-]{0,12}",
        ]
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z][a-z0-9_-]{0,8}",
            prop::sample::select(vec![
                "true", "007", "null", "'q k'", "\"d k\"", "a/b", "t~1", "<<", "1.5", "-k"
            ])
            .prop_map(str::to_string),
        ]
    }

    #[derive(Debug, Clone)]
    enum Doc {
        Scalar(String),
        Map(Vec<(String, Doc)>),
        Seq(Vec<Doc>),
    }

    fn doc() -> impl Strategy<Value = Doc> {
        let leaf = scalar().prop_map(Doc::Scalar);
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec((key(), inner.clone()), 0..4).prop_map(Doc::Map),
                prop::collection::vec(inner, 0..4).prop_map(Doc::Seq),
            ]
        })
    }

    /// Block style, with flow style for some collections.
    fn render(d: &Doc, indent: usize, out: &mut String, flow: bool) {
        let pad = " ".repeat(indent);
        match d {
            Doc::Scalar(s) => {
                out.push(' ');
                out.push_str(s);
                out.push('\n');
            }
            Doc::Map(m) if m.is_empty() || flow => {
                out.push_str(" {");
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&format!(" {k}:"));
                    let mut inner = String::new();
                    render(v, 0, &mut inner, true);
                    out.push_str(inner.trim_end());
                }
                out.push_str(" }\n");
            }
            Doc::Seq(v) if v.is_empty() || flow => {
                out.push_str(" [");
                for (i, item) in v.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let mut inner = String::new();
                    render(item, 0, &mut inner, true);
                    out.push_str(inner.trim_end());
                }
                out.push_str(" ]\n");
            }
            Doc::Map(m) => {
                out.push('\n');
                for (k, v) in m {
                    out.push_str(&format!("{pad}{k}:"));
                    render(v, indent + 2, out, indent % 4 == 2);
                }
            }
            Doc::Seq(items) => {
                out.push('\n');
                for item in items {
                    out.push_str(&format!("{pad}-"));
                    render(item, indent + 2, out, false);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        #[test]
        fn the_fast_path_agrees_on_generated_documents(d in doc()) {
            let mut text = String::new();
            render(&d, 0, &mut text, false);
            let text = text.trim_start().to_string();
            // `same` asserts equality wherever the fast path answers
            let _ = same(&text);
        }
    }

    #[test]
    fn plain_scalars_the_fast_path_is_sure_of() {
        use serde_json::json;
        assert_eq!(fast::plain("abc"), Some(json!("abc")));
        assert_eq!(fast::plain("3389"), Some(json!(3389)));
        assert_eq!(fast::plain("0"), Some(json!(0)));
        assert_eq!(fast::plain("10.0.0.4"), Some(json!("10.0.0.4")));
        assert_eq!(fast::plain("1-2"), Some(json!("1-2")));
        assert_eq!(fast::plain("-L"), Some(json!("-L")));
        assert_eq!(
            fast::plain("--only-show-errors"),
            Some(json!("--only-show-errors"))
        );
        assert_eq!(fast::plain(".x"), Some(json!(".x")));
        assert_eq!(fast::plain("-.inf"), None);
        for unsure in [
            "1.5", "1e5", "-1", "+1", "01", "0x1", ".5", "1_000", "Infinity", "1e-5", "1:30",
        ] {
            assert_eq!(fast::plain(unsure), None, "{unsure}");
        }
    }

    #[test]
    fn empty_document_is_null() {
        assert_eq!(parse("").unwrap().0, Value::Null);
    }
}
