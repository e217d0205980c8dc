//! The `secsip` command: the appliance and its offline tools.

use anyhow::Context;
use clap::{Parser, Subcommand};
use secsip::check::{self, CheckOptions};
use secsip::config::Config;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DEFAULT_CONFIG: &str = "config/secsip.toml";

/// secsip: a transparent, stateful SIP firewall.
#[derive(Parser, Debug)]
#[command(
    name = "secsip",
    version,
    about = "A transparent, stateful SIP firewall: parses, tracks and judges SIP on a two-NIC bridge",
    after_help = "Examples:\n  \
        secsip --check -c config/secsip.toml           validate a configuration (exit 0 = ok, 1 = error at file:line:col)\n  \
        secsip check --pcap call.pcap                  replay a capture, print a summary\n  \
        secsip check --pcap call.pcap --verbose        one line per SIP message with its verdict\n  \
        secsip check --pcap call.pcap --json | jq .    JSON lines, then a {\"summary\": ...} object\n  \
        secsip check --pcap in.pcap --write-dropped bad.pcap   keep what would have been dropped"
)]
struct Cli {
    /// Configuration file (TOML).
    #[arg(short = 'c', long = "config", global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Load and validate the configuration, print `file:line:col: message` on error, and exit
    /// (like `nginx -t`): 0 when valid, 1 otherwise.
    #[arg(long = "check")]
    check_config: bool,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Replay a pcap/pcapng capture through the engine and report per-message verdicts.
    ///
    /// The capture's timestamps drive the engine's clock, so timeouts behave as on the wire.
    /// Ethernet, raw IP, Linux cooked (SLL, SLL2) and BSD loopback captures are accepted.
    /// Exit status: 0 when the capture was read (whatever the verdicts), 1 when it could not be.
    Check {
        /// The capture to replay.
        #[arg(long, value_name = "FILE")]
        pcap: PathBuf,
        /// Print one line per SIP message: time, transport, src -> dst, method or status,
        /// verdict, Call-ID and validation reasons.
        #[arg(short, long)]
        verbose: bool,
        /// Print one JSON object per SIP message (ts, src, dst, method|status, call_id,
        /// verdict, reasons), then one `{"summary": {...}}` object.
        #[arg(long)]
        json: bool,
        /// Write the frames that were forwarded to this pcap (Ethernet, ns timestamps).
        #[arg(long, value_name = "FILE")]
        write_passed: Option<PathBuf>,
        /// Write the frames that were dropped to this pcap (Ethernet, ns timestamps).
        #[arg(long, value_name = "FILE")]
        write_dropped: Option<PathBuf>,
        /// Do not print progress on stderr (printed every second for long replays).
        #[arg(long)]
        quiet: bool,
    },
}

fn load_config(path: Option<&PathBuf>, required: bool) -> anyhow::Result<Config> {
    match path {
        Some(p) => Ok(Config::load(p)?),
        None if required => {
            let p = PathBuf::from(DEFAULT_CONFIG);
            Ok(Config::load(&p)?)
        }
        None => Ok(Config::default()),
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if cli.check_config {
        let path = cli.config.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
        return match Config::load(&path) {
            Ok(_) => {
                println!("{}: ok", path.display());
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::from(1))
            }
        };
    }
    match cli.command {
        None => {
            use clap::CommandFactory;
            Cli::command().print_help()?;
            Ok(ExitCode::from(2))
        }
        Some(Command::Check { pcap, verbose, json, write_passed, write_dropped, quiet }) => {
            let cfg = load_config(cli.config.as_ref(), false)?;
            let opts = CheckOptions { verbose, json, write_passed, write_dropped, progress: !quiet, rules: None };
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let summary = check::run(&pcap, &cfg, &opts, &mut out, &mut std::io::stderr())?;
            if json {
                serde_json::to_writer(&mut out, &serde_json::json!({ "summary": summary }))?;
                writeln!(out)?;
            } else {
                check::print_summary(&summary, &mut out)?;
            }
            out.flush().context("writing the report")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("secsip: {e:#}");
            ExitCode::from(1)
        }
    }
}
