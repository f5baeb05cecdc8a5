//! The `ferry` binary: parse the command line, install error reporting and logs, run the command
//! on a tokio runtime under one cancellation token, and turn the outcome into an exit code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use ferry::cli::{self, Cli, Ctx};
use ferry::exit::{self, Exit, Shown};
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
    // A panic is a bug whatever the command was doing: exit 1 and say so, never a verdict on
    // the store and never the runtime's 101.
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(async {
            let signals = match signals::install() {
                Ok(signals) => signals,
                Err(e) => return report_error(eyre::eyre!("cannot install signal handlers: {e}")),
            };
            let cancel = signals.cancel.clone();
            let (stop_timeout, backstop) = (cli.command.stop_timeout(), cli.command.stop_backstop());
            let ctx = Ctx::new(cli.global.clone(), &signals);
            // The stop bound: a command that keeps its own (`watch`) has ended by then; any other
            // is dropped where it waits.
            let command = cli::dispatch(cli.command, ctx);
            let Some(outcome) = signals::bounded(command, &cancel, backstop).await else {
                tracing::warn!(
                    "the stop timeout ({}) passed: abandoning what was still running; every write \
                     already committed is whole, the rest is done again on the next run",
                    humantime::format_duration(stop_timeout)
                );
                return Exit::Interrupted;
            };
            match outcome {
                Ok(exit) if cancel.is_cancelled() && exit == Exit::Ok => Exit::Interrupted,
                Ok(exit) => exit,
                Err(report) if output::is_broken_pipe(&report) => Exit::Ok,
                Err(report) => report_error(report),
            }
        })
    }));
    let exit = match run {
        Ok(exit) => exit,
        Err(panic) => {
            eprintln!("{}", exit::bug_line(&format!("it panicked: {}", exit::panic_text(panic.as_ref()))));
            Exit::Failure
        }
    };
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

/// Prints an error on stderr the way its classification says, and returns its exit code.
fn report_error(report: eyre::Report) -> Exit {
    let (exit, shown) = exit::classify(&report);
    match shown {
        Shown::Diagnostics(config) => {
            eprint!("{}", ferry::config::render_diagnostics(&config.diagnostics));
            eprintln!("error: {config}");
        }
        Shown::Plain(message) => eprintln!("error: {message}"),
        Shown::Bug(what) => eprintln!("{}", exit::bug_line(&what)),
        Shown::Report => eprintln!("Error: {report:?}"),
    }
    exit
}
