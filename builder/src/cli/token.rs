//! `kiln token`: bootstrap tokens.

use clap::Subcommand;
use kiln_core::token::BootstrapToken;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new bootstrap token `[a-z0-9]{6}.[a-z0-9]{16}` drawn from the OS random generator.
    ///
    /// Put it in the control plane's InitConfiguration (bootstrapTokens) or kiln node config, and
    /// in every joining node's user-data. It is a secret: kiln never logs it.
    Generate,
}

impl TokenCommand {
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            TokenCommand::Generate => {
                println!("{}", BootstrapToken::generate()?.expose());
                Ok(())
            }
        }
    }
}
