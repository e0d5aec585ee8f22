//! The version-0.90 md superblock.
//!
//! 4096 bytes = 1024 32-bit words, every word in the byte order of the host that wrote
//! it (`shared/docs/md-format.md` §3). The order is detected from the magic. The three
//! 64-bit quantities (`events`, `cp_events`, `reshape_position`) are laid out so that
//! reading them as one 64-bit integer in the detected order is right for both orders
//! (a big-endian writer stores the high word first).
//!
//! [`SuperblockV090`] keeps every word, reserved ones included, so a parse followed by
//! [`SuperblockV090::to_bytes`] in the same order reproduces the input.

use super::superblock::{MdTime, Role};
use super::{Error, MAX_SECTOR, MD_SB_MAGIC, SUPERBLOCK_BYTES};

/// Number of descriptors in the `disks[]` table.
pub const MAX_DISKS: usize = 27;

const WORDS: usize = SUPERBLOCK_BYTES / 4;
const CSUM_WORD: usize = 38;
const DISKS_WORD: usize = 128;
const THIS_DISK_WORD: usize = 992;

/// Byte order of a 0.90 superblock (that of the host which wrote it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    Little,
    Big,
}

/// How a 0.90 checksum matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChecksumMatch {
    /// The 32-bit values are equal (what mdadm requires).
    Exact,
    /// Only the 16-bit folds are equal (the kernel's legacy comparison accepts this).
    Folded,
    /// Neither.
    Bad,
}

impl ChecksumMatch {
    /// True for `Exact` and `Folded`: the kernel accepts both.
    pub fn is_ok(self) -> bool {
        self != ChecksumMatch::Bad
    }
}

/// One 128-byte `mdp_disk_t` descriptor.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DiskDescriptor {
    /// Index of this descriptor in `disks[]`.
    pub number: u32,
    pub major: u32,
    pub minor: u32,
    /// Slot in the array.
    pub raid_disk: u32,
    /// Bit set, see the `STATE_*` constants.
    pub state: u32,
    /// Words 5…31, unused by md (kept for round trips).
    pub reserved: [u32; 27],
}

impl DiskDescriptor {
    /// Device failed.
    pub const STATE_FAULTY: u32 = 1 << 0;
    /// Device is an active member.
    pub const STATE_ACTIVE: u32 = 1 << 1;
    /// Device is in sync with the array.
    pub const STATE_SYNC: u32 = 1 << 2;
    /// Device was removed.
    pub const STATE_REMOVED: u32 = 1 << 3;
    /// Write-mostly member (RAID1).
    pub const STATE_WRITEMOSTLY: u32 = 1 << 9;
    /// Fail-fast member.
    pub const STATE_FAILFAST: u32 = 1 << 10;

    fn from_words(w: &[u32]) -> Self {
        let mut reserved = [0u32; 27];
        if let Some(src) = w.get(5..32) {
            reserved.copy_from_slice(src);
        }
        let g = |i: usize| w.get(i).copied().unwrap_or(0);
        DiskDescriptor {
            number: g(0),
            major: g(1),
            minor: g(2),
            raid_disk: g(3),
            state: g(4),
            reserved,
        }
    }

    fn write_words(&self, w: &mut [u32]) {
        let head = [
            self.number,
            self.major,
            self.minor,
            self.raid_disk,
            self.state,
        ];
        for (d, s) in w.iter_mut().zip(head.iter().chain(self.reserved.iter())) {
            *d = *s;
        }
    }

    /// True if the state word has the bit(s) `flag`.
    pub fn has(&self, flag: u32) -> bool {
        self.state & flag == flag
    }
}

/// A version-0.90 superblock, word for word (§3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuperblockV090 {
    /// Byte order the superblock was read in (and will be written in).
    pub byte_order: ByteOrder,
    pub md_magic: u32,
    /// Always 0.
    pub major_version: u32,
    /// 90, or 91 while a reshape is in progress.
    pub minor_version: u32,
    pub patch_version: u32,
    pub gvalid_words: u32,
    /// UUID words 0…3 (word 0 at offset 20, words 1–3 at 52…60).
    pub set_uuid: [u32; 4],
    /// Creation time, seconds.
    pub ctime: u32,
    pub level: i32,
    /// Component size in KiB.
    pub size: u32,
    pub nr_disks: u32,
    pub raid_disks: u32,
    pub md_minor: u32,
    pub not_persistent: u32,
    /// Words 16…31 (reserved).
    pub gstate_reserved: [u32; 16],
    /// Update time, seconds.
    pub utime: u32,
    /// Bit 0 CLEAN, bit 1 ERRORS, bit 8 BITMAP_PRESENT.
    pub state: u32,
    pub active_disks: u32,
    pub working_disks: u32,
    pub failed_disks: u32,
    pub spare_disks: u32,
    pub sb_csum: u32,
    pub events: u64,
    pub cp_events: u64,
    /// Resync checkpoint (sectors); trusted only when `cp_events == events`.
    pub recovery_cp: u32,
    /// Array sectors; valid when `minor_version ≥ 91`.
    pub reshape_position: u64,
    pub new_level: i32,
    pub delta_disks: i32,
    pub new_layout: u32,
    /// Bytes.
    pub new_chunk: u32,
    /// Words 50…63 (reserved).
    pub sstate_reserved: [u32; 14],
    pub layout: u32,
    /// Bytes.
    pub chunk_size: u32,
    pub root_pv: u32,
    pub root_block: u32,
    /// Words 68…127 (reserved).
    pub pstate_reserved: [u32; 60],
    /// The 27 descriptors of `disks[]`.
    pub disks: Vec<DiskDescriptor>,
    pub this_disk: DiskDescriptor,
}

impl SuperblockV090 {
    /// State bit: array was cleanly stopped.
    pub const STATE_CLEAN: u32 = 1 << 0;
    /// State bit: errors.
    pub const STATE_ERRORS: u32 = 1 << 1;
    /// State bit: an internal bitmap follows the superblock.
    pub const STATE_BITMAP_PRESENT: u32 = 1 << 8;

    /// Decodes a 0.90 superblock from the first 4096 bytes of `buf`, detecting the byte
    /// order from the magic. Fails only if the bytes cannot be one (too short, no magic in
    /// either order, major version ≠ 0); the checksum is checked by [`Self::checksum`].
    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        let raw = buf.get(..SUPERBLOCK_BYTES).ok_or(Error::TooShort {
            needed: SUPERBLOCK_BYTES,
            got: buf.len(),
        })?;
        let m = [raw[0], raw[1], raw[2], raw[3]];
        let order = if u32::from_le_bytes(m) == MD_SB_MAGIC {
            ByteOrder::Little
        } else if u32::from_be_bytes(m) == MD_SB_MAGIC {
            ByteOrder::Big
        } else {
            return Err(Error::BadMagic {
                found: u32::from_le_bytes(m),
            });
        };
        let w = words(raw, order);
        let g = |i: usize| w.get(i).copied().unwrap_or(0);
        let g64 = |i: usize| (u64::from(g(i)) << 32) | u64::from(g(i + 1));
        // A 64-bit field occupies words i, i+1. Read as one integer in the writer's
        // order: little-endian → low word first; big-endian → high word first.
        let q = |i: usize| match order {
            ByteOrder::Little => (u64::from(g(i + 1)) << 32) | u64::from(g(i)),
            ByteOrder::Big => g64(i),
        };
        if g(1) != 0 {
            return Err(Error::UnsupportedVersion {
                major: g(1),
                expected: 0,
            });
        }
        let copy = |start: usize, dst: &mut [u32]| {
            for (k, d) in dst.iter_mut().enumerate() {
                *d = g(start + k);
            }
        };
        let mut gstate_reserved = [0u32; 16];
        copy(16, &mut gstate_reserved);
        let mut sstate_reserved = [0u32; 14];
        copy(50, &mut sstate_reserved);
        let mut pstate_reserved = [0u32; 60];
        copy(68, &mut pstate_reserved);
        let disks = (0..MAX_DISKS)
            .map(|i| {
                let s = DISKS_WORD + 32 * i;
                DiskDescriptor::from_words(w.get(s..s + 32).unwrap_or(&[]))
            })
            .collect();
        let this_disk =
            DiskDescriptor::from_words(w.get(THIS_DISK_WORD..THIS_DISK_WORD + 32).unwrap_or(&[]));
        Ok(SuperblockV090 {
            byte_order: order,
            md_magic: g(0),
            major_version: g(1),
            minor_version: g(2),
            patch_version: g(3),
            gvalid_words: g(4),
            set_uuid: [g(5), g(13), g(14), g(15)],
            ctime: g(6),
            level: g(7) as i32,
            size: g(8),
            nr_disks: g(9),
            raid_disks: g(10),
            md_minor: g(11),
            not_persistent: g(12),
            gstate_reserved,
            utime: g(32),
            state: g(33),
            active_disks: g(34),
            working_disks: g(35),
            failed_disks: g(36),
            spare_disks: g(37),
            sb_csum: g(CSUM_WORD),
            events: q(39),
            cp_events: q(41),
            recovery_cp: g(43),
            reshape_position: q(44),
            new_level: g(46) as i32,
            delta_disks: g(47) as i32,
            new_layout: g(48),
            new_chunk: g(49),
            sstate_reserved,
            layout: g(64),
            chunk_size: g(65),
            root_pv: g(66),
            root_block: g(67),
            pstate_reserved,
            disks,
            this_disk,
        })
    }

    fn to_words(&self) -> [u32; WORDS] {
        let mut w = [0u32; WORDS];
        let split = |v: u64| -> (u32, u32) {
            let (hi, lo) = ((v >> 32) as u32, v as u32);
            match self.byte_order {
                ByteOrder::Little => (lo, hi),
                ByteOrder::Big => (hi, lo),
            }
        };
        w[0] = self.md_magic;
        w[1] = self.major_version;
        w[2] = self.minor_version;
        w[3] = self.patch_version;
        w[4] = self.gvalid_words;
        w[5] = self.set_uuid[0];
        w[6] = self.ctime;
        w[7] = self.level as u32;
        w[8] = self.size;
        w[9] = self.nr_disks;
        w[10] = self.raid_disks;
        w[11] = self.md_minor;
        w[12] = self.not_persistent;
        w[13] = self.set_uuid[1];
        w[14] = self.set_uuid[2];
        w[15] = self.set_uuid[3];
        w[16..32].copy_from_slice(&self.gstate_reserved);
        w[32] = self.utime;
        w[33] = self.state;
        w[34] = self.active_disks;
        w[35] = self.working_disks;
        w[36] = self.failed_disks;
        w[37] = self.spare_disks;
        w[CSUM_WORD] = self.sb_csum;
        (w[39], w[40]) = split(self.events);
        (w[41], w[42]) = split(self.cp_events);
        w[43] = self.recovery_cp;
        (w[44], w[45]) = split(self.reshape_position);
        w[46] = self.new_level as u32;
        w[47] = self.delta_disks as u32;
        w[48] = self.new_layout;
        w[49] = self.new_chunk;
        w[50..64].copy_from_slice(&self.sstate_reserved);
        w[64] = self.layout;
        w[65] = self.chunk_size;
        w[66] = self.root_pv;
        w[67] = self.root_block;
        w[68..128].copy_from_slice(&self.pstate_reserved);
        for (i, d) in self.disks.iter().take(MAX_DISKS).enumerate() {
            let s = DISKS_WORD + 32 * i;
            d.write_words(&mut w[s..s + 32]);
        }
        self.this_disk
            .write_words(&mut w[THIS_DISK_WORD..THIS_DISK_WORD + 32]);
        w
    }

    /// Encodes the 4096-byte superblock in `self.byte_order`, `sb_csum` as stored.
    /// Descriptors beyond 27 in `disks` are ignored; missing ones are written as zeros.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SUPERBLOCK_BYTES);
        for v in self.to_words() {
            match self.byte_order {
                ByteOrder::Little => out.extend_from_slice(&v.to_le_bytes()),
                ByteOrder::Big => out.extend_from_slice(&v.to_be_bytes()),
            }
        }
        out
    }

    /// The 32-bit checksum of this superblock (§3): the 1024 words summed in 64 bits with
    /// `sb_csum` as zero, then the two halves added.
    pub fn compute_checksum(&self) -> u32 {
        let mut w = self.to_words();
        w[CSUM_WORD] = 0;
        let sum: u64 = w.iter().map(|&v| u64::from(v)).sum();
        ((sum & 0xffff_ffff) + (sum >> 32)) as u32
    }

    /// Compares the stored checksum with the computed one both ways the kernel accepts.
    pub fn checksum(&self) -> ChecksumMatch {
        let c = self.compute_checksum();
        if c == self.sb_csum {
            ChecksumMatch::Exact
        } else if csum_fold(c) == csum_fold(self.sb_csum) {
            ChecksumMatch::Folded
        } else {
            ChecksumMatch::Bad
        }
    }

    /// True if the checksum matches exactly or after the kernel's 16-bit fold.
    pub fn checksum_ok(&self) -> bool {
        self.checksum().is_ok()
    }

    /// Recomputes `sb_csum` (32-bit form) and stores it.
    pub fn update_checksum(&mut self) -> u32 {
        let c = self.compute_checksum();
        self.sb_csum = c;
        c
    }

    /// Array UUID as 16 bytes: the four words, each big-endian, as mdadm prints them.
    pub fn uuid(&self) -> [u8; 16] {
        let mut u = [0u8; 16];
        for (i, w) in self.set_uuid.iter().enumerate() {
            u[4 * i..4 * i + 4].copy_from_slice(&w.to_be_bytes());
        }
        u
    }

    /// True while a reshape is recorded (`minor_version ≥ 91`).
    pub fn reshape_active(&self) -> bool {
        self.minor_version >= 91
    }

    /// The descriptor that describes this member: `disks[this_disk.number]`, or
    /// `this_disk` itself if the number is out of range.
    pub fn own_descriptor(&self) -> &DiskDescriptor {
        self.disks
            .get(self.this_disk.number as usize)
            .unwrap_or(&self.this_disk)
    }

    /// The role of descriptor `d` as the kernel decides it (`super_90_validate`):
    /// FAULTY → faulty; SYNC → active in `raid_disk`; ACTIVE without SYNC during a 0.91
    /// reshape → active (rebuilt up to the reshape position); anything else → spare.
    pub fn role_of(&self, d: &DiskDescriptor) -> Role {
        if d.has(DiskDescriptor::STATE_FAULTY) {
            Role::Faulty
        } else if d.has(DiskDescriptor::STATE_SYNC)
            || (d.has(DiskDescriptor::STATE_ACTIVE) && self.reshape_active())
        {
            match u16::try_from(d.raid_disk) {
                Ok(s) if s < Role::MAX_SLOT => Role::Active(s),
                _ => Role::Unknown(u16::MAX),
            }
        } else {
            Role::Spare
        }
    }

    /// This member's role.
    pub fn role(&self) -> Role {
        self.role_of(self.own_descriptor())
    }

    /// Creation time.
    pub fn ctime(&self) -> MdTime {
        MdTime {
            seconds: u64::from(self.ctime),
            micros: 0,
        }
    }

    /// Last update time.
    pub fn utime(&self) -> MdTime {
        MdTime {
            seconds: u64::from(self.utime),
            micros: 0,
        }
    }

    /// Resync checkpoint as the kernel derives it: MaxSector when CLEAN; otherwise
    /// `recovery_cp` if `cp_events == events` (0xffffffff meaning MaxSector), else 0.
    pub fn resync_offset(&self) -> u64 {
        if self.state & Self::STATE_CLEAN != 0 {
            MAX_SECTOR
        } else if self.cp_events == self.events {
            if self.recovery_cp == u32::MAX {
                MAX_SECTOR
            } else {
                u64::from(self.recovery_cp)
            }
        } else {
            0
        }
    }

    /// Problems the kernel would refuse this superblock for (checksum in both accepted
    /// forms); `device_sectors`, if known, checks that the data area fits before the
    /// superblock (levels ≥ 1).
    pub fn problems(&self, device_sectors: Option<u64>) -> Vec<Error> {
        let mut out = Vec::new();
        if !self.checksum_ok() {
            out.push(Error::Checksum {
                stored: self.sb_csum,
                computed: self.compute_checksum(),
            });
        }
        if let Some(n) = device_sectors {
            if let Some(sb) = super::Location::V0_90.sector(n) {
                let needed = u64::from(self.size) * 2;
                if self.level >= 1 && needed > sb {
                    out.push(Error::DeviceTooSmall {
                        needed: needed + (n - sb),
                        device_sectors: n,
                    });
                }
            }
        }
        out
    }
}

/// The kernel's 16-bit fold of a 32-bit checksum (legacy Alpha behaviour, `md_csum_fold`).
pub fn csum_fold(c: u32) -> u32 {
    let c = (c & 0xffff) + (c >> 16);
    (c & 0xffff) + (c >> 16)
}

fn words(raw: &[u8], order: ByteOrder) -> Vec<u32> {
    raw.chunks_exact(4)
        .map(|c| {
            let a = [c[0], c[1], c[2], c[3]];
            match order {
                ByteOrder::Little => u32::from_le_bytes(a),
                ByteOrder::Big => u32::from_be_bytes(a),
            }
        })
        .collect()
}
