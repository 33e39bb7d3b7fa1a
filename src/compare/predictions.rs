//! predictions.csv, the evaluation step's per-row output (`y_true,y_pred[,score]`) that the
//! significance tests pair up. Read with the csv crate (quoted fields, a UTF-8 BOM, any column
//! order), as a step output: a regular file, no link followed, at most 1 GiB.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// One model's predictions for the test rows.
#[derive(Debug, Clone)]
pub struct Predictions {
    pub y_true: Vec<f64>,
    pub y_pred: Vec<f64>,
    pub score: Option<Vec<f64>>,
}

/// Reads an evaluation's predictions.csv (`y_true,y_pred[,score]`, any column order, quoted
/// fields and a UTF-8 BOM allowed). A step wrote it: it is opened as a step output (a regular
/// file, no link followed, at most 1 GiB).
pub fn read_predictions(path: &Path) -> Result<Predictions> {
    let reader =
        crate::outputs::open_limited(path, crate::outputs::PREDICTIONS_LIMIT, "predictions.csv")?;
    parse_predictions(reader, path)
}

fn parse_predictions<R: std::io::Read>(reader: R, path: &Path) -> Result<Predictions> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let header = csv
        .headers()
        .with_context(|| format!("cannot read the header of {}", path.display()))?
        .clone();
    if header.iter().all(str::is_empty) {
        bail!("{} is empty", path.display());
    }
    let col = |name: &str| header.iter().position(|h| h == name);
    let (Some(t), Some(p)) = (col("y_true"), col("y_pred")) else {
        bail!(
            "{}: the header must name y_true and y_pred (and optionally score)",
            path.display()
        );
    };
    let s = col("score");
    let mut out = Predictions {
        y_true: Vec::new(),
        y_pred: Vec::new(),
        score: s.map(|_| Vec::new()),
    };
    let mut record = csv::StringRecord::new();
    loop {
        match csv.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e
                    .position()
                    .map(|p| format!(":{}", p.line()))
                    .unwrap_or_default();
                bail!("{}{line}: {e}", path.display());
            }
        }
        if record.iter().all(str::is_empty) {
            continue;
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let num = |idx: usize, what: &str| -> Result<f64> {
            let field = record.get(idx).unwrap_or("");
            field
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .with_context(|| {
                    format!(
                        "{}:{line}: {what} {field:?} is not a finite number",
                        path.display()
                    )
                })
        };
        out.y_true.push(num(t, "y_true")?);
        out.y_pred.push(num(p, "y_pred")?);
        if let (Some(si), Some(scores)) = (s, out.score.as_mut()) {
            scores.push(num(si, "score")?);
        }
    }
    if out.y_true.is_empty() {
        bail!("{} has no rows", path.display());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Predictions> {
        parse_predictions(text.as_bytes(), Path::new("predictions.csv"))
    }

    #[test]
    fn predictions_read_quoted_fields_a_bom_and_any_column_order() {
        let p = parse(
            "\u{feff}\"score\",\"y_pred\",\"y_true\"\r\n\"0.9\",1,1\r\n\n 0.2 , 0 ,\"1\"\r\n",
        )
        .unwrap();
        assert_eq!(p.y_true, [1.0, 1.0]);
        assert_eq!(p.y_pred, [1.0, 0.0]);
        assert_eq!(p.score, Some(vec![0.9, 0.2]));
        let p = parse("id,y_true,y_pred\n\"a, with a comma\",0,1\n").unwrap();
        assert_eq!((p.y_true, p.y_pred, p.score), (vec![0.0], vec![1.0], None));
    }

    #[test]
    fn predictions_errors_name_the_line_and_the_field() {
        let e = parse("y_true,y_pred\n1,1\n1,nan\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "predictions.csv:3: y_pred \"nan\" is not a finite number"
        );
        let e = parse("y_true,y_pred\n1,1\n0\n").unwrap_err().to_string();
        assert_eq!(e, "predictions.csv:3: y_pred \"\" is not a finite number");
        let e = parse("a,b\n1,1\n").unwrap_err().to_string();
        assert!(e.contains("must name y_true and y_pred"), "{e}");
        assert_eq!(
            parse("").unwrap_err().to_string(),
            "predictions.csv is empty"
        );
        assert_eq!(
            parse("y_true,y_pred\n").unwrap_err().to_string(),
            "predictions.csv has no rows"
        );
        let e = parse("y_true,y_pred\n\"1,1\n").unwrap_err().to_string();
        assert!(e.starts_with("predictions.csv"), "{e}");
    }

    #[test]
    fn predictions_are_read_as_a_step_output() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret.csv");
        std::fs::write(&secret, "y_true,y_pred\n1,1\n").unwrap();
        let link = dir.path().join("predictions.csv");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let e = read_predictions(&link).unwrap_err().to_string();
        assert!(e.contains("predictions.csv is a symbolic link"), "{e}");
        assert_eq!(read_predictions(&secret).unwrap().y_true, [1.0]);
    }
}
