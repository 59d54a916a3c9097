//! Why a task failed: [`Error`], a message with the chain of causes that led
//! to it, and [`ResultExt::context`] to add a layer on the way out.

use std::fmt::{self, Display};

/// Why a task failed: a message, and the causes that led to it (outermost
/// first). Every type that implements `Display` (strings, `std::io::Error`,
/// `serde_json::Error`, ...) converts into it, so `?` works on most results;
/// [`ResultExt::context`] keeps a `std::error::Error`'s whole source chain
/// and adds a message of its own. The attempt's error is
/// [`Error::report`]: the message, then one `caused by:` line per cause.
///
/// `Error` does not implement `Display` or `std::error::Error` itself; that
/// is what lets it convert from everything that does (as for `anyhow`).
/// [`Error::into_std`] (or `Box<dyn std::error::Error>::from`) gives a
/// standard error with the same chain of sources.
///
/// An error made [`permanent`](Error::permanent) fails the task at once,
/// whatever retries it has left: for failures no retry can fix, such as
/// invalid input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
    causes: Vec<String>,
    permanent: bool,
}

impl Error {
    /// A permanent error with `message`: the task is not retried.
    pub fn permanent(message: impl Display) -> Error {
        Error { message: message.to_string(), causes: Vec::new(), permanent: true }
    }

    /// This error, made permanent: the task is not retried.
    pub fn into_permanent(mut self) -> Error {
        self.permanent = true;
        self
    }

    /// Whether the task is failed without a retry.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }

    /// The outermost message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// What led to it, outermost first.
    pub fn causes(&self) -> &[String] {
        &self.causes
    }

    /// An error with `error`'s message, its sources' as causes.
    pub fn from_error(error: &(dyn std::error::Error + 'static)) -> Error {
        let mut causes = Vec::new();
        let mut source = error.source();
        while let Some(e) = source {
            causes.push(e.to_string());
            source = e.source();
        }
        Error { message: error.to_string(), causes, permanent: false }
    }

    /// This error with `message` outside it: the old message becomes the
    /// first cause.
    pub fn context(mut self, message: impl Display) -> Error {
        let inner = std::mem::replace(&mut self.message, message.to_string());
        self.causes.insert(0, inner);
        self
    }

    /// The error as the host reports it: the message, then each cause on
    /// a line of its own (`caused by: ...`).
    pub fn report(&self) -> String {
        let mut text = self.message.clone();
        for cause in &self.causes {
            text.push_str("\ncaused by: ");
            text.push_str(cause);
        }
        text
    }

    /// A standard error with this message, whose `source()` chain holds the
    /// causes.
    pub fn into_std(self) -> Box<dyn std::error::Error + Send + Sync> {
        let mut layer: Option<Box<Layer>> = None;
        for message in self.causes.into_iter().rev() {
            layer = Some(Box::new(Layer { message, source: layer }));
        }
        Box::new(Layer { message: self.message, source: layer })
    }
}

impl<E: Display> From<E> for Error {
    fn from(value: E) -> Self {
        Error { message: value.to_string(), causes: Vec::new(), permanent: false }
    }
}

impl From<Error> for Box<dyn std::error::Error + Send + Sync> {
    fn from(error: Error) -> Self {
        error.into_std()
    }
}

/// One message of a chain, as a standard error.
#[derive(Debug)]
struct Layer {
    message: String,
    source: Option<Box<Layer>>,
}

impl Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Layer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|l| l as &(dyn std::error::Error + 'static))
    }
}

/// `.context("what was being done")` on a result: its error, with its
/// source chain, under that message.
pub trait ResultExt<T> {
    /// The error (if any) under `message`.
    fn context(self, message: impl Display) -> Result<T, Error>;

    /// The error (if any) under the message `f` makes, made only on error.
    fn with_context<M: Display>(self, f: impl FnOnce() -> M) -> Result<T, Error>;
}

impl<T, E: std::error::Error + 'static> ResultExt<T> for Result<T, E> {
    fn context(self, message: impl Display) -> Result<T, Error> {
        self.map_err(|e| Error::from_error(&e).context(message))
    }

    fn with_context<M: Display>(self, f: impl FnOnce() -> M) -> Result<T, Error> {
        self.map_err(|e| Error::from_error(&e).context(f()))
    }
}

impl<T> ResultExt<T> for Result<T, Error> {
    fn context(self, message: impl Display) -> Result<T, Error> {
        self.map_err(|e| e.context(message))
    }

    fn with_context<M: Display>(self, f: impl FnOnce() -> M) -> Result<T, Error> {
        self.map_err(|e| e.context(f()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("the catalog could not be read")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn context_keeps_the_source_chain() {
        let failed: Result<(), Outer> = Err(Outer(std::io::Error::other("connection reset")));
        let error = failed.context("fetching page 3").unwrap_err();
        assert_eq!(error.message(), "fetching page 3");
        assert_eq!(error.causes(), ["the catalog could not be read", "connection reset"]);
        assert_eq!(
            error.report(),
            "fetching page 3\ncaused by: the catalog could not be read\ncaused by: connection reset"
        );
        let again = Err::<(), _>(error).context("movie stats").unwrap_err();
        assert_eq!(again.causes().len(), 3);
    }

    #[test]
    fn anything_displayable_converts_and_the_chain_becomes_std_sources() {
        let plain: Error = "no title".into();
        assert_eq!((plain.report().as_str(), plain.causes().len()), ("no title", 0));
        let std = Error::from("outer").context("top").into_std();
        assert_eq!(std.to_string(), "top");
        assert_eq!(std.source().map(|s| s.to_string()).as_deref(), Some("outer"));
    }
}
