//! Sampled rows as the scan keeps them.

use std::borrow::Cow;

use super::is_null;

/// One sampled row, compactly: its fields' text back to back and where each ends (two
/// allocations a row rather than one per field: the sample is most of a scan's memory).
/// A typed reader (Parquet) keeps integers and finite floats as numbers, printed only if
/// their text is asked for: equal rows are equal field by field as text.
#[derive(Debug, Clone)]
pub struct SampleRow {
    text: Box<str>,
    /// End of each field in `text`, with NULL_FIELD set for nulls, NUMBER_FIELD (and
    /// INT_FIELD for an integer) for a field held in `numbers` at the same index.
    ends: Box<[usize]>,
    /// The bits of the number fields (i64 or f64) at their fields' indexes, up to the last
    /// number field; empty when every field is text.
    numbers: Box<[u64]>,
}

const NULL_FIELD: usize = 1 << (usize::BITS - 1);
const NUMBER_FIELD: usize = 1 << (usize::BITS - 2);
const INT_FIELD: usize = 1 << (usize::BITS - 3);
const FLAGS: usize = NULL_FIELD | NUMBER_FIELD | INT_FIELD;

/// A field of a sampled row, as a typed reader has it.
pub enum Cell<'a> {
    Null,
    Text(Cow<'a, str>),
    Int(i64),
    Float(f64),
}

impl SampleRow {
    /// A row from its fields' text (null-like text counts as null).
    pub fn new<'a>(fields: impl IntoIterator<Item = Option<&'a str>>) -> SampleRow {
        let cells = fields.into_iter();
        SampleRow::from_cells(cells.map(|f| f.map_or(Cell::Null, |t| Cell::Text(Cow::Borrowed(t)))))
    }

    /// A row from typed fields: text as in [`SampleRow::new`]; a NaN is null and an
    /// infinity is kept as its text, as a scan of the printed value would read them.
    pub fn from_cells<'a>(cells: impl IntoIterator<Item = Cell<'a>>) -> SampleRow {
        let mut text = String::new();
        let mut ends = Vec::new();
        // Up to the last number field: a row of text only keeps none.
        let mut numbers = Vec::new();
        for cell in cells {
            let (end, bits) = match cell {
                Cell::Int(i) => (text.len() | NUMBER_FIELD | INT_FIELD, Some(i as u64)),
                Cell::Float(x) if x.is_finite() => (text.len() | NUMBER_FIELD, Some(x.to_bits())),
                Cell::Float(x) => (push_text(&mut text, ryu::Buffer::new().format(x)), None),
                Cell::Text(t) => (push_text(&mut text, &t), None),
                Cell::Null => (text.len() | NULL_FIELD, None),
            };
            if let Some(bits) = bits {
                numbers.resize(ends.len(), 0);
                numbers.push(bits);
            }
            ends.push(end);
        }
        SampleRow {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
            numbers: numbers.into_boxed_slice(),
        }
    }

    /// Fields in the row.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Field `i` as text, None when it is null or out of range.
    pub fn get(&self, i: usize) -> Option<Cow<'_, str>> {
        let end = *self.ends.get(i)?;
        if end & NULL_FIELD != 0 {
            return None;
        }
        if end & NUMBER_FIELD != 0 {
            let bits = self.numbers[i];
            return Some(Cow::Owned(if end & INT_FIELD != 0 {
                (bits as i64).to_string()
            } else {
                ryu::Buffer::new().format(f64::from_bits(bits)).to_string()
            }));
        }
        let start = i.checked_sub(1).map_or(0, |j| self.ends[j] & !FLAGS);
        self.text.get(start..end).map(Cow::Borrowed)
    }

    /// Field `i` when it is held as a number (a typed reader's integer or finite float).
    pub fn number(&self, i: usize) -> Option<f64> {
        let end = *self.ends.get(i)?;
        (end & NUMBER_FIELD != 0).then(|| {
            let bits = self.numbers[i];
            if end & INT_FIELD != 0 {
                bits as i64 as f64
            } else {
                f64::from_bits(bits)
            }
        })
    }
}

/// Appends a field's text (null-like text is a null); where the field ends, with its flags.
fn push_text(text: &mut String, field: &str) -> usize {
    if is_null(field) {
        return text.len() | NULL_FIELD;
    }
    text.push_str(field);
    text.len()
}

/// Rows are equal when every field reads as the same text.
impl PartialEq for SampleRow {
    fn eq(&self, other: &SampleRow) -> bool {
        self.len() == other.len() && (0..self.len()).all(|i| self.get(i) == other.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_rows_read_as_the_text_of_their_values() {
        let typed = SampleRow::from_cells([
            Cell::Int(-42),
            Cell::Float(2.5),
            Cell::Float(-0.0),
            Cell::Float(1e300),
            Cell::Float(f64::NAN),
            Cell::Float(f64::INFINITY),
            Cell::Text(Cow::Borrowed("a,b")),
            Cell::Text(Cow::Owned("NA".into())),
            Cell::Null,
            Cell::Int(i64::MIN),
        ]);
        let text = SampleRow::new([
            Some("-42"),
            Some("2.5"),
            Some("-0.0"),
            Some("1e300"),
            None,
            Some("inf"),
            Some("a,b"),
            None,
            Some(""),
            Some("-9223372036854775808"),
        ]);
        assert_eq!(typed, text);
        assert_ne!(typed, SampleRow::new([Some("-42")]));
        let fields: Vec<_> = (0..typed.len()).map(|i| typed.get(i)).collect();
        assert_eq!(fields[0].as_deref(), Some("-42"));
        assert_eq!(fields[3].as_deref(), Some("1e300"));
        assert_eq!(
            (fields[4].as_deref(), fields[5].as_deref()),
            (None, Some("inf"))
        );
        assert_eq!(fields[6].as_deref(), Some("a,b"));
        // Numbers are kept as numbers; text (and an infinity, kept as text) is not.
        assert_eq!(typed.number(0), Some(-42.0));
        assert_eq!(typed.number(2).map(f64::to_bits), Some((-0.0f64).to_bits()));
        assert_eq!(typed.number(9), Some(i64::MIN as f64));
        assert_eq!(
            (typed.number(4), typed.number(5), typed.number(6)),
            (None, None, None)
        );
        assert_eq!((typed.get(10), typed.number(10)), (None, None));
        assert_eq!(text.number(0), None);
    }
}
