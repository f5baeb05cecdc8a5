//! `ferry generate` (hidden): writes `completions/` (bash, zsh, fish) and `man/` (one page per
//! command) from the clap definitions, so they are never edited by hand. A test regenerates them
//! into a temp dir and fails when the checked-in copies differ.

use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory};
use clap_complete::Shell;
use eyre::WrapErr;

use super::{Cli, Ctx};
use crate::exit::Exit;

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

/// Writes every generated file below `out_dir` and returns their paths.
pub fn write_all(out_dir: &Path) -> eyre::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let completions = out_dir.join("completions");
    std::fs::create_dir_all(&completions)
        .wrap_err_with(|| format!("cannot create {}", completions.display()))?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = Cli::command();
        let path = clap_complete::generate_to(shell, &mut cmd, "ferry", &completions)
            .wrap_err_with(|| format!("cannot write {shell} completions"))?;
        written.push(path);
    }

    let man = out_dir.join("man");
    std::fs::create_dir_all(&man).wrap_err_with(|| format!("cannot create {}", man.display()))?;
    let mut cmd = Cli::command().disable_help_subcommand(true);
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
    clap_mangen::Man::new(cmd)
        .date("")
        .render(&mut buffer)
        .wrap_err_with(|| format!("cannot render the man page of {name}"))?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, buffer).wrap_err_with(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}
