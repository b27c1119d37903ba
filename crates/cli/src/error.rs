//! The usage error: bad flags, host specs, config files or keys, which end the program with
//! exit status 2 (other errors end it with 1).

/// A usage or configuration error: exit status 2.
#[derive(Debug)]
pub struct UsageError(anyhow::Error);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}
impl std::error::Error for UsageError {}

/// `e` as a usage error (exit status 2).
pub fn usage<E: Into<anyhow::Error>>(e: E) -> anyhow::Error {
    anyhow::Error::new(UsageError(e.into()))
}
