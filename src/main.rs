//! The `ferry` binary: parse the command line, install error reporting and logs, run the command
//! on a tokio runtime under one cancellation token, and turn the outcome into an exit code.
//!
//! A fatal error is shown the way the command line asked: for people, the whole report on
//! stderr; under `--json`, one JSON document (`kind: "error"`) on stdout and one line on stderr;
//! under `--log-format json`, JSON lines on stderr like every other log line.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use ferry::cli::{self, Cli, Ctx, LogFormat};
use ferry::exit::{self, Exit, Fatal, Shown};
use ferry::output::{self, FatalReport, Output};
use ferry::{signals, telemetry};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return ExitCode::from(usage_error(&e)),
    };
    let stderr_color = cli.global.color.enabled(std::io::stderr().is_terminal());
    let shape = Shape { json: cli.global.json, json_log: cli.global.log_format == LogFormat::Json };
    install_error_hooks(stderr_color, shape);
    telemetry::init(&cli.global, stderr_color);

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let fatal = Fatal::new(Exit::Failure, format!("cannot start the async runtime: {e}"));
            return ExitCode::from(shape.report(&fatal, None) as u8);
        }
    };
    // A panic is a bug whatever the command was doing: exit 1 and say so, never a verdict on
    // the store and never the runtime's 101.
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(async {
            let signals = match signals::install() {
                Ok(signals) => signals,
                Err(e) => {
                    let report = eyre::eyre!("cannot install signal handlers: {e}");
                    return shape.report(&Fatal::from_report(&report), Some(&report));
                }
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
                Err(report) => shape.report(&Fatal::from_report(&report), Some(&report)),
            }
        })
    }));
    let exit = match run {
        Ok(exit) => exit,
        Err(panic) => {
            let fatal = Fatal::bug(&format!("it panicked: {}", exit::panic_text(panic.as_ref())));
            shape.report(&fatal, None)
        }
    };
    // Tasks still running (e.g. a hung RPC) must not keep the process alive past its answer.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    ExitCode::from(exit.code() as u8)
}

/// How errors are shown: what `--json` and `--log-format json` asked for.
#[derive(Debug, Clone, Copy)]
struct Shape {
    json: bool,
    json_log: bool,
}

impl Shape {
    /// Prints a fatal error and returns its exit code. `report` is the whole error when there is
    /// one, for the human form.
    fn report(self, fatal: &Fatal, report: Option<&eyre::Report>) -> Exit {
        if self.json {
            // A script reading stdout gets a document whatever happened; failing to write it
            // leaves the stderr line and the exit code to say it.
            let _ = Output::new(true, false).emit(&FatalReport { error: fatal, exit: fatal.exit.code() });
        }
        if self.json_log {
            for line in telemetry::fatal_lines(fatal) {
                eprintln!("{line}");
            }
        } else if self.json {
            eprintln!("error: {}", fatal.message);
        } else {
            print_for_people(fatal, report);
        }
        fatal.exit
    }
}

/// The human form on stderr: a config's diagnostics compiler style, a refusal or a store the
/// operator must act on in one line, a bug as one, anything else as the whole report.
fn print_for_people(fatal: &Fatal, report: Option<&eyre::Report>) {
    let Some(report) = report else {
        match fatal.code {
            "bug" => {
                eprintln!("{}", exit::bug_line(fatal.message.trim_start_matches("this is a bug in ferry: ")))
            }
            _ => eprintln!("error: {}", fatal.message),
        }
        return;
    };
    match exit::classify(report).1 {
        Shown::Diagnostics(config) => {
            eprint!("{}", ferry::config::render_diagnostics(&config.diagnostics));
            eprintln!("error: {config}");
        }
        Shown::Plain(message) => eprintln!("error: {message}"),
        Shown::Bug(what) => eprintln!("{}", exit::bug_line(&what)),
        Shown::Report => eprintln!("Error: {report:?}"),
    }
}

/// A command line clap refused (exit 2), or `--help`/`--version` (exit 0, on stdout). The flags
/// were not parsed, so `--json` and `--log-format json` are looked for in the raw arguments.
fn usage_error(e: &clap::Error) -> u8 {
    if !e.use_stderr() {
        let _ = e.print();
        return 0;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let shape = Shape {
        json: args.iter().any(|a| a == "--json"),
        json_log: args.windows(2).any(|w| w[0] == "--log-format" && w[1] == "json")
            || args.iter().any(|a| a == "--log-format=json"),
    };
    if !shape.json && !shape.json_log {
        let _ = e.print();
        return Exit::Usage.code() as u8;
    }
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or("bad command line");
    let fatal = Fatal::new(Exit::Usage, first.trim_start_matches("error: "));
    shape.report(&fatal, None).code() as u8
}

/// color-eyre's report format for errors; its panic report only for people: under
/// `--log-format json` a panic is said once, as the JSON line of a bug, and under `--json` as
/// one line.
fn install_error_hooks(color: bool, shape: Shape) {
    let theme = if color { color_eyre::config::Theme::dark() } else { color_eyre::config::Theme::new() };
    let (panic_hook, eyre_hook) = color_eyre::config::HookBuilder::default()
        .theme(theme)
        .display_env_section(false)
        .display_location_section(false)
        .into_hooks();
    let _ = eyre_hook.install();
    if shape.json || shape.json_log {
        std::panic::set_hook(Box::new(|_| {}));
    } else {
        panic_hook.install();
    }
}
