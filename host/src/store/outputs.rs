//! Reading computed tasks' outputs: a task's own bytes, or, when it left
//! the output of one of its subtasks, that subtask's (followed to the bytes,
//! at most [`MAX_OUTPUT_LINKS`] links).

use super::records::{self, OutputRecord, TaskRecord};
use super::{Error, Store, keys};
use crate::model::{MAX_OUTPUT_LINKS, OutputError, StoredOutput, TaskKey, TaskState};

impl Store {
    /// The output of `key` as kept, if it left one.
    pub fn output(&self, key: TaskKey) -> Result<Option<StoredOutput>, Error> {
        let Some(bytes) = self.kv.get(keys::output(key))? else { return Ok(None) };
        Ok(Some(records::decode::<OutputRecord>("output", &bytes)?.into_output()))
    }

    /// The bytes `key` leaves, `Of` links followed; why there are none.
    pub fn read_output(&self, key: TaskKey) -> Result<Result<Vec<u8>, OutputError>, Error> {
        let mut at = key;
        for _ in 0..=MAX_OUTPUT_LINKS {
            if !self.is_computed(at)? {
                return Ok(Err(OutputError::NotComputed(at.task)));
            }
            match self.output(at)? {
                None => return Ok(Err(OutputError::None(at.task))),
                Some(StoredOutput::Bytes(bytes)) => return Ok(Ok(bytes)),
                Some(StoredOutput::Of(child)) => at = TaskKey { job: key.job, task: child },
            }
        }
        Ok(Err(OutputError::None(at.task)))
    }

    fn is_computed(&self, key: TaskKey) -> Result<bool, Error> {
        let Some(bytes) = self.kv.get(keys::task(key))? else { return Ok(false) };
        let status = records::decode::<TaskRecord>("task", &bytes)?.into_status()?;
        Ok(status.state == TaskState::Computed)
    }
}
