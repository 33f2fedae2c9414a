//! The `herald` command: parse the command line, call the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use herald::auth::{Keys, DEFAULT_ORG};
use std::sync::Arc;

use herald::config::{CommonArgs, SecretSource, ServeArgs};
use herald_store::Store;
use tokio_util::sync::CancellationToken;

/// mimalloc instead of the system allocator: under load glibc's malloc and free
/// took about a tenth of the server's CPU (see the README's Performance section).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "herald",
    version,
    about = "A Svix-compatible webhook delivery server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and deliver webhooks (one process does both).
    Serve(Box<ServeArgs>),
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Create or upgrade the database schema, then exit.
    Migrate(CommonArgs),
    /// Re-seal every stored secret (endpoint keys, header values, remembered
    /// responses) under HERALD_ENCRYPTION_KEY; the keys they were sealed with
    /// must be in HERALD_PREVIOUS_ENCRYPTION_KEYS.
    Rekey(CommonArgs),
    /// Expunge expired message payloads and delete old attempts now, then
    /// exit (`serve` does it every HERALD_PRUNE_INTERVAL_SECONDS).
    Prune {
        #[command(flatten)]
        common: CommonArgs,
        /// Days the attempt log is kept; older attempts are deleted.
        #[arg(
            long,
            env = "HERALD_ATTEMPT_RETENTION_DAYS",
            default_value_t = herald::retention::DEFAULT_ATTEMPT_RETENTION_DAYS
        )]
        attempt_retention_days: u32,
    },
    /// Manage the event catalog.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Measure Herald (or any Svix-compatible server) on this machine.
    Bench(herald_bench::BenchArgs),
    /// Print a link that opens the web portal: the list of applications, or
    /// with --app one application's webhooks. It works for
    /// HERALD_PORTAL_TOKEN_TTL_SECONDS.
    PortalLink(herald::portal::LinkArgs),
    /// A tour: Herald on a temporary database, a demo Spot, a local receiver and
    /// a simulated platform firing Spot events; prints the demo Spot's portal
    /// link and the operator view's.
    Demo(herald::demo::DemoArgs),
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// Load event types from a catalog (a directory of JSON files, or one file);
    /// without PATH, the built-in Spot catalog. Re-importing changes only what
    /// changed.
    Import {
        #[command(flatten)]
        common: CommonArgs,
        /// The organisation whose event types are loaded.
        #[arg(long, default_value = DEFAULT_ORG)]
        org: String,
        /// A catalog directory (one JSON file per event type) or one such
        /// file. Default: the built-in Spot catalog.
        path: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Make an API token and print it on the last line of stdout (its id and
    /// details go to stderr).
    Create {
        #[command(flatten)]
        common: CommonArgs,
        /// The organisation the token speaks for.
        #[arg(long, default_value = DEFAULT_ORG)]
        org: String,
        /// Scope the token to one application (its id or uid).
        #[arg(long)]
        app: Option<String>,
        /// What the token is for, shown by `herald token list`.
        #[arg(long, default_value = "")]
        name: String,
        /// Let the token expire after this long (e.g. 90d, 12h, 30m).
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<std::time::Duration>,
    },
    /// List the tokens made with `herald token create`, newest first.
    List {
        #[command(flatten)]
        common: CommonArgs,
        /// Only this organisation's tokens.
        #[arg(long)]
        org: Option<String>,
    },
    /// Revoke a token, given by its id (tok_...) or as the token itself. Every
    /// node refuses it within a second.
    Revoke {
        #[command(flatten)]
        common: CommonArgs,
        token: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Only `serve` exports traces (HERALD_OTLP_ENDPOINT); the others only log.
    let otlp = match &cli.command {
        Command::Serve(args) => Some(&args.otlp),
        _ => None,
    };
    let telemetry = herald::telemetry::init(otlp)?;
    match cli.command {
        Command::Serve(args) => {
            let served = serve(*args).await;
            // After the graceful shutdown: the last attempts' spans go out.
            telemetry.shutdown().await;
            served
        }
        Command::Token { command } => token(command).await,
        Command::Rekey(common) => rekey(common).await,
        Command::Catalog {
            command: CatalogCommand::Import { common, org, path },
        } => catalog_import(common, org, path).await,
        Command::Bench(args) => herald_bench::run(args).await,
        Command::PortalLink(args) => {
            let link = herald::portal::link(&args).await?;
            eprintln!("open this link in a browser (it expires; run again for a new one):");
            println!("{link}");
            Ok(())
        }
        Command::Demo(args) => {
            let shutdown = CancellationToken::new();
            tokio::spawn(stop_on_signal(shutdown.clone()));
            herald::demo::run(args, shutdown).await
        }
        Command::Migrate(common) => {
            let config = common.resolve()?;
            open(&config).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Prune {
            common,
            attempt_retention_days,
        } => prune(common, attempt_retention_days).await,
    }
}

async fn prune(common: CommonArgs, attempt_retention_days: u32) -> anyhow::Result<()> {
    let retention = herald::config::attempt_retention(attempt_retention_days)?;
    let config = common.resolve()?;
    let store = open(&config).await?;
    let now = chrono::Utc::now();
    let attempts_before = herald::retention::attempts_before(now, retention);
    let report = herald::retention::prune_all(store.as_ref(), now, attempts_before).await?;
    println!(
        "pruned {} payloads, {} attempts",
        report.payloads, report.attempts
    );
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    log_secret_source(&config.secret_source);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));

    // Printed once the database is open and connections are taken, not
    // before: a server that cannot start never claims to listen.
    herald::app::serve_when_ready(config, listener, shutdown, |herald| {
        let config = &herald.config;
        // Tests and scripts read the first line to learn the address.
        println!("Herald listening on http://{addr}");
        println!("Data: {}", herald_store::redact_url(&config.database_url));
        println!(
            "API token: run `herald token create` with the same HERALD_DATABASE_URL / HERALD_SECRET"
        );
        if config.allow_subnets.is_empty() {
            println!("Deliveries to private and loopback addresses are refused (set HERALD_ALLOW_SUBNETS to allow some)");
        } else {
            println!(
                "Deliveries allowed to non-global addresses in: {}",
                config.allow_subnets
            );
        }
    })
    .await
}

async fn open(config: &herald::config::CommonConfig) -> anyhow::Result<Arc<dyn Store>> {
    herald::database::open_store(
        &config.database_url,
        config.sqlite_synchronous_full,
        config.keyring.clone(),
    )
    .await
}

async fn token(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            common,
            org,
            app,
            name,
            expires_in,
        } => {
            let config = common.resolve()?;
            log_secret_source(&config.secret_source);
            if let SecretSource::Generated(path) = &config.secret_source {
                // The token is signed with a secret no server has yet: say so,
                // or a server on another database answers it with a bare 401.
                eprintln!(
                    "no main secret was set or found, so a new one was generated into {} for the database {}; \
                     a server on another database or secret refuses this token: run `herald token create` \
                     with the server's HERALD_DATABASE_URL (and HERALD_SECRET, if it sets one)",
                    path.display(),
                    herald_store::redact_url(&config.database_url)
                );
            }
            let store = open(&config).await?;
            let keys = Keys::new(config.secret_bytes());
            let (record, token) = herald::tokens::create(
                store.as_ref(),
                &keys,
                &org,
                app.as_deref(),
                &name,
                expires_in,
            )
            .await?;
            let scope = record.app_id.as_deref().unwrap_or("every application");
            let expires = record
                .expires_at
                .map_or("never expires".to_string(), |t| format!("expires {t}"));
            eprintln!("token {} for {org}, {scope}; {expires}", record.id);
            println!("{token}");
        }
        TokenCommand::List { common, org } => {
            let config = common.resolve()?;
            let store = open(&config).await?;
            let tokens = store.list_api_tokens(org.as_deref()).await?;
            print!("{}", herald::tokens::table(&tokens));
        }
        TokenCommand::Revoke { common, token } => {
            let config = common.resolve()?;
            let store = open(&config).await?;
            let keys = Keys::new(config.secret_bytes());
            let record = herald::tokens::revoke(store.as_ref(), &keys, &token).await?;
            println!(
                "revoked {}; every node refuses it within {} s",
                record.id,
                herald::auth::REVOCATION_FRESHNESS.as_secs()
            );
        }
    }
    Ok(())
}

async fn rekey(common: CommonArgs) -> anyhow::Result<()> {
    let config = common.resolve()?;
    let store = herald::database::connect_store(
        &config.database_url,
        config.sqlite_synchronous_full,
        config.keyring.clone(),
    )
    .await?;
    let report = herald_store::sealing::reseal(store.as_ref(), &config.keyring).await?;
    println!(
        "sealed under key {}: {} signing keys, {} header sets, {} transformation variable sets, {} remembered responses re-sealed",
        config.keyring.current_id(),
        report.secrets,
        report.headers,
        report.variables,
        report.idempotency
    );
    Ok(())
}

async fn catalog_import(
    common: CommonArgs,
    org: String,
    path: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let entries = match &path {
        Some(p) => herald::catalog::from_path(p)?,
        None => herald::catalog::builtin()?,
    };
    let config = common.resolve()?;
    let store = open(&config).await?;
    let report = herald::catalog::import(store.as_ref(), &org, &entries).await?;
    let source = path.map_or("the built-in Spot catalog".to_string(), |p| {
        p.display().to_string()
    });
    println!(
        "{source}: {} event types into {org}: {report}",
        entries.len()
    );
    Ok(())
}

fn log_secret_source(source: &SecretSource) {
    match source {
        SecretSource::Environment => tracing::info!("main secret: from HERALD_SECRET"),
        SecretSource::File(path) => {
            tracing::info!(path = %path.display(), "main secret: read from file")
        }
        SecretSource::Generated(path) => tracing::info!(
            path = %path.display(),
            "main secret: generated and kept here; back it up with the database"
        ),
    }
}

/// SIGTERM or Ctrl-C: stop taking work and shut down gracefully.
async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    shutdown.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!(
        "shutting down: no new work is claimed; in-flight deliveries get the grace period"
    );
    shutdown.cancel();
}
