//! `ferry migrate`: upgrade the state file to this ferry's schema, after a backup copy.

use std::io::IsTerminal;

use clap::Args;
use serde::Serialize;

use super::{Ctx, after_help, codes};
use crate::exit::{Exit, ExitError};
use crate::output::{Output, Paint, Render};
use crate::store::migrate::{self, Plan, STEPS};
use crate::store::tables::SCHEMA_VERSION;

/// Upgrade the state file to this ferry's schema (backup first, one transaction).
#[derive(Debug, Args)]
#[command(after_help = after_help("\
  ferry migrate --dry-run                  print the plan, change nothing
  ferry migrate                            ask, then upgrade (on a terminal)
  ferry migrate --yes                      upgrade without asking (scripts, CI)", &[(0, "migrated, or nothing to do"), codes::FAILURE, (2, "bad command line or config, or not on a terminal without --yes"), (3, "store unusable (newer than this ferry, damaged)"), codes::BUSY]))]
pub struct MigrateArgs {
    /// Print what would be done and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (needed when not on a terminal).
    #[arg(short, long)]
    pub yes: bool,
}

impl MigrateArgs {
    pub async fn run(self, ctx: &Ctx) -> eyre::Result<Exit> {
        let path = ctx.store_path_without_config()?;
        let plan = migrate::plan(&path, STEPS, SCHEMA_VERSION)?;
        if plan.is_current() {
            ctx.out.emit(&Report { plan, done: false, dry_run: self.dry_run })?;
            return Ok(Exit::Ok);
        }
        if self.dry_run {
            ctx.out.emit(&Report { plan, done: false, dry_run: true })?;
            return Ok(Exit::Ok);
        }
        let on_terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        if must_ask(self.yes, on_terminal)? {
            eprint!("{}", Report { plan: plan.clone(), done: false, dry_run: true }.human(&ctx.out));
            let confirmed = dialoguer::Confirm::new()
                .with_prompt(format!("Upgrade {} from v{} to v{}?", path.display(), plan.from, plan.to))
                .default(false)
                .interact()?;
            if !confirmed {
                eprintln!("nothing changed");
                return Ok(Exit::Ok);
            }
        }
        let plan = migrate::run(&path)?;
        ctx.out.emit(&Report { plan, done: true, dry_run: false })?;
        Ok(Exit::Ok)
    }
}

/// Whether to ask before migrating: never with `--yes`; on a terminal, yes; otherwise there is
/// nobody to ask, and migrating unasked is refused (exit 2).
fn must_ask(yes: bool, on_terminal: bool) -> Result<bool, ExitError> {
    match (yes, on_terminal) {
        (true, _) => Ok(false),
        (false, true) => Ok(true),
        (false, false) => Err(ExitError::new(
            Exit::Usage,
            "refusing to migrate without confirmation: not on a terminal; pass --yes to migrate from a script",
        )),
    }
}

struct Report {
    plan: Plan,
    done: bool,
    dry_run: bool,
}

/// The JSON of a migration: the plan's steps as objects rather than tuples.
impl Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Step<'a> {
            from: u32,
            to: u32,
            what: &'a str,
        }
        #[derive(Serialize)]
        struct Json<'a> {
            path: &'a std::path::Path,
            from: u32,
            to: u32,
            steps: Vec<Step<'a>>,
            backup: Option<&'a std::path::Path>,
            done: bool,
            dry_run: bool,
        }
        let p = &self.plan;
        Json {
            path: &p.path,
            from: p.from,
            to: p.to,
            steps: p.steps.iter().map(|(from, to, what)| Step { from: *from, to: *to, what }).collect(),
            backup: p.backup.as_deref(),
            done: self.done,
            dry_run: self.dry_run,
        }
        .serialize(serializer)
    }
}

impl Render for Report {
    fn kind(&self) -> &'static str {
        "migrate"
    }

    fn human(&self, out: &Output) -> String {
        let p = &self.plan;
        if p.is_current() {
            return format!("{} is already at schema v{}; nothing to do\n", p.path.display(), p.to);
        }
        let mut text = String::new();
        if self.done {
            text.push_str(&format!(
                "{} {} from schema v{} to v{}\n",
                out.paint("migrated", Paint::Green),
                p.path.display(),
                p.from,
                p.to
            ));
        } else {
            text.push_str(&format!("plan for {}: schema v{} → v{}\n", p.path.display(), p.from, p.to));
        }
        for (from, to, what) in &p.steps {
            text.push_str(&format!("  v{from} → v{to}: {what}\n"));
        }
        if let Some(backup) = &p.backup {
            let verb = if self.done { "backup written to" } else { "a backup copy goes to" };
            text.push_str(&format!("  {verb} {}\n", backup.display()));
        }
        if self.dry_run {
            text.push_str("  (dry run: nothing changed)\n");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_on_a_terminal_refuses_without_one_unless_yes() {
        assert!(!must_ask(true, false).expect("--yes needs no terminal"));
        assert!(!must_ask(true, true).expect("--yes skips the question"));
        assert!(must_ask(false, true).expect("a terminal gets a question"));
        let refusal = must_ask(false, false).expect_err("no terminal, no --yes");
        assert_eq!(refusal.exit, Exit::Usage);
        assert!(refusal.message.contains("--yes"));
    }
}
