//! The `ferry` binary: parse the command line, install error reporting and logs, run the command
//! on a tokio runtime under one cancellation token, and turn the outcome into an exit code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use ferry::cli::{self, Cli, Ctx};
use ferry::config::ConfigError;
use ferry::exit::ExitError;
use ferry::exit::{self, Exit};
use ferry::store::StoreError;
use ferry::{output, signals, telemetry};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print to stdout and succeed; usage errors are exit 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { Exit::Usage.code() as u8 } else { 0 });
        }
    };
    let stderr_color = cli.global.color.enabled(std::io::stderr().is_terminal());
    install_error_hooks(stderr_color);
    telemetry::init(&cli.global, stderr_color);

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(Exit::Failure.code() as u8);
        }
    };
    let exit = runtime.block_on(async {
        let cancel = match signals::install() {
            Ok(token) => token,
            Err(e) => return report_error(eyre::eyre!("cannot install signal handlers: {e}")),
        };
        let ctx = Ctx::new(cli.global.clone(), cancel.clone());
        match cli::dispatch(cli.command, ctx).await {
            Ok(exit) if cancel.is_cancelled() && exit == Exit::Ok => Exit::Interrupted,
            Ok(exit) => exit,
            Err(report) if output::is_broken_pipe(&report) => Exit::Ok,
            Err(report) => report_error(report),
        }
    });
    // Tasks still running (e.g. a hung RPC) must not keep the process alive past its answer.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    ExitCode::from(exit.code() as u8)
}

fn install_error_hooks(color: bool) {
    let theme = if color { color_eyre::config::Theme::dark() } else { color_eyre::config::Theme::new() };
    let _ = color_eyre::config::HookBuilder::default()
        .theme(theme)
        .display_env_section(false)
        .display_location_section(false)
        .install();
}

/// Prints an error on stderr and picks its exit code. Config errors print every diagnostic.
fn report_error(report: eyre::Report) -> Exit {
    if let Some(config) = report.chain().find_map(|e| e.downcast_ref::<ConfigError>()) {
        eprint!("{}", ferry::config::render_diagnostics(&config.diagnostics));
        eprintln!("error: {config}");
    } else if let Some(refusal) = report.chain().find_map(|e| e.downcast_ref::<ExitError>()) {
        // An expected refusal, said plainly: no report sections, no backtrace.
        eprintln!("error: {refusal}");
    } else if let Some(store) = report.chain().find_map(|e| e.downcast_ref::<StoreError>()) {
        // A store that cannot be used is the operator's situation, not a bug: the message says
        // what to do, a backtrace would only bury it.
        eprintln!("error: {store}");
    } else {
        eprintln!("Error: {report:?}");
    }
    exit::code_for(&report)
}
