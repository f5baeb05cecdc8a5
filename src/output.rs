//! Printing results: the one place that writes to stdout. A command returns data implementing
//! [`Render`]; it is printed as pretty JSON under `--json`, otherwise in the form a person reads
//! (comfy-table tables). A closed pipe (`ferry export | head`) is not an error.

use std::io::{self, Write};

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use serde::Serialize;

/// Something a command reports.
pub trait Render: Serialize {
    /// The human form, written to stdout.
    fn human(&self, out: &Output) -> String;
}

#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
    color: bool,
}

impl Output {
    pub fn new(json: bool, color: bool) -> Self {
        Self { json, color }
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    pub fn color(&self) -> bool {
        self.color
    }

    /// Prints a report on stdout as JSON or for people.
    pub fn emit<R: Render>(&self, report: &R) -> eyre::Result<()> {
        let text = if self.json {
            let mut s = serde_json::to_string_pretty(report)?;
            s.push('\n');
            s
        } else {
            report.human(self)
        };
        write_stdout(text.as_bytes())
    }

    /// A table in ferry's style; colour only when stdout gets it.
    pub fn table<I, S>(&self, header: I) -> Table
    where
        I: IntoIterator<Item = S>,
        S: Into<comfy_table::Cell>,
    {
        let mut table = Table::new();
        table
            .load_style(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_header(header);
        if !self.color {
            table.force_no_tty();
        } else {
            table.enforce_styling();
        }
        table
    }

    /// Wraps a word in an ANSI colour when colour is on.
    pub fn paint(&self, text: &str, color: Paint) -> String {
        if !self.color {
            return text.to_string();
        }
        let code = match color {
            Paint::Red => "31",
            Paint::Yellow => "33",
            Paint::Green => "32",
            Paint::Dim => "2",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Paint {
    Red,
    Yellow,
    Green,
    Dim,
}

/// Writes bytes to stdout; a reader that went away (`| head`) ends output quietly.
pub fn write_stdout(bytes: &[u8]) -> eyre::Result<()> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Whether an error is only a closed pipe on our output, which is how `| head` ends us.
pub fn is_broken_pipe(report: &eyre::Report) -> bool {
    report
        .chain()
        .filter_map(|e| e.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}
