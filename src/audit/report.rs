//! Control results and how they are shown: a table for people, JSON for machines.

use std::fmt;

/// A file and, when known, the line a finding points at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Where {
    pub file: String,
    pub line: Option<usize>,
}

impl Where {
    pub fn file(file: &str) -> Self {
        Self { file: file.to_string(), line: None }
    }

    pub fn line(file: &str, line: usize) -> Self {
        Self { file: file.to_string(), line: Some(line) }
    }
}

impl fmt::Display for Where {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.file),
            None => write!(f, "{}", self.file),
        }
    }
}

/// The verdict on one control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// Failed, but the profile waives the control on purpose.
    Waived,
    /// Reported for information (a cross-check that could not run, a score).
    Info,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = match self {
            Self::Pass => "pass",
            Self::Fail => "FAIL",
            Self::Waived => "waived",
            Self::Info => "info",
        };
        f.write_str(word)
    }
}

/// One control's result: what was expected, what the image has, and where.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    pub control: &'static str,
    pub baseline: &'static str,
    pub status: Status,
    pub expected: String,
    pub found: String,
    #[serde(rename = "where")]
    pub at: Option<Where>,
}

impl Finding {
    pub fn failed(&self) -> bool {
        self.status == Status::Fail
    }
}

/// The whole report, as `--json` prints it.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub input: String,
    pub passed: usize,
    pub failed: usize,
    pub waived: usize,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn new(input: String, findings: Vec<Finding>) -> Self {
        let count = |s: Status| findings.iter().filter(|f| f.status == s).count();
        Self {
            input,
            passed: count(Status::Pass),
            failed: count(Status::Fail),
            waived: count(Status::Waived),
            findings,
        }
    }

    /// The finding of one control, if it was evaluated.
    pub fn get(&self, control: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.control == control)
    }

    /// The table: one row per control, columns padded to the widest cell.
    pub fn table(&self) -> String {
        let header = ["status", "control", "baseline", "expected", "found", "where"];
        let rows: Vec<[String; 6]> = self.findings.iter().map(row).collect();
        let mut widths = header.map(str::len);
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count()).min(60);
            }
        }
        let mut out = line(&header.map(String::from), &widths);
        for r in &rows {
            out.push_str(&line(r, &widths));
        }
        out.push_str(&format!(
            "{} passed, {} failed, {} waived\n",
            self.passed, self.failed, self.waived
        ));
        out
    }
}

fn row(f: &Finding) -> [String; 6] {
    [
        f.status.to_string(),
        f.control.to_string(),
        f.baseline.to_string(),
        f.expected.clone(),
        f.found.clone(),
        f.at.as_ref().map(ToString::to_string).unwrap_or_default(),
    ]
}

fn line(cells: &[String; 6], widths: &[usize; 6]) -> String {
    let mut out = String::new();
    for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
        if i + 1 == cells.len() {
            out.push_str(cell);
        } else {
            out.push_str(&format!("{cell:<w$}  "));
        }
    }
    out.trim_end().to_string() + "\n"
}
