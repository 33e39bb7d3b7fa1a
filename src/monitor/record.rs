//! One captured prediction as read from a capture line or an export row, borrowing from the
//! line it came from: parsing a million lines allocates only for the rows the sample keeps.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// A single input or prediction value.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(Cow<'a, str>),
    /// A list or an object: kept as a category of its own, never as a number.
    Nested,
}

impl Scalar<'_> {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Scalar::Int(i) => Some(*i as f64),
            Scalar::Float(f) if !f.is_nan() => Some(*f),
            Scalar::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Scalar::Text(t) => t.trim().parse::<f64>().ok().filter(|x| !x.is_nan()),
            _ => None,
        }
    }

    /// The value as a category: integers without a decimal point, as the data readers print
    /// them, so 1 and 1.0 fall in the same category.
    pub fn as_text(&self) -> Option<String> {
        match self {
            Scalar::Null => None,
            Scalar::Int(i) => Some(i.to_string()),
            Scalar::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => {
                Some(format!("{}", *f as i64))
            }
            Scalar::Float(f) => Some(format!("{f}")),
            Scalar::Bool(b) => Some(if *b { "true" } else { "false" }.to_string()),
            Scalar::Text(t) => Some(t.to_string()),
            Scalar::Nested => Some("<nested>".to_string()),
        }
    }

    /// A CSV or Parquet field, typed as the data readers type it (nulls: empty, NA, N/A, NaN,
    /// nan, null, NULL, None).
    pub fn from_field(field: &str) -> Scalar<'_> {
        if matches!(
            field,
            "" | "NA" | "N/A" | "NaN" | "nan" | "null" | "NULL" | "None"
        ) {
            return Scalar::Null;
        }
        if let Ok(i) = field.parse::<i64>() {
            return Scalar::Int(i);
        }
        if let Ok(f) = field.parse::<f64>() {
            return Scalar::Float(f);
        }
        match field {
            "true" | "True" | "TRUE" => Scalar::Bool(true),
            "false" | "False" | "FALSE" => Scalar::Bool(false),
            _ => Scalar::Text(Cow::Borrowed(field)),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Scalar<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(v).map_or(Scalar::Float(v as f64), Scalar::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Text(Cow::Owned(v.to_string())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Nested)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Nested)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// `inputs`: column → value, in the order written.
#[derive(Debug, Default)]
pub struct Inputs<'a>(pub Vec<(Cow<'a, str>, Scalar<'a>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Inputs<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Inputs<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of column: value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(k) = map.next_key::<Text<'a>>()? {
                    out.push((k.0, map.next_value::<Scalar<'a>>()?));
                }
                Ok(Inputs(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// A string that borrows from the line when it can (no escapes) and copies when it must.
#[derive(Debug, Clone, PartialEq)]
pub struct Text<'a>(pub Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a column name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// One capture line (`{"id", "time", "digest", "inputs", "prediction", "score"?, "latency_ms",
/// "status"}`); other keys are ignored, so a runtime may add its own.
#[derive(Debug, Default, Deserialize)]
pub struct Record<'a> {
    #[serde(borrow, default)]
    pub id: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    pub time: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub digest: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub inputs: Inputs<'a>,
    #[serde(borrow, default)]
    pub prediction: Option<Scalar<'a>>,
    #[serde(default)]
    pub score: Option<f64>,
    #[serde(default)]
    pub latency_ms: Option<f64>,
    #[serde(borrow, default)]
    pub status: Option<Text<'a>>,
}

impl Record<'_> {
    /// `status` other than ok (a missing status counts as ok: exports may have none).
    pub fn is_error(&self) -> bool {
        self.status
            .as_deref()
            .is_some_and(|s| !s.eq_ignore_ascii_case("ok"))
    }
}

/// Column names of an export (CSV, Parquet) that are a record's fields, not inputs.
pub const META_COLUMNS: &[&str] = &[
    "id",
    "time",
    "digest",
    "prediction",
    "score",
    "latency_ms",
    "status",
];

/// A record from an export row: the meta columns by name, every other column an input.
pub fn from_fields<'a>(header: &'a [String], fields: &[&'a str]) -> Record<'a> {
    let mut r = Record::default();
    for (name, &field) in header.iter().zip(fields) {
        let value = || Scalar::from_field(field);
        let text = || (!field.is_empty()).then_some(Text(Cow::Borrowed(field)));
        match name.as_str() {
            "id" => r.id = Some(value()),
            "time" => r.time = text(),
            "digest" => r.digest = text(),
            "prediction" => r.prediction = Some(value()),
            "score" => r.score = value().as_f64(),
            "latency_ms" => r.latency_ms = value().as_f64(),
            "status" => r.status = text(),
            _ => r.inputs.0.push((Cow::Borrowed(name.as_str()), value())),
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_line_borrows_and_types_its_values() {
        let line = r#"{"id":"a1","time":"2026-12-01T10:00:00.000Z","digest":"sha256:00","inputs":{"x":1,"y":2.5,"c":"red","b":true,"n":null,"l":[1,2],"e\"":3},"prediction":1,"score":0.8,"latency_ms":3.2,"status":"ok","extra":{}}"#;
        let r: Record = serde_json::from_str(line).unwrap();
        assert_eq!(r.id, Some(Scalar::Text("a1".into())));
        assert!(matches!(r.time, Some(Text(Cow::Borrowed(_)))));
        let names: Vec<&str> = r.inputs.0.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(names, ["x", "y", "c", "b", "n", "l", "e\""]);
        assert_eq!(r.inputs.0[0].1, Scalar::Int(1));
        assert_eq!(r.inputs.0[1].1, Scalar::Float(2.5));
        assert_eq!(r.inputs.0[3].1.as_text().unwrap(), "true");
        assert_eq!(r.inputs.0[4].1, Scalar::Null);
        assert_eq!(r.inputs.0[5].1, Scalar::Nested);
        assert_eq!((r.score, r.latency_ms), (Some(0.8), Some(3.2)));
        assert!(!r.is_error());
        let r: Record = serde_json::from_str(r#"{"status":"error"}"#).unwrap();
        assert!(r.is_error());
        assert!(serde_json::from_str::<Record>(r#"{"id":"a","inputs":{"x":1"#).is_err());
    }

    #[test]
    fn export_fields_type_like_the_data_readers() {
        let header: Vec<String> = ["id", "x", "c", "prediction", "latency_ms"]
            .map(String::from)
            .to_vec();
        let r = from_fields(&header, &["7", "3.0", "NA", "1", "12.5"]);
        assert_eq!(r.id.unwrap().as_text().unwrap(), "7");
        assert_eq!(r.inputs.0[0].1, Scalar::Float(3.0));
        assert_eq!(r.inputs.0[0].1.as_text().unwrap(), "3");
        assert_eq!(r.inputs.0[1].1, Scalar::Null);
        assert_eq!(r.latency_ms, Some(12.5));
    }
}
