//! `sandflow runner`: a runner process for a host elsewhere. It runs the same
//! runner loop as the host's in-process runners, over a [`RemoteSource`], and
//! stops gracefully: on SIGINT/SIGTERM it stops claiming, lets running tasks
//! finish within `--grace`, then hands back what is left.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use super::RunnerArgs;
use super::client::Error;
use crate::model::{check_cluster, parse_allow_list};
use crate::runner::{self, RemoteSource};
use crate::sandbox::{Limits, Sandbox, Settings};

/// Runs `args` against the host at `server` until a signal ends it.
pub async fn runner(args: RunnerArgs, server: &str, token: Option<String>) -> Result<ExitCode, Error> {
    check_cluster(&args.cluster).map_err(Error::Usage)?;
    let concurrency =
        args.concurrency.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    if concurrency == 0 || concurrency > crate::server::MAX_RUNNERS {
        return Err(Error::Usage(format!("--concurrency must be 1 to {}", crate::server::MAX_RUNNERS)));
    }
    let id =
        args.id.unwrap_or_else(|| format!("runner-{}", &uuid::Uuid::now_v7().simple().to_string()[20..]));
    let source = RemoteSource::new(server, token, args.cluster.clone(), id.clone(), concurrency as u32);
    let source = Arc::new(source.with_host_artifacts(!args.compile_locally));
    // The host's bounds, so what the guests record is checked as there.
    let config = source.fetch_config().await.map_err(|e| Error::Usage(format!("{server}: {e}")))?;
    let limits = Limits {
        timeout: args.task_timeout,
        memory_bytes: (args.memory_limit_mib as usize) << 20,
        bounds: Arc::new(config.bounds),
        ..Limits::default()
    };
    let sandbox = Sandbox::new(Settings {
        cache_dir: args.cache_dir,
        limits,
        max_instances: concurrency as u32 + 4,
        allow_http: Arc::new(parse_allow_list(&args.allow_http).map_err(Error::Usage)?),
        max_task_types: crate::sandbox::MAX_TASK_TYPES,
        compile_with: std::env::current_exe().ok(),
    })?;
    let follower = {
        let (source, sandbox) = (source.clone(), sandbox.clone());
        tokio::spawn(async move { source.follow_interrupts(&sandbox).await })
    };
    let mut loops = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        loops.spawn(runner::run(source.clone(), sandbox.clone()));
    }
    println!("sandflow runner {id} serving cluster {} of {server}", args.cluster);
    let _ = std::io::stdout().flush();
    crate::server::shutdown_signal().await;
    source.stop();
    tracing::info!(grace = ?args.grace, "stopping: no new claims; waiting for running tasks");
    if tokio::time::timeout(args.grace, loops.join_all()).await.is_err() {
        let handed_back = source.release_all().await.unwrap_or(0);
        tracing::warn!(handed_back, "grace period over; unfinished tasks were handed back");
        // Tasks still executing are abandoned with the process.
        std::process::exit(0);
    }
    follower.abort();
    Ok(ExitCode::SUCCESS)
}
