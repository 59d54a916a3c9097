//! Reading automations and the jobs they fired. Automations are written by
//! the scheduler's writer through a [`Unit`](super::Unit), like jobs, so a
//! firing and the job it submits commit together.

use std::ops::Bound;

use super::records::{self, AutomationRecord, JobRecord};
use super::{Error, Store, corrupt_key, keys};
use crate::model::{Automation, AutomationId, Job, JobId};

impl Store {
    /// Automation `id`, if stored.
    pub fn automation(&self, id: AutomationId) -> Result<Option<Automation>, Error> {
        let Some(bytes) = self.kv.get(keys::automation(id))? else { return Ok(None) };
        Ok(Some(records::decode::<AutomationRecord>("automation", &bytes)?.into_automation(id)?))
    }

    /// Every automation, oldest first.
    pub fn automations(&self) -> Result<Vec<Automation>, Error> {
        let mut out = Vec::new();
        for item in self.kv.scan_prefix([keys::AUTOMATION]) {
            let (k, v) = item?;
            let id: [u8; 16] =
                k.get(1..).and_then(|b| b.try_into().ok()).ok_or_else(|| corrupt_key("automation"))?;
            let id = AutomationId::from_bytes(id);
            out.push(records::decode::<AutomationRecord>("automation", &v)?.into_automation(id)?);
        }
        Ok(out)
    }

    /// The jobs `automation` fired with ids in `[from, to)` that `keep`
    /// accepts, newest first (or oldest first), at most `limit`: a range
    /// scan over the automation's index of fired jobs.
    pub fn jobs_fired_between(
        &self,
        automation: AutomationId,
        (from, to): (JobId, JobId),
        newest_first: bool,
        limit: usize,
        keep: impl Fn(&Job) -> bool,
    ) -> Result<Vec<Job>, Error> {
        let mut out = Vec::new();
        let range =
            (Bound::Included(keys::fired(automation, from)), Bound::Excluded(keys::fired(automation, to)));
        for item in self.kv.range(range, newest_first) {
            if out.len() >= limit {
                break;
            }
            let (k, _) = item?;
            let id: [u8; 16] =
                k.get(17..33).and_then(|b| b.try_into().ok()).ok_or_else(|| corrupt_key("fired"))?;
            let id = JobId::from_bytes(id);
            let Some(bytes) = self.kv.get(keys::job(id))? else { continue };
            let job = records::decode::<JobRecord>("job", &bytes)?.into_job(id);
            if keep(&job) {
                out.push(job);
            }
        }
        Ok(out)
    }
}
