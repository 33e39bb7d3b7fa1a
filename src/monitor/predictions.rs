//! The pinned model's own predictions on the frozen test set: the reference of prediction
//! drift. `mlops promote` puts them in the promotion commit as
//! `.mlops/predictions/<digest-hex>.csv` (`y_pred,score`, from the evaluation's
//! predictions.csv), so every digest an environment ever pinned has its file in git, a rollback
//! included.

use std::path::Path;

use anyhow::{Context, Result};

use crate::oci::digest::Digest;

pub const DIR: &str = ".mlops/predictions";

/// The file of `digest`, relative to the repository root.
pub fn path_in_repo(digest: &Digest) -> String {
    format!("{DIR}/{}.csv", digest.hex())
}

/// The evaluation's predictions.csv reduced to what monitoring compares: `y_pred[,score]`.
pub fn compact(predictions_csv: &Path) -> Result<Vec<u8>> {
    let p = crate::compare::significance::read_predictions(predictions_csv)?;
    let mut out = String::with_capacity(p.y_pred.len() * 12);
    match &p.score {
        Some(scores) => {
            out.push_str("y_pred,score\n");
            for (y, s) in p.y_pred.iter().zip(scores) {
                out.push_str(&format!("{y},{s}\n"));
            }
        }
        None => {
            out.push_str("y_pred\n");
            for y in &p.y_pred {
                out.push_str(&format!("{y}\n"));
            }
        }
    }
    Ok(out.into_bytes())
}

/// A pinned model's predictions (and scores) on the frozen test set.
#[derive(Debug, Clone, PartialEq)]
pub struct TestPredictions {
    pub predictions: Vec<f64>,
    pub scores: Option<Vec<f64>>,
}

/// Reference predictions and scores of `digest`; None when the repository has no file for it
/// (promoted before predictions were kept, or evaluated without predictions.csv).
pub fn load(root: &Path, digest: &Digest) -> Result<Option<TestPredictions>> {
    let path = root.join(path_in_repo(digest));
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut csv = csv::ReaderBuilder::new().from_reader(bytes.as_slice());
    let header = csv
        .headers()
        .with_context(|| format!("{}: no header", path.display()))?
        .clone();
    let col = |n: &str| header.iter().position(|h| h == n);
    let y = col("y_pred").with_context(|| format!("{}: no y_pred column", path.display()))?;
    let s = col("score");
    let (mut preds, mut scores) = (Vec::new(), s.map(|_| Vec::new()));
    for (i, rec) in csv.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: row {}", path.display(), i + 2))?;
        let num = |c: usize| -> Result<f64> {
            rec.get(c)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .with_context(|| format!("{}:{}: not a number", path.display(), i + 2))
        };
        preds.push(num(y)?);
        if let (Some(c), Some(v)) = (s, scores.as_mut()) {
            v.push(num(c)?);
        }
    }
    Ok(Some(TestPredictions {
        predictions: preds,
        scores,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("predictions.csv");
        std::fs::write(&src, "y_true,y_pred,score\n1,1,0.9\n0,1,0.6\n0,0,0.1\n").unwrap();
        let digest = Digest::of(b"model");
        let rel = path_in_repo(&digest);
        assert!(rel.starts_with(".mlops/predictions/") && rel.ends_with(".csv"));
        let file = dir.path().join(&rel);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, compact(&src).unwrap()).unwrap();
        let t = load(dir.path(), &digest).unwrap().unwrap();
        assert_eq!(t.predictions, [1.0, 1.0, 0.0]);
        assert_eq!(t.scores.unwrap(), [0.9, 0.6, 0.1]);
        assert!(load(dir.path(), &Digest::of(b"other")).unwrap().is_none());
    }
}
