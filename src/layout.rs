//! Address mapping for Linux md arrays: where each array sector lives on the members,
//! and what each member sector holds (`../shared/docs/md-format.md` §5).
//!
//! A [`Geometry`] is built once from the superblock's numbers and validated; after that
//! every mapping is plain integer arithmetic that cannot overflow or panic. All sectors are
//! 512 bytes and member sectors are relative to the member's `data_offset` (the caller adds
//! it).
//!
//! The levels, briefly:
//!
//! * **Linear (−1)**: members concatenated in slot order, each rounded down to the chunk
//!   size when one is recorded (the chunk is only a rounding unit here).
//! * **RAID0**: chunks dealt round-robin over the members. Members of unequal size make
//!   *zones*: zone 0 stripes over every member up to the smallest one's size, each further
//!   zone over the members that are still larger. In zones after the first the member is
//!   chosen from the array chunk number ("original", layout 1, kernels before 3.14) or from
//!   the zone-relative chunk number ("alternate", layout 2); see [`Raid0Layout`].
//! * **RAID1**: every member holds the whole array.
//! * **RAID4/5/6**: the array is cut into stripes of `D = n − m` data chunks (m = 1 or 2
//!   parity chunks); stripe `s` occupies device chunk `s` on every member. The layout number
//!   says which member holds P (and Q) in each stripe and where data index `d` goes; see
//!   [`Raid5Layout`] and [`Raid6Layout`]. RAID6's Q syndrome weighs each data block by
//!   `g^slot`, and the *slot* order is by member position, not by data index: md's own
//!   layouts walk the members from just after Q, skipping P and Q (`k = n − 2` slots); the
//!   DDF layouts (8–10) use the member index itself (`k = n` slots, P's and Q's own slots
//!   count as zero blocks). [`StripeRoles`] gives both for a stripe.
//! * **RAID10**: `near` copies of each chunk side by side in RAID0 order, `far` copies
//!   further down every member (a stride of one far region, or one chunk row for the
//!   "offset" layouts), each far copy shifted by `near` members inside its *far set*; see
//!   [`Raid10Layout`].
//!
//! Byte ranges split into per-member pieces with [`Geometry::extents`], which is what the
//! read and write paths use.

use std::fmt;
use std::str::FromStr;

// ================================================================================
// Constants
// ================================================================================

/// Bytes per sector: md counts everything in 512-byte sectors.
pub const SECTOR_SIZE: u64 = 512;

/// Smallest chunk md accepts for RAID4/5/6 and RAID10: one 4 KiB page. Machines with larger
/// pages need larger chunks, so this is the permissive bound.
pub const MIN_CHUNK_SECTORS: u32 = 8;

/// Most members an array can have: a v1 superblock holds at most (4096 − 256) / 2 role
/// entries (`max_dev`).
pub const MAX_RAID_DISKS: u32 = 1920;

/// Most members a RAID6 syndrome can tell apart: Q weighs slot `j` by `g^j` and `g` has
/// order 255 in GF(2^8), so slots must stay below 255.
pub const MAX_SYNDROME_SLOTS: u32 = 255;

// ================================================================================
// Errors
// ================================================================================

/// Why a geometry (or a layout number or name) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GeometryError {
    /// An md level number this module does not map (faulty −5, multipath −4, ...).
    UnknownLevel(i32),
    /// A level name that is not known.
    UnknownLevelName(String),
    /// A layout number that md does not accept for this level.
    InvalidLayout { level: Level, layout: u32 },
    /// A layout name that mdadm does not know for this level.
    UnknownLayoutName { level: Level, name: String },
    /// The layout value is of another level's kind.
    LayoutMismatch { level: Level },
    /// Fewer members than the level needs.
    TooFewDisks {
        level: Level,
        raid_disks: u32,
        min: u32,
    },
    /// More members than a superblock (or, for RAID6, the syndrome) can describe.
    TooManyDisks {
        level: Level,
        raid_disks: u32,
        max: u32,
    },
    /// The chunk size is not acceptable for this level.
    BadChunk {
        level: Level,
        chunk_sectors: u32,
        reason: &'static str,
    },
    /// RAID0 and linear need one size per member.
    MemberCount { raid_disks: u32, got: usize },
    /// RAID10 copies (`near × far`) must be 2 ..= raid_disks.
    Raid10Copies { copies: u32, raid_disks: u32 },
    /// A RAID10 layout the kernel would decode but that stores two blocks in one place
    /// (a far-set variant whose shift is not a permutation, or offset copies whose near
    /// groups wrap rows).
    Raid10Collision { layout: u32, raid_disks: u32 },
    /// A multi-zone RAID0 array whose superblock does not say which zone layout it uses
    /// (v0.90, or v1 without the RAID0_LAYOUT feature); try both explicitly.
    Raid0LayoutUnknown,
    /// Sizes so large that the array's byte size would not fit in a `u64`.
    Overflow,
}

impl fmt::Display for GeometryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownLevel(l) => write!(f, "unsupported md level {l}"),
            Self::UnknownLevelName(n) => write!(f, "unknown RAID level name {n:?}"),
            Self::InvalidLayout { level, layout } => {
                write!(f, "layout {layout} is not valid for {level}")
            }
            Self::UnknownLayoutName { level, name } => {
                write!(f, "unknown layout name {name:?} for {level}")
            }
            Self::LayoutMismatch { level } => write!(f, "layout is not a {level} layout"),
            Self::TooFewDisks {
                level,
                raid_disks,
                min,
            } => {
                write!(f, "{level} needs at least {min} members, got {raid_disks}")
            }
            Self::TooManyDisks {
                level,
                raid_disks,
                max,
            } => {
                write!(
                    f,
                    "{level} supports at most {max} members, got {raid_disks}"
                )
            }
            Self::BadChunk {
                level,
                chunk_sectors,
                reason,
            } => {
                write!(
                    f,
                    "chunk of {chunk_sectors} sectors is not valid for {level}: {reason}"
                )
            }
            Self::MemberCount { raid_disks, got } => {
                write!(f, "expected {raid_disks} member sizes, got {got}")
            }
            Self::Raid10Copies { copies, raid_disks } => {
                write!(
                    f,
                    "raid10 with {copies} copies needs 2..={raid_disks} copies"
                )
            }
            Self::Raid10Collision { layout, raid_disks } => write!(
                f,
                "raid10 layout {layout:#x} on {raid_disks} members puts two blocks in one place"
            ),
            Self::Raid0LayoutUnknown => f.write_str(
                "raid0 with several zones needs its layout (original or alternate) stated",
            ),
            Self::Overflow => f.write_str("array size overflows 64 bits"),
        }
    }
}

impl std::error::Error for GeometryError {}

/// Why an address could not be mapped on a valid geometry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MapError {
    /// The array range reaches past the end of the array (offsets in the unit asked for:
    /// sectors for sector calls, bytes for [`Geometry::extents`]).
    OutOfRange { offset: u64, len: u64, size: u64 },
    /// A member index at or past `raid_disks`.
    NoSuchMember { member: u32, raid_disks: u32 },
    /// A stripe number at or past the number of stripes.
    NoSuchStripe { stripe: u64, stripes: u64 },
    /// A stripe question asked of a level without parity.
    NotParityLevel(Level),
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfRange { offset, len, size } => {
                write!(f, "range {offset}+{len} is outside the array of {size}")
            }
            Self::NoSuchMember { member, raid_disks } => {
                write!(
                    f,
                    "member {member} does not exist (raid_disks {raid_disks})"
                )
            }
            Self::NoSuchStripe { stripe, stripes } => {
                write!(f, "stripe {stripe} does not exist ({stripes} stripes)")
            }
            Self::NotParityLevel(l) => write!(f, "{l} has no parity stripes"),
        }
    }
}

impl std::error::Error for MapError {}

impl From<GeometryError> for crate::error::Error {
    fn from(e: GeometryError) -> Self {
        crate::error::Error::InvalidArgument(e.to_string())
    }
}

impl From<MapError> for crate::error::Error {
    fn from(e: MapError) -> Self {
        crate::error::Error::InvalidArgument(e.to_string())
    }
}

fn overflow<T>(v: Option<T>) -> Result<T, GeometryError> {
    v.ok_or(GeometryError::Overflow)
}

// ================================================================================
// Level
// ================================================================================

/// A RAID level, with md's numbers (`level` in the superblock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    Linear,
    Raid0,
    Raid1,
    Raid4,
    Raid5,
    Raid6,
    Raid10,
}

impl Level {
    /// Every level, in md number order.
    pub const ALL: [Level; 7] = [
        Level::Linear,
        Level::Raid0,
        Level::Raid1,
        Level::Raid4,
        Level::Raid5,
        Level::Raid6,
        Level::Raid10,
    ];

    /// md's number: −1, 0, 1, 4, 5, 6, 10.
    pub const fn md_number(self) -> i32 {
        match self {
            Level::Linear => -1,
            Level::Raid0 => 0,
            Level::Raid1 => 1,
            Level::Raid4 => 4,
            Level::Raid5 => 5,
            Level::Raid6 => 6,
            Level::Raid10 => 10,
        }
    }

    /// The level for md's number.
    pub fn from_md(level: i32) -> Result<Level, GeometryError> {
        Level::ALL
            .into_iter()
            .find(|l| l.md_number() == level)
            .ok_or(GeometryError::UnknownLevel(level))
    }

    /// mdadm's name: `linear`, `raid0` ... `raid10`.
    pub const fn name(self) -> &'static str {
        match self {
            Level::Linear => "linear",
            Level::Raid0 => "raid0",
            Level::Raid1 => "raid1",
            Level::Raid4 => "raid4",
            Level::Raid5 => "raid5",
            Level::Raid6 => "raid6",
            Level::Raid10 => "raid10",
        }
    }

    /// Parity chunks per stripe: 1 for RAID4/5, 2 for RAID6, 0 otherwise.
    pub const fn parity_disks(self) -> u32 {
        match self {
            Level::Raid4 | Level::Raid5 => 1,
            Level::Raid6 => 2,
            _ => 0,
        }
    }

    /// Fewest members md builds this level with.
    pub const fn min_disks(self) -> u32 {
        match self {
            Level::Linear | Level::Raid0 | Level::Raid1 => 1,
            Level::Raid4 | Level::Raid5 | Level::Raid10 => 2,
            Level::Raid6 => 4,
        }
    }
}

impl TryFrom<i32> for Level {
    type Error = GeometryError;
    fn try_from(level: i32) -> Result<Self, Self::Error> {
        Level::from_md(level)
    }
}

impl From<Level> for i32 {
    fn from(level: Level) -> i32 {
        level.md_number()
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Level {
    type Err = GeometryError;
    /// mdadm's spellings: `linear`, `raid0`/`0`/`stripe`, `raid1`/`1`/`mirror`, `raid4`/`4`,
    /// `raid5`/`5`, `raid6`/`6`, `raid10`/`10` (ASCII case ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let l = s.to_ascii_lowercase();
        Ok(match l.as_str() {
            "linear" | "-1" => Level::Linear,
            "raid0" | "0" | "stripe" => Level::Raid0,
            "raid1" | "1" | "mirror" => Level::Raid1,
            "raid4" | "4" => Level::Raid4,
            "raid5" | "5" => Level::Raid5,
            "raid6" | "6" => Level::Raid6,
            "raid10" | "10" => Level::Raid10,
            _ => return Err(GeometryError::UnknownLevelName(s.to_owned())),
        })
    }
}

// ================================================================================
// Layouts
// ================================================================================

/// Find a name in a `(name, number)` table, ignoring ASCII case.
fn lookup_name(table: &[(&str, u32)], name: &str) -> Option<u32> {
    table
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, v)| v)
}

/// RAID5 layouts (md's `ALGORITHM_*` numbers 0–5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Raid5Layout {
    /// 0: P rotates from the last member leftwards; data fills the other members in order.
    LeftAsymmetric,
    /// 1: P rotates from the first member rightwards; data in member order.
    RightAsymmetric,
    /// 2 (mdadm's default): P rotates leftwards; data starts just after P and wraps.
    LeftSymmetric,
    /// 3: P rotates rightwards; data starts just after P and wraps.
    RightSymmetric,
    /// 4: P always on member 0 (RAID4-like).
    ParityFirst,
    /// 5: P always on the last member (RAID4-like).
    ParityLast,
}

const RAID5_NAMES: [(&str, u32); 6] = [
    ("left-asymmetric", 0),
    ("right-asymmetric", 1),
    ("left-symmetric", 2),
    ("right-symmetric", 3),
    ("parity-first", 4),
    ("parity-last", 5),
];

/// Extra names mdadm accepts for RAID5 (`maps.c: r5layout`), the ddf ones mapped onto the
/// md layout with the same placement.
const RAID5_ALIASES: [(&str, u32); 8] = [
    ("la", 0),
    ("ra", 1),
    ("ls", 2),
    ("rs", 3),
    ("default", 2),
    ("ddf-zero-restart", 1),
    ("ddf-N-restart", 0),
    ("ddf-N-continue", 2),
];

impl Raid5Layout {
    pub const ALL: [Raid5Layout; 6] = [
        Raid5Layout::LeftAsymmetric,
        Raid5Layout::RightAsymmetric,
        Raid5Layout::LeftSymmetric,
        Raid5Layout::RightSymmetric,
        Raid5Layout::ParityFirst,
        Raid5Layout::ParityLast,
    ];

    pub const fn md_number(self) -> u32 {
        match self {
            Raid5Layout::LeftAsymmetric => 0,
            Raid5Layout::RightAsymmetric => 1,
            Raid5Layout::LeftSymmetric => 2,
            Raid5Layout::RightSymmetric => 3,
            Raid5Layout::ParityFirst => 4,
            Raid5Layout::ParityLast => 5,
        }
    }

    pub fn from_md(layout: u32) -> Option<Raid5Layout> {
        Raid5Layout::ALL
            .into_iter()
            .find(|l| l.md_number() == layout)
    }

    /// mdadm's name (`left-symmetric` ...).
    pub fn name(self) -> &'static str {
        RAID5_NAMES[self.md_number() as usize].0
    }

    /// Parse mdadm's names and aliases (`ls`, `default`, the `ddf-*` names).
    pub fn from_name(name: &str) -> Option<Raid5Layout> {
        lookup_name(&RAID5_NAMES, name)
            .or_else(|| lookup_name(&RAID5_ALIASES, name))
            .and_then(Raid5Layout::from_md)
    }
}

/// RAID6 layouts: md's 0–5, the DDF layouts 8–10 and the RAID5-takeover layouts 16–20.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Raid6Layout {
    LeftAsymmetric,
    RightAsymmetric,
    LeftSymmetric,
    RightSymmetric,
    ParityFirst,
    ParityLast,
    /// 8, DDF ROTATING_ZERO_RESTART.
    DdfZeroRestart,
    /// 9, DDF ROTATING_N_RESTART.
    DdfNRestart,
    /// 10, DDF ROTATING_N_CONTINUE.
    DdfNContinue,
    /// 16–20: the RAID5 layout of the same name on the first `n − 1` members, Q on the last.
    LeftAsymmetric6,
    RightAsymmetric6,
    LeftSymmetric6,
    RightSymmetric6,
    ParityFirst6,
}

const RAID6_NAMES: [(&str, u32); 14] = [
    ("left-asymmetric", 0),
    ("right-asymmetric", 1),
    ("left-symmetric", 2),
    ("right-symmetric", 3),
    ("parity-first", 4),
    ("parity-last", 5),
    ("ddf-zero-restart", 8),
    ("ddf-N-restart", 9),
    ("ddf-N-continue", 10),
    ("left-asymmetric-6", 16),
    ("right-asymmetric-6", 17),
    ("left-symmetric-6", 18),
    ("right-symmetric-6", 19),
    ("parity-first-6", 20),
];

const RAID6_ALIASES: [(&str, u32); 5] =
    [("la", 0), ("ra", 1), ("ls", 2), ("rs", 3), ("default", 2)];

impl Raid6Layout {
    pub const ALL: [Raid6Layout; 14] = [
        Raid6Layout::LeftAsymmetric,
        Raid6Layout::RightAsymmetric,
        Raid6Layout::LeftSymmetric,
        Raid6Layout::RightSymmetric,
        Raid6Layout::ParityFirst,
        Raid6Layout::ParityLast,
        Raid6Layout::DdfZeroRestart,
        Raid6Layout::DdfNRestart,
        Raid6Layout::DdfNContinue,
        Raid6Layout::LeftAsymmetric6,
        Raid6Layout::RightAsymmetric6,
        Raid6Layout::LeftSymmetric6,
        Raid6Layout::RightSymmetric6,
        Raid6Layout::ParityFirst6,
    ];

    pub const fn md_number(self) -> u32 {
        match self {
            Raid6Layout::LeftAsymmetric => 0,
            Raid6Layout::RightAsymmetric => 1,
            Raid6Layout::LeftSymmetric => 2,
            Raid6Layout::RightSymmetric => 3,
            Raid6Layout::ParityFirst => 4,
            Raid6Layout::ParityLast => 5,
            Raid6Layout::DdfZeroRestart => 8,
            Raid6Layout::DdfNRestart => 9,
            Raid6Layout::DdfNContinue => 10,
            Raid6Layout::LeftAsymmetric6 => 16,
            Raid6Layout::RightAsymmetric6 => 17,
            Raid6Layout::LeftSymmetric6 => 18,
            Raid6Layout::RightSymmetric6 => 19,
            Raid6Layout::ParityFirst6 => 20,
        }
    }

    pub fn from_md(layout: u32) -> Option<Raid6Layout> {
        Raid6Layout::ALL
            .into_iter()
            .find(|l| l.md_number() == layout)
    }

    /// mdadm's name (`left-symmetric`, `ddf-N-continue`, `left-symmetric-6` ...).
    pub fn name(self) -> &'static str {
        let n = self.md_number();
        RAID6_NAMES
            .iter()
            .find(|&&(_, v)| v == n)
            .map_or("", |&(s, _)| s)
    }

    /// Parse mdadm's names and aliases (`ls`, `default`).
    pub fn from_name(name: &str) -> Option<Raid6Layout> {
        lookup_name(&RAID6_NAMES, name)
            .or_else(|| lookup_name(&RAID6_ALIASES, name))
            .and_then(Raid6Layout::from_md)
    }

    /// DDF layouts order syndrome slots by member index (`k = n`).
    pub const fn is_ddf(self) -> bool {
        matches!(
            self,
            Raid6Layout::DdfZeroRestart | Raid6Layout::DdfNRestart | Raid6Layout::DdfNContinue
        )
    }

    /// The RAID5 layout a `-6` layout (16–20) extends with a fixed Q member.
    pub const fn raid5_part(self) -> Option<Raid5Layout> {
        match self {
            Raid6Layout::LeftAsymmetric6 => Some(Raid5Layout::LeftAsymmetric),
            Raid6Layout::RightAsymmetric6 => Some(Raid5Layout::RightAsymmetric),
            Raid6Layout::LeftSymmetric6 => Some(Raid5Layout::LeftSymmetric),
            Raid6Layout::RightSymmetric6 => Some(Raid5Layout::RightSymmetric),
            Raid6Layout::ParityFirst6 => Some(Raid5Layout::ParityFirst),
            _ => None,
        }
    }
}

/// RAID0 zone layout (v1 `layout` with the RAID0_LAYOUT feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Raid0Layout {
    /// Not recorded (layout 0 or −1: v0.90, or v1 without RAID0_LAYOUT). Fine for arrays
    /// whose zones after the first have one member; refused otherwise.
    Unspecified,
    /// 1, RAID0_ORIG_LAYOUT: kernels before 3.14 (mdadm writes this).
    Original,
    /// 2, RAID0_ALT_MULTIZONE_LAYOUT: kernels 3.14 and later without the layout field.
    Alternate,
}

impl Raid0Layout {
    /// 1 or 2; `Unspecified` gives 0.
    pub const fn md_number(self) -> u32 {
        match self {
            Raid0Layout::Unspecified => 0,
            Raid0Layout::Original => 1,
            Raid0Layout::Alternate => 2,
        }
    }

    /// 1 and 2 are the two layouts; anything else (0, −1 as `u32`) is `Unspecified`.
    pub const fn from_md(layout: u32) -> Raid0Layout {
        match layout {
            1 => Raid0Layout::Original,
            2 => Raid0Layout::Alternate,
            _ => Raid0Layout::Unspecified,
        }
    }

    /// `original`, `alternate`, `unspecified`.
    pub const fn name(self) -> &'static str {
        match self {
            Raid0Layout::Unspecified => "unspecified",
            Raid0Layout::Original => "original",
            Raid0Layout::Alternate => "alternate",
        }
    }

    /// `original`/`alternate`, also as mdadm's `--update=layout-original` spelling.
    pub fn from_name(name: &str) -> Option<Raid0Layout> {
        let n = name.to_ascii_lowercase();
        let n = n.strip_prefix("layout-").unwrap_or(&n);
        match n {
            "original" => Some(Raid0Layout::Original),
            "alternate" => Some(Raid0Layout::Alternate),
            "unspecified" => Some(Raid0Layout::Unspecified),
            _ => None,
        }
    }
}

/// The RAID10 layout word: bits 0–7 near copies, 8–15 far copies, 16 offset, 17–18 the
/// far-set variant (0: one set of all members; 1: sets of `n / far`; 2: sets of
/// `far × near`), higher bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Raid10Layout {
    pub near: u8,
    pub far: u8,
    pub offset: bool,
    pub far_set: u8,
}

impl Raid10Layout {
    /// mdadm's `nX`.
    pub const fn near(copies: u8) -> Raid10Layout {
        Raid10Layout {
            near: copies,
            far: 1,
            offset: false,
            far_set: 0,
        }
    }

    /// mdadm's `fX`.
    pub const fn far(copies: u8) -> Raid10Layout {
        Raid10Layout {
            near: 1,
            far: copies,
            offset: false,
            far_set: 0,
        }
    }

    /// mdadm's `oX`.
    pub const fn offset(copies: u8) -> Raid10Layout {
        Raid10Layout {
            near: 1,
            far: copies,
            offset: true,
            far_set: 0,
        }
    }

    /// Total copies of each block (`near × far`).
    pub const fn copies(self) -> u32 {
        self.near as u32 * self.far as u32
    }

    pub const fn md_number(self) -> u32 {
        self.near as u32
            | (self.far as u32) << 8
            | (self.offset as u32) << 16
            | ((self.far_set & 3) as u32) << 17
    }

    /// Decode a layout word; refuses set bits above 18, far-set variant 3 and zero counts.
    pub fn from_md(layout: u32) -> Option<Raid10Layout> {
        let l = Raid10Layout {
            near: (layout & 0xff) as u8,
            far: ((layout >> 8) & 0xff) as u8,
            offset: layout & (1 << 16) != 0,
            far_set: ((layout >> 17) & 3) as u8,
        };
        (layout >> 19 == 0 && l.far_set != 3 && l.near >= 1 && l.far >= 1).then_some(l)
    }

    /// mdadm's short name (`n2`, `f2`, `o2`), where the layout has one.
    pub fn name(self) -> Option<String> {
        if self.far_set != 0 {
            None
        } else if self.far == 1 && !self.offset {
            Some(format!("n{}", self.near))
        } else if self.near == 1 {
            Some(format!(
                "{}{}",
                if self.offset { 'o' } else { 'f' },
                self.far
            ))
        } else {
            None
        }
    }

    /// Parse mdadm's `nX` / `fX` / `oX` (X in 1..=255).
    pub fn from_name(name: &str) -> Option<Raid10Layout> {
        let mut chars = name.chars();
        let kind = chars.next()?.to_ascii_lowercase();
        let digits = chars.as_str();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let copies: u8 = digits.parse().ok().filter(|&c| c >= 1)?;
        match kind {
            'n' => Some(Raid10Layout::near(copies)),
            'f' => Some(Raid10Layout::far(copies)),
            'o' => Some(Raid10Layout::offset(copies)),
            _ => None,
        }
    }
}

impl fmt::Display for Raid10Layout {
    /// The short name, or mdadm `--detail`'s long form (`near=2, far=2`) where none exists.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = self.name() {
            return f.write_str(&n);
        }
        write!(f, "near={}", self.near)?;
        if self.far > 1 {
            write!(
                f,
                ", {}={}",
                if self.offset { "offset" } else { "far" },
                self.far
            )?;
        }
        if self.far_set != 0 {
            write!(f, ", far-set={}", self.far_set)?;
        }
        Ok(())
    }
}

/// A level's layout. Linear, RAID1 and RAID4 have none (md ignores the field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    None,
    Raid0(Raid0Layout),
    Raid5(Raid5Layout),
    Raid6(Raid6Layout),
    Raid10(Raid10Layout),
}

impl Layout {
    /// Decode the superblock's layout word for `level`.
    pub fn from_md(level: Level, layout: u32) -> Result<Layout, GeometryError> {
        let bad = GeometryError::InvalidLayout { level, layout };
        Ok(match level {
            Level::Linear | Level::Raid1 | Level::Raid4 => Layout::None,
            Level::Raid0 => Layout::Raid0(Raid0Layout::from_md(layout)),
            Level::Raid5 => Layout::Raid5(Raid5Layout::from_md(layout).ok_or(bad)?),
            Level::Raid6 => Layout::Raid6(Raid6Layout::from_md(layout).ok_or(bad)?),
            Level::Raid10 => Layout::Raid10(Raid10Layout::from_md(layout).ok_or(bad)?),
        })
    }

    /// The word to store in a superblock (0 for levels without a layout).
    pub fn md_number(self) -> u32 {
        match self {
            Layout::None => 0,
            Layout::Raid0(l) => l.md_number(),
            Layout::Raid5(l) => l.md_number(),
            Layout::Raid6(l) => l.md_number(),
            Layout::Raid10(l) => l.md_number(),
        }
    }

    /// Parse an mdadm layout name for `level`. Levels without a layout accept the empty
    /// string; RAID0 also accepts its number as text; RAID10 `nX`/`fX`/`oX`.
    pub fn from_name(level: Level, name: &str) -> Result<Layout, GeometryError> {
        let bad = || GeometryError::UnknownLayoutName {
            level,
            name: name.to_owned(),
        };
        match level {
            Level::Linear | Level::Raid1 | Level::Raid4 if name.is_empty() => Ok(Layout::None),
            Level::Linear | Level::Raid1 | Level::Raid4 => Err(bad()),
            Level::Raid0 => Raid0Layout::from_name(name)
                .map(Layout::Raid0)
                .ok_or_else(bad),
            Level::Raid5 => Raid5Layout::from_name(name)
                .map(Layout::Raid5)
                .ok_or_else(bad),
            Level::Raid6 => Raid6Layout::from_name(name)
                .map(Layout::Raid6)
                .ok_or_else(bad),
            Level::Raid10 => Raid10Layout::from_name(name)
                .map(Layout::Raid10)
                .ok_or_else(bad),
        }
    }

    /// mdadm's name ("" for levels without a layout).
    pub fn name(self) -> String {
        match self {
            Layout::None => String::new(),
            Layout::Raid0(l) => l.name().to_owned(),
            Layout::Raid5(l) => l.name().to_owned(),
            Layout::Raid6(l) => l.name().to_owned(),
            Layout::Raid10(l) => l.to_string(),
        }
    }

    /// The default layout mdadm picks for a level (left-symmetric, n2, original).
    pub const fn default_for(level: Level) -> Layout {
        match level {
            Level::Linear | Level::Raid1 | Level::Raid4 => Layout::None,
            Level::Raid0 => Layout::Raid0(Raid0Layout::Original),
            Level::Raid5 => Layout::Raid5(Raid5Layout::LeftSymmetric),
            Level::Raid6 => Layout::Raid6(Raid6Layout::LeftSymmetric),
            Level::Raid10 => Layout::Raid10(Raid10Layout::near(2)),
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

// ================================================================================
// Mapping results
// ================================================================================

/// One place on one member: sector relative to the member's data area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    pub member: u32,
    pub dev_sector: u64,
}

/// Where an array sector of a RAID4/5/6 array lives, and its stripe's parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StripeMap {
    /// Stripe number, which is also the device chunk index on every member.
    pub stripe: u64,
    /// Logical data index `d` within the stripe (0 .. data disks).
    pub data_index: u32,
    /// Member holding this data chunk.
    pub data_member: u32,
    pub p_member: u32,
    /// RAID6 only.
    pub q_member: Option<u32>,
    /// Sector on every member of the stripe (data, P and Q are at the same offset).
    pub dev_sector: u64,
    /// RAID6: this data member's syndrome slot (Q weighs it by `g^slot`). RAID4/5: the
    /// data index.
    pub slot: u32,
}

/// What a member holds in one stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Data chunk with logical index `index` and syndrome slot `slot`.
    Data {
        index: u32,
        slot: u32,
    },
    P,
    Q,
}

/// Every member's role in one stripe of a RAID4/5/6 array.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StripeRoles {
    pub stripe: u64,
    pub p_member: u32,
    pub q_member: Option<u32>,
    /// Number of syndrome slots `k`: `n` for DDF layouts, `n − 2` for md's RAID6 layouts,
    /// the data disks (`n − 1`) for RAID4/5.
    pub syndrome_disks: u32,
    /// Indexed by member.
    pub roles: Vec<Role>,
}

impl StripeRoles {
    /// Data members in logical order (`members_by_index()[d]` holds data index d).
    pub fn members_by_index(&self) -> Vec<u32> {
        let mut v: Vec<(u32, u32)> = self
            .roles
            .iter()
            .zip(0u32..)
            .filter_map(|(r, m)| match r {
                Role::Data { index, .. } => Some((*index, m)),
                _ => None,
            })
            .collect();
        v.sort_unstable();
        v.into_iter().map(|(_, m)| m).collect()
    }

    /// For each syndrome slot `0..syndrome_disks`, the data member in it (`None` for the
    /// DDF slots of P and Q, which count as zero blocks).
    pub fn members_by_slot(&self) -> Vec<Option<u32>> {
        let mut v = vec![None; self.syndrome_disks as usize];
        for (r, m) in self.roles.iter().zip(0u32..) {
            if let Role::Data { slot, .. } = r {
                if let Some(e) = v.get_mut(*slot as usize) {
                    *e = Some(m);
                }
            }
        }
        v
    }
}

/// What a member sector holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Content {
    /// (A copy of) this array sector.
    Data { array_sector: u64 },
    /// Parity P of this stripe.
    P { stripe: u64 },
    /// Syndrome Q of this stripe.
    Q { stripe: u64 },
    /// Outside what the array uses (rounding tails, space past the last stripe).
    Unused,
}

/// A contiguous piece of an array byte range on one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Extent {
    /// Array byte offset of the piece.
    pub array_offset: u64,
    /// Bytes.
    pub len: u64,
    pub member: u32,
    /// Byte offset on the member, relative to its data area.
    pub dev_offset: u64,
    /// Which copy this is (0 .. copies) for RAID1/RAID10; 0 for other levels.
    pub copy: u32,
    /// RAID4/5/6: the stripe the piece belongs to.
    pub stripe: Option<u64>,
}

// ================================================================================
// Geometry
// ================================================================================

/// One RAID0 zone.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Zone {
    /// First array sector of the zone.
    start: u64,
    /// One past the last array sector.
    end: u64,
    /// Member sector where the zone begins on each of its members.
    dev_start: u64,
    /// Its members, in slot order.
    members: Vec<u32>,
}

/// Per-level data derived once from the geometry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    /// `ends[i]` = array sector one past member i.
    Linear {
        ends: Vec<u64>,
    },
    Raid0 {
        zones: Vec<Zone>,
        alternate: bool,
    },
    Raid1,
    Parity {
        stripes: u64,
    },
    Raid10 {
        stride: u64,
        array_chunks: u64,
        step: Vec<u32>,
        step_inv: Vec<u32>,
    },
}

/// A validated array geometry: everything needed to map addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geometry {
    level: Level,
    layout: Layout,
    raid_disks: u32,
    chunk_sectors: u32,
    dev_sectors: u64,
    member_sectors: Vec<u64>,
    array_sectors: u64,
    plan: Plan,
}

impl Geometry {
    /// Validate a geometry.
    ///
    /// * `chunk_sectors`: v1 `chunksize` (0.90: `chunk_size / 512`). RAID4/5/6 and RAID10
    ///   need a power of two of at least [`MIN_CHUNK_SECTORS`]; RAID0 any non-zero size;
    ///   linear uses it as a rounding unit (0 = none); RAID1 ignores it.
    /// * `dev_sectors`: per-member usable sectors for levels ≥ 1 (v1 `size`).
    /// * `member_sectors`: each member's own usable size, required (one per member) for
    ///   RAID0 and linear, ignored otherwise.
    pub fn new(
        level: Level,
        layout: Layout,
        raid_disks: u32,
        chunk_sectors: u32,
        dev_sectors: u64,
        member_sectors: &[u64],
    ) -> Result<Geometry, GeometryError> {
        let min = level.min_disks();
        if raid_disks < min {
            return Err(GeometryError::TooFewDisks {
                level,
                raid_disks,
                min,
            });
        }
        let max = match layout {
            Layout::Raid6(l) if l.is_ddf() => MAX_SYNDROME_SLOTS,
            Layout::Raid6(_) => MAX_SYNDROME_SLOTS + 2,
            _ => MAX_RAID_DISKS,
        }
        .min(MAX_RAID_DISKS);
        if raid_disks > max {
            return Err(GeometryError::TooManyDisks {
                level,
                raid_disks,
                max,
            });
        }
        let layout_ok = matches!(
            (level, layout),
            (Level::Linear | Level::Raid1 | Level::Raid4, Layout::None)
                | (Level::Raid0, Layout::Raid0(_))
                | (Level::Raid5, Layout::Raid5(_))
                | (Level::Raid6, Layout::Raid6(_))
                | (Level::Raid10, Layout::Raid10(_))
        );
        if !layout_ok {
            return Err(GeometryError::LayoutMismatch { level });
        }
        let bad_chunk = |reason| GeometryError::BadChunk {
            level,
            chunk_sectors,
            reason,
        };
        match level {
            Level::Raid4 | Level::Raid5 | Level::Raid6 | Level::Raid10 => {
                if !chunk_sectors.is_power_of_two() {
                    return Err(bad_chunk("must be a power of two"));
                }
                if chunk_sectors < MIN_CHUNK_SECTORS {
                    return Err(bad_chunk("must be at least one 4 KiB page"));
                }
            }
            Level::Raid0 if chunk_sectors == 0 => return Err(bad_chunk("must not be zero")),
            _ => {}
        }
        let per_member = matches!(level, Level::Raid0 | Level::Linear);
        if per_member && member_sectors.len() != raid_disks as usize {
            return Err(GeometryError::MemberCount {
                raid_disks,
                got: member_sectors.len(),
            });
        }
        let n = u64::from(raid_disks);
        let c = u64::from(chunk_sectors);

        let (array_sectors, plan) = match (level, layout) {
            (Level::Linear, _) => {
                let mut ends = Vec::with_capacity(member_sectors.len());
                let mut total = 0u64;
                for &s in member_sectors {
                    let used = s.checked_div(c).map_or(s, |q| q * c);
                    total = overflow(total.checked_add(used))?;
                    ends.push(total);
                }
                (total, Plan::Linear { ends })
            }
            (Level::Raid0, Layout::Raid0(l)) => raid0_plan(member_sectors, c, l)?,
            (Level::Raid1, _) => (dev_sectors, Plan::Raid1),
            (Level::Raid10, Layout::Raid10(l)) => raid10_plan(l, raid_disks, c, dev_sectors)?,
            _ => {
                let data = n - u64::from(level.parity_disks());
                let stripes = dev_sectors / c;
                let size = overflow(stripes.checked_mul(c).and_then(|v| v.checked_mul(data)))?;
                (size, Plan::Parity { stripes })
            }
        };
        // Byte offsets of the array and of the members must fit in a u64 too.
        let max_member = if per_member {
            member_sectors.iter().copied().max().unwrap_or(0)
        } else {
            dev_sectors
        };
        if array_sectors.checked_mul(SECTOR_SIZE).is_none()
            || max_member.checked_mul(SECTOR_SIZE).is_none()
        {
            return Err(GeometryError::Overflow);
        }
        Ok(Geometry {
            level,
            layout,
            raid_disks,
            chunk_sectors,
            dev_sectors,
            member_sectors: if per_member {
                member_sectors.to_vec()
            } else {
                Vec::new()
            },
            array_sectors,
            plan,
        })
    }

    /// [`Geometry::new`] from the superblock's raw numbers.
    pub fn from_md(
        level: i32,
        layout: u32,
        raid_disks: u32,
        chunk_sectors: u32,
        dev_sectors: u64,
        member_sectors: &[u64],
    ) -> Result<Geometry, GeometryError> {
        let level = Level::from_md(level)?;
        let layout = Layout::from_md(level, layout)?;
        Geometry::new(
            level,
            layout,
            raid_disks,
            chunk_sectors,
            dev_sectors,
            member_sectors,
        )
    }

    // ---------------------------------------------------------------- accessors

    pub fn level(&self) -> Level {
        self.level
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    pub fn raid_disks(&self) -> u32 {
        self.raid_disks
    }

    pub fn chunk_sectors(&self) -> u32 {
        self.chunk_sectors
    }

    /// Per-member usable sectors as given (levels ≥ 1).
    pub fn dev_sectors(&self) -> u64 {
        self.dev_sectors
    }

    /// Per-member sizes as given (RAID0 and linear; empty otherwise).
    pub fn member_sectors(&self) -> &[u64] {
        &self.member_sectors
    }

    /// Array size in sectors (md's `raid5_size`, `raid10_size`, RAID0 zones, linear sum).
    pub fn array_sectors(&self) -> u64 {
        self.array_sectors
    }

    /// Array size in bytes (always fits: checked at construction).
    pub fn array_bytes(&self) -> u64 {
        self.array_sectors * SECTOR_SIZE
    }

    /// Data chunks per stripe (`n − m`) for RAID4/5/6; `None` otherwise.
    pub fn data_disks(&self) -> Option<u32> {
        match self.plan {
            Plan::Parity { .. } => Some(self.raid_disks - self.level.parity_disks()),
            _ => None,
        }
    }

    /// Number of stripes (RAID4/5/6), which is also the device chunks used per member.
    pub fn stripes(&self) -> Option<u64> {
        match self.plan {
            Plan::Parity { stripes } => Some(stripes),
            _ => None,
        }
    }

    /// Syndrome slots `k` (see [`StripeRoles::syndrome_disks`]) for RAID4/5/6.
    pub fn syndrome_disks(&self) -> Option<u32> {
        match self.layout {
            Layout::Raid6(l) if l.is_ddf() => Some(self.raid_disks),
            _ => self.data_disks(),
        }
    }

    /// Copies of each block: members for RAID1, `near × far` for RAID10, else 1.
    pub fn copies(&self) -> u32 {
        match self.layout {
            Layout::Raid10(l) => l.copies(),
            _ if self.level == Level::Raid1 => self.raid_disks,
            _ => 1,
        }
    }

    /// RAID10 distance between far copies on a member, in sectors.
    pub fn raid10_stride(&self) -> Option<u64> {
        match self.plan {
            Plan::Raid10 { stride, .. } => Some(stride),
            _ => None,
        }
    }

    /// Sectors each member uses from the start of its data area (the rest is unused).
    pub fn member_used_sectors(&self, member: u32) -> Result<u64, MapError> {
        self.check_member(member)?;
        let c = u64::from(self.chunk_sectors);
        Ok(match &self.plan {
            Plan::Linear { ends } => {
                let i = member as usize;
                let start = if i == 0 { 0 } else { ends[i - 1] };
                ends[i] - start
            }
            Plan::Raid0 { .. } => self.member_sectors[member as usize] / c * c,
            Plan::Raid1 => self.dev_sectors,
            Plan::Parity { stripes } => stripes * c,
            Plan::Raid10 {
                stride,
                array_chunks,
                ..
            } => {
                // Highest used row + 1, over all copies.
                let l = self.raid10_layout();
                let rows = (array_chunks * u64::from(l.near)).div_ceil(u64::from(self.raid_disks));
                if l.offset {
                    rows * u64::from(l.far) * c
                } else if rows == 0 {
                    0
                } else {
                    (u64::from(l.far) - 1) * stride + rows * c
                }
            }
        })
    }

    fn check_member(&self, member: u32) -> Result<(), MapError> {
        if member < self.raid_disks {
            Ok(())
        } else {
            Err(MapError::NoSuchMember {
                member,
                raid_disks: self.raid_disks,
            })
        }
    }

    fn check_sector(&self, a: u64) -> Result<(), MapError> {
        if a < self.array_sectors {
            Ok(())
        } else {
            Err(MapError::OutOfRange {
                offset: a,
                len: 1,
                size: self.array_sectors,
            })
        }
    }

    fn raid10_layout(&self) -> Raid10Layout {
        match self.layout {
            Layout::Raid10(l) => l,
            _ => Raid10Layout::near(1),
        }
    }

    // ---------------------------------------------------------------- forward

    /// Every place array sector `a` is stored: one for RAID0/linear/RAID4-6 (the data
    /// chunk, not the parity), every member for RAID1, every copy for RAID10 (in md's order:
    /// near copy 0 and its far copies, near copy 1 ...).
    pub fn copies_of(&self, a: u64) -> Result<Vec<Location>, MapError> {
        self.check_sector(a)?;
        Ok(match &self.plan {
            Plan::Raid1 => (0..self.raid_disks)
                .map(|member| Location {
                    member,
                    dev_sector: a,
                })
                .collect(),
            Plan::Raid10 { .. } => self.raid10_copies(a),
            _ => vec![self.locate(a)?],
        })
    }

    /// The primary place of array sector `a` (the first of [`Geometry::copies_of`]).
    pub fn locate(&self, a: u64) -> Result<Location, MapError> {
        self.check_sector(a)?;
        let c = u64::from(self.chunk_sectors);
        Ok(match &self.plan {
            Plan::Linear { ends } => {
                let i = ends.partition_point(|&e| e <= a);
                let start = if i == 0 { 0 } else { ends[i - 1] };
                Location {
                    member: i as u32,
                    dev_sector: a - start,
                }
            }
            Plan::Raid0 { zones, alternate } => {
                let z = &zones[zones.partition_point(|z| z.end <= a)];
                let k = z.members.len() as u64;
                let r = a - z.start;
                let t = if *alternate { r } else { a };
                let member = z.members[((t / c) % k) as usize];
                let in_zone = r / (c * k) * c + t % c;
                Location {
                    member,
                    dev_sector: z.dev_start + in_zone,
                }
            }
            Plan::Raid1 => Location {
                member: 0,
                dev_sector: a,
            },
            Plan::Parity { .. } => {
                let m = self.stripe_map(a)?;
                Location {
                    member: m.data_member,
                    dev_sector: m.dev_sector,
                }
            }
            Plan::Raid10 { .. } => {
                let l = self.raid10_layout();
                let n = u64::from(self.raid_disks);
                let pos = a / c * u64::from(l.near);
                let mut row = pos / n;
                if l.offset {
                    row *= u64::from(l.far);
                }
                Location {
                    member: (pos % n) as u32,
                    dev_sector: row * c + a % c,
                }
            }
        })
    }

    fn raid10_copies(&self, a: u64) -> Vec<Location> {
        let Plan::Raid10 { stride, step, .. } = &self.plan else {
            return Vec::new();
        };
        let l = self.raid10_layout();
        let c = u64::from(self.chunk_sectors);
        let n = self.raid_disks;
        let first = match self.locate(a) {
            Ok(loc) => loc,
            Err(_) => return Vec::new(),
        };
        let mut out = Vec::with_capacity(l.copies() as usize);
        let (mut dev, mut base) = (first.member, first.dev_sector);
        for _ in 0..l.near {
            let (mut d, mut s) = (dev, base);
            out.push(Location {
                member: d,
                dev_sector: s,
            });
            for _ in 1..l.far {
                d = step[d as usize];
                s += stride;
                out.push(Location {
                    member: d,
                    dev_sector: s,
                });
            }
            dev += 1;
            if dev == n {
                dev = 0;
                base += c;
            }
        }
        out
    }

    /// RAID4/5/6: the data chunk of array sector `a`, its stripe and parity members.
    pub fn stripe_map(&self, a: u64) -> Result<StripeMap, MapError> {
        let Plan::Parity { .. } = self.plan else {
            return Err(MapError::NotParityLevel(self.level));
        };
        self.check_sector(a)?;
        let c = u64::from(self.chunk_sectors);
        let data = u64::from(self.raid_disks - self.level.parity_disks());
        let chunk = a / c;
        let stripe = chunk / data;
        let d = (chunk % data) as u32;
        let (p, q) = self.parity_members(stripe);
        let member = self.data_member(d, p);
        Ok(StripeMap {
            stripe,
            data_index: d,
            data_member: member,
            p_member: p,
            q_member: q,
            dev_sector: stripe * c + a % c,
            slot: self.slot_of(member, d, p, q),
        })
    }

    /// RAID4/5/6: every member's role in `stripe`.
    pub fn stripe_roles(&self, stripe: u64) -> Result<StripeRoles, MapError> {
        let Plan::Parity { stripes } = self.plan else {
            return Err(MapError::NotParityLevel(self.level));
        };
        if stripe >= stripes {
            return Err(MapError::NoSuchStripe { stripe, stripes });
        }
        Ok(self.roles_unchecked(stripe))
    }

    fn roles_unchecked(&self, stripe: u64) -> StripeRoles {
        let (p, q) = self.parity_members(stripe);
        let n = self.raid_disks;
        let mut roles = vec![Role::P; n as usize];
        if let Some(q) = q {
            roles[q as usize] = Role::Q;
        }
        for d in 0..n - self.level.parity_disks() {
            let m = self.data_member(d, p);
            if let Some(r) = roles.get_mut(m as usize) {
                *r = Role::Data {
                    index: d,
                    slot: self.slot_of(m, d, p, q),
                };
            }
        }
        StripeRoles {
            stripe,
            p_member: p,
            q_member: q,
            syndrome_disks: self.syndrome_disks().unwrap_or(0),
            roles,
        }
    }

    /// P and Q members of a stripe (md-format.md §5.3 tables).
    fn parity_members(&self, stripe: u64) -> (u32, Option<u32>) {
        let n64 = u64::from(self.raid_disks);
        let n = self.raid_disks;
        let i = (stripe % n64) as u32;
        match self.layout {
            Layout::Raid5(l) => {
                let last = n - 1;
                let p = match l {
                    Raid5Layout::LeftAsymmetric | Raid5Layout::LeftSymmetric => last - i,
                    Raid5Layout::RightAsymmetric | Raid5Layout::RightSymmetric => i,
                    Raid5Layout::ParityFirst => 0,
                    Raid5Layout::ParityLast => last,
                };
                (p, None)
            }
            Layout::Raid6(l) => {
                use Raid6Layout as L;
                let last = n - 1;
                // Q just after P, except that P on the last member puts Q on member 0.
                let after = |p: u32| if p == last { 0 } else { p + 1 };
                let i6 = (stripe % u64::from(n - 1)) as u32;
                match l {
                    L::LeftAsymmetric | L::LeftSymmetric => (last - i, Some(after(last - i))),
                    L::RightAsymmetric | L::RightSymmetric | L::DdfZeroRestart => {
                        (i, Some(after(i)))
                    }
                    L::ParityFirst => (0, Some(1)),
                    L::ParityLast => (n - 2, Some(n - 1)),
                    L::DdfNRestart => {
                        let p = last - ((stripe % n64 + 1) % n64) as u32;
                        (p, Some(after(p)))
                    }
                    L::DdfNContinue => {
                        let p = last - i;
                        (p, Some(if p == 0 { last } else { p - 1 }))
                    }
                    L::LeftAsymmetric6 | L::LeftSymmetric6 => (n - 2 - i6, Some(last)),
                    L::RightAsymmetric6 | L::RightSymmetric6 => (i6, Some(last)),
                    L::ParityFirst6 => (0, Some(last)),
                }
            }
            // RAID4: parity on the last member.
            _ => (n - 1, None),
        }
    }

    /// Member holding data index `d` in a stripe whose P member is `p`.
    fn data_member(&self, d: u32, p: u32) -> u32 {
        let n = self.raid_disks;
        // Asymmetric: data in member order, skipping P.
        let skip_p = |d: u32| if d < p { d } else { d + 1 };
        // Symmetric: data starts right after P and wraps over `w` members.
        let after_p = |w: u32| (p + 1 + d) % w;
        match self.layout {
            Layout::Raid5(l) => match l {
                Raid5Layout::LeftAsymmetric | Raid5Layout::RightAsymmetric => skip_p(d),
                Raid5Layout::LeftSymmetric | Raid5Layout::RightSymmetric => after_p(n),
                Raid5Layout::ParityFirst => d + 1,
                Raid5Layout::ParityLast => d,
            },
            Layout::Raid6(l) => {
                use Raid6Layout as L;
                match l {
                    L::LeftAsymmetric | L::RightAsymmetric | L::DdfZeroRestart | L::DdfNRestart => {
                        if p == n - 1 {
                            d + 1
                        } else if d < p {
                            d
                        } else {
                            d + 2
                        }
                    }
                    L::LeftSymmetric | L::RightSymmetric => (p + 2 + d) % n,
                    L::ParityFirst => d + 2,
                    L::ParityLast => d,
                    L::DdfNContinue => after_p(n),
                    L::LeftAsymmetric6 | L::RightAsymmetric6 => skip_p(d),
                    L::LeftSymmetric6 | L::RightSymmetric6 => after_p(n - 1),
                    L::ParityFirst6 => d + 1,
                }
            }
            _ => d,
        }
    }

    /// Syndrome slot of data member `m` (data index `d`).
    fn slot_of(&self, m: u32, d: u32, p: u32, q: Option<u32>) -> u32 {
        match (self.layout, q) {
            (Layout::Raid6(l), _) if l.is_ddf() => m,
            (Layout::Raid6(_), Some(q)) => {
                // Walk members from just after Q; Q itself comes last, so only P can sit
                // before m in the walk.
                let n = self.raid_disks;
                let pos = |x: u32| (x + n - (q + 1) % n) % n;
                let before = pos(m);
                if pos(p) < before {
                    before - 1
                } else {
                    before
                }
            }
            _ => d,
        }
    }

    // ---------------------------------------------------------------- inverse

    /// What `member` holds at `dev_sector` (relative to its data area).
    pub fn reverse(&self, member: u32, dev_sector: u64) -> Result<Content, MapError> {
        self.check_member(member)?;
        let c = u64::from(self.chunk_sectors);
        let s = dev_sector;
        let data = |a: u64| {
            if a < self.array_sectors {
                Content::Data { array_sector: a }
            } else {
                Content::Unused
            }
        };
        Ok(match &self.plan {
            Plan::Linear { ends } => {
                let i = member as usize;
                let start = if i == 0 { 0 } else { ends[i - 1] };
                if s < ends[i] - start {
                    data(start + s)
                } else {
                    Content::Unused
                }
            }
            Plan::Raid0 { zones, alternate } => {
                let Some(z) = zones.iter().find(|z| {
                    let width = (z.end - z.start) / z.members.len() as u64;
                    s >= z.dev_start && s - z.dev_start < width
                }) else {
                    return Ok(Content::Unused);
                };
                let Some(idx) = z.members.iter().position(|&x| x == member) else {
                    return Ok(Content::Unused);
                };
                let k = z.members.len() as u64;
                let idx = idx as u64;
                let in_zone = s - z.dev_start;
                let j = if *alternate {
                    idx
                } else {
                    (idx + k - (z.start / c) % k) % k
                };
                data(z.start + in_zone / c * c * k + j * c + in_zone % c)
            }
            Plan::Raid1 => data(s),
            Plan::Parity { stripes } => {
                let stripe = s / c;
                if stripe >= *stripes {
                    return Ok(Content::Unused);
                }
                let (p, q) = self.parity_members(stripe);
                if member == p {
                    Content::P { stripe }
                } else if Some(member) == q {
                    Content::Q { stripe }
                } else {
                    let dd = self.raid_disks - self.level.parity_disks();
                    match (0..dd).find(|&d| self.data_member(d, p) == member) {
                        Some(d) => data((stripe * u64::from(dd) + u64::from(d)) * c + s % c),
                        None => Content::Unused,
                    }
                }
            }
            Plan::Raid10 {
                stride,
                array_chunks,
                step_inv,
                ..
            } => {
                let l = self.raid10_layout();
                let fc = u64::from(l.far);
                let (far_index, row) = if l.offset {
                    ((s / c) % fc, s / c / fc)
                } else if *stride == 0 {
                    return Ok(Content::Unused);
                } else {
                    (s / stride, (s % stride) / c)
                };
                if far_index >= fc {
                    return Ok(Content::Unused);
                }
                let mut d = member;
                for _ in 0..far_index {
                    d = step_inv[d as usize];
                }
                // Past the member's used rows the position would not even fit a u64.
                let pos = row
                    .checked_mul(u64::from(self.raid_disks))
                    .and_then(|p| p.checked_add(u64::from(d)));
                match pos.map(|p| p / u64::from(l.near)) {
                    Some(chunk) if chunk < *array_chunks => data(chunk * c + s % c),
                    _ => Content::Unused,
                }
            }
        })
    }

    // ---------------------------------------------------------------- extents

    /// Split the array byte range `offset .. offset + len` into contiguous per-member
    /// pieces, in array order; each piece of a RAID1/RAID10 range comes once per copy
    /// (copy 0 first). Pieces never cross a chunk boundary except where the member data
    /// is contiguous anyway (RAID1, linear, consecutive chunks on one member).
    ///
    /// The result holds about one entry per chunk (per copy) touched, so callers should
    /// walk large ranges in bounded windows (a stripe or a few megabytes at a time).
    pub fn extents(&self, offset: u64, len: u64) -> Result<Vec<Extent>, MapError> {
        let size = self.array_bytes();
        let end = offset.checked_add(len).filter(|&e| e <= size);
        let Some(end) = end else {
            return Err(MapError::OutOfRange { offset, len, size });
        };
        let mut out: Vec<Extent> = Vec::new();
        let chunk_bytes = u64::from(self.chunk_sectors) * SECTOR_SIZE;
        let mut pos = offset;
        let mut prev_count = 0usize;
        while pos < end {
            let sector = pos / SECTOR_SIZE;
            let boundary = match &self.plan {
                Plan::Raid1 => size,
                Plan::Linear { ends } => {
                    let i = ends.partition_point(|&e| e <= sector);
                    ends.get(i).map_or(size, |&e| e * SECTOR_SIZE)
                }
                _ => (pos / chunk_bytes + 1) * chunk_bytes,
            };
            let piece = boundary.min(end) - pos;
            let stripe = match self.plan {
                Plan::Parity { .. } => Some(self.stripe_map(sector)?.stripe),
                _ => None,
            };
            let copies = self.copies_of(sector)?;
            let new: Vec<Extent> = copies
                .iter()
                .zip(0u32..)
                .map(|(l, copy)| Extent {
                    array_offset: pos,
                    len: piece,
                    member: l.member,
                    dev_offset: l.dev_sector * SECTOR_SIZE + pos % SECTOR_SIZE,
                    copy,
                    stripe,
                })
                .collect();
            // Merge into the previous pieces when every copy simply continues on its member.
            let tail_start = out.len() - prev_count;
            let mergeable = prev_count == new.len()
                && out[tail_start..].iter().zip(&new).all(|(o, x)| {
                    o.member == x.member
                        && o.stripe == x.stripe
                        && o.array_offset + o.len == x.array_offset
                        && o.dev_offset + o.len == x.dev_offset
                });
            if mergeable {
                for o in &mut out[tail_start..] {
                    o.len += piece;
                }
            } else {
                prev_count = new.len();
                out.extend(new);
            }
            pos += piece;
        }
        Ok(out)
    }
}

// ================================================================================
// Construction helpers
// ================================================================================

/// RAID0 zones (md-format.md §5.2).
fn raid0_plan(
    member_sectors: &[u64],
    c: u64,
    layout: Raid0Layout,
) -> Result<(u64, Plan), GeometryError> {
    let rounded: Vec<u64> = member_sectors.iter().map(|&s| s / c * c).collect();
    let mut zones = Vec::new();
    let mut dev_start = 0u64;
    let mut zone_end = 0u64;
    loop {
        let members: Vec<u32> = (0u32..)
            .zip(&rounded)
            .filter(|&(_, &s)| s > dev_start)
            .map(|(i, _)| i)
            .collect();
        let Some(smallest) = members.iter().map(|&i| rounded[i as usize]).min() else {
            break;
        };
        let k = members.len() as u64;
        let end = overflow(
            (smallest - dev_start)
                .checked_mul(k)
                .and_then(|v| v.checked_add(zone_end)),
        )?;
        zones.push(Zone {
            start: zone_end,
            end,
            dev_start,
            members,
        });
        dev_start = smallest;
        zone_end = end;
    }
    // The two layouts differ only in zones that start past 0 and have several members.
    let ambiguous = zones.iter().skip(1).any(|z| z.members.len() > 1);
    let alternate = match layout {
        Raid0Layout::Alternate => true,
        Raid0Layout::Original => false,
        Raid0Layout::Unspecified if ambiguous => return Err(GeometryError::Raid0LayoutUnknown),
        Raid0Layout::Unspecified => false,
    };
    Ok((zone_end, Plan::Raid0 { zones, alternate }))
}

/// RAID10 sizes, stride and the far-copy member shift (md-format.md §5.5).
fn raid10_plan(
    l: Raid10Layout,
    raid_disks: u32,
    c: u64,
    dev_sectors: u64,
) -> Result<(u64, Plan), GeometryError> {
    let n = u64::from(raid_disks);
    let (nc, fc) = (u64::from(l.near), u64::from(l.far));
    let copies = l.copies();
    if !(2..=raid_disks).contains(&copies) {
        return Err(GeometryError::Raid10Copies { copies, raid_disks });
    }
    let collision = GeometryError::Raid10Collision {
        layout: l.md_number(),
        raid_disks,
    };
    // Offset copies sit in the chunk rows right below; a near group that wraps to the next
    // row would land on another chunk's far copy.
    if l.offset && fc > 1 && n % nc != 0 {
        return Err(collision);
    }
    let chunks = dev_sectors / c;
    let array_chunks = overflow((chunks / fc).checked_mul(n))? / nc;
    // Used chunks per member, rounded up.
    let used = overflow(array_chunks.checked_mul(nc * fc))?.div_ceil(n);
    let stride = if l.offset {
        c
    } else {
        overflow((used / fc).checked_mul(c))?
    };
    let size_chunks = overflow((used / fc).checked_mul(n))? / nc;
    let array_sectors = overflow(size_chunks.checked_mul(c))?;

    // Where the next far copy of a block on member d goes: `near` members on, wrapped
    // inside d's far set; the last set absorbs the remainder of n / set size, and (as in
    // the kernel) a member pushed past the start of the last set wraps inside that set.
    let set = match l.far_set {
        0 => raid_disks,
        1 => raid_disks / u32::from(l.far),
        _ => copies,
    };
    if set == 0 {
        return Err(collision);
    }
    let last_start = (raid_disks / set - 1) * set;
    let last_size = set + raid_disks % set;
    let step: Vec<u32> = (0..raid_disks)
        .map(|d| {
            let own = d / set;
            let e = d + u32::from(l.near);
            if !raid_disks.is_multiple_of(set) && e > last_start {
                (e - last_start) % last_size + last_start
            } else {
                e % set + set * own
            }
        })
        .collect();
    let mut step_inv = vec![u32::MAX; raid_disks as usize];
    if fc > 1 {
        for (d, &e) in (0u32..).zip(&step) {
            match step_inv.get_mut(e as usize) {
                Some(slot) if *slot == u32::MAX => *slot = d,
                _ => return Err(collision),
            }
        }
    }
    Ok((
        array_sectors,
        Plan::Raid10 {
            stride,
            array_chunks: size_chunks,
            step,
            step_inv,
        },
    ))
}

// ================================================================================
// Tests
// ================================================================================

#[cfg(test)]
mod tests {
    use super::*;

    /// Label table of a RAID4/5/6 array, one row per stripe: `D<k>`, `P`, `Q`.
    fn table(g: &Geometry, rows: u64) -> Vec<Vec<String>> {
        (0..rows)
            .map(|s| {
                let r = g.stripe_roles(s).unwrap();
                let dd = u64::from(g.data_disks().unwrap());
                r.roles
                    .iter()
                    .map(|role| match role {
                        Role::Data { index, .. } => format!("D{}", s * dd + u64::from(*index)),
                        Role::P => "P".into(),
                        Role::Q => "Q".into(),
                    })
                    .collect()
            })
            .collect()
    }

    fn parse(rows: &str) -> Vec<Vec<String>> {
        rows.lines()
            .map(|l| l.split_whitespace().map(str::to_owned).collect())
            .filter(|v: &Vec<String>| !v.is_empty())
            .collect()
    }

    fn parity(level: Level, layout: u32, n: u32) -> Geometry {
        Geometry::from_md(level.md_number(), layout, n, 8, 8 * 100, &[]).unwrap()
    }

    #[test]
    fn worked_examples_raid5() {
        let ls = "D0 D1 D2 P\nD4 D5 P D3\nD8 P D6 D7\nP D9 D10 D11";
        assert_eq!(table(&parity(Level::Raid5, 2, 4), 4), parse(ls));
        let la = "D0 D1 D2 P\nD3 D4 P D5\nD6 P D7 D8\nP D9 D10 D11";
        assert_eq!(table(&parity(Level::Raid5, 0, 4), 4), parse(la));
    }

    #[test]
    fn worked_examples_raid6() {
        let ls = "Q D0 D1 D2 P\nD3 D4 D5 P Q\nD7 D8 P Q D6\nD11 P Q D9 D10\nP Q D12 D13 D14";
        assert_eq!(table(&parity(Level::Raid6, 2, 5), 5), parse(ls));
        let nc = "D0 D1 D2 Q P\nD4 D5 Q P D3\nD8 Q P D6 D7\nQ P D9 D10 D11";
        assert_eq!(table(&parity(Level::Raid6, 10, 5), 4), parse(nc));
    }

    #[test]
    fn syndrome_slot_example() {
        // Layout 0, 5 disks, stripe 2 = D6 D7 P Q D8: slots D8→0, D6→1, D7→2.
        let g = parity(Level::Raid6, 0, 5);
        assert_eq!(table(&g, 3)[2], parse("D6 D7 P Q D8")[0]);
        let r = g.stripe_roles(2).unwrap();
        assert_eq!(r.syndrome_disks, 3);
        assert_eq!(r.members_by_slot(), vec![Some(4), Some(0), Some(1)]);
        let m = g.stripe_map(8 * 8).unwrap(); // D8
        assert_eq!(
            (m.data_member, m.slot, m.p_member, m.q_member),
            (4, 0, 2, Some(3))
        );
    }

    #[test]
    fn ddf_slots_are_member_indices() {
        let g = parity(Level::Raid6, 8, 6);
        let r = g.stripe_roles(3).unwrap();
        assert_eq!(r.syndrome_disks, 6);
        for (m, role) in r.roles.iter().enumerate() {
            if let Role::Data { slot, .. } = role {
                assert_eq!(*slot as usize, m);
            }
        }
    }

    #[test]
    fn raid10_examples() {
        // md-format.md §5.5, C = 1 chunk (8 sectors), 8 chunks per device.
        let grid = |layout: u32, n: u32, rows: u64| -> Vec<Vec<Option<u64>>> {
            let g = Geometry::from_md(10, layout, n, 8, 64, &[]).unwrap();
            (0..rows)
                .map(|r| {
                    (0..n)
                        .map(|m| match g.reverse(m, r * 8).unwrap() {
                            Content::Data { array_sector } => Some(array_sector / 8),
                            _ => None,
                        })
                        .collect()
                })
                .collect()
        };
        let s = |v: &[u64]| v.iter().map(|&x| Some(x)).collect::<Vec<_>>();
        assert_eq!(
            grid(0x102, 4, 3),
            vec![s(&[0, 0, 1, 1]), s(&[2, 2, 3, 3]), s(&[4, 4, 5, 5])]
        );
        assert_eq!(
            grid(0x102, 3, 3),
            vec![s(&[0, 0, 1]), s(&[1, 2, 2]), s(&[3, 3, 4])]
        );
        let f2 = grid(0x201, 4, 5);
        assert_eq!(f2[0], s(&[0, 1, 2, 3]));
        assert_eq!(f2[1], s(&[4, 5, 6, 7]));
        assert_eq!(f2[4], s(&[3, 0, 1, 2]));
        let o2 = grid(0x10201, 4, 4);
        assert_eq!(
            o2,
            vec![
                s(&[0, 1, 2, 3]),
                s(&[3, 0, 1, 2]),
                s(&[4, 5, 6, 7]),
                s(&[7, 4, 5, 6])
            ]
        );
        let g = Geometry::from_md(10, 0x201, 4, 8, 64, &[]).unwrap();
        assert_eq!(g.raid10_stride(), Some(32));
    }

    #[test]
    fn raid0_zones() {
        // 16/32/32 chunks: zone 0 = 3 × 16, zone 1 = members 1,2 × 16.
        let g = Geometry::from_md(0, 1, 3, 8, 0, &[128, 256, 256 + 7]).unwrap();
        assert_eq!(g.array_sectors(), 128 * 3 + 128 * 2);
        // First chunk of zone 1 is array chunk 48; original picks member by 48 % 2 = 0.
        assert_eq!(
            g.locate(48 * 8).unwrap(),
            Location {
                member: 1,
                dev_sector: 128
            }
        );
        let alt = Geometry::from_md(0, 2, 3, 8, 0, &[128, 256, 256]).unwrap();
        assert_eq!(
            alt.locate(48 * 8).unwrap(),
            Location {
                member: 1,
                dev_sector: 128
            }
        );
        // Odd start: zone 0 = 3 × 3 chunks = 9 chunks; original picks 9 % 2 = member 2 first.
        let g = Geometry::from_md(0, 1, 3, 8, 0, &[24, 48, 48]).unwrap();
        assert_eq!(g.locate(9 * 8).unwrap().member, 2);
        let alt = Geometry::from_md(0, 2, 3, 8, 0, &[24, 48, 48]).unwrap();
        assert_eq!(alt.locate(9 * 8).unwrap().member, 1);
        assert_eq!(
            Geometry::from_md(0, 0, 3, 8, 0, &[24, 48, 48]),
            Err(GeometryError::Raid0LayoutUnknown)
        );
        // One member in zone 1: either layout, so unspecified is fine.
        assert!(Geometry::from_md(0, 0, 3, 8, 0, &[24, 24, 48]).is_ok());
    }

    #[test]
    fn names_round_trip() {
        for l in Raid5Layout::ALL {
            assert_eq!(Raid5Layout::from_name(l.name()), Some(l));
            assert_eq!(Raid5Layout::from_md(l.md_number()), Some(l));
        }
        for l in Raid6Layout::ALL {
            assert_eq!(Raid6Layout::from_name(l.name()), Some(l));
            assert_eq!(Raid6Layout::from_md(l.md_number()), Some(l));
        }
        assert_eq!(
            Raid6Layout::from_name("ddf-N-continue"),
            Some(Raid6Layout::DdfNContinue)
        );
        assert_eq!(
            Raid5Layout::from_name("ddf-N-restart"),
            Some(Raid5Layout::LeftAsymmetric)
        );
        assert_eq!(Raid6Layout::from_md(6), None);
        assert_eq!(Raid6Layout::from_md(21), None);
        for l in Level::ALL {
            assert_eq!(Level::from_md(l.md_number()), Ok(l));
            assert_eq!(l.name().parse::<Level>(), Ok(l));
        }
        for (s, w) in [("n2", 0x102), ("f2", 0x201), ("o2", 0x10201), ("n3", 0x103)] {
            let l = Raid10Layout::from_name(s).unwrap();
            assert_eq!(l.md_number(), w);
            assert_eq!(l.name().as_deref(), Some(s));
            assert_eq!(Layout::from_md(Level::Raid10, w), Ok(Layout::Raid10(l)));
        }
        assert_eq!(
            Raid10Layout::from_md(0x202).unwrap().to_string(),
            "near=2, far=2"
        );
        assert_eq!(Raid10Layout::from_md(3 << 17 | 0x102), None);
        assert_eq!(Raid10Layout::from_md(1 << 19 | 0x102), None);
        assert_eq!(
            Raid0Layout::from_name("layout-alternate"),
            Some(Raid0Layout::Alternate)
        );
    }

    #[test]
    fn bad_geometries() {
        use GeometryError as E;
        assert!(matches!(
            Geometry::from_md(5, 2, 1, 8, 64, &[]),
            Err(E::TooFewDisks { .. })
        ));
        assert!(matches!(
            Geometry::from_md(6, 2, 3, 8, 64, &[]),
            Err(E::TooFewDisks { .. })
        ));
        assert!(matches!(
            Geometry::from_md(5, 2, 3, 12, 64, &[]),
            Err(E::BadChunk { .. })
        ));
        assert!(matches!(
            Geometry::from_md(5, 2, 3, 4, 64, &[]),
            Err(E::BadChunk { .. })
        ));
        assert!(matches!(
            Geometry::from_md(5, 6, 3, 8, 64, &[]),
            Err(E::InvalidLayout { .. })
        ));
        assert!(matches!(
            Geometry::from_md(7, 0, 3, 8, 64, &[]),
            Err(E::UnknownLevel(7))
        ));
        assert!(matches!(
            Geometry::from_md(0, 1, 3, 8, 0, &[1, 2]),
            Err(E::MemberCount { .. })
        ));
        assert!(matches!(
            Geometry::from_md(10, 0x103, 2, 8, 64, &[]),
            Err(E::Raid10Copies { .. })
        ));
        assert!(matches!(
            Geometry::from_md(10, 0x101, 2, 8, 64, &[]),
            Err(E::Raid10Copies { .. })
        ));
        assert!(matches!(
            Geometry::from_md(5, 2, 3, 1 << 31, u64::MAX, &[]),
            Err(E::Overflow)
        ));
        assert!(matches!(
            Geometry::from_md(-1, 0, 2, 0, 0, &[u64::MAX, 1]),
            Err(E::Overflow)
        ));
        // Offset layout whose near groups wrap rows.
        assert!(matches!(
            Geometry::from_md(10, 0x10202, 5, 8, 640, &[]),
            Err(E::Raid10Collision { .. })
        ));
        // Far-set variant 2 on 9 members with near 2: the shift is not a permutation.
        assert!(matches!(
            Geometry::from_md(10, 2 << 17 | 0x202, 9, 8, 640, &[]),
            Err(E::Raid10Collision { .. })
        ));
        assert!(Geometry::from_md(10, 2 << 17 | 0x202, 8, 8, 640, &[]).is_ok());
    }

    #[test]
    fn extents_split_and_merge() {
        let g = parity(Level::Raid5, 2, 4); // chunk 4 KiB
        let e = g.extents(1000, 5000).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].array_offset, e[0].len, e[0].member, e[0].dev_offset),
            (1000, 3096, 0, 1000)
        );
        assert_eq!(
            (e[1].array_offset, e[1].len, e[1].member, e[1].dev_offset),
            (4096, 1904, 1, 0)
        );
        let r1 = Geometry::from_md(1, 0, 3, 0, 1000, &[]).unwrap();
        let e = r1.extents(0, 512_000).unwrap();
        assert_eq!(e.len(), 3);
        assert!(e.iter().all(|x| x.len == 512_000));
        let lin = Geometry::from_md(-1, 0, 2, 8, 0, &[20, 30]).unwrap();
        assert_eq!(lin.array_sectors(), 16 + 24);
        let e = lin.extents(0, 40 * 512).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!((e[1].member, e[1].dev_offset, e[1].len), (1, 0, 24 * 512));
        assert!(g.extents(g.array_bytes(), 1).is_err());
        assert!(g.extents(u64::MAX, 2).is_err());
        assert_eq!(g.extents(g.array_bytes(), 0).unwrap(), vec![]);
    }
}
