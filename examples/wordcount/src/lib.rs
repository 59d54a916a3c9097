//! `wordcount`: map-reduce over files in the job cache. `WordCount { texts,
//! top }` puts each text into the cache as a file (`files/0`, `files/1`,
//! ...) and submits one `CountWords` per file (each reads its file and
//! leaves its word counts as its output), and a `Merge` that depends on all
//! of them, reads their outputs and leaves the `top` most frequent words;
//! the root's output is the merge's, so the job's output is the answer.
//!
//! ```json
//! {"texts": ["the cat", "the dog"], "top": 1}  ->  [["the", 2]]
//! ```

use std::collections::BTreeMap;

use sandflow_sdk::{Context, Error, SubtaskHandle, Task};
use serde::{Deserialize, Serialize};

/// The job's root: one mapper per text, one reducer over all of them.
#[derive(Serialize, Deserialize, sandflow_sdk::TaskType)]
pub struct WordCount {
    pub texts: Vec<String>,
    pub top: usize,
}

impl Task for WordCount {
    type Output = ();

    fn execute(&self, ctx: &Context) -> Result<(), Error> {
        ctx.set_display(format!("WordCount({} texts)", self.texts.len()));
        let mut parts = Vec::with_capacity(self.texts.len());
        for (i, text) in self.texts.iter().enumerate() {
            let file = format!("files/{i}");
            ctx.cache().put(&file, text.as_bytes())?;
            parts.push(ctx.submit_subtask(&CountWords { file })?);
        }
        let merge =
            ctx.subtask(&Merge { parts: parts.clone(), top: self.top }).depends_on(&parts).submit()?;
        ctx.output_from(merge);
        Ok(())
    }
}

/// Counts the words of one file of the job cache (lowercased, split on
/// anything that is not a letter or a digit).
#[derive(Serialize, Deserialize, sandflow_sdk::TaskType)]
pub struct CountWords {
    pub file: String,
}

impl Task for CountWords {
    type Output = BTreeMap<String, u64>;

    fn execute(&self, ctx: &Context) -> Result<Self::Output, Error> {
        let bytes =
            ctx.cache().get(&self.file)?.ok_or_else(|| format!("no file {} in the cache", self.file))?;
        let text = String::from_utf8_lossy(&bytes);
        let mut counts = BTreeMap::new();
        for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            *counts.entry(word.to_lowercase()).or_insert(0) += 1;
        }
        Ok(counts)
    }
}

/// Sums the counts its dependencies left and keeps the `top` words, most
/// frequent first (ties in alphabetical order).
#[derive(Serialize, Deserialize, sandflow_sdk::TaskType)]
pub struct Merge {
    pub parts: Vec<SubtaskHandle>,
    pub top: usize,
}

impl Task for Merge {
    type Output = Vec<(String, u64)>;

    fn execute(&self, ctx: &Context) -> Result<Self::Output, Error> {
        let mut total: BTreeMap<String, u64> = BTreeMap::new();
        for part in &self.parts {
            for (word, n) in ctx.output_of::<BTreeMap<String, u64>>(*part)? {
                *total.entry(word).or_insert(0) += n;
            }
        }
        ctx.info("merged").field("parts", self.parts.len()).field("words", total.len());
        let mut ranked: Vec<(String, u64)> = total.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranked.truncate(self.top);
        Ok(ranked)
    }
}

sandflow_sdk::export_tasks!(WordCount, CountWords, Merge);
