//! What both superblock families have in common: where they live ([`Location`]), member
//! roles ([`Role`]), the normalised per-member view ([`MemberInfo`]) and the device probe
//! ([`probe`]).

use std::fmt;
use std::io;

use super::v090::SuperblockV090;
use super::v1::{FeatureMap, SuperblockV1};
use super::{Error, MD_SB_MAGIC, SECTOR_BYTES, SUPERBLOCK_BYTES};

// ============================================================================================
// Locations
// ============================================================================================

/// A place where md keeps a superblock, named after the metadata version that uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Location {
    /// 0.90: `(N & !127) − 128`, the last 64 KiB-aligned 64 KiB of the device.
    V0_90,
    /// 1.0: `(N − 16) & !7`, 8–12 KiB before the end, 4 KiB aligned.
    V1_0,
    /// 1.1: sector 0.
    V1_1,
    /// 1.2: sector 8 (byte 4096).
    V1_2,
}

impl Location {
    /// The order [`probe`] looks at them.
    pub const PROBE_ORDER: [Location; 4] = [
        Location::V1_1,
        Location::V1_2,
        Location::V1_0,
        Location::V0_90,
    ];

    /// Superblock start sector on a device of `device_sectors` sectors, or `None` if the
    /// device is too small to hold a 4 KiB superblock there.
    pub fn sector(self, device_sectors: u64) -> Option<u64> {
        let n = device_sectors;
        let s = match self {
            Location::V1_1 => 0,
            Location::V1_2 => 8,
            Location::V1_0 => n.checked_sub(16)? & !7,
            Location::V0_90 => (n & !127).checked_sub(128)?,
        };
        (s.checked_add(SUPERBLOCK_BYTES as u64 / SECTOR_BYTES)? <= n).then_some(s)
    }

    /// Metadata version string as mdadm prints it (`0.90`, `1.0`, `1.1`, `1.2`).
    pub fn version(self) -> &'static str {
        match self {
            Location::V0_90 => "0.90",
            Location::V1_0 => "1.0",
            Location::V1_1 => "1.1",
            Location::V1_2 => "1.2",
        }
    }

    /// The v1 location whose fixed sector is `super_offset` (0 → 1.1, 8 → 1.2), else 1.0.
    pub fn from_v1_super_offset(super_offset: u64) -> Location {
        match super_offset {
            0 => Location::V1_1,
            8 => Location::V1_2,
            _ => Location::V1_0,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.version())
    }
}

// ============================================================================================
// Times, roles, slots
// ============================================================================================

/// A superblock time stamp. v1 packs 40 bits of seconds and 24 bits of microseconds into
/// 64 bits; 0.90 stores whole seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MdTime {
    /// Seconds since the Unix epoch.
    pub seconds: u64,
    /// Microseconds (v1 only; may exceed 999 999 on garbage input).
    pub micros: u32,
}

impl MdTime {
    /// Decodes the v1 packed form.
    /// The current time.
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        MdTime {
            seconds: d.as_secs(),
            micros: d.subsec_micros(),
        }
    }

    pub fn from_v1(raw: u64) -> Self {
        MdTime {
            seconds: raw & ((1 << 40) - 1),
            micros: (raw >> 40) as u32,
        }
    }

    /// Encodes the v1 packed form (seconds truncated to 40 bits, µs to 24).
    pub fn to_v1(self) -> u64 {
        (self.seconds & ((1 << 40) - 1)) | ((u64::from(self.micros) & 0xff_ffff) << 40)
    }
}

/// What a member does in the array (§2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Holds data for this slot (`raid_disk`).
    Active(u16),
    /// No data (0xffff).
    Spare,
    /// Kicked out; its data is stale (0xfffe).
    Faulty,
    /// RAID4/5/6 write journal (0xfffd).
    Journal,
    /// A v1 value in 0xff00…0xfffc, which md does not define (raw value kept).
    Unknown(u16),
}

impl Role {
    /// Raw v1 value of a spare.
    pub const SPARE_RAW: u16 = 0xffff;
    /// Raw v1 value of a faulty device.
    pub const FAULTY_RAW: u16 = 0xfffe;
    /// Raw v1 value of a journal device.
    pub const JOURNAL_RAW: u16 = 0xfffd;
    /// Slots are below this (`MD_DISK_ROLE_MAX`).
    pub const MAX_SLOT: u16 = 0xff00;

    /// Decodes a raw v1 `dev_roles[]` entry.
    pub fn from_raw(raw: u16) -> Role {
        match raw {
            Self::SPARE_RAW => Role::Spare,
            Self::FAULTY_RAW => Role::Faulty,
            Self::JOURNAL_RAW => Role::Journal,
            r if r < Self::MAX_SLOT => Role::Active(r),
            r => Role::Unknown(r),
        }
    }

    /// Encodes as a raw v1 `dev_roles[]` entry.
    pub fn to_raw(self) -> u16 {
        match self {
            Role::Active(s) | Role::Unknown(s) => s,
            Role::Spare => Self::SPARE_RAW,
            Role::Faulty => Self::FAULTY_RAW,
            Role::Journal => Self::JOURNAL_RAW,
        }
    }

    /// The slot of an active member.
    pub fn slot(self) -> Option<u16> {
        match self {
            Role::Active(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Active(s) => write!(f, "Active device {s}"),
            Role::Spare => f.write_str("spare"),
            Role::Faulty => f.write_str("faulty"),
            Role::Journal => f.write_str("Journal"),
            Role::Unknown(r) => write!(f, "unknown role {r:#06x}"),
        }
    }
}

/// One slot of the array as this member's superblock sees it (mdadm's "Array State").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlotState {
    /// Some device holds the slot (`A`).
    Active,
    /// Two or more devices hold it: one is replacing the other (`R`).
    Replacing,
    /// Nobody holds it (`.`).
    Missing,
}

impl SlotState {
    /// mdadm's one-letter code.
    pub fn letter(self) -> char {
        match self {
            SlotState::Active => 'A',
            SlotState::Replacing => 'R',
            SlotState::Missing => '.',
        }
    }
}

/// An in-progress reshape (§6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reshape {
    /// Checkpoint in array sectors.
    pub position: u64,
    pub new_level: i32,
    pub new_layout: u32,
    /// Bytes.
    pub new_chunk_bytes: u64,
    /// New minus old number of raid disks (`raid_disks` is the new count).
    pub delta_disks: i32,
    /// Signed sectors added to `data_offset` for new-geometry data (0 unless NEW_OFFSET).
    pub new_offset: i64,
    /// Reshape runs from the end to the start: `delta_disks < 0`, or (v1) `delta_disks == 0`
    /// with RESHAPE_BACKWARDS.
    pub backwards: bool,
}

/// Where the v1 bad-block log is (§2.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BadBlockLog {
    /// Signed sectors from the superblock start.
    pub offset: i32,
    /// Sectors reserved.
    pub size_sectors: u16,
    /// Entries are shifted left by this.
    pub shift: u8,
    /// BAD_BLOCKS is set: the log holds entries.
    pub has_entries: bool,
}

impl BadBlockLog {
    /// Absolute device sector of the log for a superblock at `super_offset`.
    pub fn sector(&self, super_offset: u64) -> Option<u64> {
        super_offset.checked_add_signed(i64::from(self.offset))
    }

    /// Number of 8-byte entries the reserved space holds.
    pub fn capacity(&self) -> u32 {
        u32::from(self.size_sectors) * 64
    }

    /// Decodes the log read from [`Self::sector`] (`log` holds at least the bytes to
    /// decode; only the first `size_sectors × 512` are used). Each little-endian u64 entry
    /// is `start << 10 | length` (bits 63…10, 9…0), both shifted left by `shift`; an
    /// all-ones entry ends the list. Sectors are absolute device sectors. Entries of
    /// length 0 are returned as they are; the caller decides. Fails if a shifted value
    /// does not fit in 64 bits.
    pub fn parse_entries(&self, log: &[u8]) -> Result<Vec<BadBlock>, Error> {
        let limit = usize::from(self.size_sectors) * SECTOR_BYTES as usize;
        let log = &log[..log.len().min(limit)];
        let mut out = Vec::new();
        for e in log.chunks_exact(8) {
            let v = u64::from_le_bytes([e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]]);
            if v == u64::MAX {
                break;
            }
            let shift = u32::from(self.shift);
            let widen = |x: u64| {
                x.checked_shl(shift)
                    .filter(|r| r >> shift == x)
                    .ok_or(Error::BadBlockLog {
                        reason: "entry overflows after bblog_shift",
                    })
            };
            out.push(BadBlock {
                sector: widen(v >> 10)?,
                sectors: widen(v & 0x3ff)?,
            });
        }
        Ok(out)
    }
}

/// One bad-block log entry, in absolute device sectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BadBlock {
    pub sector: u64,
    pub sectors: u64,
}

// ============================================================================================
// The normalised member view
// ============================================================================================

/// A member's superblock reduced to what assembly needs, the same for 0.90 and v1.
/// Sizes and offsets are 512-byte sectors unless the name says bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    /// Metadata version (for v1 inferred from `super_offset` when not probed).
    pub version: Location,
    /// Array UUID (0.90: the four words big-endian, as mdadm prints them).
    pub array_uuid: [u8; 16],
    /// Per-device UUID (v1 only).
    pub device_uuid: Option<[u8; 16]>,
    /// v1 `dev_number`; 0.90 `this_disk.number`.
    pub dev_number: u32,
    pub role: Role,
    /// v1 REPLACEMENT: this device is rebuilding in place of the one with the same role.
    pub replacement: bool,
    pub events: u64,
    pub level: i32,
    pub layout: u32,
    pub chunk_bytes: u64,
    /// Number of slots (the new count during a reshape).
    pub raid_disks: u32,
    /// Usable data sectors per member: `size` for levels ≥ 1, `data_size` (v1) or the
    /// space before the superblock rounded down to the chunk (0.90) for RAID0/linear.
    pub dev_sectors: u64,
    pub data_offset: u64,
    /// Sectors available for data on this member (v1 `data_size`; 0.90: everything
    /// before the superblock).
    pub data_size: u64,
    /// Sector of the superblock.
    pub super_offset: u64,
    /// Rebuild checkpoint relative to `data_offset` (v1 RECOVERY_OFFSET; 0.90 `Some(0)` for
    /// a member that is active but not yet in sync during a 0.91 reshape).
    pub recovery_offset: Option<u64>,
    /// Sectors below this are in sync; `MAX_SECTOR` = clean.
    pub resync_offset: u64,
    pub reshape: Option<Reshape>,
    pub name: String,
    pub ctime: MdTime,
    pub utime: MdTime,
    /// Signed sectors from the superblock to the bitmap, when there is an internal bitmap.
    pub bitmap_offset: Option<i32>,
    pub bad_block_log: Option<BadBlockLog>,
    /// State of slots `0..raid_disks` as this superblock records it (at most 0xff00 for v1
    /// and 27 for 0.90 entries).
    pub array_state: Vec<SlotState>,
    /// v1 feature bits (`None` for 0.90).
    pub feature_map: Option<FeatureMap>,
}

impl MemberInfo {
    /// True if the array was cleanly stopped (`resync_offset == MAX_SECTOR`).
    pub fn is_clean(&self) -> bool {
        self.resync_offset == super::MAX_SECTOR
    }

    /// mdadm's "Array State" string, e.g. `AAA.`.
    pub fn array_state_string(&self) -> String {
        self.array_state.iter().map(|s| s.letter()).collect()
    }
}

fn slot_states(raid_disks: u32, limit: usize, slots: impl Iterator<Item = u16>) -> Vec<SlotState> {
    let n = (raid_disks as usize).min(limit);
    let mut count = vec![0u32; n];
    for s in slots {
        if let Some(c) = count.get_mut(s as usize) {
            *c += 1;
        }
    }
    count
        .into_iter()
        .map(|c| match c {
            0 => SlotState::Missing,
            1 => SlotState::Active,
            _ => SlotState::Replacing,
        })
        .collect()
}

fn v1_member_info(sb: &SuperblockV1, version: Location) -> MemberInfo {
    let fm = sb.feature_map;
    let reshape = fm.contains(FeatureMap::RESHAPE_ACTIVE).then(|| Reshape {
        position: sb.reshape_position,
        new_level: sb.new_level,
        new_layout: sb.new_layout,
        new_chunk_bytes: u64::from(sb.new_chunk) * SECTOR_BYTES,
        delta_disks: sb.delta_disks,
        new_offset: if fm.contains(FeatureMap::NEW_OFFSET) {
            i64::from(sb.new_offset)
        } else {
            0
        },
        backwards: sb.delta_disks < 0
            || (sb.delta_disks == 0 && fm.contains(FeatureMap::RESHAPE_BACKWARDS)),
    });
    let bad_block_log = (sb.bblog_offset != 0 || sb.bblog_size != 0).then_some(BadBlockLog {
        offset: sb.bblog_offset,
        size_sectors: sb.bblog_size,
        shift: sb.bblog_shift,
        has_entries: fm.contains(FeatureMap::BAD_BLOCKS),
    });
    let slots = sb
        .dev_roles
        .iter()
        .filter_map(|&r| Role::from_raw(r).slot());
    MemberInfo {
        version,
        array_uuid: sb.set_uuid,
        device_uuid: Some(sb.device_uuid),
        dev_number: sb.dev_number,
        role: sb.role(),
        replacement: fm.contains(FeatureMap::REPLACEMENT),
        events: sb.events,
        level: sb.level,
        layout: sb.layout,
        chunk_bytes: u64::from(sb.chunksize) * SECTOR_BYTES,
        raid_disks: sb.raid_disks,
        dev_sectors: if sb.level >= 1 { sb.size } else { sb.data_size },
        data_offset: sb.data_offset,
        data_size: sb.data_size,
        super_offset: sb.super_offset,
        recovery_offset: fm
            .contains(FeatureMap::RECOVERY_OFFSET)
            .then_some(sb.recovery_offset),
        resync_offset: sb.resync_offset,
        reshape,
        name: sb.name(),
        ctime: sb.ctime(),
        utime: sb.utime(),
        bitmap_offset: sb.bitmap_offset(),
        bad_block_log,
        array_state: slot_states(sb.raid_disks, usize::from(Role::MAX_SLOT), slots),
        feature_map: Some(fm),
    }
}

fn v090_member_info(sb: &SuperblockV090, device_sectors: Option<u64>) -> MemberInfo {
    let role = sb.role();
    let own = sb.own_descriptor();
    let recovery_offset = (matches!(role, Role::Active(_))
        && !own.has(super::v090::DiskDescriptor::STATE_SYNC))
    .then_some(0);
    let reshape = sb.reshape_active().then(|| Reshape {
        position: sb.reshape_position,
        new_level: sb.new_level,
        new_layout: sb.new_layout,
        new_chunk_bytes: u64::from(sb.new_chunk),
        delta_disks: sb.delta_disks,
        new_offset: 0,
        backwards: sb.delta_disks < 0,
    });
    let super_offset = device_sectors
        .and_then(|n| Location::V0_90.sector(n))
        .unwrap_or(0);
    let chunk_sectors = u64::from(sb.chunk_size) / SECTOR_BYTES;
    let dev_sectors = if sb.level >= 1 {
        u64::from(sb.size) * 2
    } else {
        super_offset
            .checked_div(chunk_sectors)
            .map_or(super_offset, |n| n * chunk_sectors)
    };
    let slots = sb.disks.iter().filter_map(|d| {
        use super::v090::DiskDescriptor as D;
        (d.has(D::STATE_ACTIVE | D::STATE_SYNC) && !d.has(D::STATE_FAULTY))
            .then(|| u16::try_from(d.raid_disk).ok())
            .flatten()
    });
    MemberInfo {
        version: Location::V0_90,
        array_uuid: sb.uuid(),
        device_uuid: None,
        dev_number: sb.this_disk.number,
        role,
        replacement: false,
        events: sb.events,
        level: sb.level,
        layout: sb.layout,
        chunk_bytes: u64::from(sb.chunk_size),
        raid_disks: sb.raid_disks,
        dev_sectors,
        data_offset: 0,
        data_size: super_offset,
        super_offset,
        recovery_offset,
        resync_offset: sb.resync_offset(),
        reshape,
        name: String::new(),
        ctime: sb.ctime(),
        utime: sb.utime(),
        bitmap_offset: (sb.state & SuperblockV090::STATE_BITMAP_PRESENT != 0)
            .then_some((SUPERBLOCK_BYTES as u64 / SECTOR_BYTES) as i32),
        bad_block_log: None,
        array_state: slot_states(sb.raid_disks, super::v090::MAX_DISKS, slots),
        feature_map: None,
    }
}

// ============================================================================================
// Either family
// ============================================================================================

/// A superblock of either family.
#[derive(Clone, Debug, PartialEq, Eq)]
// A handful of these exist per device, so the size difference between the variants (the
// 0.90 one keeps all its reserved words) costs nothing worth a Box in every match.
#[allow(clippy::large_enum_variant)]
pub enum Superblock {
    V1(SuperblockV1),
    V090(SuperblockV090),
}

impl Superblock {
    /// Parses the superblock expected at `location` from `buf` (the 4 KiB read there).
    pub fn parse(location: Location, buf: &[u8]) -> Result<Self, Error> {
        match location {
            Location::V0_90 => SuperblockV090::parse(buf).map(Superblock::V090),
            _ => SuperblockV1::parse(buf).map(Superblock::V1),
        }
    }

    /// True if the checksum matches (0.90: exactly or after the kernel's 16-bit fold).
    pub fn checksum_ok(&self) -> bool {
        match self {
            Superblock::V1(s) => s.checksum_ok(),
            Superblock::V090(s) => s.checksum_ok(),
        }
    }

    /// Event counter.
    pub fn events(&self) -> u64 {
        match self {
            Superblock::V1(s) => s.events,
            Superblock::V090(s) => s.events,
        }
    }

    /// Array UUID (see [`MemberInfo::array_uuid`]).
    pub fn array_uuid(&self) -> [u8; 16] {
        match self {
            Superblock::V1(s) => s.set_uuid,
            Superblock::V090(s) => s.uuid(),
        }
    }

    /// Normalised view. For v1 the version is inferred from `super_offset`; for 0.90
    /// pass the device size to get `super_offset`/`data_size` (0 otherwise).
    pub fn member_info(&self, device_sectors: Option<u64>) -> MemberInfo {
        match self {
            Superblock::V1(s) => v1_member_info(s, Location::from_v1_super_offset(s.super_offset)),
            Superblock::V090(s) => v090_member_info(s, device_sectors),
        }
    }

    /// Kernel validity rules broken by this superblock at `location` on a device of
    /// `device_sectors` sectors (checksum included); empty = acceptable.
    pub fn problems(&self, location: Option<Location>, device_sectors: Option<u64>) -> Vec<Error> {
        match self {
            Superblock::V1(s) => s.problems(location, device_sectors),
            Superblock::V090(s) => s.problems(device_sectors),
        }
    }
}

// ============================================================================================
// Probe
// ============================================================================================

/// A superblock candidate found by [`probe`]: a location whose first word is the md magic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub location: Location,
    /// Sector where it was read.
    pub sector: u64,
    /// The decoded superblock, or why the bytes could not be decoded although the magic
    /// matched (wrong major version, oversized `max_dev`).
    pub superblock: Result<Superblock, Error>,
    /// Checksum verified (false when it could not be decoded).
    pub checksum_ok: bool,
    /// Every validity rule it breaks ([`Superblock::problems`]), checksum included.
    pub problems: Vec<Error>,
    /// Size of the device it was found on, in sectors.
    pub device_sectors: u64,
}

impl Found {
    /// True if the kernel would accept it: decoded, checksum right, no problems.
    pub fn is_valid(&self) -> bool {
        self.superblock.is_ok() && self.checksum_ok && self.problems.is_empty()
    }

    /// The normalised view, with the version taken from where it was found.
    pub fn member_info(&self) -> Option<MemberInfo> {
        let sb = self.superblock.as_ref().ok()?;
        let mut info = sb.member_info(Some(self.device_sectors));
        info.version = self.location;
        Some(info)
    }
}

/// The candidate mdadm would use when no metadata version is named: among the valid ones
/// (decoded, checksum right, no problems), the newest creation time; ties go to the first
/// in probe order. `None` if none is valid.
pub fn preferred(found: &[Found]) -> Option<&Found> {
    let mut best: Option<(&Found, MdTime)> = None;
    for f in found.iter().filter(|f| f.is_valid()) {
        let ctime = match &f.superblock {
            Ok(Superblock::V1(s)) => s.ctime(),
            Ok(Superblock::V090(s)) => s.ctime(),
            Err(_) => continue,
        };
        if best.is_none_or(|(_, t)| ctime > t) {
            best = Some((f, ctime));
        }
    }
    best.map(|(f, _)| f)
}

/// Looks for md superblocks at every candidate location of a device of `device_len`
/// bytes, in the order 1.1, 1.2, 1.0, 0.90. `read_at(offset, buf)` must fill `buf` from
/// byte `offset`. A location is reported when its first word is the md magic (v1:
/// little-endian; 0.90: either order); locations that do not fit on the device, and a 1.0
/// location that coincides with the 1.1 or 1.2 one, are skipped. Fails only if `read_at`
/// fails.
pub fn probe<F>(device_len: u64, mut read_at: F) -> Result<Vec<Found>, Error>
where
    F: FnMut(u64, &mut [u8]) -> io::Result<()>,
{
    let device_sectors = device_len / SECTOR_BYTES;
    let mut found = Vec::new();
    let mut seen: Vec<u64> = Vec::new();
    let mut buf = vec![0u8; SUPERBLOCK_BYTES];
    for location in Location::PROBE_ORDER {
        let Some(sector) = location.sector(device_sectors) else {
            continue;
        };
        // On tiny devices two locations can fall on one sector. 0.90 still gets its own
        // look there (its layout and byte order differ), unless a version-1 superblock was
        // already found at that sector: then it is that superblock, not a broken 0.90 one.
        if seen.contains(&sector)
            && (location != Location::V0_90
                || found
                    .iter()
                    .any(|f: &Found| f.sector == sector && f.superblock.is_ok()))
        {
            continue;
        }
        seen.push(sector);
        let offset = sector * SECTOR_BYTES;
        read_at(offset, &mut buf).map_err(|e| Error::Io {
            offset,
            kind: e.kind(),
            message: e.to_string(),
        })?;
        let m = [buf[0], buf[1], buf[2], buf[3]];
        let magic_here = u32::from_le_bytes(m) == MD_SB_MAGIC
            || (location == Location::V0_90 && u32::from_be_bytes(m) == MD_SB_MAGIC);
        if !magic_here {
            continue;
        }
        let superblock = Superblock::parse(location, &buf);
        let (checksum_ok, problems) = match &superblock {
            Ok(sb) => (
                sb.checksum_ok(),
                sb.problems(Some(location), Some(device_sectors)),
            ),
            Err(e) => (false, vec![e.clone()]),
        };
        found.push(Found {
            location,
            sector,
            superblock,
            checksum_ok,
            problems,
            device_sectors,
        });
    }
    Ok(found)
}
