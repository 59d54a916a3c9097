//! Renders a job's tasks as an indented tree, parents above their subtasks.

use std::collections::HashMap;
use std::fmt::Write;

use crate::api::TaskView;

/// The task tree of one job, one line per task.
pub fn render(tasks: &[TaskView]) -> String {
    let mut children: HashMap<Option<&str>, Vec<&TaskView>> = HashMap::new();
    for t in tasks {
        children.entry(t.parent.as_deref()).or_default().push(t);
    }
    let names: HashMap<&str, &str> = tasks.iter().map(|t| (t.id.as_str(), t.display.as_str())).collect();
    let mut out = String::new();
    for root in children.get(&None).cloned().unwrap_or_default() {
        line(&mut out, root, &names, "", "");
        walk(&mut out, &children, &names, root, "");
    }
    out
}

fn walk(
    out: &mut String,
    children: &HashMap<Option<&str>, Vec<&TaskView>>,
    names: &HashMap<&str, &str>,
    parent: &TaskView,
    indent: &str,
) {
    let kids = children.get(&Some(parent.id.as_str())).cloned().unwrap_or_default();
    for (i, kid) in kids.iter().enumerate() {
        let last = i + 1 == kids.len();
        line(out, kid, names, indent, if last { "└── " } else { "├── " });
        let deeper = format!("{indent}{}", if last { "    " } else { "│   " });
        walk(out, children, names, kid, &deeper);
    }
}

fn line(out: &mut String, t: &TaskView, names: &HashMap<&str, &str>, indent: &str, branch: &str) {
    let display = t.display.replace('\n', " / ");
    let optional = if t.optional { " optional" } else { "" };
    let (state, name, version) = (&t.state, &t.task_type.name, &t.task_type.version);
    let _ = write!(out, "{indent}{branch}{display}  [{state}{optional}]  {name}@{version}");
    if !t.depends_on.is_empty() {
        let deps: Vec<String> =
            t.depends_on.iter().map(|d| names.get(d.as_str()).unwrap_or(&"?").replace('\n', " / ")).collect();
        let _ = write!(out, "  (after {})", deps.join(", "));
    }
    if let Some(at) = &t.not_before {
        let _ = write!(out, "  waits until {at}");
    }
    if let Some(u) = &t.usage {
        let _ = write!(out, "  cpu {}  mem {}", cpu(u.cpu_us), mib(u.peak_memory_bytes));
    }
    if let Some(e) = &t.error {
        let _ = write!(out, "  error: {}", e.lines().next().unwrap_or(""));
    }
    out.push('\n');
}

/// CPU µs as milliseconds, `1.25 ms`.
pub fn cpu(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

/// Bytes as MiB, `2.0 MiB`.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}
