//! Finding where a node of a YAML document is written (line and column).
//!
//! `serde_yaml::Value` keeps no positions, but serde_yaml attaches to every
//! error the position of the node being deserialized when the error was
//! raised. So to locate the node at a path (`monitors[2].triggers[0].op`),
//! this module deserializes the text once more with a visitor that walks
//! down that path, skipping every other node, and fails on purpose at the
//! target; the error's location is the node's. It uses the same parser that
//! loaded the file, so flow style (`{a: 1}`), quoting, comments, multi-line
//! strings and anchors are all handled as the loader saw them — nothing here
//! scans the text itself. Locating costs one parse per problem, which is
//! nothing next to a human reading the report.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One step down a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A path from the document root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct YamlPath(pub Vec<Segment>);

impl YamlPath {
    pub fn root() -> YamlPath {
        YamlPath(Vec::new())
    }

    pub fn key(&self, key: &str) -> YamlPath {
        let mut p = self.clone();
        p.0.push(Segment::Key(key.to_string()));
        p
    }

    pub fn index(&self, index: usize) -> YamlPath {
        let mut p = self.clone();
        p.0.push(Segment::Index(index));
        p
    }

    pub fn join(&self, other: &YamlPath) -> YamlPath {
        let mut p = self.clone();
        p.0.extend(other.0.iter().cloned());
        p
    }

    pub fn parent(&self) -> Option<YamlPath> {
        let mut p = self.clone();
        p.0.pop().map(|_| p)
    }
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Which part of a mapping entry to point at: the key (for "unknown field")
/// or the value (for "bad value").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Key,
    Value,
}

/// 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// The message of the deliberate error, to tell it from a real one.
const FOUND: &str = "\u{0}hawkeye-located\u{0}";

/// Where the node at `path` is written in `text`. `Part::Key` locates the
/// key of the last segment (when it is a key). `None` when the path does not
/// exist in the document.
pub fn locate(text: &str, path: &YamlPath, part: Part) -> Option<Location> {
    let de = serde_yaml::Deserializer::from_str(text);
    let seed = Walk {
        path: &path.0,
        part,
    };
    match seed.deserialize(de) {
        Ok(()) => None,
        Err(e) if e.to_string().contains(FOUND) => e.location().map(|l| Location {
            line: l.line(),
            column: l.column(),
        }),
        Err(_) => None,
    }
}

/// Locates `path`, or its nearest ancestor that exists (a missing field is
/// reported at the mapping that lacks it), or the document start.
pub fn locate_nearest(text: &str, path: &YamlPath, part: Part) -> Location {
    let mut p = path.clone();
    let mut part = part;
    loop {
        if let Some(l) = locate(text, &p, part) {
            return l;
        }
        match p.parent() {
            Some(parent) => p = parent,
            None => return Location { line: 1, column: 1 },
        }
        part = Part::Value;
    }
}

struct Walk<'a> {
    path: &'a [Segment],
    part: Part,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.path.split_first() else {
            return Err(de::Error::custom(FOUND));
        };
        let Segment::Key(wanted) = first else {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(());
        };
        let fail_on_key = rest.is_empty() && self.part == Part::Key;
        while let Some(matched) = map.next_key_seed(KeyMatch {
            wanted,
            fail_on_match: fail_on_key,
        })? {
            if matched {
                return map.next_value_seed(Walk {
                    path: rest,
                    part: self.part,
                });
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.path.split_first() else {
            return Err(de::Error::custom(FOUND));
        };
        let Segment::Index(wanted) = first else {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(());
        };
        for _ in 0..*wanted {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        seq.next_element_seed(Walk {
            path: rest,
            part: self.part,
        })?;
        Ok(())
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        // A tagged node (`!tag value`): the path continues into its value.
        if self.path.is_empty() {
            return Err(de::Error::custom(FOUND));
        }
        let (_, variant) = data.variant::<IgnoredAny>()?;
        de::VariantAccess::newtype_variant_seed(variant, self)
    }

    // Scalars: the target when the path ends here, a dead end otherwise.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.scalar()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.scalar()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }
}

impl Walk<'_> {
    fn scalar<E: de::Error>(&self) -> Result<(), E> {
        if self.path.is_empty() {
            Err(E::custom(FOUND))
        } else {
            Ok(())
        }
    }
}

/// Deserializes a mapping key, compares it with `wanted` (keys of any scalar
/// type compare by their text, as `serde_yaml::Value` paths render them), and
/// fails on a match when the key itself is the target.
struct KeyMatch<'a> {
    wanted: &'a str,
    fail_on_match: bool,
}

impl<'de> DeserializeSeed<'de> for KeyMatch<'_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeyMatch<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        self.compare(v)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        self.compare(&v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        self.compare(&v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        self.compare(&v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<bool, E> {
        self.compare(&v.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        self.compare("null")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }
}

impl KeyMatch<'_> {
    fn compare<E: de::Error>(&self, key: &str) -> Result<bool, E> {
        let matched = key == self.wanted;
        if matched && self.fail_on_match {
            return Err(E::custom(FOUND));
        }
        Ok(matched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
# comment
version: 1
monitors:
  - metric: a
    triggers:
      - threshold: 3
        op: '=>'
  - {metric: b, triggers: [{threshold: 1, to: [x@y]}]}
  - metric: c
    tags:
      route: /checkout
";

    fn at(path: &YamlPath, part: Part) -> Option<(usize, usize)> {
        locate(DOC, path, part).map(|l| (l.line, l.column))
    }

    #[test]
    fn locates_values_and_keys_in_block_and_flow_style() {
        let m = YamlPath::root().key("monitors");
        let op = m.index(0).key("triggers").index(0).key("op");
        assert_eq!(at(&op, Part::Value), Some((7, 13)));
        assert_eq!(at(&op, Part::Key), Some((7, 9)));
        let to = m.index(1).key("triggers").index(0).key("to").index(0);
        assert_eq!(at(&to, Part::Value), Some((8, 48)));
        assert_eq!(at(&m.index(1), Part::Value), Some((8, 5)));
        assert_eq!(
            at(&m.index(2).key("tags").key("route"), Part::Value),
            Some((11, 14))
        );
        assert_eq!(
            at(&YamlPath::root().key("version"), Part::Key),
            Some((2, 1))
        );
    }

    #[test]
    fn missing_paths_fall_back_to_the_nearest_ancestor() {
        let m = YamlPath::root().key("monitors");
        assert_eq!(at(&m.index(7), Part::Value), None);
        assert_eq!(at(&m.index(0).key("nope"), Part::Value), None);
        let l = locate_nearest(DOC, &m.index(0).key("nope"), Part::Key);
        assert_eq!((l.line, l.column), (4, 5));
    }
}
