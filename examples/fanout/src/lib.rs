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
#[derive(Serialize, Deserialize)]
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
#[derive(Serialize, Deserialize)]
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
#[derive(Serialize, Deserialize)]
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
#[derive(Serialize, Deserialize)]
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
