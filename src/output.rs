//! Printing results: the one place that writes to stdout. A command returns data implementing
//! [`Render`]; it is printed as pretty JSON under `--json`, otherwise in the form a person reads
//! (comfy-table tables). A closed pipe (`ferry export | head`) is not an error.
//!
//! The JSON contract (README "JSON output", `docs/json/*.schema.json`): every `--json` document is
//! one object that opens with `"v"` (the shape's version, [`JSON_VERSION`]) and `"kind"` (which
//! shape, e.g. `inspect-store.events`), then the report's own fields. [`Output::emit`] adds the
//! two, so no command can print JSON without them; a report that is not an object is refused.

use std::io::{self, IsTerminal, Write};

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use serde::Serialize;

/// The version of every `--json` shape. Raised only when a field is renamed, removed or changes
/// type; adding a field keeps it.
pub const JSON_VERSION: u32 = 1;

/// Something a command reports.
pub trait Render: Serialize {
    /// Which shape this is in the JSON contract, e.g. `push` or `inspect-store.events`: its
    /// schema is `docs/json/<kind>.schema.json`.
    fn kind(&self) -> &'static str;

    /// The human form, written to stdout.
    fn human(&self, out: &Output) -> String;
}

/// What `--json` prints: the version and kind first, then the report's fields.
#[derive(Serialize)]
struct Envelope<'a, R: Serialize> {
    v: u32,
    kind: &'static str,
    #[serde(flatten)]
    body: &'a R,
}

/// A report as the one JSON object the contract promises, pretty-printed with a final newline.
pub fn to_json<R: Render>(report: &R) -> eyre::Result<String> {
    let envelope = Envelope { v: JSON_VERSION, kind: report.kind(), body: report };
    // serde refuses to flatten a sequence or a scalar: a report must be an object, which is
    // what keeps every document extensible.
    let mut s = serde_json::to_string_pretty(&envelope)
        .map_err(|e| eyre::eyre!("the {} report is not a JSON object: {e}", report.kind()))?;
    s.push('\n');
    Ok(s)
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
        let text = if self.json { to_json(report)? } else { report.human(self) };
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
        // The width is decided here rather than by comfy-table, which detects it only when it
        // may also colour: with colour off on a terminal, tables did not wrap.
        if !self.color {
            table.force_no_tty();
        } else {
            table.enforce_styling();
        }
        let terminal = std::io::stdout()
            .is_terminal()
            .then(|| terminal_size::terminal_size_of(io::stdout()).map(|(w, _)| w.0))
            .flatten();
        if let Some(width) = table_width(std::env::var("COLUMNS").ok().as_deref(), terminal) {
            table.set_width(width);
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

/// The width tables wrap to: `COLUMNS` when set (a script or a pager can ask for one), else
/// the terminal's when stdout is one; otherwise none, and rows stay whole for `grep` and files.
pub fn table_width(columns: Option<&str>, terminal: Option<u16>) -> Option<u16> {
    columns.and_then(|c| c.trim().parse::<u16>().ok()).filter(|w| *w > 0).or(terminal)
}

#[derive(Debug, Clone, Copy)]
pub enum Paint {
    Red,
    Yellow,
    Green,
    Dim,
}

/// The JSON document of a fatal error (`kind: "error"`): what went wrong and the exit code.
#[derive(Serialize)]
pub struct FatalReport<'a> {
    pub error: &'a crate::exit::Fatal,
    pub exit: i32,
}

impl Render for FatalReport<'_> {
    fn kind(&self) -> &'static str {
        "error"
    }

    fn human(&self, _out: &Output) -> String {
        format!("error: {}\n", self.error.message)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_wrap_to_columns_else_the_terminal_else_not_at_all() {
        assert_eq!(table_width(Some("60"), Some(120)), Some(60));
        assert_eq!(table_width(None, Some(120)), Some(120));
        assert_eq!(table_width(Some("wide"), Some(120)), Some(120));
        assert_eq!(table_width(Some("0"), None), None);
        assert_eq!(table_width(None, None), None);
    }

    #[derive(Serialize)]
    struct Rows {
        rows: Vec<u32>,
    }

    impl Render for Rows {
        fn kind(&self) -> &'static str {
            "test.rows"
        }

        fn human(&self, _out: &Output) -> String {
            String::new()
        }
    }

    #[derive(Serialize)]
    struct Bare(Vec<u32>);

    impl Render for Bare {
        fn kind(&self) -> &'static str {
            "test.bare"
        }

        fn human(&self, _out: &Output) -> String {
            String::new()
        }
    }

    #[test]
    fn json_opens_with_the_version_and_kind() {
        let text = to_json(&Rows { rows: vec![1, 2] }).expect("an object");
        assert!(text.starts_with("{\n  \"v\": 1,\n  \"kind\": \"test.rows\",\n  \"rows\""), "{text}");
        assert!(text.ends_with("}\n"));
    }

    #[test]
    fn a_report_that_is_not_an_object_is_refused() {
        let error = to_json(&Bare(vec![1])).expect_err("a bare array");
        assert!(error.to_string().contains("test.bare"), "{error}");
    }
}
