//! `fanout`: a root task fans out into subtasks, each of which submits a leaf
//! and a task that depends on that leaf.
//!
//! `Root { num_subtasks: 5 }` gives 1 + 5 + 10 = 16 tasks: solid parent edges
//! from `Root` to each `Sub` and from each `Sub` to its `Leaf` and `Dependent`,
//! and a dependency edge from each `Dependent` to its `Leaf`. Display names are
//! set the way a diagram should show them (`Root(5)`, `Leaf Nr. 3`).

use sandflow_sdk::{Context, Error, Task};
use serde::{Deserialize, Serialize};

/// The job's root: submits `num_subtasks` [`Sub`] tasks.
#[derive(Serialize, Deserialize, sandflow_sdk::TaskType)]
pub struct Root {
    pub num_subtasks: u32,
}

impl Task for Root {
    type Output = ();

    fn execute(&self, ctx: &Context) -> Result<(), Error> {
        ctx.set_display(format!("Root({})", self.num_subtasks));
        for index in 0..self.num_subtasks {
            ctx.submit_subtask(&Sub { index })?;
        }
        Ok(())
    }
}

/// Submits a [`Leaf`] and a [`Dependent`] that waits for it.
#[derive(Serialize, Deserialize, sandflow_sdk::TaskType)]
pub struct Sub {
    pub index: u32,
}

impl Task for Sub {
    type Output = ();

    fn execute(&self, ctx: &Context) -> Result<(), Error> {
        let leaf = ctx.submit_subtask(&Leaf { index: self.index })?;
        ctx.subtask(&Dependent { index: self.index }).depends_on(&[leaf]).submit()?;
        Ok(())
    }
}

/// A leaf of the graph.
#[derive(Serialize, Deserialize, sandflow_sdk::TaskType)]
pub struct Leaf {
    pub index: u32,
}

impl Task for Leaf {
    type Output = ();

    fn execute(&self, ctx: &Context) -> Result<(), Error> {
        ctx.set_display(format!("Leaf Nr. {}", self.index));
        ctx.info("leaf computed").field("index", self.index);
        Ok(())
    }
}

/// Runs only once its [`Leaf`] is computed.
#[derive(Serialize, Deserialize, sandflow_sdk::TaskType)]
pub struct Dependent {
    pub index: u32,
}

impl Task for Dependent {
    type Output = ();

    fn execute(&self, ctx: &Context) -> Result<(), Error> {
        ctx.info("dependent computed").field("index", self.index);
        Ok(())
    }
}

sandflow_sdk::export_tasks!(Root, Sub, Leaf, Dependent);

#[cfg(test)]
mod tests {
    use sandflow_sdk::testing;

    use super::*;

    #[test]
    fn root_submits_one_sub_per_index() {
        let done = testing::run(&Root { num_subtasks: 3 });
        assert_eq!(done.error, None);
        assert_eq!(done.display.as_deref(), Some("Root(3)"));
        let indexes: Vec<u32> =
            done.subtasks.iter().filter_map(|s| s.task::<Sub>()).map(|s| s.index).collect();
        assert_eq!(indexes, [0, 1, 2]);
    }

    #[test]
    fn a_dependent_waits_for_its_leaf() {
        let done = testing::run(&Sub { index: 7 });
        let [leaf, dependent] = &done.subtasks[..] else { panic!("{:?}", done.subtasks) };
        assert_eq!(leaf.task::<Leaf>().map(|l| l.index), Some(7));
        assert_eq!(dependent.task::<Dependent>().map(|d| d.index), Some(7));
        assert_eq!(dependent.depends_on, [sandflow_sdk::SubtaskHandle::from_raw(0)]);
        let leaf = testing::run(&Leaf { index: 7 });
        assert_eq!(leaf.display.as_deref(), Some("Leaf Nr. 7"));
        assert_eq!(leaf.logs[0].fields, [("index".to_owned(), "7".to_owned())]);
    }
}
