//! A cache of the gitlinks read from large git indexes, so that a run in a big repository does
//! not parse the whole index again while it has not changed.
//!
//! Why: [`crate::git_nested`] needs the workspace index's gitlinks before the command starts,
//! and once parsing outlasts the mounts it runs beside, every run waits for it. Measured here:
//! an index of 100,000 entries (9.6 MB) takes 1.4 ms to parse warm, and a run in that
//! repository took 5.4 ms against 3.4 ms in one of 3,000 files. Indexes under
//! [`MIN_INDEX_BYTES`] are parsed as before (about 0.2 ms for 30,000 entries, within the
//! mounts); caching them would only add a file write.
//!
//! An entry is used only for an index file with exactly the identity it was read with: device,
//! inode, size, modification and change time to the nanosecond, and the object id length. A
//! command can set a file's mtime but not its ctime, so an index changed in place never matches;
//! git itself replaces the index by renaming a new file over it, which is a new inode.
//!
//! Entries live in stockade's state directory, which sandboxed commands cannot write (the policy
//! denies writes there). The cache is not used at all when that directory lies inside one of
//! the run's writable roots. Entries are written whole (a temporary file, then a rename) and used
//! only if they parse completely and name the same git directory; anything else is a miss.

use std::io::Write as _;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Indexes smaller than this are not cached (see the module documentation).
pub const MIN_INDEX_BYTES: u64 = 1 << 20;
/// Largest cache entry read (an index has at most `git_index::MAX_GITLINK_BYTES` of gitlink
/// paths; hex doubles that).
const MAX_ENTRY_BYTES: u64 = 4 << 20;
const MAGIC: &str = "stockade-gitlinks 1";

/// What tells one version of an index file from another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexId {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time (seconds, nanoseconds).
    pub mtime: (i64, i64),
    /// Change time (seconds, nanoseconds): what a command cannot set back.
    pub ctime: (i64, i64),
}

impl IndexId {
    /// The identity of the file `m` describes.
    pub fn of(m: &std::fs::Metadata) -> Self {
        IndexId {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }

    fn line(&self) -> String {
        let IndexId { dev, ino, size, mtime, ctime } = self;
        format!("{dev} {ino} {size} {} {} {} {}", mtime.0, mtime.1, ctime.0, ctime.1)
    }
}

/// Which index an entry describes.
#[derive(Debug, Clone, Copy)]
pub struct Key<'a> {
    /// The repository's git directory.
    pub git: &'a Path,
    /// Object id length the index was read with (20 for SHA-1, 32 for SHA-256).
    pub oid_len: usize,
    /// The index file's identity.
    pub id: IndexId,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// An entry's bytes: a header line, the oid length, the git directory (hex), the identity, then
/// one gitlink path (hex) per line.
pub fn encode(key: &Key<'_>, links: &[PathBuf]) -> Vec<u8> {
    let mut s = format!("{MAGIC}\n{}\n{}\n{}\n", key.oid_len, hex(key.git.as_os_str().as_bytes()), key.id.line());
    for l in links {
        s.push_str(&hex(l.as_os_str().as_bytes()));
        s.push('\n');
    }
    s.into_bytes()
}

/// The gitlinks of an entry, if it is complete and describes exactly `key`.
pub fn decode(bytes: &[u8], key: &Key<'_>) -> Option<Vec<PathBuf>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let body = text.strip_suffix('\n')?;
    let mut lines = body.split('\n');
    if lines.next()? != MAGIC
        || lines.next()? != key.oid_len.to_string()
        || unhex(lines.next()?)? != key.git.as_os_str().as_bytes()
        || lines.next()? != key.id.line()
    {
        return None;
    }
    lines.filter(|l| !l.is_empty()).map(|l| Some(PathBuf::from(std::ffi::OsString::from_vec(unhex(l)?)))).collect()
}

/// The entry file's name for a git directory: a 64-bit FNV-1a hash of its path (the entry
/// itself names the directory, so a collision is a miss).
fn file_name(git: &Path) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in git.as_os_str().as_bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The cache directory of one run, or none when it must not be used.
#[derive(Debug)]
pub struct GitlinkCache {
    dir: PathBuf,
}

impl GitlinkCache {
    /// The cache under `state_dir`, unless that lies inside one of `writable` (where the
    /// command could write entries).
    pub fn new<'a>(state_dir: Option<&Path>, mut writable: impl Iterator<Item = &'a Path>) -> Option<Self> {
        let state = state_dir?;
        if !state.is_absolute() || writable.any(|w| state.starts_with(w)) {
            return None;
        }
        Some(GitlinkCache { dir: state.join("gitlinks") })
    }

    /// The cached gitlinks for `key`, if there is a complete entry for exactly that index.
    pub fn get(&self, key: &Key<'_>) -> Option<Vec<PathBuf>> {
        use std::io::Read as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(self.dir.join(file_name(key.git)))
            .ok()?;
        if !f.metadata().ok()?.is_file() {
            return None;
        }
        let mut bytes = Vec::new();
        f.take(MAX_ENTRY_BYTES + 1).read_to_end(&mut bytes).ok()?;
        if bytes.len() as u64 > MAX_ENTRY_BYTES {
            return None;
        }
        decode(&bytes, key)
    }

    /// Records `links` for `key`. Best effort: a failure only means a later miss.
    pub fn put(&self, key: &Key<'_>, links: &[PathBuf]) {
        use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
        let _ = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.dir);
        let name = file_name(key.git);
        let tmp = self.dir.join(format!("{name}.{}.tmp", std::process::id()));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .and_then(|mut f| f.write_all(&encode(key, links)));
        if written.is_err() || std::fs::rename(&tmp, self.dir.join(&name)).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn id() -> IndexId {
        IndexId { dev: 1, ino: 2, size: 3 << 20, mtime: (4, 5), ctime: (6, 7) }
    }

    #[test]
    fn an_entry_is_used_only_for_exactly_its_index() {
        let git = Path::new("/ws/.git");
        let key = Key { git, oid_len: 20, id: id() };
        let links = vec![PathBuf::from("sub"), PathBuf::from(std::ffi::OsString::from_vec(b"odd \xff name".to_vec()))];
        let bytes = encode(&key, &links);
        assert_eq!(decode(&bytes, &key), Some(links.clone()));
        assert_eq!(decode(&encode(&key, &[]), &key), Some(vec![]));
        // Any difference in the identity, the oid length or the directory is a miss.
        for other in [
            IndexId { ctime: (6, 8), ..id() },
            IndexId { mtime: (4, 6), ..id() },
            IndexId { ino: 9, ..id() },
            IndexId { dev: 9, ..id() },
            IndexId { size: 1, ..id() },
        ] {
            assert_eq!(decode(&bytes, &Key { id: other, ..key }), None, "{other:?}");
        }
        assert_eq!(decode(&bytes, &Key { oid_len: 32, ..key }), None);
        assert_eq!(decode(&bytes, &Key { git: Path::new("/other/.git"), ..key }), None);
        // A truncated or altered entry is a miss.
        assert_eq!(decode(&bytes[..bytes.len() - 1], &key), None);
        assert_eq!(decode(&bytes[..bytes.len() - 3], &key), None);
        let mut bad = bytes.clone();
        let at = bad.len() - 2;
        bad[at] = b'g';
        assert_eq!(decode(&bad, &key), None);
        assert_eq!(decode(b"", &key), None);
    }

    #[test]
    fn no_cache_inside_a_writable_root() {
        let state = Path::new("/home/u/.local/state/stockade");
        assert!(GitlinkCache::new(Some(state), [Path::new("/home/u/src/p")].into_iter()).is_some());
        assert!(GitlinkCache::new(Some(state), [Path::new("/home/u/.local")].into_iter()).is_none());
        assert!(GitlinkCache::new(Some(state), [Path::new("/home/u/.local/state/stockade")].into_iter()).is_none());
        assert!(GitlinkCache::new(None, std::iter::empty()).is_none());
        assert!(GitlinkCache::new(Some(Path::new("relative")), std::iter::empty()).is_none());
    }

    #[test]
    fn entries_round_trip_through_the_directory() {
        let dir = crate::testutil::scratch_dir("gitlink-cache");
        let cache = GitlinkCache::new(Some(&dir), std::iter::empty()).unwrap();
        let key = Key { git: Path::new("/ws/.git"), oid_len: 20, id: id() };
        assert_eq!(cache.get(&key), None);
        cache.put(&key, &[PathBuf::from("a/sub")]);
        assert_eq!(cache.get(&key), Some(vec![PathBuf::from("a/sub")]));
        // Replaced whole; no temporary file left behind.
        cache.put(&key, &[]);
        assert_eq!(cache.get(&key), Some(vec![]));
        let names: Vec<_> = std::fs::read_dir(dir.join("gitlinks")).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
        // An entry that is a symlink is not followed.
        let link_key = Key { git: Path::new("/other/.git"), ..key };
        std::os::unix::fs::symlink(
            dir.join("gitlinks").join(&names[0]),
            dir.join("gitlinks").join(file_name(link_key.git)),
        )
        .unwrap();
        assert_eq!(cache.get(&link_key), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
