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
        secsip run -c config/secsip.toml --outside eth0 --inside eth1   run the bridge\n  \
        secsip stats                                   counters of the running daemon\n  \
        secsip reload                                  re-read config and rules (same as SIGHUP)\n  \
        secsip --check -c config/secsip.toml           validate a configuration (exit 0 = ok, 1 = error at file:line:col)\n  \
        secsip check --pcap call.pcap                  replay a capture, print a summary\n  \
        secsip check --pcap call.pcap --verbose        one line per SIP message with its verdict\n  \
        secsip check --pcap call.pcap --json | jq .    JSON lines, then a {\"summary\": ...} object\n  \
        secsip check --pcap in.pcap --write-dropped bad.pcap   keep what would have been dropped\n  \
        secsip rules check rules/                      validate rules, print the schedule\n  \
        secsip rules test rules/ --pcap scan.pcap      which rules fire on which messages\n  \
        secsip rules import secsip.rules -o r.toml     convert SecSip rules\n  \
        secsip ctl datastore copy candidate running --confirm 60   commit rules through the management API\n  \
        secsip ctl lists add block-ip 203.0.113.0/24 --ttl 1h --reason scan   block a network for an hour"
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
        /// Judge with the rules of this directory (see `secsip rules --help`); default: the
        /// `[rules] dir` of the configuration, if any.
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
    },
    /// Work with rule sets: validate, replay a capture through them, import SecSip rules.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Run the appliance: bridge the outside and inside NICs, judging SIP on the way.
    ///
    /// Attaches secsip's XDP program to both NICs (non-SIP traffic is bridged in the kernel),
    /// opens AF_XDP sockets on every queue, and judges SIP with the configured rules.
    /// SIGHUP (or `secsip reload`) re-reads the configuration and rules: a broken file keeps the
    /// running rules and is reported with file:line:col. SIGTERM drains and stops; with
    /// `failure = "fail_open"` the XDP program stays pinned and keeps bridging (SIP
    /// uninspected), with `fail_closed` it is detached. Needs CAP_NET_ADMIN, CAP_BPF,
    /// CAP_NET_RAW, CAP_IPC_LOCK (or root). Sends READY=1 to systemd once XDP is attached, the
    /// sockets are bound and the rules are loaded.
    Run {
        /// The NIC facing the Internet (overrides appliance.outside).
        #[arg(long, value_name = "IF")]
        outside: Option<String>,
        /// The NIC facing the SIP network (overrides appliance.inside).
        #[arg(long, value_name = "IF")]
        inside: Option<String>,
        /// Directory of the pid file and control socket (overrides appliance.run_dir).
        #[arg(long, value_name = "DIR")]
        run_dir: Option<PathBuf>,
        /// bpffs directory where the XDP links are pinned (overrides appliance.bpffs).
        #[arg(long, value_name = "DIR")]
        bpffs: Option<PathBuf>,
        /// Engine threads; 0 = run-to-completion (overrides appliance.engines).
        #[arg(long, value_name = "N")]
        engines: Option<usize>,
        /// fail_open or fail_closed (overrides appliance.failure).
        #[arg(long, value_name = "POLICY", value_parser = parse_failure)]
        failure: Option<secsip::config::Failure>,
        /// Security event log, EVE JSON lines; `-` = stdout (overrides log.events).
        #[arg(long, value_name = "FILE")]
        events: Option<PathBuf>,
    },
    /// Print the counters of the running daemon: NICs (bridged in kernel, to userspace,
    /// banned), queues (rx, tx, frames), verdicts by cause and rule, latency percentiles.
    Stats {
        /// The daemon's run directory (default: appliance.run_dir of the configuration).
        #[arg(long, value_name = "DIR")]
        run_dir: Option<PathBuf>,
        /// Print the raw JSON report.
        #[arg(long)]
        json: bool,
    },
    /// Ask the running daemon to re-read its configuration and rules (sends SIGHUP to the pid
    /// in its pid file). The outcome is in its log and in `secsip stats` (reloads).
    Reload {
        /// The daemon's run directory (default: appliance.run_dir of the configuration).
        #[arg(long, value_name = "DIR")]
        run_dir: Option<PathBuf>,
    },
    /// Drive the running daemon through its management API (HTTP, `[management] bind`): rule
    /// datastores (get, set, validate, diff, commit with confirm, rollback), list entries, bans,
    /// stats, rules with hit counts, metrics.
    Ctl(secsip::ctl::CtlArgs),
}

fn parse_failure(s: &str) -> Result<secsip::config::Failure, String> {
    match s {
        "fail_open" | "open" => Ok(secsip::config::Failure::FailOpen),
        "fail_closed" | "closed" => Ok(secsip::config::Failure::FailClosed),
        _ => Err(format!("{s:?}: expected fail_open or fail_closed")),
    }
}

#[derive(Subcommand, Debug)]
enum RulesCommand {
    /// Compile a rules directory without running it: report every error as
    /// `file:line:col: 'rule': key: message`, then print the schedule and the fields parsed.
    /// Exit 0 when valid, 1 otherwise.
    Check {
        /// The rules directory.
        dir: PathBuf,
        /// Also list every field name and validation reason rules can use.
        #[arg(long)]
        fields: bool,
    },
    /// Replay a capture through a rules directory and show which rules fired on which messages,
    /// then hit counts per rule.
    Test {
        /// The rules directory.
        dir: PathBuf,
        /// The capture.
        #[arg(long, value_name = "FILE")]
        pcap: PathBuf,
        /// One line for every message, not only those a rule fired on.
        #[arg(long)]
        all: bool,
        /// JSON lines and a summary object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Convert SecSip rules (the paper's `SecSip "FIELDS:..." ...` lines or the manual's VeTo XML)
    /// into this language; the result is compiled to check it.
    Import {
        /// The SecSip rules file.
        file: PathBuf,
        /// Write the TOML here instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

fn compile_rules(dir: &std::path::Path, cfg: &Config) -> anyhow::Result<std::sync::Arc<secsip::rules::RuleSet>> {
    let opts = compile_options(cfg);
    match secsip::rules::compile_dir(dir, &opts) {
        Ok(rs) => Ok(std::sync::Arc::new(rs)),
        Err(e) => {
            eprintln!("{e}");
            anyhow::bail!("{}: {} error(s) in the rules", dir.display(), e.0.len())
        }
    }
}

fn compile_options(cfg: &Config) -> secsip::rules::CompileOptions {
    cfg.compile_options()
}

fn print_schedule(rs: &secsip::rules::RuleSet, out: &mut dyn Write) -> std::io::Result<()> {
    let defs = rs.rules.iter().filter(|r| r.is_definition).count();
    writeln!(
        out,
        "{} rules, {} definitions, {} objects, {} lists from {} file(s)",
        rs.rules.len() - defs,
        defs,
        rs.objects.len(),
        rs.lists.len(),
        rs.files.len()
    )?;
    writeln!(out, "
schedule (evaluation order):")?;
    for (i, r) in rs.rules.iter().enumerate() {
        let what = if r.is_definition {
            format!("raise event.{}", r.event.map(|e| rs.events[e as usize].as_str()).unwrap_or("?"))
        } else {
            let mut a = r.action.name().to_string();
            if r.monitor {
                a.push_str(" (monitor)");
            }
            a
        };
        let scope = match (&r.methods, r.responses_only) {
            (Some(ms), _) => ms.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(","),
            (None, true) => "responses".into(),
            (None, false) => "all".into(),
        };
        let file = r.file.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        writeln!(out, "  {:>4}  {:<36} {:<18} on {:<18} {}:{}", i + 1, r.id, what, scope, file, r.line)?;
    }
    writeln!(out, "
fields parsed: {}", rs.field_names.join(", "))?;
    let lits: usize = rs.literal_matchers.iter().map(|m| m.patterns.len()).sum();
    let rxs: usize = rs.regex_matchers.iter().map(|m| m.atoms.len()).sum();
    writeln!(
        out,
        "matchers: {lits} literals in {} automata, {rxs} regexes in {} sets (one pass per field per message)",
        rs.literal_matchers.len(),
        rs.regex_matchers.len()
    )?;
    Ok(())
}

fn run_rules(cmd: RulesCommand, cfg: &Config) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match cmd {
        RulesCommand::Check { dir, fields } => {
            match secsip::rules::compile_dir(&dir, &compile_options(cfg)) {
                Ok(rs) => {
                    print_schedule(&rs, &mut out)?;
                    if fields {
                        writeln!(out, "
fields:")?;
                        for (name, kind) in secsip::rules::fields::FIELDS {
                            writeln!(out, "  {name:<32} {kind:?}")?;
                        }
                        writeln!(out, "  {:<32} Str (any header)", "sip.headers.NAME")?;
                        for r in secsip::sip::Reason::ALL {
                            writeln!(out, "  sip.malformed.{:<18} Bool", r.name())?;
                        }
                    }
                    writeln!(out, "
{}: ok", dir.display())?;
                    out.flush()?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    out.flush()?;
                    eprintln!("{e}");
                    eprintln!("{}: {} error(s)", dir.display(), e.0.len());
                    Ok(ExitCode::from(1))
                }
            }
        }
        RulesCommand::Test { dir, pcap, all, json } => {
            let rules = compile_rules(&dir, cfg)?;
            let opts = CheckOptions { verbose: true, json, rules: Some(rules), only_fired: !all, ..Default::default() };
            let summary = check::run(&pcap, cfg, &opts, &mut out, &mut std::io::stderr())?;
            if json {
                serde_json::to_writer(&mut out, &serde_json::json!({ "summary": summary }))?;
                writeln!(out)?;
            } else {
                writeln!(out)?;
                check::print_summary(&summary, &mut out)?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        RulesCommand::Import { file, output } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let name = file.display().to_string();
            let toml = match secsip::rules::import::import(&text, &name) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::from(1));
                }
            };
            let shown = output.clone().unwrap_or_else(|| PathBuf::from("<imported>.toml"));
            let src = secsip::rules::compile::Source { path: shown.clone(), text: toml.clone() };
            if let Err(e) = secsip::rules::compile(&[src], std::path::Path::new("."), &compile_options(cfg)) {
                eprintln!("the imported rules do not compile:
{e}");
                return Ok(ExitCode::from(1));
            }
            match output {
                Some(p) => {
                    std::fs::write(&p, toml).with_context(|| format!("writing {}", p.display()))?;
                    eprintln!("{}: written, compiles", p.display());
                }
                None => out.write_all(toml.as_bytes())?,
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
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
            Ok(cfg) => match cfg.compile_rules() {
                Ok(rules) => {
                    if let (Some(rs), Some(dir)) = (rules, &cfg.rules.dir) {
                        println!("{}: ok ({} rules)", dir.display(), rs.rules.iter().filter(|r| !r.is_definition).count());
                    }
                    println!("{}: ok", path.display());
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("{e}");
                    Ok(ExitCode::from(1))
                }
            },
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
        Some(Command::Run { outside, inside, run_dir, bpffs, engines, failure, events }) => {
            let config = cli.config.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
            let ov = secsip::dataplane::run::Overrides { outside, inside, run_dir, bpffs, engines, events, failure };
            secsip::dataplane::run::run(config, ov)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Stats { run_dir, json }) => {
            let dir = match run_dir {
                Some(d) => d,
                None => load_config(cli.config.as_ref(), false)?.appliance.run_dir,
            };
            let report = secsip::dataplane::control::ask(&dir, "stats")?;
            if json {
                println!("{report}");
            } else {
                print!("{}", secsip::dataplane::stats::render(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Reload { run_dir }) => {
            let dir = match run_dir {
                Some(d) => d,
                None => load_config(cli.config.as_ref(), false)?.appliance.run_dir,
            };
            let pid = secsip::dataplane::control::read_pid(&dir)?;
            secsip::dataplane::control::signal(pid, libc::SIGHUP)?;
            println!("sent SIGHUP to secsip (pid {pid}); see its log or `secsip stats` for the outcome");
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Ctl(args)) => secsip::ctl::run(args, cli.config.as_deref()),
        Some(Command::Rules(cmd)) => {
            let cfg = load_config(cli.config.as_ref(), false)?;
            run_rules(cmd, &cfg)
        }
        Some(Command::Check { pcap, verbose, json, write_passed, write_dropped, quiet, rules }) => {
            let cfg = load_config(cli.config.as_ref(), false)?;
            let rules = match rules.or_else(|| cfg.rules.dir.clone()) {
                Some(d) => Some(compile_rules(&d, &cfg)?),
                None => None,
            };
            let opts = CheckOptions { verbose, json, write_passed, write_dropped, progress: !quiet, rules, only_fired: false };
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
