//! The WIT version a component was built against, and calling its `execute`
//! accordingly: 0.4.0, 0.3.0 and 0.2.0 answer an output (their `execute`
//! has one type; 0.3.0 and 0.4.0 changed only host functions), 0.1.0 none. A
//! component exporting the 0.4.0, 0.3.0 or 0.2.0 task interface is run as
//! that version, any other as 0.1.0 (which refuses it, with wasmtime's reason, if it fits
//! none).
//!
//! An output's bytes are checked against [`MAX_TASK_OUTPUT_BYTES`]
//! while wasmtime lifts them, before any is copied out of guest memory (as
//! `listing.rs` bounds a task-type list); the configured, smaller bound is
//! the attempt's record's to apply.

use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{ComponentExportIndex, ComponentType, InstancePre, Lift};
use wasmtime::{Result, Store};

use super::bindings::sandflow::task::types::TaskType as WitTaskType;
use super::bindings::v1;
use super::host::HostState;
use crate::model::{MAX_TASK_OUTPUT_BYTES, Output, TaskType};

/// The task interfaces whose `execute` answers an output, newest first.
const TASK_WITH_OUTPUT: [&str; 3] =
    ["sandflow:task/task@0.4.0", "sandflow:task/task@0.3.0", "sandflow:task/task@0.2.0"];
const TASK_V1: &str = "sandflow:task/task@0.1.0";

/// A module ready to instantiate, in its version.
pub enum Pre {
    /// Built against 0.4.0, 0.3.0 or 0.2.0 (`interface`): `execute`'s export,
    /// looked up once.
    V2 { pre: InstancePre<HostState>, execute: ComponentExportIndex, interface: &'static str },
    /// Built against 0.1.0.
    V1(v1::TaskComponentPre<HostState>),
}

/// An output's bytes as lifted: refused past the ceiling without a copy.
enum Bytes {
    Kept(Vec<u8>),
    TooLarge(usize),
}

unsafe impl ComponentType for Bytes {
    type Lower = <Vec<u8> as ComponentType>::Lower;
    const ABI: CanonicalAbiInfo = <Vec<u8> as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> Result<()> {
        <Vec<u8> as ComponentType>::typecheck(ty, types)
    }
}

unsafe impl Lift for Bytes {
    fn linear_lift_from_flat(cx: &mut LiftContext<'_>, ty: InterfaceType, src: &Self::Lower) -> Result<Self> {
        match src[1].get_u32() as usize {
            len if len > MAX_TASK_OUTPUT_BYTES => Ok(Bytes::TooLarge(len)),
            _ => Vec::<u8>::linear_lift_from_flat(cx, ty, src).map(Bytes::Kept),
        }
    }

    fn linear_lift_from_memory(cx: &mut LiftContext<'_>, ty: InterfaceType, bytes: &[u8]) -> Result<Self> {
        let len = bytes.get(4..8).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
        match len {
            len if len > MAX_TASK_OUTPUT_BYTES => Ok(Bytes::TooLarge(len)),
            _ => Vec::<u8>::linear_lift_from_memory(cx, ty, bytes).map(Bytes::Kept),
        }
    }
}

/// The `output` variant as a guest returns it.
#[derive(ComponentType, Lift)]
#[component(variant)]
enum GuestOutput {
    #[component(name = "none")]
    None,
    #[component(name = "bytes")]
    Bytes(Bytes),
    #[component(name = "of-subtask")]
    OfSubtask(u32),
}

impl Pre {
    /// The version `pre` was built against.
    pub fn new(pre: InstancePre<HostState>) -> Result<Self, String> {
        let component = pre.component();
        let found = TASK_WITH_OUTPUT.into_iter().find_map(|interface| {
            let task = component.get_export_index(None, interface)?;
            Some((component.get_export_index(Some(&task), "execute")?, interface))
        });
        match found {
            Some((execute, interface)) => Ok(Pre::V2 { pre, execute, interface }),
            None => v1::TaskComponentPre::new(pre).map(Pre::V1).map_err(|e| format!("{e:#}")),
        }
    }

    /// The untyped pre-instance (for `task-types`).
    pub fn instance_pre(&self) -> &InstancePre<HostState> {
        match self {
            Pre::V2 { pre, .. } => pre,
            Pre::V1(pre) => pre.instance_pre(),
        }
    }

    /// The name of the task interface it exports.
    pub fn task_interface(&self) -> &'static str {
        match self {
            Pre::V2 { interface, .. } => interface,
            Pre::V1(_) => TASK_V1,
        }
    }

    /// Instantiates the module and runs `execute`: the guest's output, or
    /// its error.
    pub async fn execute(
        &self,
        store: &mut Store<HostState>,
        task_type: &TaskType,
        input: &str,
    ) -> Result<std::result::Result<Output, String>> {
        let (name, version) = (task_type.name.clone(), task_type.version.to_string());
        match self {
            Pre::V2 { pre, execute, .. } => {
                let instance = pre.instantiate_async(&mut *store).await?;
                let func = instance
                    .get_typed_func::<(&WitTaskType, &str), (std::result::Result<GuestOutput, String>,)>(
                        &mut *store,
                        execute,
                    )?;
                let (answer,) = func.call_async(&mut *store, (&WitTaskType { name, version }, input)).await?;
                Ok(answer.map(|output| match output {
                    GuestOutput::None => Output::None,
                    GuestOutput::Bytes(Bytes::Kept(bytes)) => Output::Bytes(bytes),
                    GuestOutput::Bytes(Bytes::TooLarge(len)) => Output::TooLarge(len),
                    GuestOutput::OfSubtask(handle) => Output::OfSubtask(handle),
                }))
            }
            Pre::V1(pre) => {
                let instance = pre.instantiate_async(&mut *store).await?;
                let wit = v1::sandflow::task::types::TaskType { name, version };
                let answer = instance.sandflow_task_task().call_execute(&mut *store, &wit, input).await?;
                Ok(answer.map(|()| Output::None))
            }
        }
    }
}
