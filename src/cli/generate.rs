//! `ferry generate` (hidden): writes `completions/` (bash, zsh, fish) and `man/` (one page per
//! command) from the clap definitions, so they are never edited by hand. A test regenerates them
//! into a temp dir and fails when the checked-in copies differ. `ferry completions SHELL` prints
//! the same completions to stdout.
//!
//! Man pages: one per command that exists (`ferry-inspect-store(1)` describes its views and
//! actions itself: they are not commands of their own), each with EXAMPLES, EXIT STATUS and
//! ENVIRONMENT. Neither completions nor pages offer the hidden `generate`, and the pages carry
//! the release only (not the commit), so that they do not change with every commit.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory};
use clap_complete::Shell;
use eyre::WrapErr;

use super::{Cli, Ctx};
use crate::exit::{EXIT_CODES, Exit};

/// Write shell completions and man pages from the command-line definitions.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Directory that receives `completions/` and `man/`.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub out_dir: PathBuf,
}

impl GenerateArgs {
    pub fn run(self, _ctx: &Ctx) -> eyre::Result<Exit> {
        let written = write_all(&self.out_dir)?;
        for path in written {
            tracing::info!("wrote {}", path.display());
        }
        Ok(Exit::Ok)
    }
}

/// Print shell completions to stdout.
#[derive(Debug, Args)]
#[command(after_help = super::after_help("\
  ferry completions bash > /etc/bash_completion.d/ferry
  ferry completions zsh > \"${fpath[1]}/_ferry\"
  ferry completions fish > ~/.config/fish/completions/ferry.fish", &[super::codes::OK, super::codes::USAGE]))]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

impl CompletionsArgs {
    pub fn run(self, _ctx: &Ctx) -> eyre::Result<Exit> {
        let mut buffer = Vec::new();
        clap_complete::generate(self.shell, &mut completion_command(), "ferry", &mut buffer);
        crate::output::write_stdout(&buffer)?;
        Ok(Exit::Ok)
    }
}

/// The command line as completions offer it: every visible command, without hidden ones
/// (`generate`), which clap's completion generators would list.
pub fn completion_command() -> clap::Command {
    let full = Cli::command();
    let mut cmd = clap::Command::new("ferry")
        .version(env!("CARGO_PKG_VERSION"))
        .args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    if let Some(about) = full.get_about() {
        cmd = cmd.about(about.clone());
    }
    cmd
}

/// Writes every generated file below `out_dir` and returns their paths.
pub fn write_all(out_dir: &Path) -> eyre::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let completions = out_dir.join("completions");
    std::fs::create_dir_all(&completions)
        .wrap_err_with(|| format!("cannot create {}", completions.display()))?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = completion_command();
        let path = clap_complete::generate_to(shell, &mut cmd, "ferry", &completions)
            .wrap_err_with(|| format!("cannot write {shell} completions"))?;
        written.push(path);
    }

    let man = out_dir.join("man");
    std::fs::create_dir_all(&man).wrap_err_with(|| format!("cannot create {}", man.display()))?;
    let mut cmd = Cli::command().disable_help_subcommand(true).version(env!("CARGO_PKG_VERSION"));
    cmd.build();
    written.push(write_man(&man, "ferry", cmd.clone())?);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("ferry-{}", sub.get_name());
        let page = sub.clone().name(name.clone()).display_name(name.clone());
        written.push(write_man(&man, &name, page)?);
    }
    Ok(written)
}

fn write_man(dir: &Path, name: &str, cmd: clap::Command) -> eyre::Result<PathBuf> {
    let mut buffer = Vec::new();
    render_man(name, cmd, &mut buffer).wrap_err_with(|| format!("cannot render the man page of {name}"))?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, buffer).wrap_err_with(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// One man page: clap_mangen's sections, then ferry's own. Subcommands of a command (the views
/// of `inspect-store`) are described on its page instead of pointing at pages that do not exist.
fn render_man(name: &str, cmd: clap::Command, w: &mut dyn Write) -> std::io::Result<()> {
    let after_help = cmd.get_after_help().map(|h| h.to_string()).unwrap_or_default();
    let (examples, codes) = split_after_help(&after_help);
    let top = name == "ferry";
    let subs: Vec<(String, String)> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .map(|s| (s.get_name().to_string(), s.get_about().map(|a| a.to_string()).unwrap_or_default()))
        .collect();
    let man = clap_mangen::Man::new(cmd.clone()).date("");
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(w)?;
    }
    if top {
        man.render_subcommands_section(w)?;
    } else if !subs.is_empty() {
        let command = name.replacen('-', " ", 1);
        writeln!(w, ".SH \"VIEWS AND ACTIONS\"")?;
        for (sub, about) in &subs {
            writeln!(w, ".TP\n\\fB{}\\fR\n{}", roff(&format!("{command} {sub}")), roff(about))?;
        }
        writeln!(w, ".PP\n{}", roff(&format!("`{command} VIEW --help` lists the options of each.")))?;
    }
    if !examples.is_empty() {
        writeln!(w, ".SH EXAMPLES\n.nf")?;
        for line in examples.lines() {
            writeln!(w, "{}", roff(line))?;
        }
        writeln!(w, ".fi")?;
    }
    writeln!(w, ".SH \"EXIT STATUS\"")?;
    let listed: Vec<(String, String)> = if codes.is_empty() {
        EXIT_CODES.iter().map(|(c, m)| (c.to_string(), m.to_string())).collect()
    } else {
        codes
    };
    for (code, meaning) in &listed {
        writeln!(w, ".TP\n\\fB{code}\\fR\n{}", roff(meaning))?;
    }
    writeln!(w, ".SH ENVIRONMENT")?;
    for (var, what) in ENVIRONMENT {
        writeln!(w, ".TP\n\\fB{var}\\fR\n{}", roff(what))?;
    }
    man.render_version_section(w)?;
    Ok(())
}

/// The variables ferry reads itself (besides the `${VAR}`s a config names).
pub const ENVIRONMENT: &[(&str, &str)] = &[
    ("FERRY_CONFIG", "The config file, as --config gives it (default ferry.yaml)."),
    ("FERRY_STORE", "The state file, as --store gives it; overrides `store:` in the config."),
    (
        "FERRY_LOG",
        "The log filter, overriding -v/-q: an EnvFilter directive such as `ferry=debug,alloy=warn`.",
    ),
    ("NO_COLOR", "When set, --color auto uses no colour."),
];

/// A command's help epilogue split into its example lines (the notes after them included) and
/// its exit codes, as [`super::after_help`] wrote them.
fn split_after_help(text: &str) -> (String, Vec<(String, String)>) {
    let (examples, codes) = match text.split_once("Exit codes:") {
        Some((examples, codes)) => (examples, codes),
        None => (text, ""),
    };
    let examples = examples.trim_start_matches("Examples:").trim_matches('\n');
    let examples: Vec<&str> = examples.lines().map(|l| l.strip_prefix("  ").unwrap_or(l)).collect();
    let codes = codes
        .lines()
        .filter_map(|l| {
            let (code, meaning) = l.trim().split_once(' ')?;
            Some((code.to_string(), meaning.trim().to_string()))
        })
        .collect();
    (examples.join("\n").trim_end().to_string(), codes)
}

/// Text made safe for roff: backslashes and hyphens escaped, no line read as a request.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') { format!("\\&{escaped}") } else { escaped }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_offer_no_hidden_command() {
        let cmd = completion_command();
        assert!(cmd.get_subcommands().all(|s| s.get_name() != "generate"));
        assert!(cmd.get_subcommands().any(|s| s.get_name() == "inspect-store"));
        let mut bash = Vec::new();
        clap_complete::generate(Shell::Bash, &mut completion_command(), "ferry", &mut bash);
        let bash = String::from_utf8(bash).expect("utf-8 completions");
        assert!(!bash.contains("generate"), "bash completions offer generate");
        assert!(bash.contains("--log-format"), "bash completions lack the global flags");
    }

    #[test]
    fn after_help_splits_into_examples_and_codes() {
        let text = super::super::after_help(
            "\
  ferry push                 one
  ferry push --json          two

a note",
            &[(0, "done"), (130, "interrupted")],
        );
        let (examples, codes) = split_after_help(&text);
        assert_eq!(examples, "ferry push                 one\nferry push --json          two\n\na note");
        assert_eq!(codes, vec![("0".into(), "done".into()), ("130".into(), "interrupted".into())]);
    }

    #[test]
    fn roff_escapes_what_roff_would_read() {
        assert_eq!(roff("--json"), "\\-\\-json");
        assert_eq!(roff(".hidden"), "\\&.hidden");
        assert_eq!(roff("a\\b"), "a\\eb");
    }
}
