//! YAML with positions: the document becomes a `serde_json::Value` for schema validation and
//! deserialization, plus an index from JSON pointer to the line and column of each key and value.

use std::collections::HashMap;

use saphyr::{LoadableYamlNode, MarkedYamlOwned, ScalarOwned, YamlDataOwned};
use serde_json::{Map, Number, Value};

/// 1-based line and column.
pub type Pos = (usize, usize);

#[derive(Debug, Default)]
pub struct Positions {
    values: HashMap<String, Pos>,
    keys: HashMap<String, Pos>,
}

impl Positions {
    /// Where the value at `pointer` starts; walks up to the nearest known ancestor.
    pub fn value(&self, pointer: &str) -> Pos {
        let mut p = pointer;
        loop {
            if let Some(pos) = self.values.get(p) {
                return *pos;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return (1, 1),
            }
        }
    }

    /// Where the key naming the value at `pointer` starts (the value's position if none).
    pub fn key(&self, pointer: &str) -> Pos {
        self.keys
            .get(pointer)
            .copied()
            .unwrap_or_else(|| self.value(pointer))
    }
}

#[derive(Debug)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Parses one YAML document. An empty file is an empty mapping's absence: `Value::Null`.
/// Anchors and aliases are refused before anything is loaded (see [`refuse_anchors`]).
pub fn parse(text: &str) -> Result<(Value, Positions), SyntaxError> {
    refuse_anchors(text)?;
    let docs = MarkedYamlOwned::load_from_str(text).map_err(|e| SyntaxError {
        pos: (e.marker().line().max(1), e.marker().col() + 1),
        message: format!("invalid YAML: {}", e.info()),
    })?;
    let mut positions = Positions::default();
    match docs.len() {
        0 => Ok((Value::Null, positions)),
        1 => {
            let value = convert(&docs[0], "", &mut positions)?;
            Ok((value, positions))
        }
        _ => Err(SyntaxError {
            pos: pos_of(&docs[1]),
            message: "expected one YAML document, found several (remove the `---` separator)"
                .into(),
        }),
    }
}

/// The loader expands aliases as it builds the tree, so a few hundred bytes of nested aliases
/// become billions of nodes before any check on the tree could run; and nothing the toolkit
/// reads needs them. So the event stream, which reports an anchor or alias once where it is
/// written, is read first, and the first one is an error at its position. Syntax errors are
/// left to the loader, which reports them the same way for every file.
fn refuse_anchors(text: &str) -> Result<(), SyntaxError> {
    use saphyr_parser::{Event, Parser};
    for item in Parser::new_from_str(text) {
        let Ok((event, span)) = item else {
            return Ok(());
        };
        let what = match event {
            Event::Alias(_) => "a YAML alias (*name)",
            Event::Scalar(_, _, anchor, _)
            | Event::SequenceStart(anchor, _)
            | Event::MappingStart(anchor, _)
                if anchor > 0 =>
            {
                "a YAML anchor (&name)"
            }
            _ => continue,
        };
        return Err(SyntaxError {
            pos: (span.start.line().max(1), span.start.col() + 1),
            message: format!(
                "{what}: anchors and aliases are not supported; write the value out in full"
            ),
        });
    }
    Ok(())
}

fn pos_of(node: &MarkedYamlOwned) -> Pos {
    (node.span.start.line().max(1), node.span.start.col() + 1)
}

/// Escapes a mapping key for use in a JSON pointer (RFC 6901).
pub fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn convert(
    node: &MarkedYamlOwned,
    pointer: &str,
    positions: &mut Positions,
) -> Result<Value, SyntaxError> {
    positions.values.insert(pointer.to_string(), pos_of(node));
    Ok(match &node.data {
        YamlDataOwned::Value(scalar) => scalar_to_json(scalar),
        YamlDataOwned::Representation(text, _, _) => Value::String(text.clone()),
        YamlDataOwned::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(convert(item, &format!("{pointer}/{i}"), positions)?);
            }
            Value::Array(out)
        }
        YamlDataOwned::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match &k.data {
                    YamlDataOwned::Value(ScalarOwned::String(s)) => s.clone(),
                    YamlDataOwned::Value(ScalarOwned::Integer(i)) => i.to_string(),
                    YamlDataOwned::Value(ScalarOwned::Boolean(b)) => b.to_string(),
                    YamlDataOwned::Value(ScalarOwned::FloatingPoint(f)) => f.to_string(),
                    YamlDataOwned::Value(ScalarOwned::Null) => "null".into(),
                    _ => {
                        return Err(SyntaxError {
                            pos: pos_of(k),
                            message: "mapping keys must be plain scalars".into(),
                        })
                    }
                };
                let child = format!("{pointer}/{}", pointer_token(&key));
                positions.keys.insert(child.clone(), pos_of(k));
                let value = convert(v, &child, positions)?;
                out.insert(key, value);
            }
            Value::Object(out)
        }
        YamlDataOwned::Tagged(_, inner) => convert(inner, pointer, positions)?,
        // refuse_anchors already stopped every alias; kept so no alias is ever followed.
        YamlDataOwned::Alias(_) => {
            return Err(SyntaxError {
                pos: pos_of(node),
                message: "a YAML alias (*name): anchors and aliases are not supported; write the value out in full".into(),
            })
        }
        YamlDataOwned::BadValue => {
            return Err(SyntaxError {
                pos: pos_of(node),
                message: "invalid YAML value".into(),
            })
        }
    })
}

fn scalar_to_json(scalar: &ScalarOwned) -> Value {
    match scalar {
        ScalarOwned::Null => Value::Null,
        ScalarOwned::Boolean(b) => Value::Bool(*b),
        ScalarOwned::Integer(i) => Value::Number((*i).into()),
        ScalarOwned::FloatingPoint(f) => Number::from_f64(f.into_inner())
            .map(Value::Number)
            // .nan and .inf have no JSON form; keep the text so the schema reports a type error.
            .unwrap_or_else(|| Value::String(f.to_string())),
        ScalarOwned::String(s) => Value::String(s.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_keys_and_values() {
        let (v, pos) = parse("a: 1\nb:\n  c: [x, y]\n").unwrap();
        assert_eq!(v["b"]["c"][1], "y");
        assert_eq!(pos.key("/b/c"), (3, 3));
        assert_eq!(pos.value("/b/c/1"), (3, 10));
        assert_eq!(pos.value("/b/c/9"), (3, 6));
    }

    #[test]
    fn syntax_error_has_position() {
        let e = parse("a: [1, 2\nb: 3\n").err().unwrap();
        assert!(e.message.starts_with("invalid YAML"));
        assert!(e.pos.0 >= 1);
    }

    /// Nine levels of nine aliases: ~387 million nodes once expanded.
    fn billion_laughs() -> String {
        let mut text =
            String::from("version: 1\nlol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..=9 {
            let refs = vec![format!("*l{}", i - 1); 9].join(", ");
            text.push_str(&format!("lol{i}: &l{i} [{refs}]\n"));
        }
        text
    }

    #[test]
    fn a_billion_laughs_is_refused_quickly_at_the_first_anchor() {
        let text = billion_laughs();
        let started = std::time::Instant::now();
        let e = parse(&text).err().unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(e.pos, (2, 7), "{}", e.message);
        assert!(e.message.contains("anchor"), "{}", e.message);
    }

    #[test]
    fn anchors_and_aliases_are_refused_with_their_position() {
        for (text, pos, what) in [
            ("a: &x 1\nb: 2\n", (1, 4), "anchor"),
            ("a:\n  - &x {b: 1}\n", (2, 5), "anchor"),
            ("a: !!str &x q\n", (1, 4), "anchor"),
            // An alias can only follow its anchor, which is refused first; alone it is unknown.
            ("a: [1, 2]\nb: *x\n", (2, 4), "unknown anchor"),
        ] {
            let e = parse(text).err().unwrap();
            assert_eq!(e.pos, pos, "{text:?}: {}", e.message);
            assert!(e.message.contains(what), "{text:?}: {}", e.message);
        }
        // An ampersand or asterisk inside a value is just text.
        assert!(parse("a: \"&x *y\"\nb: a&b*c\n").is_ok());
    }

    #[test]
    fn duplicate_keys_are_errors() {
        assert!(parse("a: 1\na: 2\n").is_err());
    }
}
