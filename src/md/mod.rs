//! Linux md (software RAID) superblocks: parse, verify, build and serialise them.
//!
//! md writes one superblock on every member device. Two families exist
//! (`shared/docs/md-format.md` §1–§3):
//!
//! * **Version 1** ([`v1`]): little-endian, 256 fixed bytes followed by a `dev_roles[]`
//!   table. The minor version only says *where* it lives: 1.1 at device sector 0, 1.2 at
//!   sector 8 (byte 4096), 1.0 near the end of the device (`(N − 16) & !7`). The block
//!   records its own location in `super_offset`, which is how a candidate is matched to
//!   the place it was found.
//! * **Version 0.90** ([`v090`]): 4 KiB of 32-bit words in the *writing host's* byte
//!   order, 64 KiB before the 64 KiB-rounded end of the device; data starts at sector 0.
//!
//! The layers, bottom up:
//!
//! * [`v1::SuperblockV1`] and [`v090::SuperblockV090`] are faithful images of the on-disk
//!   structures: every field (padding and reserved words included) is kept, so
//!   `parse → to_bytes` gives back the original bytes. Parsing checks only what is needed
//!   to read the structure at all (length, magic, major version, table size); the rules
//!   the kernel applies before it trusts a superblock are reported separately by
//!   `problems()` so that an `examine` tool can still show a damaged superblock.
//! * [`Superblock`] joins both families, and [`MemberInfo`] is the version-independent
//!   view that assembly needs: array UUID, role, events, geometry in bytes/sectors,
//!   validity windows and reshape state.
//! * [`probe`] reads every candidate location of a device through a caller-supplied
//!   `read_at` function and reports each superblock it finds ([`Found`]).
//!
//! Nothing here panics on malformed input: every decoder works on bounds-checked slices
//! and returns [`Error`]. The code is written from the format description in
//! `shared/docs/md-format.md`, not from the kernel or mdadm sources.

use std::fmt;
use std::io;

pub mod bitmap;
pub mod superblock;
pub mod v090;
pub mod v1;

pub use superblock::{
    preferred, probe, BadBlock, BadBlockLog, Found, Location, MdTime, MemberInfo, Reshape, Role,
    SlotState, Superblock,
};
pub use v090::{ByteOrder, ChecksumMatch, DiskDescriptor, SuperblockV090};
pub use v1::{FeatureMap, SuperblockV1};

/// `MD_SB_MAGIC`, shared by both superblock families.
pub const MD_SB_MAGIC: u32 = 0xa92b_4efc;

/// md's "no checkpoint / clean / nothing pending" value for 64-bit sector fields.
pub const MAX_SECTOR: u64 = u64::MAX;

/// Bytes md reads for one superblock, whatever its version.
pub const SUPERBLOCK_BYTES: usize = 4096;

/// A random UUID (array or device), from the kernel's random source.
pub fn random_uuid() -> io::Result<[u8; 16]> {
    use std::io::Read;
    let mut u = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut u)?;
    Ok(u)
}

/// Bytes per md sector (md counts in 512-byte units whatever the device's block size).
pub const SECTOR_BYTES: u64 = 512;

/// Everything that can go wrong while reading, checking or writing a superblock.
///
/// The same type serves for hard parse failures (the bytes are not a superblock) and for
/// the softer validity rules reported by `problems()` (the kernel would refuse it).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The buffer is shorter than the structure it should hold.
    TooShort { needed: usize, got: usize },
    /// The first word is not `MD_SB_MAGIC` (in any byte order the format allows).
    BadMagic { found: u32 },
    /// The magic matched but the major version is not the one this decoder handles.
    UnsupportedVersion { major: u32, expected: u32 },
    /// v1 `max_dev` larger than the 1920 entries that fit in 4 KiB.
    TooManyDevices { max_dev: u32, limit: u32 },
    /// The stored checksum does not match the one computed from the bytes.
    Checksum { stored: u32, computed: u32 },
    /// v1 `super_offset` differs from the sector where the block was found.
    SuperOffsetMismatch { recorded: u64, expected: u64 },
    /// v1 `feature_map` has bits the kernel does not know (it refuses such members).
    UnknownFeatures { bits: u32 },
    /// A field the format requires to be zero is not.
    NonZeroPadding { field: &'static str },
    /// v1 `data_size` below the kernel's minimum of 10 sectors.
    DataSizeTooSmall { data_size: u64 },
    /// v1.1/1.2 data area (old or new geometry) starts inside the superblock.
    DataOverlapsSuperblock {
        data_start: i128,
        superblock_end: u64,
    },
    /// The device is smaller than the area the superblock describes.
    DeviceTooSmall { needed: u64, device_sectors: u64 },
    /// Bad-block log fields inconsistent with the BAD_BLOCKS feature.
    BadBlockLog { reason: &'static str },
    /// Feature bits or fields that the kernel refuses in combination.
    Incompatible { reason: &'static str },
    /// Serialisation: `max_dev` and the length of `dev_roles` disagree.
    RolesLength { max_dev: u32, roles: usize },
    /// The device is too small to hold a superblock at the requested location.
    NoRoom {
        location: Location,
        device_sectors: u64,
    },
    /// `read_at` failed (kept as kind + message so that `Error` stays `Clone + Eq`).
    Io {
        offset: u64,
        kind: io::ErrorKind,
        message: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TooShort { needed, got } => {
                write!(f, "superblock buffer too short: need {needed} bytes, got {got}")
            }
            Error::BadMagic { found } => {
                write!(f, "bad md magic {found:#010x} (expected {MD_SB_MAGIC:#010x})")
            }
            Error::UnsupportedVersion { major, expected } => {
                write!(f, "unsupported md major version {major} (expected {expected})")
            }
            Error::TooManyDevices { max_dev, limit } => {
                write!(f, "max_dev {max_dev} exceeds the limit of {limit}")
            }
            Error::Checksum { stored, computed } => write!(
                f,
                "superblock checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            Error::SuperOffsetMismatch { recorded, expected } => write!(
                f,
                "super_offset {recorded} does not match the probed location (sector {expected})"
            ),
            Error::UnknownFeatures { bits } => write!(f, "unknown feature bits {bits:#x}"),
            Error::NonZeroPadding { field } => write!(f, "reserved field {field} is not zero"),
            Error::DataSizeTooSmall { data_size } => {
                write!(f, "data_size {data_size} sectors is below the minimum of 10")
            }
            Error::DataOverlapsSuperblock {
                data_start,
                superblock_end,
            } => write!(
                f,
                "data area starts at sector {data_start}, inside the superblock (ends at {superblock_end})"
            ),
            Error::DeviceTooSmall {
                needed,
                device_sectors,
            } => write!(
                f,
                "device of {device_sectors} sectors is too small: the superblock needs {needed}"
            ),
            Error::BadBlockLog { reason } => write!(f, "bad-block log: {reason}"),
            Error::Incompatible { reason } => write!(f, "incompatible superblock: {reason}"),
            Error::RolesLength { max_dev, roles } => write!(
                f,
                "max_dev is {max_dev} but dev_roles has {roles} entries"
            ),
            Error::NoRoom {
                location,
                device_sectors,
            } => write!(
                f,
                "a device of {device_sectors} sectors has no room for a {location} superblock"
            ),
            Error::Io {
                offset,
                kind,
                message,
            } => write!(f, "read at byte {offset} failed ({kind:?}): {message}"),
        }
    }
}

impl std::error::Error for Error {}

// ============================================================================================
// Byte helpers shared by the decoders: bounds are checked by the callers (fixed-size arrays
// or a length test up front); these never index out of range because they use `get`.
// ============================================================================================

pub(crate) fn le_u16(b: &[u8], off: usize) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(off..off + 2) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}

pub(crate) fn le_u32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(off..off + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

pub(crate) fn le_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(off..off + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

pub(crate) fn put(b: &mut [u8], off: usize, src: &[u8]) {
    if let Some(d) = b.get_mut(off..off + src.len()) {
        d.copy_from_slice(src);
    }
}

pub(crate) fn array<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut a = [0u8; N];
    if let Some(s) = b.get(off..off + N) {
        a.copy_from_slice(s);
    }
    a
}

/// Formats a 16-byte UUID the way mdadm prints it: four 8-digit hex groups joined by `:`.
pub fn format_uuid(uuid: &[u8; 16]) -> String {
    let mut s = String::with_capacity(35);
    for (i, b) in uuid.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            s.push(':');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// md's name for a RAID level number (`-4` multipath, `-1` linear, `0`, `1`, `4`, `5`, `6`,
/// `10`), as mdadm prints it; `None` for numbers md does not define.
pub fn level_name(level: i32) -> Option<&'static str> {
    Some(match level {
        -4 => "multipath",
        -1 => "linear",
        0 => "raid0",
        1 => "raid1",
        4 => "raid4",
        5 => "raid5",
        6 => "raid6",
        10 => "raid10",
        _ => return None,
    })
}
