//! `sandflow automation create|list|show|pause|resume|delete`: schedules
//! that submit jobs.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::Value;

use super::client::{Client, Error};

/// `sandflow automation ...`
#[derive(Debug, Subcommand)]
pub enum AutomationCommand {
    /// Create an automation; prints its id and next firing.
    Create {
        /// Its name (also its jobs' name).
        name: String,
        /// The root task type of its jobs, `Name` or `Name@vX.Y`.
        #[arg(long)]
        task: String,
        /// A cron trigger (repeat for several, at most 32):
        /// `"[CRON_TZ=Zone ]minute hour day month weekday"` or `@daily`.
        #[arg(long = "trigger", required = true)]
        triggers: Vec<String>,
        /// The root task's input, a JSON object (gets `trigger_time`).
        #[arg(long, default_value = "{}")]
        input: String,
        /// The cluster of its root tasks.
        #[arg(long)]
        cluster: Option<String>,
        /// Retries of each root task.
        #[arg(long, default_value_t = 0)]
        max_retries: u32,
        /// Create it paused.
        #[arg(long)]
        paused: bool,
    },
    /// List automations with their next firing.
    List,
    /// Show an automation.
    Show {
        /// Its id.
        id: String,
    },
    /// Stop an automation from firing.
    Pause {
        /// Its id.
        id: String,
    },
    /// Let a paused automation fire again (from now on).
    Resume {
        /// Its id.
        id: String,
    },
    /// Delete an automation.
    Delete {
        /// Its id.
        id: String,
        /// Also cancel the jobs it submitted that have not ended.
        #[arg(long)]
        cancel_jobs: bool,
    },
}

pub async fn run(client: &Client, command: AutomationCommand) -> Result<ExitCode, Error> {
    match command {
        AutomationCommand::Create { name, task, triggers, input, cluster, max_retries, paused } => {
            let input: Value = serde_json::from_str(&input)
                .map_err(|e| Error::Usage(format!("--input is not JSON: {e}")))?;
            let body = serde_json::json!({
                "name": name, "task": task, "triggers": triggers, "input": input,
                "cluster": cluster, "max_retries": max_retries, "paused": paused,
            });
            print_line(&client.create_automation(&body).await?);
        }
        AutomationCommand::List => client.automations().await?.iter().for_each(print_line),
        AutomationCommand::Show { id } => print_details(&client.automation(&id).await?),
        AutomationCommand::Pause { id } => print_line(&client.pause_automation(&id, true).await?),
        AutomationCommand::Resume { id } => print_line(&client.pause_automation(&id, false).await?),
        AutomationCommand::Delete { id, cancel_jobs } => {
            let deleted = client.delete_automation(&id, cancel_jobs).await?;
            let canceled = deleted["canceled_jobs"].as_u64().unwrap_or(0);
            println!("automation {id} deleted; {canceled} of its jobs canceled");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `ID  NAME  next WHEN` (or `paused`).
fn print_line(a: &Value) {
    let field = |k: &str| a[k].as_str().unwrap_or("").to_owned();
    let next = match a["next_scheduled_at"].as_str() {
        _ if a["paused"].as_bool() == Some(true) => "paused".to_owned(),
        Some(at) => format!("next {at}"),
        None => "never fires again".to_owned(),
    };
    println!("{}  {}  {next}", field("id"), field("name"));
}

fn print_details(a: &Value) {
    print_line(a);
    let field = |k: &str| a[k].as_str().unwrap_or("").to_owned();
    println!("  task {} on {}, {} retries", field("task"), field("cluster"), a["max_retries"]);
    println!("  input {}", a["input"]);
    for t in a["triggers"].as_array().into_iter().flatten() {
        println!("  trigger {}", t.as_str().unwrap_or(""));
    }
    let last = a["last_fired_at"].as_str().unwrap_or("never");
    println!("  fired {} jobs, last {last}; created {}", a["fired"], field("created_at"));
}
