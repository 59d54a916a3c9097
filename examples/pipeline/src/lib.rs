//! `pipeline`: parallel downloads, a merge that waits for all of them, and a
//! report that waits for the merge.
//!
//! `Pipeline { sources: ["a", "b", "c"] }` submits one `Download` per source,
//! a `Merge` depending on every download and a `Report` depending on the merge.
//! The downloads run in parallel; each task logs with structured fields and
//! traces its work in a span.

use sandflow_sdk::{Context, Error, Task};
use serde::{Deserialize, Serialize};

/// The job's root: lays out the pipeline.
#[derive(Serialize, Deserialize, sandflow_sdk::TaskType)]
pub struct Pipeline {
    pub sources: Vec<String>,
}

impl Task for Pipeline {
    type Output = ();

    fn execute(&self, ctx: &Context) -> Result<(), Error> {
        if self.sources.is_empty() {
            return Err("a pipeline needs at least one source".into());
        }
        ctx.set_display(format!("Pipeline({} sources)", self.sources.len()));
        let mut downloads = Vec::with_capacity(self.sources.len());
        for source in &self.sources {
            downloads.push(ctx.submit_subtask(&Download { source: source.clone() })?);
        }
        let merge = ctx.subtask(&Merge { parts: self.sources.len() }).depends_on(&downloads).submit()?;
        ctx.subtask(&Report {}).depends_on(&[merge]).submit()?;
        ctx.info("pipeline planned").field("downloads", downloads.len());
        Ok(())
    }
}

/// Fetches one source (simulated: the work is a checksum of its name).
#[derive(Serialize, Deserialize, sandflow_sdk::TaskType)]
pub struct Download {
    pub source: String,
}

impl Task for Download {
    type Output = ();

    fn execute(&self, ctx: &Context) -> Result<(), Error> {
        ctx.set_display(format!("Download\n{}", self.source));
        let _span = ctx.span("download").attr("source", &self.source).enter();
        let checksum = self.source.bytes().fold(0u32, |acc, b| acc.rotate_left(5) ^ u32::from(b));
        ctx.info("downloaded").field("source", &self.source).field("checksum", checksum);
        Ok(())
    }
}

/// Merges the downloaded parts.
#[derive(Serialize, Deserialize, sandflow_sdk::TaskType)]
pub struct Merge {
    pub parts: usize,
}

impl Task for Merge {
    type Output = ();

    fn execute(&self, ctx: &Context) -> Result<(), Error> {
        ctx.info("merged").field("parts", self.parts);
        Ok(())
    }
}

/// Writes the final report.
#[derive(Serialize, Deserialize, sandflow_sdk::TaskType)]
pub struct Report {}

impl Task for Report {
    type Output = ();

    fn execute(&self, ctx: &Context) -> Result<(), Error> {
        ctx.info("report written").field("job", ctx.job_id());
        Ok(())
    }
}

sandflow_sdk::export_tasks!(Pipeline, Download, Merge, Report);
