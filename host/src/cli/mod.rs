//! The command line: `sandflow serve` runs the host; every other command is a
//! client of a host's HTTP API (`--server` or `SANDFLOW_SERVER`).

mod automations;
mod client;
mod commands;
mod remote;
mod secrets;
mod store;
mod tree;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

pub use client::{Client, Error};

/// Sandflow: workflows whose tasks run as WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "sandflow", version, about)]
pub struct Cli {
    /// The host's API address.
    #[arg(long, global = true, env = "SANDFLOW_SERVER", default_value = "http://127.0.0.1:7700")]
    pub server: String,
    /// The bearer token to send (an admin token for these commands).
    #[arg(long, global = true, env = "SANDFLOW_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the host: store, scheduler, runners and the HTTP API.
    Serve(ServeArgs),
    /// Upload and list task modules.
    #[command(subcommand)]
    Module(ModuleCommand),
    /// List the registered task types.
    TaskTypes,
    /// Submit and inspect jobs.
    #[command(subcommand)]
    Job(JobCommand),
    /// Create, list and delete clusters.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Schedules that submit jobs: create, list, show, pause, resume, delete.
    #[command(subcommand)]
    Automation(automations::AutomationCommand),
    /// Set, list and delete the host's secrets.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Run tasks of one cluster for a host elsewhere (`--server`, with a
    /// runner `--token`).
    Runner(RunnerArgs),
    /// Work on a store directly (no host may have it open).
    #[command(subcommand)]
    Store(StoreCommand),
}

/// `sandflow store` commands.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy a whole store (jobs, modules, clusters, automations, secrets
    /// as sealed) into a new, empty one: between a data directory's `db/`
    /// and a PostgreSQL database, either way.
    Copy {
        /// The store to read: a `postgres://` URL, or a directory (a data
        /// dir's `db/`).
        #[arg(long, value_parser = parse_store)]
        from: crate::store::Location,
        /// The store to create: a `postgres://` URL of an empty database,
        /// or a new directory.
        #[arg(long, value_parser = parse_store)]
        to: crate::store::Location,
    },
}

/// Options of `sandflow runner`.
#[derive(Debug, Args)]
pub struct RunnerArgs {
    /// The cluster whose tasks to run.
    #[arg(long, default_value = "default")]
    pub cluster: String,
    /// Tasks run at once (default: one per core).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Where precompiled modules are kept across restarts.
    #[arg(long, default_value = "sandflow-runner-cache")]
    pub cache_dir: PathBuf,
    /// This runner's id, shown by `GET /v1/runners` (default: random).
    #[arg(long)]
    pub id: Option<String>,
    /// On SIGINT/SIGTERM, how long running tasks may take to finish before
    /// they are handed back (without using their retries).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub grace: Duration,
    /// Wall-clock limit of one task attempt.
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    pub task_timeout: Duration,
    /// Linear memory limit of one task, in MiB.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub memory_limit_mib: u32,
    /// A host every task may send HTTP requests to (as `serve --allow-http`).
    #[arg(long, value_delimiter = ',')]
    pub allow_http: Vec<String>,
    /// Compile every module here from its bytes instead of loading the
    /// host's precompiled artifact (which is native code: without this
    /// flag the runner trusts the host's compiler output as it trusts the
    /// host).
    #[arg(long)]
    pub compile_locally: bool,
}

/// Options of `sandflow serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where the database and the artifact cache live.
    #[arg(long, default_value = "sandflow-data")]
    pub data_dir: PathBuf,
    /// The address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:7700")]
    pub listen: SocketAddr,
    /// In-process runners (default: one per core).
    #[arg(long)]
    pub runners: Option<usize>,
    /// The cluster the in-process runners serve.
    #[arg(long, default_value = "default")]
    pub cluster: String,
    /// Wall-clock limit of one task attempt, e.g. `90s`, `15m`.
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    pub task_timeout: Duration,
    /// How long a running attempt's lease lasts without renewal.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub lease_ttl: Duration,
    /// Attempts a task may lose with its runner (expired lease, host crash)
    /// before it fails.
    #[arg(long, default_value_t = 10)]
    pub max_lost_attempts: u32,
    /// A host every task may send HTTP requests to: `host`, `host:port` or
    /// `*.domain` (repeat, or separate with commas). Without a port, ports 80
    /// and 443. Outbound HTTP is denied by default.
    #[arg(long, value_delimiter = ',')]
    pub allow_http: Vec<String>,
    /// A file of API tokens, one `admin TOKEN` or `runner TOKEN` per line.
    /// Without it the API is open and the host listens only on loopback.
    #[arg(long, env = "SANDFLOW_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Linear memory limit of one task, in MiB.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub memory_limit_mib: u32,
    /// Export job traces and task logs over OTLP/HTTP (protobuf) to this
    /// collector, e.g. `http://127.0.0.1:4318` (signals go to `/v1/traces`
    /// and `/v1/logs` under it).
    #[arg(long, env = "SANDFLOW_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// On SIGINT/SIGTERM, how long to let open requests finish and write
    /// the final checkpoint before exiting anyway (what is not
    /// checkpointed is in the write-ahead log and replayed at the next start).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
    /// A limit of what one attempt may record or one module declare, as
    /// `NAME=VALUE` (repeat for several): e.g. `attempt_bytes=32MiB`,
    /// `log_lines=5000`, `output_bytes=256KiB`, `task_types=200`. See the
    /// README for every name and its default.
    #[arg(long = "limit", value_name = "NAME=VALUE")]
    pub limits: Vec<String>,
    /// Open API connections at most; one more is closed as soon as it is
    /// accepted (the descriptor limit is raised to fit at start).
    #[arg(long, default_value_t = 8192, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
    /// How long a new API connection may take to send a whole request
    /// before it is closed (kept to within a quarter of it); one idle after
    /// a response is closed after 120 s.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,
    /// Longest a runner's long-poll (a claim, or waiting for forced cancels)
    /// is held open, whatever it asks for; lower it below the idle timeout of
    /// any proxy between runners and the host.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub poll_limit: Duration,
    /// Start even if the write-ahead log has a corrupt record: the log ends
    /// there, and what was logged after it is lost (without this flag such
    /// a log stops start-up, naming the file and offset).
    #[arg(long)]
    pub recover_log: bool,
    /// Where the job caches live: `s3://BUCKET[/PREFIX]` (S3 or an
    /// S3-compatible server; `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_REGION`, `AWS_ENDPOINT`, `AWS_ALLOW_HTTP` as usual) or
    /// `gs://BUCKET[/PREFIX]` (`GOOGLE_SERVICE_ACCOUNT` and friends); by
    /// default the directory `cache/` under the data dir.
    #[arg(long, env = "SANDFLOW_CACHE")]
    pub cache: Option<String>,
    /// The key that seals secrets at rest (32 bytes; created with mode 0600
    /// when missing). Default: `secret.key` in the data dir. Keep it apart
    /// from the data dir so a copy of the data alone reveals no secret.
    #[arg(long, env = "SANDFLOW_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// Where jobs, modules and clusters live: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`
    /// keeps them in a PostgreSQL database (one host writes it at a time;
    /// the schema is created and migrated at start). Default: `db/` under
    /// the data dir (which also holds the artifact cache either way).
    #[arg(long, env = "SANDFLOW_STORE", value_parser = parse_store)]
    pub store: Option<crate::store::Location>,
    /// The URL other hosts of the same database pass API requests to while
    /// this host leads it (default: `http://` and the bound address).
    #[arg(long, env = "SANDFLOW_ADVERTISE")]
    pub advertise: Option<String>,
    /// Firings of automations missed while the host was down: `once` fires
    /// each automation once at start, as the latest missed time; `skip`
    /// drops them.
    #[arg(long, default_value = "once", value_parser = ["once", "skip"])]
    pub missed_schedules: String,
    /// Runs the schedules' clock from this RFC 3339 time instead of the
    /// system's (at the system clock's pace): for trying and testing
    /// automations without waiting for their time. Job ids and timestamps
    /// keep the system's time.
    #[arg(long, hide = true)]
    pub clock_from: Option<String>,
}

/// `sandflow module ...`
#[derive(Debug, Subcommand)]
pub enum ModuleCommand {
    /// Upload component files (`.wasm`) and register their task types.
    Upload {
        /// The component files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Secrets the modules' tasks may read (comma-separated names).
        #[arg(long)]
        secrets: Option<String>,
    },
    /// List uploaded modules.
    List,
}

/// `sandflow secret ...`
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Sets a secret to the value read from stdin (a trailing newline is
    /// dropped).
    Set {
        /// Its name: a letter or `_`, then letters, digits or `_`.
        name: String,
    },
    /// Lists the secrets' names (never their values).
    List,
    /// Deletes a secret.
    Delete {
        /// Its name.
        name: String,
    },
}

/// `sandflow cluster ...`
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Create a cluster; prints its slug.
    Create {
        /// Its name.
        name: String,
        /// What it is for.
        #[arg(long)]
        description: Option<String>,
        /// Its slug (default: derived from the name, with a random suffix).
        #[arg(long)]
        slug: Option<String>,
        /// A concurrency limit, `TASK=MAX` (at most MAX running tasks of
        /// that type) or `TASK/POINTER=MAX` (per value of that field of
        /// their input, e.g. `Download/host=2`); repeat for several.
        #[arg(long, value_parser = parse_limit)]
        concurrency: Vec<serde_json::Value>,
    },
    /// List the clusters.
    List,
    /// Change a cluster's name, description or concurrency limits (its slug stays).
    Update {
        /// Its slug.
        slug: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// A new description.
        #[arg(long)]
        description: Option<String>,
        /// New concurrency limits (as for `create`), replacing the old ones.
        #[arg(long, value_parser = parse_limit)]
        concurrency: Vec<serde_json::Value>,
        /// Remove every concurrency limit.
        #[arg(long, conflicts_with = "concurrency")]
        no_concurrency: bool,
    },
    /// Delete a cluster (not `default`, not one with unfinished tasks).
    Delete {
        /// Its slug.
        slug: String,
    },
}

/// `sandflow job ...`
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Delete a job that has ended, with its tasks, logs and spans.
    Delete {
        /// The job id.
        id: String,
    },
    /// Follow a job with a progress bar until it ends (exit code 1 unless it
    /// completed).
    Watch {
        /// The job id.
        id: String,
    },
    /// Draw a job as an SVG graph (jobs of at most 200 tasks).
    Diagram {
        /// The job id.
        id: String,
        /// Where to write the SVG.
        #[arg(short, long, default_value = "job.svg")]
        output: PathBuf,
        /// `light` or `dark`.
        #[arg(long, default_value = "light")]
        theme: String,
    },
    /// Submit a job.
    Submit(SubmitArgs),
    /// Show a job's state and task counts.
    Show {
        /// The job id.
        id: String,
    },
    /// Cancel a job: its queued tasks no longer start.
    Cancel {
        /// The job id.
        id: String,
        /// Also interrupt its running tasks (they fail with "canceled").
        #[arg(long)]
        force: bool,
    },
    /// Retry a failed or canceled job.
    Retry {
        /// The job id.
        id: String,
    },
    /// Submit a new job with the root task of an existing one; prints its id.
    Clone {
        /// The job to clone.
        id: String,
        /// The new job's name (the original's unless given).
        #[arg(long)]
        name: Option<String>,
        /// JSON whose fields replace those of the root task's input (a
        /// value that is not an object replaces the whole input).
        #[arg(long)]
        input: Option<String>,
        /// Retries of the root task (the original's unless given).
        #[arg(long)]
        max_retries: Option<u32>,
    },
    /// List jobs submitted in a time or id range, newest first (or oldest), filtered.
    List(ListArgs),
    /// Write a job's output (its root task's, or one task's) to stdout.
    Output {
        /// The job id.
        id: String,
        /// The task whose output to write, instead of the root's.
        #[arg(long)]
        task: Option<String>,
    },
    /// Print a job's task tree.
    Tasks {
        /// The job id.
        id: String,
    },
    /// Print a job's logs.
    Logs {
        /// The job id.
        id: String,
        /// Only this task's lines.
        #[arg(long)]
        task: Option<String>,
        /// Only lines at this level or above (trace, debug, info, warn, error).
        #[arg(long)]
        level: Option<String>,
        /// Keep printing new lines until the job completes, fails or is canceled.
        #[arg(long, short)]
        follow: bool,
    },
}

/// Options of `sandflow job list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Start of the range: RFC 3339 (UTC) or a date, e.g. `2025-01-01`.
    #[arg(long)]
    pub since: Option<String>,
    /// End of the range (exclusive).
    #[arg(long)]
    pub until: Option<String>,
    /// Only jobs in one of these states, comma-separated (`running,failed`).
    #[arg(long)]
    pub state: Option<String>,
    /// Only jobs with a task in one of these states, comma-separated (`failed`).
    #[arg(long)]
    pub task_state: Option<String>,
    /// Only jobs with this name.
    #[arg(long)]
    pub name: Option<String>,
    /// Only jobs whose name contains this, ignoring case.
    #[arg(long)]
    pub name_contains: Option<String>,
    /// Only jobs with this id or a later one.
    #[arg(long)]
    pub from_id: Option<String>,
    /// Only jobs with an id before this one.
    #[arg(long)]
    pub to_id: Option<String>,
    /// Oldest first instead of newest first.
    #[arg(long)]
    pub oldest_first: bool,
    /// Only jobs on this cluster.
    #[arg(long)]
    pub cluster: Option<String>,
    /// Only jobs this automation submitted.
    #[arg(long)]
    pub automation: Option<String>,
    /// Most jobs to print.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

/// A root task as `--more-root` takes it (`TASK=JSON`), as the API's JSON.
fn parse_root(text: &str) -> Result<serde_json::Value, String> {
    let (task, input) = text.split_once('=').ok_or("expected TASK=JSON")?;
    let input: serde_json::Value =
        serde_json::from_str(input).map_err(|e| format!("the input is not JSON: {e}"))?;
    Ok(serde_json::json!({"task": task, "input": input}))
}

/// A concurrency limit as `--concurrency` takes it (`TASK[/POINTER]=MAX`),
/// as the API's JSON.
fn parse_limit(text: &str) -> Result<serde_json::Value, String> {
    let (group, max) = text.rsplit_once('=').ok_or("expected TASK=MAX or TASK/POINTER=MAX")?;
    let max: u32 = max.trim().parse().map_err(|e| format!("max `{max}`: {e}"))?;
    Ok(match group.split_once('/') {
        Some((task, pointer)) => serde_json::json!({"task": task, "key": format!("/{pointer}"), "max": max}),
        None => serde_json::json!({"task": group, "max": max}),
    })
}

/// A backoff as `--backoff` takes it, as the API's JSON (without jitter).
fn parse_backoff(text: &str) -> Result<serde_json::Value, String> {
    let mut parts = text.split(',');
    let ms = |d: &str| {
        humantime::parse_duration(d.trim()).map(|d| d.as_millis() as u64).map_err(|e| format!("`{d}`: {e}"))
    };
    let initial = ms(parts.next().unwrap_or_default())?;
    let factor: f64 = match parts.next() {
        Some(f) => f.trim().parse().map_err(|_| format!("`{f}` is not a factor"))?,
        None => 2.0,
    };
    let max = parts.next().map(ms).transpose()?.unwrap_or(crate::model::MAX_BACKOFF_MS);
    if parts.next().is_some() {
        return Err("expected INITIAL[,FACTOR[,MAX]]".into());
    }
    Ok(serde_json::json!({"initial_ms": initial, "factor": factor, "max_ms": max}))
}

/// Options of `sandflow job submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The job's name.
    pub name: String,
    /// The root task type, `Name` or `Name@vX.Y`.
    #[arg(long)]
    pub task: String,
    /// The root task's input, as JSON.
    #[arg(long, default_value = "{}")]
    pub input: String,
    /// The cluster to run the root task on.
    #[arg(long)]
    pub cluster: Option<String>,
    /// Retries of the root task.
    #[arg(long, default_value_t = 0)]
    pub max_retries: u32,
    /// A further root task, `TASK=JSON` (e.g. `Report@v1.0={"day": 2}`),
    /// started with the first; repeat for several.
    #[arg(long = "more-root", value_parser = parse_root)]
    pub more_roots: Vec<serde_json::Value>,
    /// The job's priority, -10 to 10: ready tasks of jobs with a higher one start first.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub priority: i8,
    /// Wait before each retry of the root task: `INITIAL[,FACTOR[,MAX]]`
    /// with durations such as `500ms` or `1m` (factor 2 and max one day
    /// when not given), for example `1s,2,5m`.
    #[arg(long, value_parser = parse_backoff)]
    pub backoff: Option<serde_json::Value>,
    /// Spread each retry's wait at random over its upper half.
    #[arg(long, requires = "backoff")]
    pub jitter: bool,
    /// Start the job no earlier than this RFC 3339 time.
    #[arg(long, conflicts_with = "delay")]
    pub not_before: Option<String>,
    /// Start the job no earlier than this long from now (`90s`, `2h`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub delay: Option<std::time::Duration>,
    /// Makes the submission idempotent.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// A W3C trace context (`00-<trace id>-<span id>-<flags>`) the job's
    /// trace continues; `TRACEPARENT` from the environment by default.
    #[arg(long, env = "TRACEPARENT")]
    pub traceparent: Option<String>,
    /// Show progress until the job completes, fails or is canceled.
    #[arg(long)]
    pub wait: bool,
}

/// Runs the command line; the process's exit code.
pub fn main() -> ExitCode {
    // The host's compiler child (`sandbox/compile.rs`), not a user command.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(crate::sandbox::compile::SUBCOMMAND) {
        return crate::sandbox::compile::child_main(&args[2..]);
    }
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Serve(_)) { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SANDFLOW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A `--store` value: a `postgres://` URL or a directory.
fn parse_store(text: &str) -> Result<crate::store::Location, String> {
    if text.is_empty() {
        return Err("empty; give a postgres:// URL or a directory".into());
    }
    Ok(crate::store::Location::parse(text))
}
