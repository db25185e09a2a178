//! Output: a markdown table for people and one `metric=NAME col=value ...` line per figure for
//! scripts (no units in values, so they parse as plain numbers).

use std::fmt::Write as _;

/// One measured figure, one value per column, printed with a fixed number of decimals.
#[derive(Debug, Clone)]
pub struct Row {
    pub metric: String,
    pub values: Vec<f64>,
    pub decimals: usize,
}

/// A table of figures whose columns are the engines (or policies) compared.
#[derive(Debug)]
pub struct Report {
    columns: Vec<&'static str>,
    /// Adds `first/other` columns for every column after the first.
    ratios: bool,
    rows: Vec<Row>,
}

impl Report {
    pub fn new(columns: Vec<&'static str>, ratios: bool) -> Report {
        Report {
            columns,
            ratios,
            rows: Vec::new(),
        }
    }

    /// Whether no figure was pushed.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn push(&mut self, metric: impl Into<String>, values: Vec<f64>, decimals: usize) {
        let metric = metric.into();
        assert_eq!(
            values.len(),
            self.columns.len(),
            "one value per column for {metric}"
        );
        self.rows.push(Row {
            metric,
            values,
            decimals,
        });
    }

    /// The markdown table.
    pub fn markdown(&self) -> String {
        let mut header = vec!["metric".to_owned()];
        header.extend(self.columns.iter().map(|c| (*c).to_owned()));
        if self.ratios {
            let first = self.columns[0];
            header.extend(self.columns[1..].iter().map(|c| format!("{first}/{c}")));
        }
        let mut out = String::new();
        push_row(&mut out, &header);
        push_row(&mut out, &vec!["---".to_owned(); header.len()]);
        for row in &self.rows {
            let mut cells = vec![row.metric.clone()];
            cells.extend(row.values.iter().map(|v| format_value(*v, row.decimals)));
            if self.ratios {
                cells.extend(
                    row.values[1..]
                        .iter()
                        .map(|peer| ratio(row.values[0], *peer)),
                );
            }
            push_row(&mut out, &cells);
        }
        out
    }

    /// One `metric=NAME col=value ...` line per row.
    pub fn machine_lines(&self) -> String {
        let mut out = String::new();
        for row in &self.rows {
            out.push_str("metric=");
            out.push_str(&row.metric);
            for (column, value) in self.columns.iter().zip(&row.values) {
                let _ = write!(out, " {column}={}", format_value(*value, row.decimals));
            }
            out.push('\n');
        }
        out
    }
}

fn push_row(out: &mut String, cells: &[String]) {
    out.push('|');
    for cell in cells {
        let _ = write!(out, " {cell} |");
    }
    out.push('\n');
}

fn format_value(value: f64, decimals: usize) -> String {
    format!("{value:.decimals$}")
}

fn ratio(ours: f64, peer: f64) -> String {
    if peer == 0.0 {
        "n/a".to_owned()
    } else {
        format!("{:.2}", ours / peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_lines() {
        let mut report = Report::new(vec!["ours", "redb"], true);
        report.push("insert_per_s", vec![200.0, 100.0], 0);
        report.push("get_p50_us", vec![1.234, 2.0], 2);
        assert_eq!(
            report.markdown(),
            "| metric | ours | redb | ours/redb |\n\
             | --- | --- | --- | --- |\n\
             | insert_per_s | 200 | 100 | 2.00 |\n\
             | get_p50_us | 1.23 | 2.00 | 0.62 |\n"
        );
        assert_eq!(
            report.machine_lines(),
            "metric=insert_per_s ours=200 redb=100\nmetric=get_p50_us ours=1.23 redb=2.00\n"
        );
    }
}
