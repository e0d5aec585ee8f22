//! Create a new md array (metadata 1.2, or 1.0/1.1) over image files or block devices, so
//! that the Linux kernel assembles it clean: no resync, no recovery, `mismatch_cnt` 0.
//!
//! Creation has two steps, so that a caller can show what will happen before it happens:
//!
//! 1. [`plan`] only reads. It probes every member for an md superblock
//!    ([`crate::md::probe`]) and for file-system and partition-table signatures
//!    ([`scan_signatures`]), refuses such members unless `force` is set, refuses the same
//!    member twice and members that are too small, picks the data offset and component
//!    size as `mdadm --create` does (`shared/docs/md-format.md` §8.1), builds every
//!    member's superblock and decides whether the initial redundancy must be computed. The
//!    [`Plan`] prints as a human-readable description (`Display`).
//! 2. [`Plan::execute`] writes, in an order chosen so that a crash at any point never
//!    leaves something the kernel would assemble with wrong data (see the comments there):
//!    stale metadata wiped first, then data/parity, then the superblocks, with an fsync
//!    between the steps.
//!
//! The superblocks follow the checklist of §8.7: same `set_uuid`, geometry, `ctime`, name
//! on every member; `dev_number` = slot; `dev_roles[slot] = slot` for the members present,
//! 0xffff for missing slots and unused entries; `events` 0; `resync_offset` MaxSector
//! (clean) because the redundancy is made consistent before the superblocks are written
//! (or is consistent already: members that are new sparse files are all zeros, and zeros
//! are a consistent stripe for P, Q and mirrors alike); an internal write-intent bitmap with
//! every bit clear (§8.3) for the redundant levels, used by [`crate::writer`].
//! A degraded start (a `None` member) is allowed where the level has redundancy to spare;
//! the missing member's data blocks are defined as zeros ([`crate::resync::Missing::Zero`]).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{invalid, Error, Result};
use crate::layout::{Geometry, Layout, Level, Raid0Layout, SECTOR_SIZE};
use crate::md::bitmap::{self, BitmapHeader, HEADER_BYTES};
use crate::md::superblock::{Found, Superblock};
use crate::md::v1::{bitmap_space, FeatureMap};
use crate::md::{format_uuid, level_name, Location, MdTime, Role, SuperblockV1, MAX_SECTOR};
use crate::resync::{self, Missing, ResyncOptions, ResyncStats, Target};

/// mdadm's default chunk (`DEFAULT_CHUNK`): 512 KiB.
pub const DEFAULT_CHUNK_BYTES: u64 = 512 * 1024;

/// Bytes at the start of a member that [`scan_signatures`] reads (btrfs keeps its
/// superblock at 64 KiB, ISO 9660 its volume descriptor at 32 KiB).
const SCAN_BYTES: u64 = 128 * 1024;

/// RAID1 component sizes are rounded down to 64 KiB (mdadm).
const RAID1_ROUND_SECTORS: u64 = 128;

/// `O_EXCL` on a block device: the open fails if the device is mounted or held by md or
/// device-mapper. Linux's value on every architecture Rust supports for it.
#[cfg(target_os = "linux")]
const O_EXCL: i32 = 0o200;
#[cfg(not(target_os = "linux"))]
const O_EXCL: i32 = 0;

// ================================================================================
// Options
// ================================================================================

/// What to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOptions {
    pub level: Level,
    /// `None`: mdadm's default for the level (left-symmetric, n2, original).
    pub layout: Option<Layout>,
    /// Chunk size in bytes (RAID0/4/5/6/10; the rounding unit for linear; ignored by RAID1).
    pub chunk_bytes: u64,
    /// Size in bytes of member files that do not exist yet (they are created sparse).
    /// Existing members keep their size.
    pub size: Option<u64>,
    /// Array name; stored as `homehost:name` when that fits in 32 bytes and `name` has no
    /// `:` (mdadm's rule), else as given.
    pub name: Option<String>,
    /// Overwrite members that hold md metadata or a recognisable file system.
    pub force: bool,
    /// Where the superblock goes: 1.2 (default), 1.1 or 1.0.
    pub metadata: Location,
}

impl CreateOptions {
    /// Defaults for `level`: 512 KiB chunk, default layout, metadata 1.2.
    pub fn new(level: Level) -> CreateOptions {
        CreateOptions {
            level,
            layout: None,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            size: None,
            name: None,
            force: false,
            metadata: Location::V1_2,
        }
    }
}

// ================================================================================
// Signatures
// ================================================================================

/// Something recognisable found on a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// An md superblock.
    Md {
        version: Location,
        level: i32,
        uuid: [u8; 16],
        ctime: MdTime,
        name: String,
        /// Checksum and the kernel's other rules are satisfied.
        valid: bool,
    },
    /// A file system, swap area, LUKS header, volume manager label...: its name.
    Content(&'static str),
    /// A partition table: `"GPT"` or `"MBR"`.
    PartitionTable(&'static str),
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signature::Md {
                version,
                level,
                uuid,
                ctime,
                name,
                valid,
            } => {
                let lv = level_name(*level).map_or_else(|| format!("level {level}"), String::from);
                write!(
                    f,
                    "md superblock {version}{} of a {lv} array, UUID {}, created {}",
                    if *valid { "" } else { " (invalid)" },
                    format_uuid(uuid),
                    format_time(ctime.seconds),
                )?;
                if !name.is_empty() {
                    write!(f, ", name {name:?}")?;
                }
                Ok(())
            }
            Signature::Content(what) => f.write_str(what),
            Signature::PartitionTable(kind) => write!(f, "{kind} partition table"),
        }
    }
}

/// Looks for md superblocks, file systems and partition tables on a device of `len`
/// bytes, read through `read_at(offset, buf)`. Checks magic numbers only (documented
/// locations: ext2/3/4 0xEF53 at byte 1080, XFS `XFSB` at 0, btrfs `_BHRfS_M` at 65600,
/// swap `SWAPSPACE2`/`SWAP-SPACE` before the 4 KiB mark, LUKS `LUKS\xba\xbe` at 0, LVM2
/// `LABELONE` in sector 1, ISO 9660 `CD001` at 32769, FAT/exFAT/NTFS boot sectors, GPT
/// `EFI PART` in LBA 1, an MBR with partition entries).
pub fn scan_signatures<F>(len: u64, mut read_at: F) -> io::Result<Vec<Signature>>
where
    F: FnMut(u64, &mut [u8]) -> io::Result<()>,
{
    let mut out = Vec::new();
    let found = crate::md::probe(len, &mut read_at).map_err(|e| io::Error::other(e.to_string()))?;
    for f in &found {
        if let Some(sig) = md_signature(f) {
            out.push(sig);
        }
    }
    let mut head = vec![0u8; SCAN_BYTES.min(len) as usize];
    read_at(0, &mut head)?;
    let at = |off: usize, magic: &[u8]| head.get(off..off + magic.len()) == Some(magic);
    let le16 = |off: usize| {
        head.get(off..off + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let le32 = |off: usize| {
        head.get(off..off + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    // ext2/3/4: superblock at 1024, s_magic at +56; the feature words tell them apart.
    if le16(1024 + 56) == Some(0xef53) {
        let compat = le32(1024 + 92).unwrap_or(0);
        let incompat = le32(1024 + 96).unwrap_or(0);
        // extents, 64bit, flex_bg are ext4-only; has_journal makes ext2 an ext3.
        out.push(Signature::Content(
            if incompat & (0x40 | 0x80 | 0x200) != 0 {
                "ext4 file system"
            } else if compat & 0x4 != 0 {
                "ext3 file system"
            } else {
                "ext2 file system"
            },
        ));
    }
    if at(0, b"XFSB") {
        out.push(Signature::Content("XFS file system"));
    }
    if at(65536 + 64, b"_BHRfS_M") {
        out.push(Signature::Content("btrfs file system"));
    }
    if at(4096 - 10, b"SWAPSPACE2") || at(4096 - 10, b"SWAP-SPACE") {
        out.push(Signature::Content("Linux swap area"));
    }
    if at(0, b"LUKS\xba\xbe") {
        out.push(Signature::Content("LUKS encrypted volume"));
    }
    if at(512, b"LABELONE") && at(512 + 24, b"LVM2 001") {
        out.push(Signature::Content("LVM2 physical volume"));
    }
    if at(32769, b"CD001") {
        out.push(Signature::Content("ISO 9660 file system"));
    }
    let boot_sig = at(510, &[0x55, 0xaa]);
    let mut boot_fs = false;
    if at(3, b"NTFS    ") {
        out.push(Signature::Content("NTFS file system"));
        boot_fs = true;
    } else if at(3, b"EXFAT   ") {
        out.push(Signature::Content("exFAT file system"));
        boot_fs = true;
    } else if boot_sig && (at(54, b"FAT1") || at(54, b"FAT ") || at(82, b"FAT32   ")) {
        out.push(Signature::Content("FAT (vfat) file system"));
        boot_fs = true;
    }
    let gpt = at(512, b"EFI PART") || at(4096, b"EFI PART");
    if gpt {
        out.push(Signature::PartitionTable("GPT"));
    }
    if boot_sig && !boot_fs && !gpt {
        // An MBR: at least one partition entry with a type and a size.
        let used = (0..4).any(|i| {
            let e = 446 + 16 * i;
            head.get(e + 4).is_some_and(|&t| t != 0) && le32(e + 12).is_some_and(|n| n != 0)
        });
        if used {
            out.push(Signature::PartitionTable("MBR"));
        }
    }
    Ok(out)
}

fn md_signature(f: &Found) -> Option<Signature> {
    let sb = f.superblock.as_ref().ok()?;
    let info = f.member_info()?;
    let valid = f.is_valid();
    let (level, uuid, ctime) = match sb {
        Superblock::V1(s) => (s.level, s.set_uuid, s.ctime()),
        Superblock::V090(s) => (s.level, s.uuid(), s.ctime()),
    };
    Some(Signature::Md {
        version: f.location,
        level,
        uuid,
        ctime,
        name: info.name,
        valid,
    })
}

/// `YYYY-MM-DD HH:MM:SS UTC` (days-to-civil conversion, proleptic Gregorian).
fn format_time(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

// ================================================================================
// The plan
// ================================================================================

/// One slot of the planned array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberPlan {
    pub slot: u32,
    /// `None`: the slot starts missing (degraded).
    pub path: Option<PathBuf>,
    /// The file does not exist and will be created sparse with [`CreateOptions::size`].
    pub create: bool,
    pub block_device: bool,
    /// Bytes (for a file to be created: the size it will get).
    pub device_bytes: u64,
    /// What was found on it (only reported, or overridden by `force`).
    pub found: Vec<Signature>,
    /// The superblock to write (`None` for a missing slot).
    pub superblock: Option<SuperblockV1>,
}

/// How the initial redundancy is made consistent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialSync {
    /// RAID0 and linear: nothing to make consistent.
    NoRedundancy,
    /// Every member present is a new sparse file: all zeros is consistent.
    AllZero,
    /// Read the members and write the parity/mirror copies that differ, over this many
    /// span sectors ([`crate::resync::span_sectors`]).
    Resync { span_sectors: u64 },
}

/// What [`Plan::execute`] will write. Prints as a human-readable description.
#[derive(Debug, Clone)]
pub struct Plan {
    pub options: CreateOptions,
    pub layout: Layout,
    pub geometry: Geometry,
    pub set_uuid: [u8; 16],
    /// The name as stored (`set_name`).
    pub name: String,
    pub ctime: MdTime,
    /// Data offset in sectors (the same on every member).
    pub data_offset: u64,
    pub members: Vec<MemberPlan>,
    pub sync: InitialSync,
    /// The internal write-intent bitmap written on every member (redundant levels, when
    /// the reserved space holds one), all bits clear (§8.3, §8.7 item 7).
    pub bitmap: Option<BitmapHeader>,
}

/// What [`Plan::execute`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub set_uuid: [u8; 16],
    pub array_bytes: u64,
    /// Files created.
    pub created: Vec<PathBuf>,
    /// The initial resync, if one ran.
    pub resync: Option<ResyncStats>,
    /// Stale md superblocks and signature areas cleared (path, byte offset, length).
    pub wiped: Vec<(PathBuf, u64, u64)>,
}

/// Size and identity of an existing member.
struct Probed {
    bytes: u64,
    block_device: bool,
    identity: (u64, u64),
    found: Vec<Signature>,
}

fn md_err(e: crate::md::Error) -> Error {
    invalid!("superblock: {e}")
}

fn io_error(path: &Path, what: &str, e: &io::Error) -> Error {
    Error::Io(format!("{}: {what}: {e}", path.display()))
}

/// Size of an open file or block device (a block device's metadata says 0: seek to its end).
fn device_len(path: &Path, file: &File) -> Result<(u64, bool)> {
    let meta = file
        .metadata()
        .map_err(|e| io_error(path, "cannot stat", &e))?;
    let ft = meta.file_type();
    if ft.is_block_device() {
        let mut f = file;
        let n = f
            .seek(SeekFrom::End(0))
            .map_err(|e| io_error(path, "cannot find the device size", &e))?;
        Ok((n, true))
    } else if ft.is_file() {
        Ok((meta.len(), false))
    } else {
        Err(invalid!(
            "members: {} is not a regular file or a block device",
            path.display()
        ))
    }
}

fn probe_existing(path: &Path) -> Result<Probed> {
    let file = File::open(path).map_err(|e| io_error(path, "cannot open", &e))?;
    let (bytes, block_device) = device_len(path, &file)?;
    let meta = file
        .metadata()
        .map_err(|e| io_error(path, "cannot stat", &e))?;
    let identity = if block_device {
        (u64::MAX, meta.rdev())
    } else {
        (meta.dev(), meta.ino())
    };
    let found = scan_signatures(bytes, |off, buf| file.read_exact_at(buf, off))
        .map_err(|e| io_error(path, "cannot read", &e))?;
    Ok(Probed {
        bytes,
        block_device,
        identity,
        found,
    })
}

/// 16 random bytes from the kernel's CSPRNG.
pub(crate) fn random_uuid() -> Result<[u8; 16]> {
    crate::md::random_uuid().map_err(|e| Error::Io(format!("/dev/urandom: {e}")))
}

fn hostname() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()?;
    let h = h.trim();
    (!h.is_empty()).then(|| h.to_owned())
}

/// `set_name` as mdadm forms it.
fn stored_name(name: Option<&str>) -> Result<String> {
    let Some(name) = name else {
        return Ok(String::new());
    };
    if name.len() > 32 || name.contains('\0') {
        return Err(invalid!(
            "name: at most 32 bytes without NUL, got {} bytes",
            name.len()
        ));
    }
    if !name.is_empty() && !name.contains(':') {
        if let Some(host) = hostname() {
            let full = format!("{host}:{name}");
            if full.len() <= 31 {
                return Ok(full);
            }
        }
    }
    Ok(name.to_owned())
}

/// mdadm's 1.1/1.2 data offset (§8.1): `round_up(24 + bm_space + headroom, 2048)`, the
/// headroom starting at 128 MiB and halved while it exceeds 1/1024 of the device and stays
/// at least four chunks.
pub fn default_data_offset(device_sectors: u64, chunk_sectors: u64, bm_space: u64) -> u64 {
    let mut headroom: u64 = 262_144;
    while headroom.saturating_mul(1024) > device_sectors && headroom / 2 >= 2 * chunk_sectors {
        headroom /= 2;
    }
    (24 + bm_space + headroom).div_ceil(2048) * 2048
}

/// `max_dev` as mdadm sizes it: the role table rounded up to whole 512-byte sectors.
fn max_dev_for(devices: u32) -> u32 {
    ((256 + 2 * devices as usize).div_ceil(512) * 512 - 256) as u32 / 2
}

/// Reads the members (nothing is written) and works out everything [`Plan::execute`] will
/// write. `members[i]` is the path of slot `i`, or `None` for a missing slot.
pub fn plan(members: &[Option<PathBuf>], opts: &CreateOptions) -> Result<Plan> {
    let level = opts.level;
    let n = u32::try_from(members.len())
        .map_err(|_| invalid!("members: too many ({})", members.len()))?;
    if n == 0 {
        return Err(invalid!("members: need at least one"));
    }
    let layout = opts.layout.unwrap_or(Layout::default_for(level));
    if let Layout::Raid6(l) = layout {
        if l.md_number() > 5 {
            return Err(invalid!(
                "layout: {} is for level changes and DDF arrays; create a RAID6 with layouts 0-5",
                l.name()
            ));
        }
    }
    if opts.metadata == Location::V0_90 {
        return Err(invalid!("metadata: only 1.0, 1.1 and 1.2 can be created"));
    }
    // Chunk: sectors, as the superblock stores it.
    if !opts.chunk_bytes.is_multiple_of(SECTOR_SIZE)
        || opts.chunk_bytes / SECTOR_SIZE > u64::from(u32::MAX)
    {
        return Err(invalid!(
            "chunk: must be a multiple of 512 bytes, got {}",
            opts.chunk_bytes
        ));
    }
    let chunk_sectors = match level {
        Level::Raid1 => 0,
        _ => (opts.chunk_bytes / SECTOR_SIZE) as u32,
    };
    if matches!(
        level,
        Level::Raid0 | Level::Raid4 | Level::Raid5 | Level::Raid6 | Level::Raid10
    ) && !(chunk_sectors.is_power_of_two() && chunk_sectors >= 8)
    {
        return Err(invalid!(
            "chunk: {level} needs a power of two of at least 4096 bytes, got {}",
            opts.chunk_bytes
        ));
    }
    if let Some(size) = opts.size {
        if !size.is_multiple_of(SECTOR_SIZE) {
            return Err(invalid!(
                "size: must be a multiple of 512 bytes, got {size}"
            ));
        }
    }

    // --- Missing slots: as many as the level can rebuild.
    let missing: Vec<u32> = (0..n).filter(|&i| members[i as usize].is_none()).collect();
    let allowed = match level {
        Level::Linear | Level::Raid0 => 0,
        Level::Raid1 => n - 1,
        Level::Raid4 | Level::Raid5 => 1,
        Level::Raid6 => 2,
        Level::Raid10 => n, // checked below against the copies once the geometry is known
    };
    if missing.len() as u32 > allowed || missing.len() as u32 == n {
        return Err(invalid!(
            "members: {} of {n} missing; {level} can start with at most {} missing",
            missing.len(),
            allowed.min(n - 1)
        ));
    }

    // --- Probe every member (read-only), refuse duplicates.
    let mut probed: Vec<Option<(PathBuf, Option<Probed>)>> = Vec::with_capacity(n as usize);
    let mut identities: Vec<((u64, u64), usize)> = Vec::new();
    let mut new_paths: Vec<(PathBuf, usize)> = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let Some(path) = m else {
            probed.push(None);
            continue;
        };
        if path.as_os_str().is_empty() {
            return Err(invalid!("members[{i}]: empty path"));
        }
        match std::fs::symlink_metadata(path) {
            Ok(_) => {
                let p = probe_existing(path)?;
                if let Some((_, j)) = identities.iter().find(|(id, _)| *id == p.identity) {
                    return Err(invalid!(
                        "members[{i}]: {} is the same file or device as members[{j}]",
                        path.display()
                    ));
                }
                identities.push((p.identity, i));
                probed.push(Some((path.clone(), Some(p))));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Not there yet: it will be created. Compare by absolute, normalised path.
                let parent = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                let dir = parent
                    .canonicalize()
                    .map_err(|e| io_error(path, "its directory is not usable", &e))?;
                let full = dir.join(path.file_name().unwrap_or_default());
                if let Some((_, j)) = new_paths.iter().find(|(p, _)| *p == full) {
                    return Err(invalid!(
                        "members[{i}]: {} is the same path as members[{j}]",
                        path.display()
                    ));
                }
                new_paths.push((full, i));
                if opts.size.is_none() {
                    return Err(invalid!(
                        "members[{i}]: {} does not exist; give a size to create it",
                        path.display()
                    ));
                }
                probed.push(Some((path.clone(), None)));
            }
            Err(e) => return Err(io_error(path, "cannot stat", &e)),
        }
    }

    // --- Refuse members in use unless forced (say what is there).
    if !opts.force {
        let mut complaints = Vec::new();
        for (i, p) in probed.iter().enumerate() {
            if let Some((path, Some(pr))) = p {
                if !pr.found.is_empty() {
                    let what: Vec<String> = pr.found.iter().map(|s| s.to_string()).collect();
                    complaints.push(format!(
                        "members[{i}] {}: {}",
                        path.display(),
                        what.join("; ")
                    ));
                }
            }
        }
        if !complaints.is_empty() {
            return Err(Error::MemberInUse(format!(
                "refusing to overwrite (use force to override):\n  {}",
                complaints.join("\n  ")
            )));
        }
    }

    // --- Sizes. The data offset is computed from the first member (mdadm), the component
    // size from the smallest.
    let sectors: Vec<Option<u64>> = probed
        .iter()
        .map(|p| {
            p.as_ref().map(|(_, pr)| match pr {
                Some(pr) => pr.bytes / SECTOR_SIZE,
                None => opts.size.unwrap_or(0) / SECTOR_SIZE,
            })
        })
        .collect();
    let first = sectors.iter().flatten().copied().next().unwrap_or(0);
    let redundant = !matches!(level, Level::Raid0 | Level::Linear);
    let bm_space = if redundant { bitmap_space(first) } else { 0 };
    let data_offset = match opts.metadata {
        Location::V1_0 => 0,
        _ => default_data_offset(first, u64::from(chunk_sectors), bm_space),
    };
    // (data_size, super_offset) of each present member.
    let mut areas: Vec<Option<(u64, u64)>> = Vec::with_capacity(n as usize);
    for (i, s) in sectors.iter().enumerate() {
        let Some(s) = *s else {
            areas.push(None);
            continue;
        };
        let name = || {
            probed[i]
                .as_ref()
                .map(|(p, _)| p.display().to_string())
                .unwrap_or_default()
        };
        let super_offset = opts.metadata.sector(s).ok_or_else(|| {
            invalid!(
                "members[{i}] {}: {} bytes is too small for a {} superblock",
                name(),
                s * SECTOR_SIZE,
                opts.metadata
            )
        })?;
        let data_size = match opts.metadata {
            Location::V1_0 => super_offset.saturating_sub(bitmap_space(s) + 8),
            _ => s.saturating_sub(data_offset),
        };
        let need = u64::from(chunk_sectors).max(RAID1_ROUND_SECTORS);
        if data_size < need {
            return Err(invalid!(
                "members[{i}] {}: too small: {} bytes leave {} bytes for data after the \
                 metadata (data offset {} bytes); need at least {} bytes",
                name(),
                s * SECTOR_SIZE,
                data_size * SECTOR_SIZE,
                data_offset * SECTOR_SIZE,
                need * SECTOR_SIZE
            ));
        }
        areas.push(Some((data_size, super_offset)));
    }
    let smallest = areas.iter().flatten().map(|a| a.0).min().unwrap_or(0);
    let component = match level {
        Level::Raid0 | Level::Linear => 0,
        Level::Raid1 => smallest / RAID1_ROUND_SECTORS * RAID1_ROUND_SECTORS,
        _ => smallest / u64::from(chunk_sectors) * u64::from(chunk_sectors),
    };
    let member_sectors: Vec<u64> = areas.iter().map(|a| a.map_or(0, |a| a.0)).collect();
    let mut feature = FeatureMap(0);
    let mut layout = layout;
    if level == Level::Raid0 {
        // mdadm: layout 1 (original) always; the RAID0_LAYOUT feature only when the zones
        // differ, i.e. the members differ in size counted in chunks.
        let c = u64::from(chunk_sectors);
        let chunks: Vec<u64> = member_sectors.iter().map(|s| s / c).collect();
        if chunks.iter().any(|&x| x != chunks[0]) {
            feature.set(FeatureMap::RAID0_LAYOUT, true);
        } else {
            layout = Layout::Raid0(Raid0Layout::Original);
        }
    }
    let geometry = Geometry::new(level, layout, n, chunk_sectors, component, &member_sectors)
        .map_err(Error::from)?;
    if geometry.array_sectors() == 0 {
        return Err(invalid!(
            "members: too small to hold one stripe of the array"
        ));
    }
    if level == Level::Raid10 && !missing.is_empty() {
        // Every chunk needs a copy on a member that is present. The pattern repeats within
        // `n × copies` array chunks (every far/near shift cycles by then).
        let c = u64::from(chunk_sectors);
        let chunks = (geometry.array_sectors() / c).min(u64::from(n) * u64::from(n) * 4);
        for k in 0..chunks {
            let copies = geometry.copies_of(k * c)?;
            if copies.iter().all(|l| missing.contains(&l.member)) {
                return Err(Error::TooManyFailures(format!(
                    "members: every copy of array chunk {k} would be on a missing member \
                     (slots {missing:?})"
                )));
            }
        }
    }

    // --- The write-intent bitmap: in the space reserved for it (after the superblock for
    // 1.1/1.2, before it for 1.0), covering md's resync units (member sectors, array
    // sectors for RAID10), with a chunk of at least 1 MiB that fits.
    let set_uuid = random_uuid()?;
    let bitmap = if redundant {
        let space = match opts.metadata {
            Location::V1_0 => sectors.iter().flatten().map(|&s| bitmap_space(s)).min(),
            _ => Some(bm_space),
        }
        .unwrap_or(0);
        let sync_size = if level == Level::Raid10 {
            geometry.array_sectors()
        } else {
            component
        };
        bitmap::choose_chunk(sync_size, space * SECTOR_SIZE)
            .map(|c| BitmapHeader::new(set_uuid, 0, sync_size, c))
    } else {
        None
    };
    // Bitmap bytes on disk, rounded to 4 KiB as mdadm places a 1.0 bitmap.
    let bitmap_sectors = bitmap.as_ref().map_or(0, |b| {
        (HEADER_BYTES as u64 + b.bits_bytes()).div_ceil(4096) * 8
    });

    // --- Superblocks.
    let name = stored_name(opts.name.as_deref())?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let ctime = MdTime {
        seconds: now,
        micros: 0,
    };
    let max_dev = max_dev_for(n);
    let mut plans = Vec::with_capacity(n as usize);
    for (i, p) in probed.into_iter().enumerate() {
        let slot = i as u32;
        let Some((path, pr)) = p else {
            plans.push(MemberPlan {
                slot,
                path: None,
                create: false,
                block_device: false,
                device_bytes: 0,
                found: Vec::new(),
                superblock: None,
            });
            continue;
        };
        let dev_sectors = sectors[i].unwrap_or(0);
        let (data_size, _) = areas[i].unwrap_or((0, 0));
        let mut sb = SuperblockV1::new(opts.metadata, dev_sectors).map_err(md_err)?;
        sb.feature_map = feature;
        sb.set_uuid = set_uuid;
        sb.set_name_str(&name).map_err(md_err)?;
        sb.ctime_raw = ctime.to_v1();
        sb.utime_raw = sb.ctime_raw;
        sb.level = level.md_number();
        sb.layout = layout.md_number();
        sb.size = component;
        sb.chunksize = chunk_sectors;
        sb.raid_disks = n;
        sb.data_offset = data_offset;
        sb.data_size = data_size;
        if opts.metadata != Location::V1_0 {
            sb.bblog_offset = 8 + bm_space as i32;
        }
        if bitmap.is_some() {
            sb.feature_map.set(FeatureMap::BITMAP_OFFSET, true);
            sb.bitmap_offset = match opts.metadata {
                Location::V1_0 => -(bitmap_sectors as i32) - 8,
                _ => 8,
            };
        }
        sb.dev_number = slot;
        sb.device_uuid = random_uuid()?;
        sb.events = 0;
        sb.resync_offset = MAX_SECTOR;
        sb.max_dev = max_dev;
        sb.dev_roles = vec![Role::SPARE_RAW; max_dev as usize];
        for s in 0..n {
            if members[s as usize].is_some() {
                sb.dev_roles[s as usize] = s as u16;
            }
        }
        sb.update_checksum().map_err(md_err)?;
        let (create, block_device, device_bytes, found) = match pr {
            Some(pr) => (false, pr.block_device, pr.bytes, pr.found),
            None => (true, false, opts.size.unwrap_or(0), Vec::new()),
        };
        plans.push(MemberPlan {
            slot,
            path: Some(path),
            create,
            block_device,
            device_bytes,
            found,
            superblock: Some(sb),
        });
    }
    let sync = if !redundant {
        InitialSync::NoRedundancy
    } else if plans.iter().all(|m| m.path.is_none() || m.create) {
        InitialSync::AllZero
    } else {
        InitialSync::Resync {
            span_sectors: resync::span_sectors(&geometry),
        }
    };
    Ok(Plan {
        options: opts.clone(),
        layout,
        geometry,
        set_uuid,
        name,
        ctime,
        data_offset,
        members: plans,
        sync,
        bitmap,
    })
}

// ================================================================================
// Execution
// ================================================================================

/// An opened member during execution.
struct Opened {
    path: PathBuf,
    file: File,
    sb: SuperblockV1,
}

impl Plan {
    /// Writes the array. Re-checks first that every existing member still has the size
    /// and (without `force`) the absence of signatures that [`plan`] saw. `progress(done,
    /// total)` follows the initial resync in bytes; `ControlFlow::Break` stops it (nothing
    /// assemblable is left behind: superblocks are written last).
    pub fn execute(&self, progress: &mut dyn FnMut(u64, u64) -> ControlFlow<()>) -> Result<Report> {
        let mut report = Report {
            set_uuid: self.set_uuid,
            array_bytes: self.geometry.array_bytes(),
            created: Vec::new(),
            resync: None,
            wiped: Vec::new(),
        };
        // Re-check what plan() saw: someone may have written to a member since.
        for m in &self.members {
            let (Some(path), false) = (&m.path, m.create) else {
                continue;
            };
            let p = probe_existing(path)?;
            if p.bytes != m.device_bytes {
                return Err(invalid!(
                    "members: {} changed size since the plan ({} -> {} bytes)",
                    path.display(),
                    m.device_bytes,
                    p.bytes
                ));
            }
            if !self.options.force && !p.found.is_empty() {
                return Err(Error::MemberInUse(format!(
                    "{}: {} appeared since the plan",
                    path.display(),
                    p.found[0]
                )));
            }
        }
        for m in &self.members {
            if let (Some(path), true) = (&m.path, m.create) {
                if path.exists() {
                    return Err(invalid!(
                        "members: {} appeared since the plan",
                        path.display()
                    ));
                }
            }
        }

        // Open (and create) everything before writing anything.
        let mut opened: Vec<Option<Opened>> = Vec::with_capacity(self.members.len());
        for m in &self.members {
            let (Some(path), Some(sb)) = (&m.path, &m.superblock) else {
                opened.push(None);
                continue;
            };
            let mut oo = OpenOptions::new();
            oo.read(true).write(true);
            if m.create {
                oo.create_new(true);
            } else if m.block_device {
                // Fails if the device is mounted or held by md/device-mapper.
                oo.custom_flags(O_EXCL);
            }
            let file = oo
                .open(path)
                .map_err(|e| io_error(path, "cannot open for writing", &e))?;
            if m.create {
                report.created.push(path.clone());
                // Sparse: only the metadata and whatever the resync writes take space.
                file.set_len(m.device_bytes)
                    .map_err(|e| io_error(path, "cannot set the size", &e))?;
            }
            opened.push(Some(Opened {
                path: path.clone(),
                file,
                sb: sb.clone(),
            }));
        }

        // Step 1: wipe stale metadata on existing members: any md superblock at a location
        // we do not use (the kernel or mdadm could otherwise prefer it) and, when the data
        // area does not start at 0, the first 128 KiB where file-system and partition-table
        // signatures live (blkid would keep reporting them). New files are zeros already.
        // fsync, so that no old superblock survives next to parity written in step 2.
        for (m, o) in self.members.iter().zip(&opened) {
            let Some(o) = o else { continue };
            if m.create {
                continue;
            }
            let mut wiped = false;
            let zero = vec![0u8; SCAN_BYTES as usize];
            let ours = self.options.metadata.sector(m.device_bytes / SECTOR_SIZE);
            for loc in Location::PROBE_ORDER {
                let Some(sector) = loc.sector(m.device_bytes / SECTOR_SIZE) else {
                    continue;
                };
                // A stale superblock is cleared even inside the new data area: step 2
                // computes the redundancy over the cleared content.
                let off = sector * SECTOR_SIZE;
                if Some(sector) == ours {
                    continue;
                }
                let mut magic = [0u8; 4];
                if o.file.read_exact_at(&mut magic, off).is_ok()
                    && (u32::from_le_bytes(magic) == crate::md::MD_SB_MAGIC
                        || u32::from_be_bytes(magic) == crate::md::MD_SB_MAGIC)
                {
                    o.file
                        .write_all_at(&zero[..4096], off)
                        .map_err(|e| io_error(&o.path, "cannot clear an old superblock", &e))?;
                    report.wiped.push((o.path.clone(), off, 4096));
                    wiped = true;
                }
            }
            let head = (self.data_offset * SECTOR_SIZE).min(SCAN_BYTES);
            if head > 0 {
                o.file
                    .write_all_at(&zero[..head as usize], 0)
                    .map_err(|e| io_error(&o.path, "cannot clear old signatures", &e))?;
                report.wiped.push((o.path.clone(), 0, head));
                wiped = true;
            }
            if wiped {
                o.file
                    .sync_all()
                    .map_err(|e| io_error(&o.path, "fsync failed", &e))?;
            }
        }

        // Step 2: data and redundancy. Members that are new sparse files are zeros, which
        // is consistent; otherwise compute parity / copy mirrors from what is there, with
        // missing members' data defined as zeros. fsync every member before step 3, so
        // that the superblocks never claim "clean" over parity that is not on disk.
        if let InitialSync::Resync { span_sectors } = self.sync {
            let targets: Vec<Option<Target<'_>>> = opened
                .iter()
                .map(|o| {
                    o.as_ref().map(|o| Target {
                        file: &o.file,
                        data_offset: self.data_offset * SECTOR_SIZE,
                    })
                })
                .collect();
            let mut ro = ResyncOptions::new()?;
            ro.missing = Missing::Zero;
            let stats = resync::resync(&self.geometry, &targets, 0..span_sectors, &ro, progress)?;
            report.resync = Some(stats);
            for o in opened.iter().flatten() {
                o.file
                    .sync_all()
                    .map_err(|e| io_error(&o.path, "fsync failed", &e))?;
            }
        }

        // Step 3: the bitmap (all bits clear: the data is consistent), then the
        // superblocks, last; then fsync.
        if let Some(h) = &self.bitmap {
            let len = (HEADER_BYTES as u64 + h.bits_bytes()).div_ceil(4096) * 4096;
            let mut area = vec![0u8; len as usize];
            area[..HEADER_BYTES].copy_from_slice(&h.to_bytes());
            for o in opened.iter().flatten() {
                let at =
                    o.sb.bitmap_offset()
                        .and_then(|b| o.sb.super_offset.checked_add_signed(i64::from(b)))
                        .ok_or_else(|| invalid!("bitmap outside the device"))?;
                o.file
                    .write_all_at(&area, at * SECTOR_SIZE)
                    .map_err(|e| io_error(&o.path, "cannot write the bitmap", &e))?;
            }
        }
        // The superblocks, last; then fsync. Until this step completes on every
        // member the kernel assembles nothing (or, after a crash half-way, a degraded array
        // whose members all hold consistent data).
        for o in opened.iter().flatten() {
            let block = o.sb.to_block().map_err(md_err)?;
            o.file
                .write_all_at(&block, o.sb.super_offset * SECTOR_SIZE)
                .map_err(|e| io_error(&o.path, "cannot write the superblock", &e))?;
        }
        for o in opened.iter().flatten() {
            o.file
                .sync_all()
                .map_err(|e| io_error(&o.path, "fsync failed", &e))?;
        }
        Ok(report)
    }
}

// ================================================================================
// Display
// ================================================================================

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = &self.geometry;
        let level = g.level();
        write!(f, "Create a {level} array")?;
        if !self.name.is_empty() {
            write!(f, " named {:?}", self.name)?;
        }
        writeln!(f)?;
        writeln!(f, "        UUID : {}", format_uuid(&self.set_uuid))?;
        writeln!(f, "    Metadata : {}", self.options.metadata)?;
        if self.layout != Layout::None {
            writeln!(f, "      Layout : {}", self.layout.name())?;
        }
        if g.chunk_sectors() > 0 {
            let word = if level == Level::Linear {
                "Rounding"
            } else {
                "Chunk Size"
            };
            writeln!(
                f,
                "  {word:>10} : {}K",
                u64::from(g.chunk_sectors()) * SECTOR_SIZE / 1024
            )?;
        }
        let missing = self.members.iter().filter(|m| m.path.is_none()).count();
        writeln!(
            f,
            "Raid Devices : {}{}",
            g.raid_disks(),
            if missing > 0 {
                format!(" ({missing} missing: starts degraded)")
            } else {
                String::new()
            }
        )?;
        writeln!(
            f,
            "  Array Size : {} ({} bytes)",
            human(g.array_bytes()),
            g.array_bytes()
        )?;
        if g.dev_sectors() > 0 {
            writeln!(
                f,
                "Used Dev Size: {} per member",
                human(g.dev_sectors() * SECTOR_SIZE)
            )?;
        }
        writeln!(
            f,
            " Data Offset : {} sectors ({})",
            self.data_offset,
            human(self.data_offset * SECTOR_SIZE)
        )?;
        writeln!(f, "Members:")?;
        for m in &self.members {
            let Some(path) = &m.path else {
                writeln!(f, "  [{}] missing", m.slot)?;
                continue;
            };
            let kind = if m.create {
                "new sparse file"
            } else if m.block_device {
                "block device"
            } else {
                "existing file"
            };
            write!(
                f,
                "  [{}] {}  {} ({kind})",
                m.slot,
                path.display(),
                human(m.device_bytes)
            )?;
            if let Some(sb) = &m.superblock {
                write!(
                    f,
                    ", superblock at byte {}, data {}",
                    sb.super_offset * SECTOR_SIZE,
                    human(sb.data_size * SECTOR_SIZE)
                )?;
            }
            writeln!(f)?;
            for s in &m.found {
                writeln!(f, "      overwrites: {s}")?;
            }
        }
        match self.sync {
            InitialSync::NoRedundancy => writeln!(f, "Initial sync: none ({level} has no redundancy)")?,
            InitialSync::AllZero => writeln!(
                f,
                "Initial sync: none needed (every member is a new sparse file: zeros are consistent)"
            )?,
            InitialSync::Resync { span_sectors } => {
                let (what, unit) = match level {
                    Level::Raid1 => ("mirror copies", "per member"),
                    Level::Raid10 => ("mirror copies", "of array data"),
                    _ => ("parity blocks", "per member"),
                };
                writeln!(
                    f,
                    "Initial sync: read {} {unit} and write the {what} that differ{}",
                    human(span_sectors * SECTOR_SIZE),
                    if missing > 0 { " (missing data counts as zeros)" } else { "" }
                )?
            }
        }
        writeln!(
            f,
            "Then: superblocks on every member (events 0, clean), fsync after each step."
        )
    }
}

// ================================================================================
// Tests
// ================================================================================

#[cfg(test)]
mod tests {
    use super::*;
    use crate::md::probe;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "fastraid-create-{}-{tag}-{}",
            std::process::id(),
            random_uuid().unwrap()[0]
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn paths(dir: &Path, n: usize) -> Vec<Option<PathBuf>> {
        (0..n)
            .map(|i| Some(dir.join(format!("m{i}.img"))))
            .collect()
    }

    #[test]
    fn data_offset_matches_mdadm_observations() {
        // §8.1: RAID1 (chunk 0) on 32 MiB, 2 GiB, 20 GiB, 300 GiB.
        let gib = 2 * 1024 * 1024;
        assert_eq!(default_data_offset(65536, 0, bitmap_space(65536)), 2048);
        assert_eq!(default_data_offset(2 * gib, 0, bitmap_space(2 * gib)), 6144);
        assert_eq!(
            default_data_offset(20 * gib, 0, bitmap_space(20 * gib)),
            34816
        );
        assert_eq!(
            default_data_offset(300 * gib, 0, bitmap_space(300 * gib)),
            264192
        );
        // RAID5 chunk 64 KiB on 32 MiB.
        assert_eq!(default_data_offset(65536, 128, 8), 2048);
    }

    #[test]
    fn max_dev_is_128_up_to_128_devices() {
        assert_eq!(max_dev_for(3), 128);
        assert_eq!(max_dev_for(128), 128);
        assert_eq!(max_dev_for(129), 384);
    }

    #[test]
    fn format_time_known_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_time(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn creates_raid5_whose_superblocks_probe_valid() {
        let dir = tmpdir("r5");
        let mut o = CreateOptions::new(Level::Raid5);
        o.chunk_bytes = 64 * 1024;
        o.size = Some(8 << 20);
        o.name = Some("t".into());
        let ms = paths(&dir, 4);
        let p = plan(&ms, &o).unwrap();
        assert_eq!(p.sync, InitialSync::AllZero);
        assert_eq!(p.data_offset, 2048);
        let text = p.to_string();
        assert!(
            text.contains("raid5") && text.contains("left-symmetric"),
            "{text}"
        );
        let r = p.execute(&mut |_, _| ControlFlow::Continue(())).unwrap();
        assert_eq!(r.created.len(), 4);
        for (i, m) in ms.iter().enumerate() {
            let f = File::open(m.as_ref().unwrap()).unwrap();
            let found = probe(8 << 20, |off, buf| f.read_exact_at(buf, off)).unwrap();
            assert_eq!(found.len(), 1);
            assert!(found[0].is_valid(), "{:?}", found[0].problems);
            let info = found[0].member_info().unwrap();
            assert_eq!(info.version, Location::V1_2);
            assert_eq!(info.role, Role::Active(i as u16));
            assert_eq!(info.level, 5);
            assert_eq!(info.layout, 2);
            assert_eq!(info.chunk_bytes, 65536);
            assert_eq!(info.raid_disks, 4);
            assert_eq!(info.array_uuid, p.set_uuid);
            assert_eq!(info.events, 0);
            assert!(info.is_clean());
            assert_eq!(info.array_state_string(), "AAAA");
            assert_eq!(info.dev_sectors, (16384 - 2048) / 128 * 128);
        }
        // Now the members hold md superblocks: refused without force, and say so.
        let e = plan(&ms, &o).unwrap_err();
        assert!(matches!(e, Error::MemberInUse(_)), "{e:?}");
        assert!(
            e.to_string().contains("raid5") && e.to_string().contains(&format_uuid(&p.set_uuid))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn resync_makes_random_parity_consistent() {
        for (level, layout) in [
            (
                Level::Raid5,
                Layout::Raid5(crate::layout::Raid5Layout::LeftAsymmetric),
            ),
            (
                Level::Raid6,
                Layout::Raid6(crate::layout::Raid6Layout::LeftAsymmetric),
            ),
            (
                Level::Raid6,
                Layout::Raid6(crate::layout::Raid6Layout::RightSymmetric),
            ),
            (
                Level::Raid10,
                Layout::Raid10(crate::layout::Raid10Layout::far(2)),
            ),
            (Level::Raid1, Layout::None),
            (Level::Raid4, Layout::None),
        ] {
            let dir = tmpdir("rnd");
            let ms = paths(&dir, 5);
            let mut seed = 0x1234_5678_u64;
            for m in &ms {
                let mut data = vec![0u8; 4 << 20];
                for b in data.iter_mut() {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    *b = seed as u8;
                }
                std::fs::write(m.as_ref().unwrap(), &data).unwrap();
            }
            let mut o = CreateOptions::new(level);
            o.layout = Some(layout);
            o.chunk_bytes = 16 * 1024;
            let p = plan(&ms, &o).unwrap();
            assert!(matches!(p.sync, InitialSync::Resync { .. }));
            let r = p.execute(&mut |_, _| ControlFlow::Continue(())).unwrap();
            let st = r.resync.unwrap();
            assert!(st.bytes_written > 0 && st.mismatch_sectors > 0);
            // A check pass now finds nothing.
            let files: Vec<File> = ms
                .iter()
                .map(|m| File::open(m.as_ref().unwrap()).unwrap())
                .collect();
            let targets: Vec<Option<Target<'_>>> = files
                .iter()
                .map(|f| {
                    Some(Target {
                        file: f,
                        data_offset: p.data_offset * 512,
                    })
                })
                .collect();
            let mut ro = ResyncOptions::new().unwrap();
            ro.repair = false;
            let span = resync::span_sectors(&p.geometry);
            let st = resync::resync(&p.geometry, &targets, 0..span, &ro, &mut |_, _| {
                ControlFlow::Continue(())
            })
            .unwrap();
            assert_eq!(st.mismatch_sectors, 0, "{level} {layout}");
            assert_eq!(st.bytes_written, 0);
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn metadata_1_1_and_cancelled_resync() {
        let dir = tmpdir("m11");
        let ms = paths(&dir, 3);
        for m in &ms {
            std::fs::write(m.as_ref().unwrap(), vec![0x5au8; 4 << 20]).unwrap();
        }
        let mut o = CreateOptions::new(Level::Raid5);
        o.chunk_bytes = 64 * 1024;
        o.metadata = Location::V1_1;
        let p = plan(&ms, &o).unwrap();
        // Stopped by the progress callback: nothing assemblable is left behind.
        let e = p.execute(&mut |_, _| ControlFlow::Break(())).unwrap_err();
        assert!(matches!(e, Error::Cancelled(_)), "{e:?}");
        let f = File::open(ms[0].as_ref().unwrap()).unwrap();
        assert!(probe(4 << 20, |off, buf| f.read_exact_at(buf, off))
            .unwrap()
            .is_empty());
        let p = plan(&ms, &o).unwrap();
        p.execute(&mut |_, _| ControlFlow::Continue(())).unwrap();
        let found = probe(4 << 20, |off, buf| f.read_exact_at(buf, off)).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].location, found[0].sector), (Location::V1_1, 0));
        assert!(found[0].is_valid(), "{:?}", found[0].problems);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_bad_requests() {
        let dir = tmpdir("bad");
        let mut o = CreateOptions::new(Level::Raid5);
        o.size = Some(8 << 20);
        let a = Some(dir.join("a.img"));
        // Same path twice.
        assert!(plan(&[a.clone(), a.clone(), Some(dir.join("b.img"))], &o).is_err());
        // Two missing for RAID5.
        assert!(plan(&[a.clone(), None, None], &o).is_err());
        // Too small.
        o.size = Some(1 << 20);
        let e = plan(&paths(&dir, 3), &o).unwrap_err();
        assert!(e.to_string().contains("too small"), "{e}");
        // No size for a file that does not exist.
        o.size = None;
        assert!(plan(&paths(&dir, 3), &o).is_err());
        // Nothing was created.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn signatures() {
        let scan = |img: &[u8]| {
            scan_signatures(img.len() as u64, |off, buf| {
                let o = off as usize;
                buf.copy_from_slice(&img[o..o + buf.len()]);
                Ok(())
            })
            .unwrap()
        };
        let mut img = vec![0u8; 1 << 20];
        assert!(scan(&img).is_empty());
        img[1080..1082].copy_from_slice(&0xef53u16.to_le_bytes());
        img[1024 + 96] = 0x40;
        assert_eq!(scan(&img), vec![Signature::Content("ext4 file system")]);
        let mut img = vec![0u8; 1 << 20];
        img[512..520].copy_from_slice(b"EFI PART");
        img[510] = 0x55;
        img[511] = 0xaa;
        img[446 + 4] = 0xee;
        img[446 + 12] = 1;
        assert_eq!(scan(&img), vec![Signature::PartitionTable("GPT")]);
        let mut img = vec![0u8; 1 << 20];
        img[0..4].copy_from_slice(b"XFSB");
        assert_eq!(scan(&img), vec![Signature::Content("XFS file system")]);
    }
}
