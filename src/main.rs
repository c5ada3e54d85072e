//! The `mailgate` command: serve, check-config, gen-cert, admin, migrate.
//!
//! Exit codes are part of the operator contract: 0 clean stop, 78 (EX_CONFIG) for
//! any refusal to start, 70 (EX_SOFTWARE) for an internal error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use mailgate::config::Config;
use mailgate::server::Daemon;

const EX_CONFIG: u8 = 78;
const EX_SOFTWARE: u8 = 70;
const EX_USAGE: u8 = 64;
const EX_UNAVAILABLE: u8 = 69;

#[derive(Parser)]
#[command(
    name = "mailgate",
    version,
    about = "One small mail daemon: SMTP, IMAP and EWS over TLS 1.2+"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon in the foreground (logs on stderr).
    Serve {
        /// Config file; without it the embedded default (config/mailgate.toml) is used.
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
        /// Mail domain of the organization created on first start (overrides server.default_domain).
        #[arg(long)]
        domain: Option<String>,
    },
    /// Validate a config file: exit 0 when valid, 78 with the reason when not.
    CheckConfig {
        #[arg(long)]
        config: PathBuf,
    },
    /// Write a dev CA (ca.pem, ca-key.pem) and a certificate it signed (cert.pem, key.pem).
    GenCert {
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        host: String,
    },
    /// Call the admin API: `mailgate admin ListUsers --organization-id m-...`.
    /// mailgate's own commands: `create-personal-access-token --organization-id m-...
    /// --user alice --name phone [--expires-in-days 365]` (prints the token, once);
    /// `rotate-token-keys` (a new impersonation-token signing key, the current one
    /// still verifies); `rotate-admin-key` (a new generated admin key, written to
    /// admin-credentials and printed once; the old one stops working).
    /// Options: --json '{...}', --data-dir DIR (default ./data), --endpoint URL,
    /// --ca FILE, --credentials FILE, --region R; any other --member-name VALUE
    /// becomes the PascalCase input member. Prints the JSON response.
    Admin {
        /// The WorkMail action, e.g. CreateUser.
        action: String,
        /// Options and member flags.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Copy a single-node store into an empty PostgreSQL database and compare both.
    ///
    /// Stop the daemon first: the store file is read (never written) in one
    /// snapshot, and a store another process has open is refused. The target's
    /// schema is created (migrated) first; a target that holds any mailbox,
    /// directory record, tag, queued message or outbox row is refused. Every
    /// folder's UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and UIDs, and the counts of
    /// bodies, directory records and the rest are compared at the end.
    /// Exit 0 when copied and equal; 64 for a malformed --from/--to; 78 when
    /// refused (nothing written); 69 when the server cannot be reached; 70 when
    /// the copy failed or differs (the target may then hold part of the data:
    /// drop and recreate the database before trying again).
    Migrate {
        /// The store file: sqlite:PATH (e.g. sqlite:data/store.sqlite).
        #[arg(long)]
        from: String,
        /// The database: postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE.
        #[arg(long)]
        to: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            config,
            log_format,
            domain,
        } => serve(config, log_format, domain),
        Command::Admin { action, args } => admin(&action, &args),
        Command::Migrate { from, to } => migrate(&from, &to),
        Command::CheckConfig { config } => match Config::load(&config) {
            Ok(loaded) => match check_store(&loaded) {
                Ok(()) => {
                    println!("{}: ok", config.display());
                    ExitCode::SUCCESS
                }
                Err(e) => refuse(&e),
            },
            Err(e) => refuse(&e),
        },
        Command::GenCert { out, host } => {
            mailgate::tls::install_crypto_provider();
            match mailgate::tls::generate_dev_cert(&out, &host) {
                Ok(dev) => {
                    println!("CA:          {}", dev.ca.display());
                    println!("CA key:      {}", dev.ca_key.display());
                    println!("certificate: {}", dev.cert.display());
                    println!("key:         {}", dev.key.display());
                    ExitCode::SUCCESS
                }
                Err(e) => refuse(&e),
            }
        }
    }
}

/// `check-config`'s store check (PostgreSQL: reachable, durable commits, schema
/// not newer), on a runtime of its own; a failure is a refusal (78).
fn check_store(config: &Config) -> Result<(), String> {
    mailgate::tls::install_crypto_provider();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(mailgate::store::check(config))
        .map_err(|e| e.to_string())
}

/// Runs one admin API call; exit 0 with the pretty JSON answer, 1 with the error
/// JSON on stderr for an error response, 69 (EX_UNAVAILABLE) when the call failed.
fn admin(action: &str, args: &[String]) -> ExitCode {
    use mailgate::admin::client;
    let inv = match client::parse_args(args) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("mailgate admin: {e}");
            return ExitCode::from(EX_USAGE);
        }
    };
    mailgate::tls::install_crypto_provider();
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| client::ClientError::Connection(e.to_string()))
        .and_then(|rt| rt.block_on(client::call(&inv.options, action, &inv.input)));
    let (status, body) = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mailgate admin: {e}");
            return ExitCode::from(EX_UNAVAILABLE);
        }
    };
    let pretty = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(body);
    if status == 200 {
        println!("{pretty}");
        ExitCode::SUCCESS
    } else {
        eprintln!("{pretty}");
        ExitCode::FAILURE
    }
}

/// Runs `mailgate migrate`: the summary on stdout, the reason on stderr, the
/// exit code by [`MigrateError`](mailgate::store::migrate::MigrateError) kind.
fn migrate(from: &str, to: &str) -> ExitCode {
    use mailgate::store::migrate::{self, MigrateError};
    let result = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| MigrateError::Failed(format!("cannot start the runtime: {e}")))
        .and_then(|rt| rt.block_on(migrate::run(from, to)));
    let (code, report) = match result {
        Ok(report) => (0, Some(report)),
        Err(MigrateError::Mismatch(report)) => {
            eprintln!("mailgate migrate: the copy differs from the source:");
            for m in &report.mismatches {
                eprintln!("  {m}");
            }
            (EX_SOFTWARE, Some(report))
        }
        Err(e) => {
            eprintln!("mailgate migrate: {e}");
            let code = match e {
                MigrateError::Usage(_) => EX_USAGE,
                MigrateError::Refused(_) => EX_CONFIG,
                MigrateError::Unavailable(_) => EX_UNAVAILABLE,
                MigrateError::Failed(_) | MigrateError::Mismatch(_) => EX_SOFTWARE,
            };
            (code, None)
        }
    };
    for line in report.iter().flat_map(|r| &r.lines) {
        println!("{line}");
    }
    ExitCode::from(code)
}

fn refuse(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("mailgate: {e}");
    ExitCode::from(EX_CONFIG)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn serve(config_path: Option<PathBuf>, log_format: LogFormat, domain: Option<String>) -> ExitCode {
    init_logging(log_format);
    mailgate::server::memory::tune_allocator();
    let mut config = match &config_path {
        Some(p) => match Config::load(p) {
            Ok(c) => c,
            Err(e) => return refuse(&e),
        },
        None => Config::embedded(),
    };
    if let Some(domain) = domain {
        config.server.default_domain = domain;
        if let Err(e) = config.validate() {
            return refuse(&e.to_string().replace("server.default_domain", "--domain"));
        }
    }
    mailgate::tls::install_crypto_provider();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        runtime.worker_threads(runtime_workers());
    }
    let runtime = match runtime.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mailgate: cannot start the runtime: {e}");
            return ExitCode::from(EX_SOFTWARE);
        }
    };
    let result = runtime.block_on(async move {
        let daemon = match Daemon::start(config, config_path).await {
            Ok(d) => d,
            Err(e) => return Err(refuse(&e)),
        };
        daemon.run_until_signal().await.map_err(|e| {
            eprintln!("mailgate: {e}");
            ExitCode::from(EX_SOFTWARE)
        })
    });
    // Sessions still running past the grace period are dropped with the runtime.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

/// Tokio workers: one per core but one. The daemon's other busy threads, the store
/// writer and the event sinks, and the kernel's loopback and disk work need a core
/// too: with as many workers as cores, a 2-core machine had three runnable threads
/// for two cores, and each hand-off between a session and the writer waited in the
/// run queue (SMTP ingest about 10% slower; IMAP the same either way). Operators
/// may still set `TOKIO_WORKER_THREADS`.
fn runtime_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get().saturating_sub(1))
        .max(1)
}
