//! The version-1 md superblock (metadata 1.0, 1.1 and 1.2).
//!
//! 256 fixed little-endian bytes followed by `max_dev` 16-bit role entries
//! (`shared/docs/md-format.md` §2). [`SuperblockV1`] keeps every field, reserved ones
//! included, so that [`SuperblockV1::parse`] followed by [`SuperblockV1::to_bytes`]
//! reproduces the input byte for byte. The kernel's load-time rules are not enforced by
//! `parse`; [`SuperblockV1::problems`] lists the ones a superblock breaks.

use std::fmt;

use super::superblock::{Location, MdTime, Role};
use super::{array, le_u16, le_u32, le_u64, put, Error, MAX_SECTOR, MD_SB_MAGIC, SUPERBLOCK_BYTES};

/// Size of the fixed part of the v1 superblock.
pub const FIXED_BYTES: usize = 256;

/// Largest `max_dev` the kernel accepts: `(4096 − 256) / 2`.
pub const MAX_DEV_LIMIT: u32 = ((SUPERBLOCK_BYTES - FIXED_BYTES) / 2) as u32;

/// Byte offset of `sb_csum`.
const CSUM_OFFSET: usize = 216;

// ============================================================================================
// Feature map
// ============================================================================================

/// The v1 `feature_map` word (§2.2), with the bits named.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FeatureMap(pub u32);

impl FeatureMap {
    /// Bit 0: internal write-intent bitmap at `super_offset + bitmap_offset`.
    pub const BITMAP_OFFSET: FeatureMap = FeatureMap(1);
    /// Bit 1: this device is valid only below `data_offset + recovery_offset`.
    pub const RECOVERY_OFFSET: FeatureMap = FeatureMap(2);
    /// Bit 2: a reshape is in progress; the reshape fields are valid.
    pub const RESHAPE_ACTIVE: FeatureMap = FeatureMap(4);
    /// Bit 3: the bad-block log is not empty.
    pub const BAD_BLOCKS: FeatureMap = FeatureMap(8);
    /// Bit 4: this device replaces the device holding the same role.
    pub const REPLACEMENT: FeatureMap = FeatureMap(16);
    /// Bit 5: the reshape runs from the end to the start (with `delta_disks == 0`).
    pub const RESHAPE_BACKWARDS: FeatureMap = FeatureMap(32);
    /// Bit 6: `new_offset` is meaningful (new-geometry data at `data_offset + new_offset`).
    pub const NEW_OFFSET: FeatureMap = FeatureMap(64);
    /// Bit 7: recovery is guided by the bitmap.
    pub const RECOVERY_BITMAP: FeatureMap = FeatureMap(128);
    /// Bit 8: clustered md.
    pub const CLUSTERED: FeatureMap = FeatureMap(256);
    /// Bit 9: RAID4/5/6 write journal present.
    pub const JOURNAL: FeatureMap = FeatureMap(512);
    /// Bit 10: partial-parity log (RAID5).
    pub const PPL: FeatureMap = FeatureMap(1024);
    /// Bit 11: multiple-PPL variant.
    pub const MULTIPLE_PPLS: FeatureMap = FeatureMap(2048);
    /// Bit 12: `layout` is meaningful for RAID0.
    pub const RAID0_LAYOUT: FeatureMap = FeatureMap(4096);
    /// Every bit the kernel knows (`MD_FEATURE_ALL`); others make it refuse the member.
    pub const ALL: FeatureMap = FeatureMap(0x1fff);

    /// Names of the bits, lowest first.
    pub const NAMES: [(&'static str, FeatureMap); 13] = [
        ("BITMAP_OFFSET", Self::BITMAP_OFFSET),
        ("RECOVERY_OFFSET", Self::RECOVERY_OFFSET),
        ("RESHAPE_ACTIVE", Self::RESHAPE_ACTIVE),
        ("BAD_BLOCKS", Self::BAD_BLOCKS),
        ("REPLACEMENT", Self::REPLACEMENT),
        ("RESHAPE_BACKWARDS", Self::RESHAPE_BACKWARDS),
        ("NEW_OFFSET", Self::NEW_OFFSET),
        ("RECOVERY_BITMAP", Self::RECOVERY_BITMAP),
        ("CLUSTERED", Self::CLUSTERED),
        ("JOURNAL", Self::JOURNAL),
        ("PPL", Self::PPL),
        ("MULTIPLE_PPLS", Self::MULTIPLE_PPLS),
        ("RAID0_LAYOUT", Self::RAID0_LAYOUT),
    ];

    /// The raw word.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// True if every bit of `other` is set.
    pub const fn contains(self, other: FeatureMap) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if any bit of `other` is set.
    pub const fn intersects(self, other: FeatureMap) -> bool {
        self.0 & other.0 != 0
    }

    /// Sets or clears the bits of `other`.
    pub fn set(&mut self, other: FeatureMap, on: bool) {
        if on {
            self.0 |= other.0;
        } else {
            self.0 &= !other.0;
        }
    }

    /// Bits outside [`FeatureMap::ALL`].
    pub const fn unknown_bits(self) -> u32 {
        self.0 & !Self::ALL.0
    }

    /// Names of the known bits that are set, lowest first.
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMES
            .iter()
            .filter(|(_, f)| self.contains(*f))
            .map(|(n, _)| *n)
            .collect()
    }
}

impl std::ops::BitOr for FeatureMap {
    type Output = FeatureMap;
    fn bitor(self, rhs: FeatureMap) -> FeatureMap {
        FeatureMap(self.0 | rhs.0)
    }
}

impl fmt::Display for FeatureMap {
    /// `0x44 (RESHAPE_ACTIVE|NEW_OFFSET)`; unknown bits are shown as a hex remainder.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)?;
        let mut parts: Vec<String> = self.names().iter().map(|s| s.to_string()).collect();
        if self.unknown_bits() != 0 {
            parts.push(format!("{:#x}", self.unknown_bits()));
        }
        if !parts.is_empty() {
            write!(f, " ({})", parts.join("|"))?;
        }
        Ok(())
    }
}

// ============================================================================================
// The superblock
// ============================================================================================

/// A version-1 superblock, field for field (§2). Sector values are 512-byte sectors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuperblockV1 {
    /// `MD_SB_MAGIC`.
    pub magic: u32,
    /// Always 1.
    pub major_version: u32,
    pub feature_map: FeatureMap,
    /// Must be zero (kept for faithful round trips).
    pub pad0: u32,
    pub set_uuid: [u8; 16],
    /// NUL-padded, often `host:name`.
    pub set_name: [u8; 32],
    /// Raw creation time: low 40 bits seconds, high 24 bits microseconds ([`Self::ctime`]).
    pub ctime_raw: u64,
    pub level: i32,
    pub layout: u32,
    /// Component size used by the array, sectors per member (levels ≥ 1; 0 for RAID0).
    pub size: u64,
    /// Chunk size in sectors.
    pub chunksize: u32,
    /// Number of slots; the *new* count during a reshape.
    pub raid_disks: u32,
    /// Raw word at offset 96: signed bitmap offset (BITMAP_OFFSET) or, with PPL, the
    /// `ppl.offset`/`ppl.size` pair ([`Self::ppl_offset`], [`Self::ppl_size`]).
    pub bitmap_offset: i32,
    pub new_level: i32,
    /// Reshape checkpoint in array sectors.
    pub reshape_position: u64,
    pub delta_disks: i32,
    pub new_layout: u32,
    /// Sectors.
    pub new_chunk: u32,
    /// Signed sectors added to `data_offset` for new-geometry data.
    pub new_offset: i32,
    pub data_offset: u64,
    pub data_size: u64,
    pub super_offset: u64,
    /// Rebuild checkpoint (RECOVERY_OFFSET) or, on a journal device, the journal tail.
    pub recovery_offset: u64,
    pub dev_number: u32,
    pub cnt_corrected_read: u32,
    pub device_uuid: [u8; 16],
    /// Bit 0 WriteMostly, bit 1 FailFast.
    pub devflags: u8,
    pub bblog_shift: u8,
    pub bblog_size: u16,
    /// Signed sectors from the superblock to the bad-block log.
    pub bblog_offset: i32,
    /// Raw update time, encoded as `ctime_raw`.
    pub utime_raw: u64,
    pub events: u64,
    pub resync_offset: u64,
    pub sb_csum: u32,
    pub max_dev: u32,
    /// Must be zero (kept for faithful round trips).
    pub pad3: [u8; 32],
    /// One raw role per device number; `len() == max_dev`.
    pub dev_roles: Vec<u16>,
}

impl SuperblockV1 {
    /// Decodes a v1 superblock from `buf` (which starts at the superblock; 4096 bytes is
    /// always enough). Fails only if the bytes cannot be a v1 superblock at all: too short,
    /// wrong magic, major version ≠ 1, `max_dev` over 1920. The checksum and the kernel's
    /// other rules are *not* checked here; see [`Self::checksum_ok`] and [`Self::problems`].
    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        if buf.len() < FIXED_BYTES {
            return Err(Error::TooShort {
                needed: FIXED_BYTES,
                got: buf.len(),
            });
        }
        let magic = le_u32(buf, 0);
        if magic != MD_SB_MAGIC {
            return Err(Error::BadMagic { found: magic });
        }
        let major_version = le_u32(buf, 4);
        if major_version != 1 {
            return Err(Error::UnsupportedVersion {
                major: major_version,
                expected: 1,
            });
        }
        let max_dev = le_u32(buf, 220);
        if max_dev > MAX_DEV_LIMIT {
            return Err(Error::TooManyDevices {
                max_dev,
                limit: MAX_DEV_LIMIT,
            });
        }
        let total = FIXED_BYTES + 2 * max_dev as usize;
        if buf.len() < total {
            return Err(Error::TooShort {
                needed: total,
                got: buf.len(),
            });
        }
        let dev_roles = (0..max_dev as usize)
            .map(|i| le_u16(buf, FIXED_BYTES + 2 * i))
            .collect();
        Ok(SuperblockV1 {
            magic,
            major_version,
            feature_map: FeatureMap(le_u32(buf, 8)),
            pad0: le_u32(buf, 12),
            set_uuid: array(buf, 16),
            set_name: array(buf, 32),
            ctime_raw: le_u64(buf, 64),
            level: le_u32(buf, 72) as i32,
            layout: le_u32(buf, 76),
            size: le_u64(buf, 80),
            chunksize: le_u32(buf, 88),
            raid_disks: le_u32(buf, 92),
            bitmap_offset: le_u32(buf, 96) as i32,
            new_level: le_u32(buf, 100) as i32,
            reshape_position: le_u64(buf, 104),
            delta_disks: le_u32(buf, 112) as i32,
            new_layout: le_u32(buf, 116),
            new_chunk: le_u32(buf, 120),
            new_offset: le_u32(buf, 124) as i32,
            data_offset: le_u64(buf, 128),
            data_size: le_u64(buf, 136),
            super_offset: le_u64(buf, 144),
            recovery_offset: le_u64(buf, 152),
            dev_number: le_u32(buf, 160),
            cnt_corrected_read: le_u32(buf, 164),
            device_uuid: array(buf, 168),
            devflags: buf[184],
            bblog_shift: buf[185],
            bblog_size: le_u16(buf, 186),
            bblog_offset: le_u32(buf, 188) as i32,
            utime_raw: le_u64(buf, 192),
            events: le_u64(buf, 200),
            resync_offset: le_u64(buf, 208),
            sb_csum: le_u32(buf, CSUM_OFFSET),
            max_dev,
            pad3: array(buf, 224),
            dev_roles,
        })
    }

    /// Length of the structure on disk: `256 + 2·max_dev` bytes.
    pub fn struct_len(&self) -> usize {
        FIXED_BYTES + 2 * self.max_dev as usize
    }

    /// Encodes the superblock exactly as stored, `sb_csum` included as it is (call
    /// [`Self::update_checksum`] first when writing). Returns `256 + 2·max_dev` bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        if self.max_dev > MAX_DEV_LIMIT {
            return Err(Error::TooManyDevices {
                max_dev: self.max_dev,
                limit: MAX_DEV_LIMIT,
            });
        }
        if self.dev_roles.len() != self.max_dev as usize {
            return Err(Error::RolesLength {
                max_dev: self.max_dev,
                roles: self.dev_roles.len(),
            });
        }
        let mut b = vec![0u8; self.struct_len()];
        put(&mut b, 0, &self.magic.to_le_bytes());
        put(&mut b, 4, &self.major_version.to_le_bytes());
        put(&mut b, 8, &self.feature_map.0.to_le_bytes());
        put(&mut b, 12, &self.pad0.to_le_bytes());
        put(&mut b, 16, &self.set_uuid);
        put(&mut b, 32, &self.set_name);
        put(&mut b, 64, &self.ctime_raw.to_le_bytes());
        put(&mut b, 72, &self.level.to_le_bytes());
        put(&mut b, 76, &self.layout.to_le_bytes());
        put(&mut b, 80, &self.size.to_le_bytes());
        put(&mut b, 88, &self.chunksize.to_le_bytes());
        put(&mut b, 92, &self.raid_disks.to_le_bytes());
        put(&mut b, 96, &self.bitmap_offset.to_le_bytes());
        put(&mut b, 100, &self.new_level.to_le_bytes());
        put(&mut b, 104, &self.reshape_position.to_le_bytes());
        put(&mut b, 112, &self.delta_disks.to_le_bytes());
        put(&mut b, 116, &self.new_layout.to_le_bytes());
        put(&mut b, 120, &self.new_chunk.to_le_bytes());
        put(&mut b, 124, &self.new_offset.to_le_bytes());
        put(&mut b, 128, &self.data_offset.to_le_bytes());
        put(&mut b, 136, &self.data_size.to_le_bytes());
        put(&mut b, 144, &self.super_offset.to_le_bytes());
        put(&mut b, 152, &self.recovery_offset.to_le_bytes());
        put(&mut b, 160, &self.dev_number.to_le_bytes());
        put(&mut b, 164, &self.cnt_corrected_read.to_le_bytes());
        put(&mut b, 168, &self.device_uuid);
        put(&mut b, 184, &[self.devflags, self.bblog_shift]);
        put(&mut b, 186, &self.bblog_size.to_le_bytes());
        put(&mut b, 188, &self.bblog_offset.to_le_bytes());
        put(&mut b, 192, &self.utime_raw.to_le_bytes());
        put(&mut b, 200, &self.events.to_le_bytes());
        put(&mut b, 208, &self.resync_offset.to_le_bytes());
        put(&mut b, CSUM_OFFSET, &self.sb_csum.to_le_bytes());
        put(&mut b, 220, &self.max_dev.to_le_bytes());
        put(&mut b, 224, &self.pad3);
        for (i, r) in self.dev_roles.iter().enumerate() {
            put(&mut b, FIXED_BYTES + 2 * i, &r.to_le_bytes());
        }
        Ok(b)
    }

    /// [`Self::to_bytes`] padded with zeros to the 4096 bytes a writer puts on disk.
    pub fn to_block(&self) -> Result<Vec<u8>, Error> {
        let mut b = self.to_bytes()?;
        b.resize(SUPERBLOCK_BYTES, 0);
        Ok(b)
    }

    /// The checksum the kernel would compute for this superblock (§2.1).
    pub fn compute_checksum(&self) -> Result<u32, Error> {
        Ok(checksum(&self.to_bytes()?))
    }

    /// True if the stored `sb_csum` equals [`Self::compute_checksum`].
    pub fn checksum_ok(&self) -> bool {
        self.compute_checksum().is_ok_and(|c| c == self.sb_csum)
    }

    /// Recomputes `sb_csum` and stores it; returns the new value. Do this last.
    pub fn update_checksum(&mut self) -> Result<u32, Error> {
        let c = self.compute_checksum()?;
        self.sb_csum = c;
        Ok(c)
    }

    /// A new superblock for `location` on a device of `device_sectors` sectors, filled
    /// with the values `mdadm --create` writes (§8.1) where they do not depend on the
    /// array: magic, major version 1, `super_offset` of the location, `max_dev` 128 with
    /// every role 0xffff (spare/unused), `resync_offset` MaxSector (clean), bad-block log
    /// of 8 sectors after the bitmap space (1.1/1.2) or just before the superblock (1.0).
    /// 1.1/1.2 get `data_offset` 2048 (1 MiB) and `data_size` = the rest of the device;
    /// 1.0 gets `data_offset` 0 and `data_size` = `super_offset − bitmap space − 8`.
    /// The caller sets UUIDs, name, times, geometry, `dev_number`, roles and `events`,
    /// then calls [`Self::update_checksum`].
    pub fn new(location: Location, device_sectors: u64) -> Result<Self, Error> {
        let super_offset = location.sector(device_sectors).ok_or(Error::NoRoom {
            location,
            device_sectors,
        })?;
        let bm_space = bitmap_space(device_sectors);
        let (data_offset, data_size, bblog_offset) = match location {
            Location::V1_1 | Location::V1_2 => {
                let off = 2048u64;
                (off, device_sectors.saturating_sub(off), 8 + bm_space as i32)
            }
            Location::V1_0 => (0, super_offset.saturating_sub(bm_space + 8), -8),
            Location::V0_90 => {
                return Err(Error::UnsupportedVersion {
                    major: 0,
                    expected: 1,
                })
            }
        };
        Ok(SuperblockV1 {
            magic: MD_SB_MAGIC,
            major_version: 1,
            feature_map: FeatureMap(0),
            pad0: 0,
            set_uuid: [0; 16],
            set_name: [0; 32],
            ctime_raw: 0,
            level: 0,
            layout: 0,
            size: 0,
            chunksize: 0,
            raid_disks: 0,
            bitmap_offset: 0,
            new_level: 0,
            reshape_position: 0,
            delta_disks: 0,
            new_layout: 0,
            new_chunk: 0,
            new_offset: 0,
            data_offset,
            data_size,
            super_offset,
            recovery_offset: 0,
            dev_number: 0,
            cnt_corrected_read: 0,
            device_uuid: [0; 16],
            devflags: 0,
            bblog_shift: 0,
            bblog_size: 8,
            bblog_offset,
            utime_raw: 0,
            events: 0,
            resync_offset: MAX_SECTOR,
            sb_csum: 0,
            max_dev: 128,
            pad3: [0; 32],
            dev_roles: vec![Role::SPARE_RAW; 128],
        })
    }

    // ---------------------------------------------------------------------------------
    // Decoded views
    // ---------------------------------------------------------------------------------

    /// `set_name` up to the first NUL, lossily decoded as UTF-8.
    pub fn name(&self) -> String {
        let end = self.set_name.iter().position(|&c| c == 0).unwrap_or(32);
        String::from_utf8_lossy(&self.set_name[..end]).into_owned()
    }

    /// Stores `name` NUL-padded; fails if it does not fit in 32 bytes.
    pub fn set_name_str(&mut self, name: &str) -> Result<(), Error> {
        let b = name.as_bytes();
        if b.len() > 32 {
            return Err(Error::Incompatible {
                reason: "set_name longer than 32 bytes",
            });
        }
        self.set_name = [0; 32];
        self.set_name[..b.len()].copy_from_slice(b);
        Ok(())
    }

    /// Creation time.
    pub fn ctime(&self) -> MdTime {
        MdTime::from_v1(self.ctime_raw)
    }

    /// Last update time.
    pub fn utime(&self) -> MdTime {
        MdTime::from_v1(self.utime_raw)
    }

    /// Decoded role of device number `dev_number` (spare if beyond `dev_roles`, as the
    /// kernel treats it).
    pub fn role_of(&self, dev_number: u32) -> Role {
        self.dev_roles
            .get(dev_number as usize)
            .map_or(Role::Spare, |&r| Role::from_raw(r))
    }

    /// This device's role: `dev_roles[dev_number]`.
    pub fn role(&self) -> Role {
        self.role_of(self.dev_number)
    }

    /// Sets `dev_roles[dev_number]`, growing `dev_roles`/`max_dev` if needed (up to 1920).
    pub fn set_role(&mut self, dev_number: u32, role: Role) -> Result<(), Error> {
        if dev_number >= MAX_DEV_LIMIT {
            return Err(Error::TooManyDevices {
                max_dev: dev_number.saturating_add(1),
                limit: MAX_DEV_LIMIT,
            });
        }
        let i = dev_number as usize;
        if i >= self.dev_roles.len() {
            self.dev_roles.resize(i + 1, Role::SPARE_RAW);
            self.max_dev = self.dev_roles.len() as u32;
        }
        self.dev_roles[i] = role.to_raw();
        Ok(())
    }

    /// Bitmap offset from the superblock in signed sectors, if BITMAP_OFFSET is set.
    pub fn bitmap_offset(&self) -> Option<i32> {
        self.feature_map
            .contains(FeatureMap::BITMAP_OFFSET)
            .then_some(self.bitmap_offset)
    }

    /// PPL area offset from the superblock (signed sectors), the low half of word 96.
    pub fn ppl_offset(&self) -> i16 {
        (self.bitmap_offset as u32 & 0xffff) as u16 as i16
    }

    /// PPL area size in sectors, the high half of word 96.
    pub fn ppl_size(&self) -> u16 {
        ((self.bitmap_offset as u32) >> 16) as u16
    }

    /// On a journal device the `recovery_offset` word is the journal tail.
    pub fn journal_tail(&self) -> u64 {
        self.recovery_offset
    }

    /// Superblock size in sectors as the kernel reserves it: `256 + 2·max_dev` rounded up
    /// to 512 bytes.
    pub fn struct_sectors(&self) -> u64 {
        (self.struct_len() as u64).div_ceil(512)
    }

    /// The rules the kernel (and mdadm, for the device size) apply before accepting this
    /// superblock (§2.5, §8.1 "What the kernel checks"). `location` is where it was found
    /// (checks `super_offset` and, for 1.1/1.2, that data lies after the superblock);
    /// `device_sectors` the member's size. Returns every broken rule; empty = acceptable.
    pub fn problems(&self, location: Option<Location>, device_sectors: Option<u64>) -> Vec<Error> {
        let mut out = Vec::new();
        match self.compute_checksum() {
            Ok(c) if c != self.sb_csum => out.push(Error::Checksum {
                stored: self.sb_csum,
                computed: c,
            }),
            Ok(_) => {}
            Err(e) => out.push(e),
        }
        if let Some(loc) = location {
            let expected = match device_sectors {
                Some(n) => loc.sector(n),
                None => match loc {
                    Location::V1_1 => Some(0),
                    Location::V1_2 => Some(8),
                    _ => None,
                },
            };
            if let Some(expected) = expected {
                if expected != self.super_offset {
                    out.push(Error::SuperOffsetMismatch {
                        recorded: self.super_offset,
                        expected,
                    });
                }
            }
        }
        let unknown = self.feature_map.unknown_bits();
        if unknown != 0 {
            out.push(Error::UnknownFeatures { bits: unknown });
        }
        if self.pad0 != 0 {
            out.push(Error::NonZeroPadding { field: "pad0" });
        }
        if self.pad3.iter().any(|&b| b != 0) {
            out.push(Error::NonZeroPadding { field: "pad3" });
        }
        if self.data_size < 10 {
            out.push(Error::DataSizeTooSmall {
                data_size: self.data_size,
            });
        }
        let fm = self.feature_map;
        let at_start = matches!(location, Some(Location::V1_1 | Location::V1_2));
        if at_start {
            let sb_end = self.super_offset.saturating_add(self.struct_sectors());
            if self.data_offset < sb_end {
                out.push(Error::DataOverlapsSuperblock {
                    data_start: self.data_offset as i128,
                    superblock_end: sb_end,
                });
            }
            if fm.contains(FeatureMap::NEW_OFFSET) {
                let new_start = self.data_offset as i128 + self.new_offset as i128;
                if new_start < sb_end as i128 {
                    out.push(Error::DataOverlapsSuperblock {
                        data_start: new_start,
                        superblock_end: sb_end,
                    });
                }
            }
        }
        if fm.contains(FeatureMap::BAD_BLOCKS) {
            if self.bblog_size > 8 {
                out.push(Error::BadBlockLog {
                    reason: "bblog_size larger than 8 sectors",
                });
            }
            if self.bblog_offset == 0 {
                out.push(Error::BadBlockLog {
                    reason: "BAD_BLOCKS set but bblog_offset is 0",
                });
            }
        }
        if fm.contains(FeatureMap::RAID0_LAYOUT) && self.level != 0 {
            out.push(Error::Incompatible {
                reason: "RAID0_LAYOUT on a level other than RAID0",
            });
        }
        if fm.contains(FeatureMap::PPL)
            && fm.intersects(FeatureMap::BITMAP_OFFSET | FeatureMap::JOURNAL)
        {
            out.push(Error::Incompatible {
                reason: "PPL together with BITMAP_OFFSET or JOURNAL",
            });
        }
        if matches!(location, Some(Location::V1_0)) && self.super_offset < self.data_size {
            out.push(Error::Incompatible {
                reason: "1.0 data area (data_size) runs into the superblock",
            });
        }
        if let Some(n) = device_sectors {
            if at_start {
                let end = self.data_offset.saturating_add(self.data_size);
                if end > n {
                    out.push(Error::DeviceTooSmall {
                        needed: end,
                        device_sectors: n,
                    });
                }
            }
            // mdadm's extra rule for members that hold array data.
            if self.level >= 1 && self.role() != Role::Journal {
                let end = self.data_offset.saturating_add(self.size);
                if end > n {
                    out.push(Error::DeviceTooSmall {
                        needed: end,
                        device_sectors: n,
                    });
                }
            }
        }
        out
    }
}

/// The v1 checksum (§2.1) of a raw superblock image `raw` (exactly `256 + 2·max_dev`
/// bytes): the `sb_csum` word counts as zero; complete little-endian 32-bit words are summed
/// into 64 bits, a trailing 16-bit half-word is added as such (a trailing odd byte, which
/// a real superblock cannot have, is ignored), and the two 32-bit halves are added.
pub fn checksum(raw: &[u8]) -> u32 {
    let mut sum: u64 = 0;
    let mut chunks = raw.chunks_exact(4);
    for (i, w) in chunks.by_ref().enumerate() {
        if i * 4 == CSUM_OFFSET {
            continue;
        }
        sum = sum.wrapping_add(u64::from(u32::from_le_bytes([w[0], w[1], w[2], w[3]])));
    }
    let rest = chunks.remainder();
    if rest.len() >= 2 {
        sum = sum.wrapping_add(u64::from(u16::from_le_bytes([rest[0], rest[1]])));
    }
    ((sum & 0xffff_ffff) + (sum >> 32)) as u32
}

/// Sectors mdadm reserves for the bitmap (`choose_bm_space`): 8 below 8 GiB, 128 from
/// 8 GiB, 256 from 200 GiB.
pub fn bitmap_space(device_sectors: u64) -> u64 {
    const GIB: u64 = 2 * 1024 * 1024;
    if device_sectors < 8 * GIB {
        8
    } else if device_sectors < 200 * GIB {
        128
    } else {
        256
    }
}
