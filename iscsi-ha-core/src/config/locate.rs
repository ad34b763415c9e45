//! Finding a key path's position in the TOML text, for errors found after parsing.

use std::fmt;
use std::ops::Range;
use toml_edit::{ImDocument, Item, Table, Value};

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A key path such as `target.lun[0].path`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Segment>);

impl KeyPath {
    /// A path from dotted keys, without indexes.
    pub fn keys(keys: &[&str]) -> Self {
        Self(
            keys.iter()
                .map(|k| Segment::Key((*k).to_string()))
                .collect(),
        )
    }

    /// This path with a key appended.
    pub fn key(&self, key: &str) -> Self {
        let mut out = self.clone();
        out.0.push(Segment::Key(key.to_string()));
        out
    }

    /// This path with an index appended.
    pub fn index(&self, index: usize) -> Self {
        let mut out = self.clone();
        out.0.push(Segment::Index(index));
        out
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// The byte range of the deepest part of `path` present in the document: the value itself when
/// it exists, else its nearest existing parent (so "missing key" errors point at the table).
pub fn locate(doc: &ImDocument<&str>, path: &KeyPath) -> Option<Range<usize>> {
    let mut node = Node::Item(doc.as_item());
    let mut best = None;
    for seg in &path.0 {
        let next = match (seg, node) {
            (Segment::Key(k), Node::Item(Item::Table(t)) | Node::Table(t)) => {
                t.get(k).map(Node::Item)
            }
            (Segment::Key(k), Node::Item(Item::Value(Value::InlineTable(t))))
            | (Segment::Key(k), Node::Value(Value::InlineTable(t))) => t.get(k).map(Node::Value),
            (Segment::Index(i), Node::Item(Item::ArrayOfTables(a))) => a.get(*i).map(Node::Table),
            (Segment::Index(i), Node::Item(Item::Value(Value::Array(a))))
            | (Segment::Index(i), Node::Value(Value::Array(a))) => a.get(*i).map(Node::Value),
            _ => None,
        };
        match next {
            Some(next) => {
                node = next;
                best = node.span().or(best);
            }
            None => break,
        }
    }
    best
}

/// The value at `path`, when the whole path exists and ends at a value (not a table).
pub(super) fn value_at<'a>(doc: &'a ImDocument<&str>, path: &KeyPath) -> Option<&'a Value> {
    let mut node = Node::Item(doc.as_item());
    for seg in &path.0 {
        node = match (seg, node) {
            (Segment::Key(k), Node::Item(Item::Table(t)) | Node::Table(t)) => Node::Item(t.get(k)?),
            (Segment::Key(k), Node::Item(Item::Value(Value::InlineTable(t))))
            | (Segment::Key(k), Node::Value(Value::InlineTable(t))) => Node::Value(t.get(k)?),
            (Segment::Index(i), Node::Item(Item::ArrayOfTables(a))) => Node::Table(a.get(*i)?),
            (Segment::Index(i), Node::Item(Item::Value(Value::Array(a))))
            | (Segment::Index(i), Node::Value(Value::Array(a))) => Node::Value(a.get(*i)?),
            _ => return None,
        };
    }
    match node {
        Node::Item(Item::Value(v)) | Node::Value(v) => Some(v),
        _ => None,
    }
}

/// The 1-based line and column of `path` in `text` (of its value, or of its nearest existing
/// parent), for errors found outside this module that concern a key, e.g. a file it names.
pub fn key_position(text: &str, path: &KeyPath) -> Option<(usize, usize)> {
    let doc = ImDocument::parse(text).ok()?;
    let span = locate(&doc, path)?;
    Some(super::error::line_column(text, span.start))
}

#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a Item),
    Table(&'a Table),
    Value(&'a Value),
}

impl Node<'_> {
    fn span(self) -> Option<Range<usize>> {
        match self {
            Node::Item(i) => i.span(),
            Node::Table(t) => t.span(),
            Node::Value(v) => v.span(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_values_and_falls_back_to_parents() {
        let text = "[target]\niqn = \"x\"\n[[target.lun]]\nlun = 0\n";
        let doc = ImDocument::parse(text).unwrap();
        let lun = locate(&doc, &KeyPath::keys(&["target", "lun"]).index(0).key("lun"));
        assert_eq!(lun.map(|r| &text[r]), Some("0"));
        let missing = locate(&doc, &KeyPath::keys(&["target", "iqn2"]));
        assert!(missing.is_some());
        assert_eq!(
            KeyPath::keys(&["a", "b"]).index(2).key("c").to_string(),
            "a.b[2].c"
        );
    }
}
