//! The core's one error type. Every fallible core function returns [`Result`]; the Python
//! bindings map each variant to a class under `fastraid.FastRaidError` (src/py/errors.rs).

use std::fmt;

/// What went wrong, with the name of the argument at fault where there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// An argument's value is unusable (lengths differ, too few blocks, bad index ...).
    InvalidArgument(String),
    /// More blocks are lost than the parity can rebuild.
    TooManyFailures(String),
    /// A kernel name that does not exist or that this CPU cannot run.
    UnknownKernel(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(m) | Error::TooManyFailures(m) | Error::UnknownKernel(m) => {
                f.write_str(m)
            }
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand for an [`Error::InvalidArgument`] with a formatted message.
macro_rules! invalid {
    ($($arg:tt)*) => { $crate::error::Error::InvalidArgument(format!($($arg)*)) };
}
pub(crate) use invalid;
