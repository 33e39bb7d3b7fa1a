//! Profiles: what one scan of a dataset says about each column (type, nulls, range, moments,
//! quantiles or category frequencies), and the seeded per-column sample the drift tests use.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::read::{parse_float, Kind, Scan};

/// Rows kept in the reservoir sample by default: the two-sample tests run on these.
pub const DEFAULT_SAMPLE_SIZE: usize = 100_000;
/// The reservoir's seed: the same data always gives the same sample.
pub const DEFAULT_SEED: u64 = 0;
/// Quantile levels stored for numeric columns (computed on the sample).
pub const QUANTILES: [f64; 11] = [0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0];
/// Category frequencies stored per categorical column (the most frequent ones).
pub const TOP_CATEGORIES: usize = 50;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    #[serde(rename = "type")]
    pub kind: Kind,
    pub nulls: u64,
    /// Non-null values.
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<f64>,
    /// Level → value, from the sample (numeric columns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantiles: Option<IndexMap<String, f64>>,
    /// Distinct values in the whole column, when at most `read::MAX_CATEGORIES`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinct: Option<u64>,
    /// The most frequent values and their counts over the whole column (categorical and
    /// boolean columns), most frequent first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<IndexMap<String, u64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub rows: u64,
    pub columns: IndexMap<String, ColumnProfile>,
}

/// The non-null sampled values of one column: numbers for numeric columns, text otherwise.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ColumnSample {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numbers: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub texts: Option<Vec<String>>,
}

impl ColumnSample {
    pub fn len(&self) -> usize {
        self.numbers
            .as_ref()
            .map(Vec::len)
            .or(self.texts.as_ref().map(Vec::len))
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as text (numbers printed the way they are stored), for category tests.
    pub fn as_texts(&self) -> Vec<String> {
        match (&self.texts, &self.numbers) {
            (Some(t), _) => t.clone(),
            (None, Some(n)) => n.iter().map(|x| format_number(*x)).collect(),
            (None, None) => Vec::new(),
        }
    }
}

/// Integers print without a decimal point, so 1 and 1.0 fall in the same category.
fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Reservoir capacity in rows and its seed.
    pub size: usize,
    pub seed: u64,
    /// Rows actually sampled (the row count when it is below `size`).
    pub rows: usize,
    pub columns: IndexMap<String, ColumnSample>,
}

/// Builds the profile and the per-column samples from a scan (the columns on every core).
pub fn build(scan: &Scan, sample_size: usize, seed: u64) -> (Profile, Sample) {
    let built: Vec<(ColumnProfile, ColumnSample)> =
        super::per_core(scan.columns.len(), |columns| {
            let mut samples = column_samples(scan, columns.clone());
            columns
                .zip(samples.iter_mut())
                .map(|(i, sample)| build_column(scan, i, std::mem::take(sample)))
                .collect()
        });
    let mut columns = IndexMap::new();
    let mut samples = IndexMap::new();
    for (col, (profile, sample)) in scan.columns.iter().zip(built) {
        columns.insert(col.name.clone(), profile);
        samples.insert(col.name.clone(), sample);
    }
    (
        Profile {
            rows: scan.rows,
            columns,
        },
        Sample {
            size: sample_size,
            seed,
            rows: scan.sample.len(),
            columns: samples,
        },
    )
}

/// The non-null sampled values of `columns`, numbers for numeric ones, in one pass over
/// the sampled rows (each row is its own allocation: one visit per row, not per field).
fn column_samples(scan: &Scan, columns: std::ops::Range<usize>) -> Vec<ColumnSample> {
    let mut out: Vec<ColumnSample> = columns
        .clone()
        .map(|i| {
            let numeric = scan.columns[i].kind().is_numeric();
            let cap = scan.sample.len();
            ColumnSample {
                numbers: numeric.then(|| Vec::with_capacity(cap)),
                texts: (!numeric).then(|| Vec::with_capacity(cap)),
            }
        })
        .collect();
    for row in &scan.sample {
        for (i, sample) in columns.clone().zip(out.iter_mut()) {
            match (&mut sample.numbers, &mut sample.texts) {
                // NaN carries no position in a distribution: it counts as missing here.
                (Some(v), _) => v.extend(
                    row.number(i)
                        .or_else(|| row.get(i).and_then(|t| parse_float(&t)))
                        .filter(|x| !x.is_nan()),
                ),
                (None, Some(t)) => t.extend(row.get(i).map(String::from)),
                (None, None) => {}
            }
        }
    }
    for sample in &mut out {
        if let Some(v) = &mut sample.numbers {
            // Stored sorted: the order of a sample carries no information, and sorted
            // values make the reference diff-friendly and the tests cheaper. (Values
            // equal under total_cmp have the same bits: any sort in that order gives the
            // same result.)
            super::stats::sort_f64(v);
        }
    }
    out
}

/// The profile of column `i`, and its sample (from [`column_samples`]).
fn build_column(scan: &Scan, i: usize, sample: ColumnSample) -> (ColumnProfile, ColumnSample) {
    let col = &scan.columns[i];
    let kind = col.kind();
    let quantiles = sample.numbers.as_ref().filter(|v| !v.is_empty()).map(|v| {
        QUANTILES
            .iter()
            .map(|&q| (format!("{q}"), quantile_sorted(v, q)))
            .collect()
    });
    let categories = (!kind.is_numeric())
        .then_some(col.counts.as_ref())
        .flatten()
        .map(|counts| {
            let mut pairs: Vec<(&String, &u64)> = counts.iter().collect();
            pairs.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            pairs
                .into_iter()
                .take(TOP_CATEGORIES)
                .map(|(k, v)| (k.clone(), *v))
                .collect()
        });
    let numeric = kind.is_numeric() && col.count > 0;
    let profile = ColumnProfile {
        kind,
        nulls: col.nulls,
        count: col.count,
        min: numeric.then_some(col.min),
        max: numeric.then_some(col.max),
        mean: col.mean(),
        std: col.std(),
        quantiles,
        distinct: col.counts.as_ref().map(|c| c.len() as u64),
        categories,
    };
    (profile, sample)
}

/// Linear interpolation between order statistics (numpy's default, "linear").
pub fn quantile_sorted(v: &[f64], q: f64) -> f64 {
    let pos = q * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_of_a_small_csv() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.csv");
        std::fs::write(&p, "x,c,b\n1,a,true\n2,b,false\n3,a,\n4,,true\n").unwrap();
        let scan = crate::data::read::scan(&p, 10, 0).unwrap();
        let (profile, sample) = build(&scan, 10, 0);
        assert_eq!(profile.rows, 4);
        let x = &profile.columns["x"];
        assert_eq!(x.kind, Kind::Integer);
        assert_eq!((x.min, x.max, x.mean), (Some(1.0), Some(4.0), Some(2.5)));
        assert!((x.std.unwrap() - 1.2909944487358056).abs() < 1e-15);
        assert_eq!(x.quantiles.as_ref().unwrap()["0.5"], 2.5);
        let c = &profile.columns["c"];
        assert_eq!((c.kind, c.nulls, c.count), (Kind::Categorical, 1, 3));
        assert_eq!(
            c.categories.as_ref().unwrap().iter().collect::<Vec<_>>(),
            [(&"a".to_string(), &2), (&"b".to_string(), &1)]
        );
        assert_eq!(profile.columns["b"].kind, Kind::Boolean);
        assert_eq!(sample.rows, 4);
        assert_eq!(sample.columns["x"].numbers, Some(vec![1.0, 2.0, 3.0, 4.0]));
        assert_eq!(sample.columns["c"].len(), 3);
        assert_eq!(sample.columns["x"].as_texts(), ["1", "2", "3", "4"]);
    }

    #[test]
    fn quantiles_match_numpy_linear() {
        let v = [1.0, 2.0, 4.0, 8.0];
        // numpy.quantile([1,2,4,8], [0.1, 0.5, 0.9]) = [1.3, 3.0, 6.8]
        assert!((quantile_sorted(&v, 0.1) - 1.3).abs() < 1e-12);
        assert_eq!(quantile_sorted(&v, 0.5), 3.0);
        assert!((quantile_sorted(&v, 0.9) - 6.8).abs() < 1e-12);
    }
}
