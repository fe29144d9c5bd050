//! `kiln-firstboot`: the node agent that runs once on a node's first boot. Parses the command
//! line, runs one command and reports its error chain with a non-zero exit.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    kiln_core::cli_main::run(|| cli::Cli::parse().run())
}
