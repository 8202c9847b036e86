//! The fast path: the parser's events (serde-saphyr's own parser, with the options
//! serde-saphyr gives it) straight to the JSON value and its index, without serde or a
//! `Spanned` tree: about a third of the full parse's work. It takes the documents profile
//! files are made of: one document of mappings, sequences and scalars, text keys, and plain
//! scalars that are null, `true`/`false` (any YAML 1.2 case), decimal integers or text that can
//! be nothing else (names, GUIDs, addresses, dates). Anything else: an anchor, alias, tag or
//! merge key, a key that is not plain text, a number of another form (`007`, `1.5`, `0x1f`,
//! `.inf`), a duplicate key, a limit reached or a syntax error, gives None, and the full parse
//! decides, so both paths agree on every document (a test compares them).
#![deny(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use super::{Entry, MAX_DEPTH, MAX_NODES, Pos, SpanIndex, push_segment};
use serde_json::{Map, Value};
use serde_saphyr::granit_parser::{Event, Options, Parser, ScalarStyle, Span};
use std::collections::HashMap;

/// serde-saphyr's own limit on events.
const MAX_EVENTS: usize = 1_000_000;

fn pos(span: &Span) -> Pos {
    Pos {
        line: u32::try_from(span.start.line()).unwrap_or(u32::MAX).max(1),
        column: u32::try_from(span.start.col().saturating_add(1))
            .unwrap_or(u32::MAX)
            .max(1),
        len: u32::try_from(span.len()).unwrap_or(0),
    }
}

/// What a plain scalar is, when that is certain without serde-saphyr's number parsing.
pub(super) fn plain(v: &str) -> Option<Value> {
    match v {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        _ => {}
    }
    let b = v.as_bytes();
    let first = *b.first()?;
    if first.is_ascii_alphabetic() || first == b'_' || first == b'/' {
        // Rust's float parser knows these words (YAML keeps them text, but be sure)
        let lower = v.to_ascii_lowercase();
        if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
            return None;
        }
        return Some(Value::String(v.to_string()));
    }
    // a sign or a dot before anything but a digit: `-L`, `--flag`, `.name`; YAML's
    // `.inf` and `.nan` (and signed ones) are floats
    if matches!(first, b'+' | b'-' | b'.')
        && !b.get(1).is_some_and(|c| c.is_ascii_digit() || *c == b'.')
    {
        let unsigned = v.trim_start_matches(['+', '-']).to_ascii_lowercase();
        if matches!(unsigned.as_str(), ".inf" | ".nan") {
            return None;
        }
        return Some(Value::String(v.to_string()));
    }
    if !(first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.')) {
        // other punctuation (`@`, `$`, ...): text, unless the parser would have stopped
        return Some(Value::String(v.to_string()));
    }
    if b.iter().all(u8::is_ascii_digit) {
        if (v == "0" || first != b'0') && v.len() <= 18 {
            return v.parse::<i64>().ok().map(|i| Value::Number(i.into()));
        }
        return None;
    }
    // a number has at most one `.`, and a sign only first or after an exponent's `e`
    let dots = b.iter().filter(|c| **c == b'.').count();
    let inner_sign = b.iter().enumerate().skip(1).any(|(i, c)| {
        matches!(c, b'+' | b'-') && !matches!(b.get(i.wrapping_sub(1)), Some(b'e' | b'E'))
    });
    if (dots >= 2 || inner_sign)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+' | b'_'))
    {
        return Some(Value::String(v.to_string()));
    }
    None
}

/// A container being built.
struct Frame {
    value: Value,
    /// Its own position and its key's.
    pos: Pos,
    key: Option<Pos>,
    /// The pointer's length before this container's segment.
    parent_len: usize,
    /// A mapping's key read, waiting for its value.
    pending: Option<(String, Pos)>,
}

/// Puts `value` where the parent (or the root) expects it. None: a duplicate key.
fn place(stack: &mut [Frame], root: &mut Option<Value>, value: Value) -> Option<()> {
    match stack.last_mut() {
        None => {
            *root = Some(value);
            Some(())
        }
        Some(f) => match &mut f.value {
            Value::Object(m) => {
                let (k, _) = f.pending.take()?;
                m.insert(k, value).is_none().then_some(())
            }
            Value::Array(a) => {
                a.push(value);
                Some(())
            }
            _ => None,
        },
    }
}

/// The pointer and key position for the next value: pushes its segment.
fn enter(stack: &[Frame], pointer: &mut String) -> Option<Option<Pos>> {
    match stack.last() {
        None => Some(None),
        Some(f) => match &f.value {
            Value::Object(_) => {
                let (k, kpos) = f.pending.as_ref()?;
                pointer.push('/');
                push_segment(pointer, k);
                Some(Some(*kpos))
            }
            Value::Array(a) => {
                pointer.push('/');
                pointer.push_str(&a.len().to_string());
                Some(None)
            }
            _ => None,
        },
    }
}

pub(super) fn parse(text: &str) -> Option<(Value, SpanIndex)> {
    parse_within(text, &mut None)
}

/// [`parse`], and where the document passed the node budget when that is why it gave up: a
/// document of nothing but plain nodes up to there is over it whichever path reads it, and the
/// full parse need not build half a million nodes again to say so.
pub(super) fn parse_or_over(text: &str) -> Result<Option<(Value, SpanIndex)>, Pos> {
    let mut over = None;
    let parsed = parse_within(text, &mut over);
    match over {
        Some(at) => Err(at),
        None => Ok(parsed),
    }
}

fn parse_within(text: &str, over: &mut Option<Pos>) -> Option<(Value, SpanIndex)> {
    let budget = serde_saphyr::Budget::default();
    let mut options = Options::default();
    options.block_nesting_limit = options.block_nesting_limit.max(MAX_DEPTH + 1);
    options.simple_key_max_lookahead = budget.simple_key_max_lookahead;
    options.flow_nesting_limit = budget.flow_nesting_limit;
    let mut parser = Parser::new_from_str_with_options(text, options);
    let lines = text.bytes().filter(|b| *b == b'\n').count();
    let mut tree = Tree {
        index: SpanIndex {
            map: HashMap::with_capacity_and_hasher(lines.saturating_add(1), Default::default()),
        },
        pointer: String::with_capacity(128),
        stack: Vec::new(),
        root: None,
        nodes: 0,
    };
    let (mut events, mut documents) = (0usize, 0usize);
    let mut ended = false;
    while let Some(item) = parser.next_event() {
        let (event, span) = item.ok()?;
        events = events.saturating_add(1);
        if events > MAX_EVENTS || ended {
            return None;
        }
        match event {
            Event::StreamStart | Event::DocumentEnd => {}
            Event::DocumentStart(..) => {
                documents = documents.saturating_add(1);
                if documents > 1 {
                    return None;
                }
            }
            Event::StreamEnd => ended = true,
            Event::Scalar(v, style, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return None;
                }
                tree.count(&span, over)?;
                let value = match style {
                    ScalarStyle::Plain => plain(&v)?,
                    _ => Value::String(v.into_owned()),
                };
                tree.scalar(value, &span)?;
            }
            Event::SequenceStart(_, anchor, ref tag) | Event::MappingStart(_, anchor, ref tag) => {
                if anchor != 0 || tag.is_some() || tree.wants_key() {
                    return None;
                }
                tree.count(&span, over)?;
                tree.open(matches!(event, Event::MappingStart(..)), &span)?;
            }
            Event::SequenceEnd | Event::MappingEnd => tree.close()?,
            // aliases, anchors' metadata, comments and whatever a later parser adds
            _ => return None,
        }
    }
    if !ended || !tree.stack.is_empty() {
        return None;
    }
    // an empty document: the full parse says what it is
    let value = tree.root?;
    Some((value, tree.index))
}

/// The tree the events build: the value, the position of every node, where it is now.
struct Tree {
    index: SpanIndex,
    /// The JSON pointer of the node being built.
    pointer: String,
    stack: Vec<Frame>,
    root: Option<Value>,
    nodes: usize,
}

impl Tree {
    /// A mapping waiting for a key: the next event is one.
    fn wants_key(&self) -> bool {
        self.stack
            .last()
            .is_some_and(|f| f.value.is_object() && f.pending.is_none())
    }

    /// One more node; past [`MAX_NODES`] the parse stops, saying where (`over`).
    fn count(&mut self, span: &Span, over: &mut Option<Pos>) -> Option<()> {
        self.nodes = self.nodes.saturating_add(1);
        if self.nodes > MAX_NODES {
            *over = Some(pos(span));
            return None;
        }
        Some(())
    }

    /// A scalar: a mapping's key (text only, no merge key), or a value placed where it goes.
    fn scalar(&mut self, value: Value, span: &Span) -> Option<()> {
        if self.wants_key() {
            let Value::String(k) = value else { return None };
            if k == "<<" {
                return None;
            }
            if let Some(f) = self.stack.last_mut() {
                f.pending = Some((k, pos(span)));
            }
            return Some(());
        }
        let len = self.pointer.len();
        let key = enter(&self.stack, &mut self.pointer)?;
        self.index.map.insert(
            self.pointer.clone(),
            Entry {
                key,
                value: pos(span),
            },
        );
        self.pointer.truncate(len);
        place(&mut self.stack, &mut self.root, value)
    }

    /// A mapping or sequence begins (at most [`MAX_DEPTH`] deep).
    fn open(&mut self, mapping: bool, span: &Span) -> Option<()> {
        if self.stack.len() >= MAX_DEPTH {
            return None;
        }
        let parent_len = self.pointer.len();
        let key = enter(&self.stack, &mut self.pointer)?;
        let value = if mapping {
            Value::Object(Map::new())
        } else {
            Value::Array(Vec::new())
        };
        self.stack.push(Frame {
            value,
            pos: pos(span),
            key,
            parent_len,
            pending: None,
        });
        Some(())
    }

    /// A mapping or sequence ends: indexed, and placed where it goes.
    fn close(&mut self) -> Option<()> {
        let f = self.stack.pop()?;
        if f.pending.is_some() {
            return None;
        }
        self.index.map.insert(
            self.pointer.clone(),
            Entry {
                key: f.key,
                value: f.pos,
            },
        );
        self.pointer.truncate(f.parent_len);
        place(&mut self.stack, &mut self.root, f.value)
    }
}
