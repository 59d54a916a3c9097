//! The glue behind [`export_tasks!`](crate::export_tasks): task-type listing,
//! input decoding and dispatch, panic reporting.

use std::sync::Once;

use crate::bindings::sandflow::task::types::{Output, TaskType};
use crate::{Context, Task};

/// Exports the listed [`Task`] types as this crate's component.
///
/// Use it once per crate: `sandflow_sdk::export_tasks!(Root, Sub, Leaf);`
#[macro_export]
macro_rules! export_tasks {
    ($($task:ty),+ $(,)?) => {
        #[doc(hidden)]
        struct __SandflowTasks;

        impl $crate::bindings::exports::sandflow::task::task::Guest for __SandflowTasks {
            fn task_types() -> ::std::vec::Vec<$crate::bindings::sandflow::task::types::TaskType> {
                ::std::vec![$($crate::__task_types::<$task>()),+]
            }

            fn execute(
                task_type: $crate::bindings::sandflow::task::types::TaskType,
                input: ::std::string::String,
            ) -> ::std::result::Result<$crate::bindings::sandflow::task::types::Output, ::std::string::String> {
                $(
                    if let ::std::option::Option::Some(result) =
                        $crate::__execute::<$task>(&task_type, &input)
                    {
                        return result;
                    }
                )+
                ::std::result::Result::Err(::std::format!(
                    "this component does not implement task type {}@{}",
                    task_type.name, task_type.version
                ))
            }
        }

        // Exported only when building the component; native builds (tests,
        // clippy) type-check the glue without exporting WIT symbols.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_task_component!(__SandflowTasks with_types_in $crate::bindings);
    };
}

/// The WIT identifier of `T`.
#[doc(hidden)]
pub fn __task_types<T: Task>() -> TaskType {
    TaskType { name: T::NAME.to_owned(), version: T::VERSION.to_owned() }
}

/// Runs `T` if `task_type` names it; `None` when it names another type.
#[doc(hidden)]
pub fn __execute<T: Task>(task_type: &TaskType, input: &str) -> Option<Result<Output, String>> {
    if task_type.name != T::NAME || task_type.version != T::VERSION {
        return None;
    }
    install_panic_hook();
    #[cfg(feature = "tracing")]
    crate::trace::install();
    let task: T = match serde_json::from_str(input) {
        Ok(task) => task,
        Err(e) => {
            // No retry makes the same input valid.
            crate::calls::mark_permanent();
            return Some(Err(format!("invalid input for {}: {e}", T::NAME)));
        }
    };
    crate::outputs::reset();
    Some(match task.execute(&Context::new()) {
        Ok(output) => crate::outputs::output_of(&output),
        Err(e) => {
            if e.is_permanent() {
                crate::calls::mark_permanent();
            }
            Err(e.report())
        }
    })
}

/// Prints a panic as one line on stderr, which the host captures and reports
/// as the task's error.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".to_owned());
            let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
            eprintln!("panicked{at}: {message}");
        }));
    });
}
