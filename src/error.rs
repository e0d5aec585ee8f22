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
    /// A member device or image could not be opened or read (the message names the path).
    Io(String),
    /// A path holds no usable md superblock.
    NotAnArray(String),
    /// The members do not make a usable array (too many missing, members of several
    /// arrays, the same member twice ...).
    Assembly(String),
    /// Something fastraid recognises but does not handle yet (a reshape in progress, ...).
    Unsupported(String),
    /// A member holds an md superblock, a file system or a partition table, and the caller
    /// did not ask to overwrite it (the message says what was found).
    MemberInUse(String),
    /// A long operation was stopped by its progress callback.
    Cancelled(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(m)
            | Error::TooManyFailures(m)
            | Error::UnknownKernel(m)
            | Error::Io(m)
            | Error::NotAnArray(m)
            | Error::Assembly(m)
            | Error::Unsupported(m)
            | Error::MemberInUse(m)
            | Error::Cancelled(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl From<crate::md::Error> for Error {
    fn from(e: crate::md::Error) -> Self {
        match e {
            crate::md::Error::Io { .. } => Error::Io(e.to_string()),
            _ => Error::NotAnArray(e.to_string()),
        }
    }
}

/// Shorthand for an [`Error::InvalidArgument`] with a formatted message.
macro_rules! invalid {
    ($($arg:tt)*) => { $crate::error::Error::InvalidArgument(format!($($arg)*)) };
}
pub(crate) use invalid;
