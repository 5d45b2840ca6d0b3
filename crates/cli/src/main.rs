//! The `ocituf` command line: parses, calls the libraries, prints. It holds no TUF or OCI
//! logic of its own.
//!
//! Modules: [`cli`] (the grammar), [`failure`] (exit codes and error printing), [`paths`]
//! (config and cache locations), [`cmd`] (one module per command group).

// Commands are straight-line sequences of steps, each with its own error message: splitting
// them to satisfy a line count would scatter one workflow over many functions.
#![allow(clippy::too_many_lines)]
// The resolver's errors carry every name a refusal shows; they are not on a hot path.
#![allow(clippy::result_large_err)]

/// `println!` that does not panic when stdout is closed early (`ocituf … | head -1`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` that does not panic when stdout is closed early.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

mod cli;
mod cli_project;
mod cli_serve;
mod cmd;
mod failure;
mod paths;
mod pin;
mod progress;
mod when;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors to stderr with 2.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(failure::EXIT_CONFIG)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // The proxy serves many requests at once; every other command is one sequence of steps.
    let mut builder = if matches!(cli.command, cli::Command::Proxy(_)) {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::from(failure::EXIT_CONFIG);
        }
    };
    match runtime.block_on(cmd::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => ExitCode::from(failure::report(&err)),
    }
}
