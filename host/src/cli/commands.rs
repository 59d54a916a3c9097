//! What each command does.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::client::{Client, Error};
use super::{Cli, ClusterCommand, Command, JobCommand, ListArgs, ModuleCommand, ServeArgs, SubmitArgs, tree};
use crate::api::Tokens;
use crate::model::{Clock, JobId, parse_allow_list};
use crate::sandbox::Limits;
use crate::scheduler::Missed;
use crate::server;

/// Runs `cli`; the exit code on success.
pub async fn run(cli: Cli) -> Result<ExitCode, Error> {
    let client = Client::new(&cli.server, cli.token.clone());
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Cluster(command) => cluster(&client, command).await,
        Command::Automation(command) => super::automations::run(&client, command).await,
        Command::Runner(args) => super::remote::runner(args, &cli.server, cli.token).await,
        Command::Store(super::StoreCommand::Copy { from, to }) => super::store::copy(from, to).await,
        Command::Module(ModuleCommand::Upload { files, secrets }) => upload(&client, files, secrets).await,
        Command::Secret(command) => super::secrets::run(&client, command).await,
        Command::Module(ModuleCommand::List) => {
            for m in client.modules().await? {
                let types: Vec<String> =
                    m.task_types.iter().map(|t| format!("{}@{}", t.name, t.version)).collect();
                println!("{}  {:>9} B  {}", m.digest, m.size, types.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::TaskTypes => {
            for t in client.task_types().await? {
                println!(
                    "{}@{}  {}",
                    t["name"].as_str().unwrap_or(""),
                    t["version"].as_str().unwrap_or(""),
                    t["module"].as_str().unwrap_or("")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Job(command) => job(&client, command).await,
    }
}

/// Prints log lines page by page; with `follow`, keeps polling for new ones
/// until the job has ended.
async fn logs(
    client: &Client,
    id: &str,
    task: Option<&str>,
    level: Option<&str>,
    follow: bool,
) -> Result<ExitCode, Error> {
    let mut cursor: Option<String> = None;
    loop {
        // The state is read before the page, so a job seen ended has all its
        // lines in this page or the ones after it.
        let ended =
            !follow || matches!(client.job(id).await?.state.as_str(), "completed" | "failed" | "canceled");
        let page = client.logs(id, task, level, cursor.as_deref()).await?;
        for line in &page.logs {
            print_log_line(line);
        }
        cursor = page.cursor.or(cursor);
        if page.more {
            continue;
        }
        if ended {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

fn print_log_line(line: &crate::api::LogView) {
    let fields: Vec<String> =
        line.fields.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect();
    println!(
        "{} {:5} {} {} {}",
        line.time,
        format!("{:?}", line.level).to_uppercase(),
        &line.task[..8.min(line.task.len())],
        line.message,
        fields.join(" ")
    );
}

/// `SLUG  NAME  DESCRIPTION[  limits TASK[/POINTER]<=MAX, ...]`.
fn print_cluster(c: &serde_json::Value) {
    let field = |k: &str| c[k].as_str().unwrap_or("").to_owned();
    let limits: Vec<String> = c["concurrency"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            format!("{}{}<={}", l["task"].as_str().unwrap_or(""), l["key"].as_str().unwrap_or(""), l["max"])
        })
        .collect();
    let limits = if limits.is_empty() { String::new() } else { format!("  limits {}", limits.join(", ")) };
    println!("{}  {}  {}{limits}", field("slug"), field("name"), field("description"));
}

async fn cluster(client: &Client, command: ClusterCommand) -> Result<ExitCode, Error> {
    match command {
        ClusterCommand::Create { name, description, slug, concurrency } => {
            let body = serde_json::json!({"name": name, "description": description, "slug": slug, "concurrency": concurrency});
            let created = client.create_cluster(&body).await?;
            println!("{}", created["slug"].as_str().unwrap_or(""));
        }
        ClusterCommand::List => {
            client.clusters().await?.iter().for_each(print_cluster);
        }
        ClusterCommand::Update { slug, name, description, concurrency, no_concurrency } => {
            let limits = (no_concurrency || !concurrency.is_empty()).then_some(concurrency);
            let body = serde_json::json!({"name": name, "description": description, "concurrency": limits});
            print_cluster(&client.update_cluster(&slug, &body).await?);
        }
        ClusterCommand::Delete { slug } => {
            client.delete_cluster(&slug).await?;
            println!("cluster {slug} deleted");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: ServeArgs) -> Result<ExitCode, Error> {
    let runners = args.runners.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let mut limits = Limits {
        timeout: args.task_timeout,
        memory_bytes: (args.memory_limit_mib as usize) << 20,
        ..Limits::default()
    };
    let mut max_task_types = crate::sandbox::MAX_TASK_TYPES;
    let mut bounds = (*limits.bounds).clone();
    for limit in &args.limits {
        let (name, value) = limit
            .split_once('=')
            .ok_or_else(|| Error::Usage(format!("--limit {limit}: expected NAME=VALUE")))?;
        let usage = |e: String| Error::Usage(format!("--limit {limit}: {e}"));
        match name {
            "output_bytes" => limits.output_bytes = crate::model::parse_amount(value).map_err(usage)?,
            "task_types" => {
                let n = crate::model::parse_amount(value).map_err(usage)?;
                max_task_types = crate::sandbox::check_max_task_types(n).map_err(usage)?;
            }
            _ => bounds.set(name, value).map_err(usage)?,
        }
    }
    limits.bounds = std::sync::Arc::new(bounds);
    let tokens = match &args.token_file {
        Some(path) => {
            let file = |source| Error::File { path: path.display().to_string(), source };
            let text = std::fs::read_to_string(path).map_err(file)?;
            Tokens::parse(&text).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?
        }
        None => Tokens::default(),
    };
    let options = server::Options {
        data_dir: args.data_dir,
        listen: args.listen,
        runners,
        cluster: args.cluster,
        limits,
        scheduling: crate::scheduler::Settings {
            lease_ttl: args.lease_ttl,
            max_lost_attempts: args.max_lost_attempts,
            finished: None,
            clock: clock(args.clock_from.as_deref())?,
            missed: if args.missed_schedules == "skip" { Missed::Skip } else { Missed::Once },
        },
        tokens,
        allow_http: parse_allow_list(&args.allow_http).map_err(Error::Usage)?,
        otlp_endpoint: args.otlp_endpoint,
        shutdown_grace: args.shutdown_grace,
        max_task_types,
        serve: crate::api::ServeLimits {
            max_connections: args.max_connections as usize,
            header_timeout: args.header_timeout,
            poll_limit: args.poll_limit,
        },
        recover_log: args.recover_log,
        cache: args.cache,
        secret_key_file: args.secret_key_file,
        store: args.store,
        advertise: args.advertise,
    };
    server::run(options, |addr| {
        println!("sandflow listening on http://{addr}");
        let _ = std::io::stdout().flush();
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// The schedules' clock: the system's, or one started at `from` (`--clock-from`).
fn clock(from: Option<&str>) -> Result<Clock, Error> {
    let Some(raw) = from else { return Ok(Clock::system()) };
    let t: jiff::Timestamp = raw.parse().map_err(|e| Error::Usage(format!("--clock-from {raw}: {e}")))?;
    Ok(Clock::starting_at(u64::try_from(t.as_millisecond()).unwrap_or(0)))
}

async fn upload(
    client: &Client,
    files: Vec<std::path::PathBuf>,
    secrets: Option<String>,
) -> Result<ExitCode, Error> {
    for path in files {
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|source| Error::File { path: path.display().to_string(), source })?;
        let size = bytes.len();
        let started = client.upload_module(bytes, secrets.as_deref()).await?;
        eprintln!("{}: {} KiB sent; compiling", path.display(), size >> 10);
        let m = finished_upload(client, started).await?;
        let types: Vec<String> = m.task_types.iter().map(|t| format!("{}@{}", t.name, t.version)).collect();
        println!("{}: {} ({})", path.display(), m.digest, types.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// Follows a background upload to its end, saying every few seconds that
/// it is still compiling: its module, or the error it was refused with.
async fn finished_upload(
    client: &Client,
    mut upload: crate::api::UploadView,
) -> Result<crate::api::ModuleView, Error> {
    let mut said = std::time::Instant::now();
    while upload.state == crate::api::UploadState::Compiling {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        upload = client.upload_status(&upload.id).await?;
        if said.elapsed() >= std::time::Duration::from_secs(5) {
            eprintln!("still compiling ({} s)", upload.elapsed_ms / 1000);
            said = std::time::Instant::now();
        }
    }
    match (upload.module, upload.error) {
        (Some(module), _) => Ok(module),
        (None, error) => {
            let error =
                error.unwrap_or(crate::api::UploadError { code: "refused".into(), message: String::new() });
            let status = upload.status.and_then(|s| reqwest::StatusCode::from_u16(s).ok());
            Err(Error::Api {
                status: status.unwrap_or(reqwest::StatusCode::UNPROCESSABLE_ENTITY),
                code: error.code,
                message: error.message,
            })
        }
    }
}

fn job_id(raw: &str) -> Result<String, Error> {
    raw.parse::<JobId>().map(|id| id.to_string()).map_err(|e| Error::Usage(e.to_string()))
}

/// The `not_before` of a submission: the time given, or `delay` from now.
fn not_before(at: Option<String>, delay: Option<std::time::Duration>) -> Option<String> {
    at.or_else(|| {
        delay.map(|d| humantime::format_rfc3339_millis(std::time::SystemTime::now() + d).to_string())
    })
}

/// `, failed optional N, skipped M` when a job has such tasks.
fn optional_counts(c: &crate::api::CountsView) -> String {
    match (c.failed_optional, c.skipped) {
        (0, 0) => String::new(),
        (f, s) => format!(", failed optional {f}, skipped {s}"),
    }
}

async fn job(client: &Client, command: JobCommand) -> Result<ExitCode, Error> {
    match command {
        JobCommand::Submit(args) => submit(client, args).await,
        JobCommand::Show { id } => {
            let job = client.job(&job_id(&id)?).await?;
            let c = &job.task_counts;
            println!("{}  {}  {}", job.id, job.name, job.state);
            let automation =
                job.automation.as_deref().map(|a| format!("  automation {a}")).unwrap_or_default();
            println!("priority {}{automation}", job.priority);
            let s = &job.stats;
            if let Some(first) = &s.first_start_at {
                let parallel = s.parallelism.map(|p| format!(", parallelism {p}")).unwrap_or_default();
                let last = s.last_stop_at.as_deref().unwrap_or("-");
                println!(
                    "ran {first} to {last}: elapsed {} ms, compute {} ms, cpu {}{parallel}",
                    s.elapsed_ms.unwrap_or(0),
                    s.compute_ms,
                    tree::cpu(s.cpu_us)
                );
            }
            println!(
                "cluster {}  submitted {}  tasks {} (queued {}, running {}, computed {}, failed {}{})",
                job.cluster,
                job.submitted_at,
                c.total,
                c.queued,
                c.running,
                c.computed,
                c.failed,
                optional_counts(c)
            );
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Cancel { id, force } => {
            let job = client.cancel(&job_id(&id)?, force).await?;
            println!("job {} {}", job.id, job.state);
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Watch { id } => wait(client, &job_id(&id)?).await,
        JobCommand::Delete { id } => {
            client.delete_job(&job_id(&id)?).await?;
            println!("job {id} deleted");
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Diagram { id, output, theme } => {
            let svg = client.diagram(&job_id(&id)?, &theme).await?;
            let file = |source| Error::File { path: output.display().to_string(), source };
            std::fs::write(&output, svg).map_err(file)?;
            println!("wrote {}", output.display());
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Retry { id } => {
            let retried = client.retry(&job_id(&id)?).await?;
            println!("job {} {}: {} task(s) re-queued", retried.job.id, retried.job.state, retried.requeued);
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Clone { id, name, input, max_retries } => {
            let input: Option<serde_json::Value> = match input {
                Some(raw) => Some(
                    serde_json::from_str(&raw)
                        .map_err(|e| Error::Usage(format!("--input is not valid JSON: {e}")))?,
                ),
                None => None,
            };
            let body = json!({"name": name, "input": input, "max_retries": max_retries});
            let job = client.clone_job(&job_id(&id)?, &body).await?;
            println!("{}", job.id);
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::List(args) => list(client, args).await,
        JobCommand::Output { id, task } => {
            let task = task.map(|t| job_id(&t)).transpose()?;
            let bytes = client.output(&job_id(&id)?, task.as_deref()).await?;
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)
                .and_then(|()| out.flush())
                .map_err(|e| Error::Usage(format!("stdout: {e}")))?;
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Tasks { id } => {
            print!("{}", tree::render(&client.tasks(&job_id(&id)?).await?));
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Logs { id, task, level, follow } => {
            logs(client, &job_id(&id)?, task.as_deref(), level.as_deref(), follow).await
        }
    }
}

async fn list(client: &Client, args: ListArgs) -> Result<ExitCode, Error> {
    let mut query: Vec<(&str, String)> = Vec::new();
    for (key, value) in [
        ("from", args.since),
        ("to", args.until),
        ("state", args.state),
        ("task_state", args.task_state),
        ("name", args.name),
        ("name_contains", args.name_contains),
        ("from_id", args.from_id),
        ("to_id", args.to_id),
        ("cluster", args.cluster),
        ("automation", args.automation),
        ("order", args.oldest_first.then(|| "asc".to_owned())),
    ] {
        if let Some(v) = value {
            query.push((key, v));
        }
    }
    let mut printed = 0;
    loop {
        let page_size = (args.limit - printed).clamp(1, 1000);
        let mut page_query = query.clone();
        page_query.push(("limit", page_size.to_string()));
        let page = client.jobs(&page_query).await?;
        for job in &page.jobs {
            println!("{}  {:10}  {}  {}", job.id, job.state, job.submitted_at, job.name);
        }
        printed += page.jobs.len();
        match page.next_cursor {
            Some(cursor) if printed < args.limit => {
                query.retain(|(k, _)| *k != "cursor");
                query.push(("cursor", cursor));
            }
            _ => return Ok(ExitCode::SUCCESS),
        }
    }
}

async fn submit(client: &Client, args: SubmitArgs) -> Result<ExitCode, Error> {
    let input: serde_json::Value = serde_json::from_str(&args.input)
        .map_err(|e| Error::Usage(format!("--input is not valid JSON: {e}")))?;
    let body = json!({
        "name": args.name,
        "task": args.task,
        "input": input,
        "cluster": args.cluster,
        "max_retries": args.max_retries,
        "priority": args.priority,
        "more_roots": args.more_roots,
        "backoff": args.backoff.map(|mut b| {
            b["jitter"] = args.jitter.into();
            b
        }),
        "not_before": not_before(args.not_before, args.delay),
        "idempotency_key": args.idempotency_key,
        "traceparent": args.traceparent,
    });
    let job = client.submit(&body).await?;
    println!("{}", job.id);
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    wait(client, &job.id).await
}

/// Shows a progress bar, driven by the job's server-sent events, until the
/// job ends; fails when the job did not complete.
pub async fn wait(client: &Client, id: &str) -> Result<ExitCode, Error> {
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:10} [{bar:40}] {pos}/{len} tasks computed ({elapsed})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    client
        .watch(id, |job| {
            bar.set_length(job.task_counts.total);
            bar.set_position(job.task_counts.computed);
            bar.set_message(job.state.clone());
        })
        .await?;
    bar.finish();
    // The stream ends with the job; read its final state once more.
    let job = client.job(id).await?;
    eprintln!("job {} {}", job.id, job.state);
    Ok(if job.state == "completed" { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
