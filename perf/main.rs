//! `secsip-perf`: how many SIP messages per second the appliance carries without loss and how
//! much delay it adds, measured side by side with a plain Linux bridge on the same testbed,
//! and the rule engine's own speed apart from the network (`secsip-perf engine`).

mod engine;
mod markdown;
mod model;
mod plot;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "secsip-perf", version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The offline rule-engine benchmark: messages/s per core and ns/message on the message
    /// mix, for the shipped rules and 10..10,000 generated rules, on 1 and 2 engine threads.
    Engine(engine::EngineArgs),
}

/// The network run (the default command).
#[derive(Args, Debug)]
struct RunArgs {
    /// A short run (under 2 minutes): fewer, shorter steps. CI runs this as a smoke test.
    #[arg(long)]
    quick: bool,
    /// Where the reports go (default perf/out/<timestamp>/).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Engine(a)) => engine::run(&a),
        None => {
            let _ = cli.run;
            anyhow::bail!("the network run is not written yet")
        }
    }
}
