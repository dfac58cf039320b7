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
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

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
    /// More than [`MAX_GITLINKS`] gitlinks.
    #[error("more than {MAX_GITLINKS} submodule entries")]
    TooManyGitlinks,
}

/// The gitlinks of the index in `data`, whose object names are `oid_len` bytes long (20 for
/// SHA-1, 32 for SHA-256).
pub fn gitlinks(data: &[u8], oid_len: usize) -> Result<IndexLinks, IndexError> {
    gitlinks_from(data, data.len() as u64, oid_len)
}

/// [`gitlinks`] of an index read from `input`, which holds `len` bytes: the index is read
/// once, front to back, through a buffer of its own, so memory does not grow with its size.
pub fn gitlinks_from(input: impl Read, len: u64, oid_len: usize) -> Result<IndexLinks, IndexError> {
    let mut r = Reader { input: BufReader::with_capacity(READ_BUFFER, input.take(len)), pos: 0 };
    let mut sig = [0u8; 4];
    r.exact(&mut sig)?;
    if &sig != b"DIRC" {
        return Err(IndexError::Signature);
    }
    let version = r.u32()?;
    if !(2..=4).contains(&version) {
        return Err(IndexError::Version(version));
    }
    let count = r.u32()?;
    let mut out = IndexLinks::default();
    let mut seen = std::collections::HashSet::new();
    let mut path: Vec<u8> = Vec::new();
    for _ in 0..count {
        let start = r.pos;
        r.skip(24)?; // ctime, mtime, dev, ino
        let mode = r.u32()?;
        r.skip((STAT_BYTES - 28) as u64)?; // uid, gid, size
        r.skip(oid_len as u64)?;
        let flags = r.u16()?;
        if flags & EXTENDED_FLAG != 0 {
            if version < 3 {
                return Err(IndexError::Malformed(r.at()));
            }
            r.skip(2)?;
        }
        if version == 4 {
            let strip = r.varint()?;
            let keep = path.len().checked_sub(strip).ok_or(IndexError::Malformed(r.at()))?;
            path.truncate(keep);
            r.until_nul(&mut path)?;
            if path.len() > MAX_PATH {
                return Err(IndexError::Malformed(r.at()));
            }
        } else {
            path.clear();
            r.until_nul(&mut path)?;
            // 1 to 8 NULs in all: the entry is padded to a multiple of eight bytes.
            let end = start + ((r.pos - 1 - start) + 8) / 8 * 8;
            for _ in r.pos..end {
                if r.u8()? != 0 {
                    return Err(IndexError::Malformed(r.at()));
                }
            }
        }
        if mode & TYPE_MASK == GITLINK_TYPE {
            if path.is_empty() {
                out.unnamed_gitlinks += 1;
            } else if seen.insert(path.clone()) {
                if out.gitlinks.len() == MAX_GITLINKS {
                    return Err(IndexError::TooManyGitlinks);
                }
                out.gitlinks.push(PathBuf::from(OsStr::from_bytes(&path)));
            }
        }
    }
    // Extensions, up to the trailing checksum.
    let oid = oid_len as u64;
    while len.saturating_sub(r.pos) > oid {
        r.exact(&mut sig)?;
        let size = u64::from(r.u32()?);
        if size > len.saturating_sub(r.pos).saturating_sub(oid) {
            return Err(IndexError::Malformed(r.at()));
        }
        if &sig == b"link" && size >= oid {
            let mut name = vec![0u8; oid_len];
            r.exact(&mut name)?;
            out.shared_index = Some(name.iter().map(|b| format!("{b:02x}")).collect());
            r.skip(size - oid)?;
        } else if &sig == b"link" {
            return Err(IndexError::Malformed(r.at()));
        } else {
            r.skip(size)?;
        }
    }
    if len.checked_sub(r.pos) != Some(oid) {
        return Err(IndexError::Malformed(r.at()));
    }
    Ok(out)
}

/// Most gitlinks read from one index: each costs memory here and an `lstat` in the check.
pub const MAX_GITLINKS: usize = 10_000;

/// Bytes read from the index at a time.
const READ_BUFFER: usize = 64 * 1024;
/// Longest path accepted in one entry (git's own limit is the system's, 4 KiB here).
const MAX_PATH: usize = 64 * 1024;

struct Reader<R> {
    input: R,
    /// Bytes consumed so far.
    pos: u64,
}

impl<R: BufRead> Reader<R> {
    fn at(&self) -> usize {
        self.pos as usize
    }

    fn exact(&mut self, buf: &mut [u8]) -> Result<(), IndexError> {
        self.input.read_exact(buf).map_err(|_| IndexError::Malformed(self.at()))?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn skip(&mut self, n: u64) -> Result<(), IndexError> {
        let skipped = std::io::copy(&mut self.input.by_ref().take(n), &mut std::io::sink())
            .map_err(|_| IndexError::Malformed(self.at()))?;
        self.pos += skipped;
        if skipped != n {
            return Err(IndexError::Malformed(self.at()));
        }
        Ok(())
    }

    fn u8(&mut self) -> Result<u8, IndexError> {
        let mut b = [0u8; 1];
        self.exact(&mut b)?;
        Ok(b[0])
    }

    fn u16(&mut self) -> Result<u16, IndexError> {
        let mut b = [0u8; 2];
        self.exact(&mut b)?;
        Ok(u16::from_be_bytes(b))
    }

    fn u32(&mut self) -> Result<u32, IndexError> {
        let mut b = [0u8; 4];
        self.exact(&mut b)?;
        Ok(u32::from_be_bytes(b))
    }

    /// Git's offset varint: seven bits per byte, most significant first, each continuation
    /// adding one so that every value has a single encoding.
    fn varint(&mut self) -> Result<usize, IndexError> {
        let mut b = self.u8()?;
        let mut v = usize::from(b & 0x7f);
        while b & 0x80 != 0 {
            b = self.u8()?;
            v = v
                .checked_add(1)
                .and_then(|v| v.checked_mul(128))
                .and_then(|v| v.checked_add(usize::from(b & 0x7f)))
                .ok_or(IndexError::Malformed(self.at()))?;
        }
        Ok(v)
    }

    /// Appends the bytes up to the next NUL (which is consumed) to `out`.
    fn until_nul(&mut self, out: &mut Vec<u8>) -> Result<(), IndexError> {
        let before = out.len();
        let n = (&mut self.input)
            .take(MAX_PATH as u64 + 1)
            .read_until(0, out)
            .map_err(|_| IndexError::Malformed(self.at()))?;
        self.pos += n as u64;
        if out.last() != Some(&0) || out.len() - before > MAX_PATH {
            return Err(IndexError::Malformed(self.at()));
        }
        out.pop();
        Ok(())
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
        for (mode, strip, suffix) in [(0o100644u32, 0u8, "lib/a.rs"), (0o160000, 4, "vendor"), (0o160000, 6, "zz")] {
            d.extend_from_slice(&[0u8; 24]);
            d.extend_from_slice(&mode.to_be_bytes());
            d.extend_from_slice(&[0u8; 12]);
            d.extend_from_slice(&[1u8; 20]);
            d.extend_from_slice(&0u16.to_be_bytes());
            d.push(strip);
            d.extend_from_slice(suffix.as_bytes());
            d.push(0);
        }
        d.extend_from_slice(&[0u8; 20]);
        let got = gitlinks(&d, 20).unwrap();
        assert_eq!(got.gitlinks, vec![PathBuf::from("lib/vendor"), PathBuf::from("lib/zz")]);
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
        assert!(data.len() > 3 * READ_BUFFER);
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
        let dir = std::env::temp_dir().join(format!("stockade-git-index-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(dir.join("src/a.txt"), "a").unwrap();
        std::fs::write(dir.join("b.txt"), "b").unwrap();
        let git = |args: &[&str]| crate::testutil::git(&dir, args);
        git(&["init", "-q"]);
        git(&["add", "-A"]);
        let oid = "1111111111111111111111111111111111111111";
        git(&["update-index", "--add", "--cacheinfo", &format!("160000,{oid},src/mod")]);
        git(&["update-index", "--add", "--cacheinfo", &format!("160000,{oid},zmod")]);
        for v in ["2", "3", "4"] {
            git(&["update-index", "--index-version", v]);
            let data = std::fs::read(dir.join(".git/index")).unwrap();
            let got = gitlinks(&data, 20).unwrap();
            assert_eq!(got.gitlinks, vec![PathBuf::from("src/mod"), PathBuf::from("zmod")], "index version {v}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
