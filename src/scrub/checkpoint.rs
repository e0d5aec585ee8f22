//! The scrub checkpoint: a small text file that lets an interrupted `check`/`repair`
//! continue where it stopped, with the findings made so far.
//!
//! Format (one record per line, fields separated by tabs — shown as spaces here — and the
//! version on the first line):
//!
//! ```text
//! fastraid-scrub-checkpoint 1
//! array <identity: uuid, level, layout, chunk, disks, dev_sectors, units, present slots>
//! options <repair, prefer, unresolved>
//! position <next unit>
//! pending <start> <end>            (or "-": see below)
//! counters <mismatch_cnt> <bytes_written> <units_unchecked> <bytes_unchecked> <findings_dropped>
//! finding <unit> <verdict> <reason> <suspects> <sectors> <rewritten> <action> <truncated> <locations> <ranges>
//! ...
//! end
//! ```
//!
//! Durability (see [`save`]): the file is written whole to `<path>.tmp`, fsynced, renamed
//! over `<path>`, and the directory is fsynced, so a reader sees either the old or the new
//! checkpoint, never a torn one. The trailing `end` line is checked anyway.
//!
//! `pending` exists for repair: before a batch's repairs are written, a checkpoint is saved
//! that already counts that batch's findings but still points at its start, and names the
//! batch as pending. A resume re-runs the pending range only to redo its (idempotent)
//! repairs, without reporting it again, so the final report is the same whether or not the
//! run was killed in the middle of the writes.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{ByteRange, Finding, Verdict};
use crate::error::{invalid, Error, Result};

const MAGIC: &str = "fastraid-scrub-checkpoint\t1";

/// Everything a resume needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct State {
    /// Describes the array and the present members; must match on resume.
    pub array: String,
    /// Describes the options that change results; must match on resume.
    pub options: String,
    pub position: u64,
    pub pending: Option<(u64, u64)>,
    pub mismatch_cnt: u64,
    pub bytes_written: u64,
    pub units_unchecked: u64,
    pub bytes_unchecked: u64,
    pub findings_dropped: u64,
    pub findings: Vec<Finding>,
}

fn list<T>(items: &[T], f: impl Fn(&T) -> String) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.iter().map(f).collect::<Vec<_>>().join(",")
    }
}

fn finding_line(f: &Finding) -> String {
    let opt = |m: Option<u32>| m.map_or("-".to_string(), |m| m.to_string());
    format!(
        "finding\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
        f.unit,
        f.verdict.name(),
        f.reason,
        list(&f.suspects, |m| m.to_string()),
        f.mismatch_sectors,
        list(&f.rewritten, |m| m.to_string()),
        f.action.replace(['\t', '\n'], " "),
        u8::from(f.ranges_truncated),
        list(&f.locations, |(m, o)| format!("{m}:{o}")),
        list(&f.ranges, |r| format!(
            "{}:{}:{}",
            opt(r.member),
            r.offset,
            r.len
        )),
    )
}

/// The file's text.
pub fn render(s: &State) -> String {
    let mut out = String::new();
    out.push_str(MAGIC);
    out.push('\n');
    out.push_str(&format!("array\t{}\n", s.array));
    out.push_str(&format!("options\t{}\n", s.options));
    out.push_str(&format!("position\t{}\n", s.position));
    match s.pending {
        Some((a, b)) => out.push_str(&format!("pending\t{a}\t{b}\n")),
        None => out.push_str("pending\t-\n"),
    }
    out.push_str(&format!(
        "counters\t{}\t{}\t{}\t{}\t{}\n",
        s.mismatch_cnt, s.bytes_written, s.units_unchecked, s.bytes_unchecked, s.findings_dropped
    ));
    for f in &s.findings {
        out.push_str(&finding_line(f));
    }
    out.push_str("end\n");
    out
}

/// Write `s` to `path` atomically and durably (see the module doc for the order).
pub fn save(path: &Path, s: &State) -> Result<()> {
    let name = path.display();
    let io = |what: &str, e: std::io::Error| Error::Io(format!("checkpoint {name}: {what}: {e}"));
    let tmp = tmp_path(path);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| io("cannot create the temporary file", e))?;
        f.write_all(render(s).as_bytes())
            .map_err(|e| io("write failed", e))?;
        // 1. The new content is on disk before it gets the real name ...
        f.sync_all().map_err(|e| io("fsync failed", e))?;
    }
    // 2. ... the rename replaces the old checkpoint atomically ...
    fs::rename(&tmp, path).map_err(|e| io("rename failed", e))?;
    // 3. ... and the directory entry itself is made durable.
    sync_dir(path);
    Ok(())
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // Best effort: some file systems refuse fsync on a directory; the rename is still atomic.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Remove the checkpoint (after a finished run); a missing file is fine.
pub fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {
            sync_dir(path);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Io(format!(
            "checkpoint {}: cannot remove: {e}",
            path.display()
        ))),
    }
}

/// Read a checkpoint; `Ok(None)` when there is none.
pub fn load(path: &Path) -> Result<Option<State>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Io(format!(
                "checkpoint {}: cannot read: {e}",
                path.display()
            )))
        }
    };
    parse(&text).map(Some).map_err(|m| {
        invalid!(
            "checkpoint {}: not usable ({m}); delete it or run without resume",
            path.display()
        )
    })
}

fn num(s: &str) -> std::result::Result<u64, String> {
    s.parse::<u64>().map_err(|_| format!("bad number {s:?}"))
}

fn opt_member(s: &str) -> std::result::Result<Option<u32>, String> {
    if s == "-" {
        Ok(None)
    } else {
        s.parse::<u32>()
            .map(Some)
            .map_err(|_| format!("bad member {s:?}"))
    }
}

fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').filter(move |_| s != "-")
}

fn parse_finding(f: &[&str]) -> std::result::Result<Finding, String> {
    if f.len() != 11 {
        return Err(format!("finding with {} fields", f.len()));
    }
    let members = |s: &str| -> std::result::Result<Vec<u32>, String> {
        split_list(s)
            .map(|m| m.parse::<u32>().map_err(|_| format!("bad member {m:?}")))
            .collect()
    };
    let locations = split_list(f[9])
        .map(|l| {
            let (m, o) = l.split_once(':').ok_or("bad location")?;
            Ok((
                m.parse::<u32>().map_err(|_| "bad location member")?,
                num(o)?,
            ))
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    let ranges = split_list(f[10])
        .map(|r| {
            let mut it = r.split(':');
            let (Some(m), Some(o), Some(l), None) = (it.next(), it.next(), it.next(), it.next())
            else {
                return Err(format!("bad range {r:?}"));
            };
            Ok(ByteRange {
                member: opt_member(m)?,
                offset: num(o)?,
                len: num(l)?,
            })
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    Ok(Finding {
        unit: num(f[1])?,
        verdict: Verdict::from_name(f[2]).ok_or_else(|| format!("bad verdict {:?}", f[2]))?,
        reason: f[3].to_string(),
        suspects: members(f[4])?,
        mismatch_sectors: num(f[5])?,
        rewritten: members(f[6])?,
        action: f[7].to_string(),
        ranges_truncated: f[8] == "1",
        locations,
        ranges,
    })
}

fn parse(text: &str) -> std::result::Result<State, String> {
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Err("not a fastraid scrub checkpoint (version 1)".into());
    }
    let mut s = State::default();
    let mut ended = false;
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        match (f[0], f.len()) {
            ("array", 2) => s.array = f[1].to_string(),
            ("options", 2) => s.options = f[1].to_string(),
            ("position", 2) => s.position = num(f[1])?,
            ("pending", 2) if f[1] == "-" => s.pending = None,
            ("pending", 3) => s.pending = Some((num(f[1])?, num(f[2])?)),
            ("counters", 6) => {
                s.mismatch_cnt = num(f[1])?;
                s.bytes_written = num(f[2])?;
                s.units_unchecked = num(f[3])?;
                s.bytes_unchecked = num(f[4])?;
                s.findings_dropped = num(f[5])?;
            }
            ("finding", _) => s.findings.push(parse_finding(&f)?),
            ("end", 1) => {
                ended = true;
                break;
            }
            _ => return Err(format!("unexpected line {line:?}")),
        }
    }
    if !ended {
        return Err("truncated (no end line)".into());
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_damage() {
        let s = State {
            array: "uuid=ab level=6".into(),
            options: "repair=1 prefer=- unresolved=leave".into(),
            position: 17,
            pending: Some((16, 17)),
            mismatch_cnt: 24,
            bytes_written: 4096,
            units_unchecked: 1,
            bytes_unchecked: 65536,
            findings_dropped: 0,
            findings: vec![Finding {
                unit: 3,
                verdict: Verdict::Ambiguous,
                reason: "syndrome".into(),
                suspects: vec![],
                mismatch_sectors: 8,
                rewritten: vec![1, 2],
                action: "none, left as it is".into(),
                ranges_truncated: true,
                locations: vec![(0, 196608), (1, 196608)],
                ranges: vec![
                    ByteRange {
                        member: Some(1),
                        offset: 5,
                        len: 10,
                    },
                    ByteRange {
                        member: None,
                        offset: 100,
                        len: 1,
                    },
                ],
            }],
        };
        let text = render(&s);
        assert_eq!(parse(&text).unwrap(), s);
        assert!(parse(&text[..text.len() - 4]).is_err());
        assert!(parse("garbage").is_err());
        assert!(parse(&text.replace("position\t17", "position\tx")).is_err());
        let dir = std::env::temp_dir().join(format!("fastraid-ckpt-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("c");
        assert_eq!(load(&p).unwrap(), None);
        save(&p, &s).unwrap();
        assert_eq!(load(&p).unwrap(), Some(s));
        remove(&p).unwrap();
        remove(&p).unwrap();
        fs::write(&p, "x").unwrap();
        assert!(matches!(load(&p), Err(Error::InvalidArgument(_))));
    }
}
