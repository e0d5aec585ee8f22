//! Member devices: an image file or a block device, opened read-only (or read-write for
//! the writers that come later), with positioned reads that never move a shared file
//! position (`pread`, through [`std::os::unix::fs::FileExt`]), so one open file can serve
//! several readers.
//!
//! Every error names the path, and a read that runs past the end of the device is an
//! error (`md` never reads outside what its superblock describes, so a short read means a
//! truncated image or a device that shrank), not a silent zero fill.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// One member device or image.
#[derive(Debug)]
pub struct Member {
    path: PathBuf,
    file: File,
    len: u64,
    writable: bool,
    /// A second handle opened with O_DSYNC (writable members only), for metadata writes.
    meta: Option<File>,
    /// (device, inode): two paths naming the same file or device compare equal.
    identity: (u64, u64),
}

impl Member {
    /// Opens `path` read-only.
    pub fn open(path: impl AsRef<Path>) -> Result<Member> {
        Member::open_with(path.as_ref(), false)
    }

    /// Opens `path` read-only or read-write. The size of a block device is found by
    /// seeking to its end (its metadata says 0).
    pub fn open_with(path: &Path, writable: bool) -> Result<Member> {
        let name = path.display();
        // A block device opened for writing is claimed exclusively (O_EXCL), as mdadm does:
        // the open fails with EBUSY while the device is mounted, part of a running md
        // array or claimed by another writer, instead of writing under their feet.
        let exclusive =
            writable && std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device());
        let mut options = OpenOptions::new();
        options.read(true).write(writable);
        if exclusive {
            options.custom_flags(libc::O_EXCL);
        }
        let file = options.open(path).map_err(|e| {
            let why = if exclusive && e.raw_os_error() == Some(libc::EBUSY) {
                " (the device is in use: mounted, in a running md array, or opened by \
                 another writer)"
            } else {
                ""
            };
            Error::Io(format!("{name}: cannot open: {e}{why}"))
        })?;
        let meta = file
            .metadata()
            .map_err(|e| Error::Io(format!("{name}: cannot stat: {e}")))?;
        let ft = meta.file_type();
        let len = if ft.is_block_device() {
            (&file)
                .seek(SeekFrom::End(0))
                .map_err(|e| Error::Io(format!("{name}: cannot find the device size: {e}")))?
        } else if ft.is_file() {
            meta.len()
        } else {
            return Err(Error::Io(format!(
                "{name}: not a regular file or block device"
            )));
        };
        let identity = if ft.is_block_device() {
            (u64::MAX, meta.rdev())
        } else {
            (meta.dev(), meta.ino())
        };
        let meta = if writable {
            Some(
                OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_DSYNC)
                    .open(path)
                    .map_err(|e| Error::Io(format!("{name}: cannot open (O_DSYNC): {e}")))?,
            )
        } else {
            None
        };
        Ok(Member {
            path: path.to_path_buf(),
            file,
            len,
            writable,
            meta,
            identity,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// Same underlying file or device (hard links, symlinks and `/dev` aliases included).
    pub fn same_as(&self, other: &Member) -> bool {
        self.identity == other.identity
    }

    /// What [`Member::same_as`] compares: (device, inode) of a file, the device number of a
    /// block device.
    pub fn identity(&self) -> (u64, u64) {
        self.identity
    }

    /// Fills `buf` from byte `offset`; an error names the path, the offset and the cause
    /// (end of device included).
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.read_io(buf, offset).map_err(|e| {
            Error::Io(format!(
                "{}: read of {} bytes at byte {offset} failed: {}",
                self.path.display(),
                buf.len(),
                describe(&e)
            ))
        })
    }

    /// Writes all of `buf` at byte `offset` (positioned, like the reads). Refuses a member
    /// opened read-only and a write past the end of the device; an error names the path.
    pub fn write_all_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        let fail = |why: String| {
            Error::Io(format!(
                "{}: write of {} bytes at byte {offset} failed: {why}",
                self.path.display(),
                buf.len()
            ))
        };
        if !self.writable {
            return Err(fail("opened read-only".into()));
        }
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.len)
        {
            return Err(fail(format!(
                "past the end of the device ({} bytes)",
                self.len
            )));
        }
        self.file
            .write_all_at(buf, offset)
            .map_err(|e| fail(describe(&e)))
    }

    /// Writes all of `buf` at byte `offset`, durably: through the O_DSYNC handle, so the
    /// call returns once these bytes (and the metadata needed to read them back) are on
    /// stable storage, without waiting for the member's other dirty pages as `fdatasync`
    /// would. For superblocks and the write-intent bitmap, which must be durable before the
    /// data they describe is written, in the middle of a stream of data writes.
    pub fn write_durable_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        let Some(meta) = &self.meta else {
            return self.write_all_at(buf, offset); // refuses: opened read-only
        };
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.len)
        {
            return self.write_all_at(buf, offset); // the same error as a data write
        }
        meta.write_all_at(buf, offset).map_err(|e| {
            Error::Io(format!(
                "{}: durable write of {} bytes at byte {offset} failed: {}",
                self.path.display(),
                buf.len(),
                describe(&e)
            ))
        })
    }

    /// The open file (for code that does its own positioned I/O, like the resync).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Makes every write so far durable (`fdatasync`).
    pub fn sync_data(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| Error::Io(format!("{}: fdatasync failed: {e}", self.path.display())))
    }

    /// [`Member::read_exact_at`] with the plain `io::Error` (for [`crate::md::probe`]).
    pub fn read_io(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "offset overflows"))?;
        if end > self.len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("past the end of the device ({} bytes)", self.len),
            ));
        }
        self.file.read_exact_at(buf, offset)
    }
}

/// Open `path` read-write (creating it when `create`), claiming a block device
/// exclusively (O_EXCL: EBUSY while it is mounted or part of a running md array), for the
/// long operations that write members through their own handles (rebuild, scrub repair).
pub fn open_for_writing(path: &Path, create: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(true)
        .create(create)
        .truncate(false);
    if std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device()) {
        options.custom_flags(libc::O_EXCL);
    }
    options.open(path)
}

/// Ask the kernel to start writing `len` bytes of `file` at `offset` back to the device
/// now, without waiting and without any durability promise (Linux `sync_file_range` with
/// `SYNC_FILE_RANGE_WRITE`). Long sequential writers call it after each batch so that the
/// `fdatasync` that makes their checkpoint durable finds little left to write, instead of
/// the whole file. Best effort: errors are ignored (the `fdatasync` reports real ones).
pub fn start_writeback(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(off), Ok(n)) = (i64::try_from(offset), i64::try_from(len)) else {
            return;
        };
        // SAFETY: sync_file_range only reads its integer arguments; the descriptor is
        // borrowed from a live `File` for the duration of the call, and no memory is
        // passed. An invalid range just makes the call fail, which is ignored.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), off, n, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

fn describe(e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        format!("short read, the device ends early ({e})")
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp(name: &str, data: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("fastraid-io-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::File::create(&p).unwrap().write_all(data).unwrap();
        p
    }

    #[test]
    fn reads_and_errors_name_the_path() {
        let p = temp("a.img", &[1, 2, 3, 4, 5]);
        let m = Member::open(&p).unwrap();
        assert_eq!(m.len(), 5);
        let mut b = [0u8; 3];
        m.read_exact_at(&mut b, 2).unwrap();
        assert_eq!(b, [3, 4, 5]);
        let e = m.read_exact_at(&mut b, 3).unwrap_err().to_string();
        assert!(e.contains("a.img") && e.contains("short read"), "{e}");
        assert!(m.read_exact_at(&mut b, u64::MAX).is_err());
        let again = Member::open(&p).unwrap();
        assert!(m.same_as(&again));
        let missing = Member::open(p.with_extension("nope")).unwrap_err();
        assert!(matches!(missing, Error::Io(_)));
        let dir = Member::open(std::env::temp_dir()).unwrap_err();
        assert!(dir.to_string().contains("not a regular file"));
    }
}
