//! Reports over a comparison: markdown (PR body, sticky comment, step summary) rendered from
//! templates embedded in the binary, human text, and GitHub annotations. Everything taken from
//! files (metric names, column names, reasons) is escaped for its destination and can never
//! become a workflow command (see `crate::text`).

use anyhow::{Context, Result};
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

use crate::compare::{Comparison, Verdict};
use crate::runs::RunDir;
/// Also the GitHub forge's path to [`crate::text::clean`], until it names that one.
pub(crate) use crate::text::clean;
use crate::text::{
    escape_code, escape_data, escape_label, escape_markdown, escape_property, neutralise,
};

pub mod human;

const COMPARISON_MD: &str = include_str!("../../templates/report/comparison.md.j2");

fn fmt_num(v: &Value) -> String {
    if v.is_none() || v.is_undefined() {
        return "—".into();
    }
    if let Some(s) = v.as_str() {
        return escape_markdown(s);
    }
    match f64::try_from(v.clone()) {
        Ok(x) => {
            let d = crate::compare::rules::dec(x);
            let rounded = d.with_scale_round(6, bigdecimal::RoundingMode::HalfEven);
            crate::compare::rules::show(&rounded)
        }
        Err(_) => escape_markdown(&v.to_string()),
    }
}

fn environment() -> Result<Environment<'static>> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_filter("md", |s: String| escape_markdown(&s));
    env.add_filter("code", |s: String| escape_code(&s));
    env.add_filter("num", |v: Value| fmt_num(&v));
    env.add_template("comparison.md", COMPARISON_MD)
        .context("internal: the comparison template does not parse")?;
    Ok(env)
}

#[derive(Serialize)]
struct Chart {
    title: String,
    labels: Vec<String>,
    champion: Option<Vec<String>>,
    challenger: Vec<String>,
}

fn chart(c: &Comparison) -> Option<Chart> {
    let names: Vec<&String> = c
        .checks
        .iter()
        .map(|k| &k.metric)
        .fold(Vec::new(), |mut acc, m| {
            if !acc.contains(&m) {
                acc.push(m);
            }
            acc
        })
        .into_iter()
        .filter(|m| c.challenger.contains_key(*m))
        .collect();
    if names.is_empty() {
        return None;
    }
    let value = |m: &IndexMapLike, k: &String| {
        m.get(k)
            .map(|v| format!("{v}"))
            .unwrap_or_else(|| "0".into())
    };
    Some(Chart {
        title: escape_label(&format!("{}: champion vs challenger", c.model)),
        labels: names.iter().map(|n| escape_label(n)).collect(),
        champion: c
            .champion
            .as_ref()
            .map(|ch| names.iter().map(|n| value(ch, n)).collect()),
        challenger: names.iter().map(|n| value(&c.challenger, n)).collect(),
    })
}

type IndexMapLike = indexmap::IndexMap<String, f64>;

/// The markdown report: PR body, sticky comment and step summary.
pub fn markdown(c: &Comparison, run: Option<&RunDir>) -> Result<String> {
    let env = environment()?;
    let record = run.and_then(|r| r.read_record().ok());
    let data_check: Option<serde_json::Value> =
        run.and_then(|r| crate::fsutil::read_json(&r.data_check_json()).ok());
    let text = env
        .get_template("comparison.md")?
        .render(minijinja::context! {
            c => Value::from(minijinja::value::Serde(c)),
            chart => Value::from(minijinja::value::Serde(chart(c))),
            run => Value::from(minijinja::value::Serde(&record)),
            data_check => Value::from(minijinja::value::Serde(&data_check)),
        })
        .context("rendering the comparison report")?;
    Ok(neutralise(&text))
}

/// The human text of a comparison (see [`human::comparison`]).
pub fn human(c: &Comparison) -> String {
    human::comparison(c)
}

/// GitHub annotations: a notice for promote, an error per failed check.
pub fn github(c: &Comparison) -> String {
    let mut out = String::new();
    match c.verdict {
        Verdict::Promote => out.push_str(&format!(
            "::notice title={}::{}\n",
            escape_property("mlops compare"),
            escape_data(&format!("{}: promote", c.model))
        )),
        Verdict::Reject => {
            for r in &c.reasons {
                out.push_str(&format!(
                    "::error title={}::{}\n",
                    escape_property("mlops compare: reject"),
                    escape_data(r)
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
