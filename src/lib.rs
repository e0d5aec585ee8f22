//! fastraid: software RAID with a SIMD core.
//!
//! - [`gf256`]: GF(2^8) arithmetic as Linux md's RAID-6 uses it.
//! - [`kernels`]: the parity and recovery kernels (scalar, SWAR, SSE2, SSSE3, AVX2,
//!   AVX-512) and the run-time choice between them.
//! - [`parity`]: the operations users call (XOR and P+Q generation, checks, recovery),
//!   validated and split across threads.
//! - [`rebuild`]: rebuild or replace one member, checkpointed in md's recovery_offset.
//! - [`layout`]: md's address mapping for every level and layout (RAID-0 zones, 1, 4, 5,
//!   6 incl. DDF and the `-6` layouts, 10 near/far/offset, linear), both directions.
//! - [`md`]: md superblocks (0.90 in both byte orders, 1.0/1.1/1.2): parse, checksum,
//!   serialise, probe.
//! - [`scrub`]: check and repair of md arrays (md's mismatch_cnt, exact ranges, the
//!   RAID-6 member at fault), resumable.
//! - `py` (feature `python`): the PyO3 bindings, `fastraid._core`.

pub mod array;
pub mod assemble;
pub mod create;
pub mod error;
pub mod gf256;
pub mod io;
pub mod kernels;
pub mod layout;
pub mod md;
pub mod parity;
pub mod rebuild;
pub mod reshape;
pub mod resync;
pub mod scrub;
pub mod writer;

#[cfg(feature = "python")]
mod py;

pub use error::{Error, Result};
pub use kernels::Kernel;
