//! md's internal write-intent bitmap (`bitmap_super_t`, `shared/docs/md-format.md` §8.3):
//! a 256-byte little-endian header followed by one bit per `chunksize` bytes of the
//! resync span, on every member at `super_offset + bitmap_offset` sectors.
//!
//! The bits count in md's *resync units*: per-member sectors from the data offset for
//! RAID1/4/5/6, array sectors for RAID10 (the kernel sets them from the bio's resync
//! sector, and `sync_size` is `resync_max_sectors`), the same units as `resync_offset`.

/// `"bitm"` read as a little-endian u32.
pub const MAGIC: u32 = 0x6d74_6962;
/// Bytes of the header; the bits follow it.
pub const HEADER_BYTES: usize = 256;
/// Bits stored least significant first, independent of the host (what mdadm writes).
pub const VERSION_LE_BITS: u32 = 4;
/// Header `state` bit: the bitmap is stale (the kernel resyncs everything).
pub const STATE_STALE: u32 = 2;
/// Smallest bitmap chunk fastraid chooses: a crash resyncs at least this much per dirty
/// bit, and a write sets a new bit (one extra flush) at most once per this many bytes.
pub const MIN_CHOSEN_CHUNK: u64 = 1 << 20;
/// Most bytes of bits fastraid writes (mdadm's limit when no chunk is given).
pub const MAX_BITS_BYTES: u64 = 128 * 1024;

/// The header fields fastraid reads and writes (the rest is written as zero).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitmapHeader {
    pub version: u32,
    pub uuid: [u8; 16],
    pub events: u64,
    pub events_cleared: u64,
    /// Resync units (sectors) the bits cover.
    pub sync_size: u64,
    pub state: u32,
    /// Bytes per bit.
    pub chunksize: u32,
    pub daemon_sleep: u32,
    pub write_behind: u32,
    pub sectors_reserved: u32,
    pub nodes: u32,
}

fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

fn le64(b: &[u8], o: usize) -> u64 {
    u64::from(le32(b, o)) | (u64::from(le32(b, o + 4)) << 32)
}

impl BitmapHeader {
    /// A fresh header as mdadm writes it for an array with `uuid` at `events`.
    pub fn new(uuid: [u8; 16], events: u64, sync_size: u64, chunksize: u32) -> BitmapHeader {
        BitmapHeader {
            version: VERSION_LE_BITS,
            uuid,
            events,
            events_cleared: events,
            sync_size,
            state: 0,
            chunksize,
            daemon_sleep: 5,
            write_behind: 0,
            sectors_reserved: 0,
            nodes: 0,
        }
    }

    /// Parse and validate a header; the error says what is wrong (the kernel's `md_bitmap_read_sb` rules that matter to a
    /// writer): magic, version 3 or 4 (5 is clustered), a power-of-two chunk of at least
    /// 512 bytes, a daemon sleep of at least one second.
    pub fn parse(buf: &[u8]) -> Result<BitmapHeader, &'static str> {
        let bad = Err;
        if buf.len() < HEADER_BYTES {
            return bad("bitmap header truncated");
        }
        if le32(buf, 0) != MAGIC {
            return bad("bitmap magic missing");
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&buf[8..24]);
        let h = BitmapHeader {
            version: le32(buf, 4),
            uuid,
            events: le64(buf, 24),
            events_cleared: le64(buf, 32),
            sync_size: le64(buf, 40),
            state: le32(buf, 48),
            chunksize: le32(buf, 52),
            daemon_sleep: le32(buf, 56),
            write_behind: le32(buf, 60),
            sectors_reserved: le32(buf, 64),
            nodes: le32(buf, 68),
        };
        // Version 3 stores the bits in host order: the same bytes on a little-endian host.
        if !(h.version == 3 && cfg!(target_endian = "little") || h.version == VERSION_LE_BITS) {
            return bad("bitmap version not 3 or 4 (clustered or unknown)");
        }
        if h.chunksize < 512 || !h.chunksize.is_power_of_two() {
            return bad("bitmap chunk size not a power of two of at least 512 bytes");
        }
        if h.daemon_sleep == 0 {
            return bad("bitmap daemon_sleep 0");
        }
        Ok(h)
    }

    /// The 256-byte header.
    pub fn to_bytes(&self) -> [u8; HEADER_BYTES] {
        let mut b = [0u8; HEADER_BYTES];
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&self.version.to_le_bytes());
        b[8..24].copy_from_slice(&self.uuid);
        b[24..32].copy_from_slice(&self.events.to_le_bytes());
        b[32..40].copy_from_slice(&self.events_cleared.to_le_bytes());
        b[40..48].copy_from_slice(&self.sync_size.to_le_bytes());
        b[48..52].copy_from_slice(&self.state.to_le_bytes());
        b[52..56].copy_from_slice(&self.chunksize.to_le_bytes());
        b[56..60].copy_from_slice(&self.daemon_sleep.to_le_bytes());
        b[60..64].copy_from_slice(&self.write_behind.to_le_bytes());
        b[64..68].copy_from_slice(&self.sectors_reserved.to_le_bytes());
        b[68..72].copy_from_slice(&self.nodes.to_le_bytes());
        b
    }

    /// Resync units (sectors) per bit.
    pub fn chunk_sectors(&self) -> u64 {
        u64::from(self.chunksize) / 512
    }

    /// Number of bits: `ceil(sync_size / chunk_sectors)`.
    pub fn bits(&self) -> u64 {
        self.sync_size.div_ceil(self.chunk_sectors())
    }

    /// Bytes of bits (whole bytes).
    pub fn bits_bytes(&self) -> u64 {
        self.bits().div_ceil(8)
    }
}

/// The bitmap chunk (bytes per bit) fastraid writes for `sync_size` resync sectors when
/// `space_bytes` are reserved for header and bits: the smallest power of two of at least
/// [`MIN_CHOSEN_CHUNK`] whose bits fit in the space (and in [`MAX_BITS_BYTES`]). `None`
/// when no chunk the kernel accepts (its counters are 32-bit sector counts) fits.
pub fn choose_chunk(sync_size: u64, space_bytes: u64) -> Option<u32> {
    let room = space_bytes
        .checked_sub(HEADER_BYTES as u64)?
        .min(MAX_BITS_BYTES)
        * 8;
    if room == 0 {
        return None;
    }
    let mut chunk = MIN_CHOSEN_CHUNK;
    while (sync_size * 512).div_ceil(chunk) > room {
        chunk *= 2;
        if chunk > 1 << 30 {
            return None;
        }
    }
    u32::try_from(chunk).ok()
}

/// Bit `i` of the bits that follow the header (least significant first).
pub fn bit(bits: &[u8], i: u64) -> bool {
    bits.get((i / 8) as usize)
        .is_some_and(|b| b & (1 << (i % 8)) != 0)
}

/// Set bit `i`; returns whether it changed.
pub fn set_bit(bits: &mut [u8], i: u64) -> bool {
    match bits.get_mut((i / 8) as usize) {
        Some(b) => {
            let m = 1 << (i % 8);
            let changed = *b & m == 0;
            *b |= m;
            changed
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_validation() {
        let h = BitmapHeader::new([7; 16], 42, 65536, 1 << 20);
        let b = h.to_bytes();
        assert_eq!(&b[0..4], b"bitm");
        assert_eq!(BitmapHeader::parse(&b).unwrap(), h);
        assert_eq!(h.bits(), 32);
        let mut bad = b;
        bad[52..56].copy_from_slice(&1000u32.to_le_bytes());
        assert!(BitmapHeader::parse(&bad).is_err());
        let mut v5 = b;
        v5[4] = 5;
        assert!(BitmapHeader::parse(&v5).is_err());
        assert!(BitmapHeader::parse(&b[..100]).is_err());
    }

    #[test]
    fn chunk_choice_fits_the_space() {
        // 4 KiB reserved (mdadm below 8 GiB): 3840 bytes of bits.
        assert_eq!(choose_chunk(65536, 4096), Some(1 << 20));
        let big = 8 << 30; // 4 TiB of sectors
        let c = u64::from(choose_chunk(big, 4096).unwrap());
        assert!((big * 512).div_ceil(c) <= 3840 * 8);
        assert!((big * 512).div_ceil(c / 2) > 3840 * 8);
        assert_eq!(choose_chunk(100, 200), None);
    }

    #[test]
    fn bits_are_lsb_first() {
        let mut v = vec![0u8; 2];
        assert!(set_bit(&mut v, 10));
        assert!(!set_bit(&mut v, 10));
        assert_eq!(v, [0, 4]);
        assert!(bit(&v, 10) && !bit(&v, 9) && !bit(&v, 100));
    }
}
