//! Reading the gitlinks (submodule entries) out of a git index file, for the check after a run
//! in `git_nested`. Pure: bytes in, paths out.
//!
//! Only what that check needs is decoded: each entry's mode and path, in index versions 2, 3
//! and 4 (v4 compresses each path against the previous one), with SHA-1 or SHA-256 object
//! names, and the name of the shared index when the index is split (the `link` extension).
//! Anything that does not fit the format is an error rather than a guess: the caller then
//! reports that it could not check.
//!
//! Reference: git's `Documentation/gitformat-index.txt`.

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// The version of what this reader finds in an index: bump it when a change makes it find
/// other gitlinks in some index, so that lists the old reader left in `gitlinks_cache` are
/// not used.
pub const READER_VERSION: u32 = 1;

/// Mode bits of a gitlink (`160000`): the object type field is `1110`.
const GITLINK_TYPE: u32 = 0o160000;
const TYPE_MASK: u32 = 0o170000;

/// Bytes of an entry before its object name: ten 32-bit stat and mode fields.
const STAT_BYTES: usize = 40;
/// The "extended" bit of an entry's flags (v3 and later): two more flag bytes follow.
const EXTENDED_FLAG: u16 = 0x4000;

/// What [`gitlinks`] found in one index file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct IndexLinks {
    /// Paths (relative to the work tree) of the gitlink entries, in index order, each once.
    pub gitlinks: Vec<PathBuf>,
    /// Gitlink entries without a name: in a split index, these replace an entry of the shared
    /// index, found through the `link` extension's bitmaps, which this reader does not decode.
    pub unnamed_gitlinks: usize,
    /// For a split index: the hex object name of its shared index
    /// (`$GIT_DIR/sharedindex.<name>`), whose entries count as well.
    pub shared_index: Option<String>,
}

/// Why an index could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// No `DIRC` signature.
    #[error("not a git index (no DIRC signature)")]
    Signature,
    /// A version this reader does not know.
    #[error("index version {0} is not supported")]
    Version(u32),
    /// The data ends, or a field points, where the format does not allow.
    #[error("malformed index at byte {0}")]
    Malformed(usize),
    /// More than [`MAX_GITLINKS`] gitlinks, or more than [`MAX_GITLINK_BYTES`] of their paths.
    #[error("more than {MAX_GITLINKS} submodule entries or {MAX_GITLINK_BYTES} bytes of their paths")]
    TooManyGitlinks,
    /// An `EOIE` or `IEOT` extension: with them, git may read the entries in blocks from the
    /// offsets they list, and the extensions from where they say, which need not be what a
    /// reader from front to back sees.
    #[error("index with an offset table (EOIE or IEOT extension), which git may read differently")]
    OffsetTable,
}

/// The gitlinks of the index in `data`, whose object names are `oid_len` bytes long (20 for
/// SHA-1, 32 for SHA-256).
pub fn gitlinks(data: &[u8], oid_len: usize) -> Result<IndexLinks, IndexError> {
    gitlinks_from(data, data.len() as u64, oid_len)
}

/// [`gitlinks`] of an index read from `input`, which holds `len` bytes: the index is read
/// once, front to back, through a window of its own, so memory does not grow with its size.
///
/// Entries are delimited as git delimits them: in versions 2 and 3 by the name length in
/// their flags (a name of 4095 bytes or more ends at its NUL), in version 4 by the NUL after
/// the path's new suffix. A name that holds a NUL, or whose length does not match its flags,
/// is malformed: git would see a different path than this reader. So is an index with an
/// offset table (see [`IndexError::OffsetTable`]; git writes one only when configured to).
pub fn gitlinks_from(input: impl Read, len: u64, oid_len: usize) -> Result<IndexLinks, IndexError> {
    let mut w = Window::new(input.take(len));
    if &w.need(4)?[..4] != b"DIRC" {
        return Err(IndexError::Signature);
    }
    let head = w.need(12)?;
    let version = be32(&head[4..8]);
    if !(2..=4).contains(&version) {
        return Err(IndexError::Version(version));
    }
    let count = be32(&head[8..12]);
    w.advance(12);
    let fixed = STAT_BYTES + oid_len + 2;
    let mut out = IndexLinks::default();
    let mut seen = std::collections::HashSet::new();
    let mut kept_bytes = 0usize;
    let mut path: Vec<u8> = Vec::new();
    for _ in 0..count {
        let e = w.need(fixed)?;
        let mode = be32(&e[MODE_AT..MODE_AT + 4]);
        let flags = u16::from_be_bytes([e[fixed - 2], e[fixed - 1]]);
        let mut name_at = fixed;
        if flags & EXTENDED_FLAG != 0 {
            if version < 3 {
                return Err(IndexError::Malformed(w.at()));
            }
            name_at += 2;
        }
        let flag_len = usize::from(flags & NAME_MASK);
        let size = if version == 4 {
            let (strip, varint_len) = w.varint(name_at)?;
            let keep = path.len().checked_sub(strip).ok_or(IndexError::Malformed(w.at()))?;
            path.truncate(keep);
            let suffix_at = name_at + varint_len;
            let suffix = w.until_nul(suffix_at)?;
            path.extend_from_slice(suffix);
            if path.len() > MAX_PATH || (flag_len < usize::from(NAME_MASK) && flag_len != path.len()) {
                return Err(IndexError::Malformed(w.at()));
            }
            suffix_at + suffix.len() + 1
        } else {
            let name = if flag_len < usize::from(NAME_MASK) {
                let e = w.need(name_at + flag_len + 1)?;
                if e[name_at + flag_len] != 0 {
                    return Err(IndexError::Malformed(w.at()));
                }
                &e[name_at..name_at + flag_len]
            } else {
                w.until_nul(name_at)?
            };
            // Only a gitlink's path is kept (each entry stands alone in these versions). A NUL
            // inside it would make git see a shorter path; in other entries it changes nothing
            // here (the flags give the length, as for git), and looking costs a fifth of the
            // parse.
            path.clear();
            if mode & TYPE_MASK == GITLINK_TYPE {
                if name.contains(&0) {
                    return Err(IndexError::Malformed(w.at()));
                }
                path.extend_from_slice(name);
            }
            // Padded with NULs to a multiple of eight bytes (at least one NUL).
            let size = (name_at + name.len() + 8) & !7;
            w.need(size)?;
            size
        };
        w.advance(size);
        if mode & TYPE_MASK == GITLINK_TYPE {
            if path.is_empty() {
                out.unnamed_gitlinks += 1;
            } else if !seen.contains(path.as_slice()) {
                // Each path is kept twice (in `seen` and in the list).
                kept_bytes += path.len();
                if out.gitlinks.len() == MAX_GITLINKS || kept_bytes > MAX_GITLINK_BYTES {
                    return Err(IndexError::TooManyGitlinks);
                }
                seen.insert(path.clone());
                out.gitlinks.push(PathBuf::from(OsStr::from_bytes(&path)));
            }
        }
    }
    // Extensions, up to the trailing checksum.
    let oid = oid_len as u64;
    while len.saturating_sub(w.pos) > oid {
        let h = w.need(8)?;
        let (sig, size) = ([h[0], h[1], h[2], h[3]], u64::from(be32(&h[4..8])));
        w.advance(8);
        if size > len.saturating_sub(w.pos).saturating_sub(oid) {
            return Err(IndexError::Malformed(w.at()));
        }
        if &sig == b"EOIE" || &sig == b"IEOT" {
            return Err(IndexError::OffsetTable);
        }
        if &sig == b"link" {
            if size < oid {
                return Err(IndexError::Malformed(w.at()));
            }
            let name = &w.need(oid_len)?[..oid_len];
            out.shared_index = Some(name.iter().map(|b| format!("{b:02x}")).collect());
        }
        w.skip(size)?;
    }
    if len.checked_sub(w.pos) != Some(oid) {
        return Err(IndexError::Malformed(w.at()));
    }
    Ok(out)
}

/// Most gitlinks read from one index: each costs memory here and an `lstat` in the check.
pub const MAX_GITLINKS: usize = 10_000;
/// Most bytes of gitlink paths kept from one index: with prefix compression (version 4), a
/// few bytes of index can name a path of `MAX_PATH` bytes, so the count alone would let a
/// small index take a gigabyte.
pub const MAX_GITLINK_BYTES: usize = 1024 * 1024;

/// Longest path accepted in one entry: the system's `PATH_MAX`, which no checked-out path can
/// exceed.
const MAX_PATH: usize = 4096;
/// The window over the file: the longest entry (a `MAX_PATH` name after at most 80 bytes of
/// fields and varint, then padding) fits, so every entry is parsed from one slice.
const WINDOW: usize = 16 * 1024;
const _: () = assert!(MAX_PATH + 4096 <= WINDOW);
/// Where an entry's mode is, after ctime, mtime, dev and ino.
const MODE_AT: usize = 24;
/// The name length bits of an entry's flags; all ones means "this long or longer".
const NAME_MASK: u16 = 0x0fff;

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// A sliding window over the input: `buf[start..end]` holds the bytes from offset `pos` on.
struct Window<R> {
    input: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Offset in the file of `buf[start]`.
    pos: u64,
}

impl<R: Read> Window<R> {
    fn new(input: R) -> Self {
        Window { input, buf: vec![0; WINDOW], start: 0, end: 0, pos: 0 }
    }

    fn at(&self) -> usize {
        self.pos as usize
    }

    /// Reads more input after what is buffered (moving that to the front first); false at the
    /// end of the input.
    fn fill(&mut self) -> Result<bool, IndexError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            return Err(IndexError::Malformed(self.at()));
        }
        loop {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Err(IndexError::Malformed(self.at())),
            }
        }
    }

    /// The next `n` (at most `WINDOW`) bytes, or more.
    fn need(&mut self, n: usize) -> Result<&[u8], IndexError> {
        while self.end - self.start < n {
            if !self.fill()? {
                return Err(IndexError::Malformed(self.at()));
            }
        }
        Ok(&self.buf[self.start..self.end])
    }

    /// The bytes from `from` (counted from the window's start) up to the next NUL, which must
    /// follow within `MAX_PATH` bytes.
    fn until_nul(&mut self, from: usize) -> Result<&[u8], IndexError> {
        self.need(from)?;
        let mut searched = from;
        loop {
            let avail = &self.buf[self.start + searched..self.end];
            if let Some(i) = avail.iter().position(|&b| b == 0) {
                let nul = searched + i;
                if nul - from > MAX_PATH {
                    break;
                }
                return Ok(&self.buf[self.start + from..self.start + nul]);
            }
            searched = self.end - self.start;
            if searched - from > MAX_PATH || !self.fill()? {
                break;
            }
        }
        Err(IndexError::Malformed(self.at()))
    }

    /// Git's offset varint at `from`: seven bits per byte, most significant first, each
    /// continuation adding one so that every value has a single encoding. Returns the value
    /// and the bytes it took.
    fn varint(&mut self, from: usize) -> Result<(usize, usize), IndexError> {
        let at = self.at();
        let mut v = 0usize;
        for i in 0.. {
            let b = self.need(from + i + 1)?[from + i];
            v = if i == 0 {
                usize::from(b & 0x7f)
            } else {
                v.checked_add(1)
                    .and_then(|v| v.checked_mul(128))
                    .and_then(|v| v.checked_add(usize::from(b & 0x7f)))
                    .ok_or(IndexError::Malformed(at))?
            };
            if b & 0x80 == 0 {
                return Ok((v, i + 1));
            }
        }
        Err(IndexError::Malformed(at))
    }

    /// Drops the next `n` buffered bytes.
    fn advance(&mut self, n: usize) {
        self.start += n;
        self.pos += n as u64;
    }

    /// Steps over the next `n` bytes, buffered or not.
    fn skip(&mut self, mut n: u64) -> Result<(), IndexError> {
        loop {
            let here = (self.end - self.start).min(usize::try_from(n).unwrap_or(usize::MAX));
            self.advance(here);
            n -= here as u64;
            if n == 0 {
                return Ok(());
            }
            if !self.fill()? {
                return Err(IndexError::Malformed(self.at()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    use crate::testutil::{index_entry as entry, index_file as index};

    #[test]
    fn finds_gitlinks_in_v2_and_v3() {
        let es = [entry(0o100644, "a.txt", false), entry(0o160000, "sub", false), entry(0o120000, "ln", false)];
        let got = gitlinks(&index(2, &es, &[]), 20).unwrap();
        assert_eq!(got.gitlinks, vec![PathBuf::from("sub")]);
        let es = [entry(0o160000, "deep/er/mod", true), entry(0o100755, "x", false)];
        assert_eq!(gitlinks(&index(3, &es, &[]), 20).unwrap().gitlinks, vec![PathBuf::from("deep/er/mod")]);
        // An extended entry is not allowed in v2.
        assert!(gitlinks(&index(2, &es, &[]), 20).is_err());
    }

    #[test]
    fn v4_paths_are_prefix_compressed() {
        let mut d = b"DIRC".to_vec();
        d.extend_from_slice(&4u32.to_be_bytes());
        d.extend_from_slice(&3u32.to_be_bytes());
        for (mode, strip, suffix, full) in
            [(0o100644u32, 0u8, "lib/a.rs", 8u16), (0o160000, 4, "vendor", 10), (0o160000, 6, "zz", 6)]
        {
            d.extend_from_slice(&[0u8; 24]);
            d.extend_from_slice(&mode.to_be_bytes());
            d.extend_from_slice(&[0u8; 12]);
            d.extend_from_slice(&[1u8; 20]);
            // The flags hold the whole path's length, as git writes them.
            d.extend_from_slice(&full.to_be_bytes());
            d.push(strip);
            d.extend_from_slice(suffix.as_bytes());
            d.push(0);
        }
        d.extend_from_slice(&[0u8; 20]);
        let got = gitlinks(&d, 20).unwrap();
        assert_eq!(got.gitlinks, vec![PathBuf::from("lib/vendor"), PathBuf::from("lib/zz")]);
        // A length in the flags that does not match the path git would rebuild.
        let at = 12 + 60;
        d[at..at + 2].copy_from_slice(&9u16.to_be_bytes());
        assert!(gitlinks(&d, 20).is_err());
    }

    /// An index that git may read in blocks (an `EOIE` or `IEOT` extension) is not checked:
    /// entries hidden behind another extension would be seen by git, not by this reader.
    #[test]
    fn offset_tables_are_refused() {
        for sig in [b"EOIE", b"IEOT"] {
            let mut ext = sig.to_vec();
            ext.extend_from_slice(&4u32.to_be_bytes());
            ext.extend_from_slice(&[0; 4]);
            let got = gitlinks(&index(2, &[entry(0o100644, "f", false)], &ext), 20);
            assert_eq!(got, Err(IndexError::OffsetTable));
        }
    }

    /// Version 4 names a long path in a few bytes: the paths kept are bounded in bytes, not
    /// only in number.
    #[test]
    fn kept_paths_are_bounded_in_bytes() {
        let base = format!("{}/", "d".repeat(4000));
        let mut d = b"DIRC".to_vec();
        d.extend_from_slice(&4u32.to_be_bytes());
        let n = MAX_GITLINK_BYTES / base.len() + 2;
        d.extend_from_slice(&(n as u32).to_be_bytes());
        for i in 0..n {
            let name = format!("{base}{i:05}");
            d.extend_from_slice(&[0u8; 24]);
            d.extend_from_slice(&0o160000u32.to_be_bytes());
            d.extend_from_slice(&[0u8; 12]);
            d.extend_from_slice(&[1u8; 20]);
            d.extend_from_slice(&(name.len() as u16).to_be_bytes());
            if i == 0 {
                d.push(0);
                d.extend_from_slice(name.as_bytes());
            } else {
                d.push(5); // keep the shared base, replace the five digits
                d.extend_from_slice(&name.as_bytes()[base.len()..]);
            }
            d.push(0);
        }
        d.extend_from_slice(&[0u8; 20]);
        assert!(d.len() < 64 * 1024, "a small index");
        assert_eq!(gitlinks(&d, 20), Err(IndexError::TooManyGitlinks));
    }

    /// Names are read as git reads them: by the length in the flags, so a NUL inside a name,
    /// or a length that stops short of the NUL, would make git see another path.
    #[test]
    fn names_follow_the_length_in_the_flags() {
        let mut e = entry(0o160000, "sub", false);
        // "sub" then NUL: claim 4 bytes ("sub\0"), which git would take as the path "sub".
        e[61] = 4;
        e[62 + 3] = 0;
        assert!(gitlinks(&index(2, &[e.clone()], &[]), 20).is_err());
        // Claim 2 bytes: the byte after them is not the NUL.
        e[61] = 2;
        assert!(gitlinks(&index(2, &[e], &[]), 20).is_err());
        // A name of 4095 bytes or more has all ones in the flags and ends at its NUL.
        let long = format!("{}/sub", "d".repeat(MAX_PATH - 4));
        let got = gitlinks(&index(2, &[entry(0o160000, &long, false), entry(0o100644, "z", false)], &[]), 20);
        assert_eq!(got.unwrap().gitlinks, vec![PathBuf::from(long)]);
        // Longer than any path the system can check out.
        let longer = format!("{}/sub", "d".repeat(MAX_PATH));
        assert!(gitlinks(&index(2, &[entry(0o160000, &longer, false)], &[]), 20).is_err());
    }

    #[test]
    fn split_index_names_its_shared_index() {
        let mut ext = b"link".to_vec();
        ext.extend_from_slice(&20u32.to_be_bytes());
        ext.extend_from_slice(&[0x0f; 20]);
        let got = gitlinks(&index(2, &[entry(0o100644, "f", false)], &ext), 20).unwrap();
        assert_eq!(got.shared_index.as_deref(), Some("0f".repeat(20).as_str()));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_guess() {
        assert_eq!(gitlinks(b"XXXX", 20), Err(IndexError::Signature));
        let good = index(2, &[entry(0o160000, "sub", false)], &[]);
        let mut v9 = good.clone();
        v9[7] = 9;
        assert_eq!(gitlinks(&v9, 20), Err(IndexError::Version(9)));
        for cut in [10, 40, 70, good.len() - 1] {
            assert!(gitlinks(&good[..cut], 20).is_err(), "truncated at {cut}");
        }
        // Claims more entries than there are.
        let mut more = good.clone();
        more[11] = 5;
        assert!(gitlinks(&more, 20).is_err());
        // SHA-256 names read as SHA-1 do not line up.
        assert!(gitlinks(&good, 32).is_err());
    }

    /// An index larger than the read buffer, with gitlinks on both sides of its boundaries;
    /// and one with more gitlinks than are read.
    #[test]
    fn large_indexes_are_streamed_and_bounded() {
        let names: Vec<String> =
            (0..3000).map(|i| format!("dir{:04}/file-with-a-longer-name-{i:05}", i / 10)).collect();
        let entries: Vec<(u32, &str)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (if i % 700 == 3 { 0o160000 } else { 0o100644 }, n.as_str()))
            .collect();
        let data = crate::testutil::index_v2(&entries);
        assert!(data.len() > 3 * WINDOW);
        let want: Vec<PathBuf> = (0..3000).filter(|i| i % 700 == 3).map(|i| PathBuf::from(&names[i])).collect();
        assert_eq!(gitlinks(&data, 20).unwrap().gitlinks, want);
        let many: Vec<String> = (0..=MAX_GITLINKS).map(|i| format!("m{i}")).collect();
        let entries: Vec<(u32, &str)> = many.iter().map(|n| (0o160000, n.as_str())).collect();
        assert_eq!(gitlinks(&crate::testutil::index_v2(&entries), 20), Err(IndexError::TooManyGitlinks));
    }

    /// Against indexes git itself wrote (when git is installed): a gitlink added with
    /// `update-index --cacheinfo`, in index versions 2, 3 and 4.
    #[test]
    fn reads_what_git_writes() {
        if !crate::testutil::git_installed() {
            return;
        }
        let dir = crate::testutil::scratch_dir("git-index");
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(dir.join("src/a.txt"), "a").unwrap();
        std::fs::write(dir.join("b.txt"), "b").unwrap();
        let git = |args: &[&str]| crate::testutil::git(&dir, args);
        git(&["init", "-q"]);
        git(&["add", "-A"]);
        let oid = crate::testutil::GITLINK_OID;
        git(&["update-index", "--add", "--cacheinfo", &format!("160000,{oid},src/mod")]);
        git(&["update-index", "--add", "--cacheinfo", &format!("160000,{oid},zmod")]);
        for v in ["2", "3", "4"] {
            git(&["update-index", "--index-version", v]);
            let data = std::fs::read(dir.join(".git/index")).unwrap();
            let got = gitlinks(&data, 20).unwrap();
            assert_eq!(got.gitlinks, vec![PathBuf::from("src/mod"), PathBuf::from("zmod")], "index version {v}");
        }
        // With index.threads set, git records an offset table, which is refused.
        git(&["-c", "index.threads=2", "update-index", "--index-version", "2"]);
        let data = std::fs::read(dir.join(".git/index")).unwrap();
        assert_eq!(gitlinks(&data, 20), Err(IndexError::OffsetTable));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
