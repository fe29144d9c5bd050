//! `kiln`: the operator's tool. Parses the command line, runs one command and reports its error
//! chain with a non-zero exit.

use clap::Parser;

fn main() -> std::process::ExitCode {
    kiln_core::cli_main::run(|| kiln::Cli::parse().run())
}
