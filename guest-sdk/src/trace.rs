//! Forwarding of the `tracing` crate (feature `tracing`): a task may log with
//! `tracing::info!(title = %t, "fetched")` and open spans with
//! `tracing::info_span!("fetch", url = %u).entered()`; events become the
//! task's log lines (fields included) and spans its trace spans, exactly as
//! through [`Context`](crate::Context). The subscriber is installed before
//! the first task runs. Fields recorded into an entered span later
//! (`span.record("hits", n)`) are given to its open host span (`span-set`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use crate::bindings::sandflow::task::host::Level as HostLevel;
use crate::bindings::sandflow::task::types::Field as HostField;
use crate::calls as host;

/// Collects an event's or span's fields; `message` apart.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    fields: Vec<HostField>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.push(field, format!("{value:?}"));
    }
}

impl Fields {
    fn push(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = Some(value);
        } else {
            self.fields.push(HostField { key: field.name().to_owned(), value });
        }
    }
}

/// A span known to the subscriber: created, perhaps entered.
struct Known {
    name: &'static str,
    fields: Vec<HostField>,
    /// The host's span ids of its open entries.
    entered: Vec<u64>,
}

/// Forwards to the host. A task runs on one thread, so state is
/// thread-local.
struct HostSubscriber;

thread_local! {
    static SPANS: RefCell<HashMap<u64, Known>> = RefCell::new(HashMap::new());
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn level(l: &Level) -> HostLevel {
    match *l {
        Level::TRACE => HostLevel::Trace,
        Level::DEBUG => HostLevel::Debug,
        Level::INFO => HostLevel::Info,
        Level::WARN => HostLevel::Warn,
        _ => HostLevel::Error,
    }
}

impl Subscriber for HostSubscriber {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Fields::default();
        span.record(&mut fields);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let known = Known { name: span.metadata().name(), fields: fields.fields, entered: Vec::new() };
        SPANS.with(|s| s.borrow_mut().insert(id, known));
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        SPANS.with(|s| {
            if let Some(known) = s.borrow_mut().get_mut(&span.into_u64()) {
                // Recorded while entered: the host's open span gets them too.
                if let Some(&open) = known.entered.last() {
                    host::span_set(open, &fields.fields);
                }
                known.fields.extend(fields.fields);
            }
        });
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let message = fields.message.unwrap_or_default();
        host::log(level(event.metadata().level()), &message, &fields.fields);
    }

    fn enter(&self, span: &Id) {
        SPANS.with(|s| {
            if let Some(known) = s.borrow_mut().get_mut(&span.into_u64()) {
                known.entered.push(host::span_enter(known.name, &known.fields));
            }
        });
    }

    fn exit(&self, span: &Id) {
        SPANS.with(|s| {
            if let Some(id) = s.borrow_mut().get_mut(&span.into_u64()).and_then(|k| k.entered.pop()) {
                host::span_exit(id);
            }
        });
    }

    fn try_close(&self, span: Id) -> bool {
        SPANS.with(|s| s.borrow_mut().remove(&span.into_u64()));
        true
    }
}

/// Installs the forwarding subscriber, once.
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = tracing::subscriber::set_global_default(HostSubscriber);
    });
}
