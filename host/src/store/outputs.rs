//! Reading computed tasks' outputs: a task's own bytes, or, when it left
//! the output of one of its subtasks, that subtask's (followed to the bytes,
//! at most [`MAX_OUTPUT_LINKS`] links).

use super::records::{self, OutputRecord, TaskRecord};
use super::{Error, Store, keys};
use crate::model::{MAX_OUTPUT_LINKS, OutputError, StoredOutput, TaskKey, TaskState};

/// Longest a dependency's output is waited for (see
/// [`Store::read_dependency_output`]); a group is applied within
/// milliseconds, so only a read of something that is no dependency waits
/// this long.
pub(super) const SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

impl Store {
    /// The output of `key` as kept, if it left one.
    pub fn output(&self, key: TaskKey) -> Result<Option<StoredOutput>, Error> {
        self.output_within(key, usize::MAX)
    }

    /// [`Store::output`], `None` when its record is over `max` bytes (which
    /// is then not decoded).
    fn output_within(&self, key: TaskKey, max: usize) -> Result<Option<StoredOutput>, Error> {
        let Some(bytes) = self.kv.get(keys::output(key))?.filter(|b| b.len() <= max) else { return Ok(None) };
        Ok(Some(records::decode::<OutputRecord>("output", &bytes)?.into_output()))
    }

    /// The bytes `key` leaves, `Of` links followed; why there are none.
    pub fn read_output(&self, key: TaskKey) -> Result<Result<Vec<u8>, OutputError>, Error> {
        self.follow(key, usize::MAX)
    }

    /// The bytes `key` leaves if they are at most `max` (a larger output is
    /// not copied): for showing an output inline.
    pub fn read_small_output(&self, key: TaskKey, max: usize) -> Result<Option<Vec<u8>>, Error> {
        // A record is its bytes plus a tag and a length of at most 6 bytes;
        // a link is 17.
        let read = self.follow(key, max.max(17) + 6)?;
        Ok(read.ok().filter(|bytes| bytes.len() <= max))
    }

    fn follow(&self, key: TaskKey, max_record: usize) -> Result<Result<Vec<u8>, OutputError>, Error> {
        let mut at = key;
        for _ in 0..=MAX_OUTPUT_LINKS {
            match self.state(at)? {
                None => return Ok(Err(OutputError::NotFound(at.task))),
                Some(TaskState::Computed) => {}
                Some(_) => return Ok(Err(OutputError::NotComputed(at.task))),
            }
            match self.output_within(at, max_record)? {
                None => return Ok(Err(OutputError::None(at.task))),
                Some(StoredOutput::Bytes(bytes)) => return Ok(Ok(bytes)),
                Some(StoredOutput::Of(child)) => at = TaskKey { job: key.job, task: child },
            }
        }
        Ok(Err(OutputError::None(at.task)))
    }

    /// [`Store::read_output`] for a dependency of a task that started: the
    /// writer hands a task out before the group that computed its last
    /// dependency is visible (`scheduler/writer.rs`), so a dependency that
    /// reads as not computed yet is read again after each later group, for
    /// at most [`SETTLE`].
    pub async fn read_dependency_output(&self, key: TaskKey) -> Result<Result<Vec<u8>, OutputError>, Error> {
        let mut applied = self.kv.watch_applied();
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            applied.borrow_and_update();
            match self.read_output(key)? {
                Err(OutputError::NotComputed(_) | OutputError::NotFound(_))
                    if tokio::time::timeout_at(deadline, applied.changed())
                        .await
                        .is_ok_and(|r| r.is_ok()) => {}
                read => return Ok(read),
            }
        }
    }

    /// Where `key` stands, if it exists (its status record alone is read).
    fn state(&self, key: TaskKey) -> Result<Option<TaskState>, Error> {
        let Some(bytes) = self.kv.get(keys::task(key))? else { return Ok(None) };
        Ok(Some(records::decode::<TaskRecord>("task", &bytes)?.into_status()?.state))
    }
}
