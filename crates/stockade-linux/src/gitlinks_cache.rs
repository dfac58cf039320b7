//! A cache of the submodule entries (gitlinks) read from git index files, so that a run whose
//! index is the very file an earlier run read does not read it again.
//!
//! `git_nested` needs each watched repository's gitlinks from before the command starts,
//! which meant reading the whole index on every launch: about 0.1 ms for 3,000 files, and
//! milliseconds for the largest repositories. Between an agent's commands the index rarely
//! changes, so the lists are kept in the state directory, keyed by what tells one version of an
//! index file from another: device, inode, size, modification and change times (a command can
//! set the first time, not the second), and the object name length the file was read with.
//!
//! The cache decides what `git_nested` believes a repository recorded before a run, so a
//! command that could write it could hide the submodule it records. It is used only where the
//! run cannot write it: the state directory's canonical path must lie outside every writable
//! root (everything else is read-only to the command). Otherwise, and whenever the file is
//! missing or does not parse, every index is read as before.

use std::io::Write as _;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// What identifies one version of an index file, and how it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
    /// `st_size`.
    pub size: u64,
    /// Modification time (seconds, nanoseconds).
    pub mtime: (i64, i64),
    /// Change time (seconds, nanoseconds).
    pub ctime: (i64, i64),
    /// Object name length in bytes (20 for SHA-1, 32 for SHA-256).
    pub oid_len: usize,
}

/// The cache of one run: loaded at the start, saved at the end if anything was added.
#[derive(Debug, Default)]
pub struct Cache {
    /// The file, when the run cannot write it (`None`: the cache is off).
    file: Option<PathBuf>,
    /// Most recently added first.
    entries: Vec<(Key, Vec<PathBuf>)>,
    changed: bool,
}

/// File name in the state directory.
const FILE_NAME: &str = "gitlinks-cache";
/// First line of the file; another means another format, read as empty.
const HEADER: &str = "stockade gitlinks cache 1";
/// Index versions kept (one per repository is what a run needs).
const MAX_ENTRIES: usize = 32;
/// Largest file read.
const MAX_FILE: u64 = 1 << 20;

impl Cache {
    /// A cache that never hits and is never saved.
    pub fn off() -> Cache {
        Cache::default()
    }

    /// The cache in `state_dir` (created if missing), unless that directory lies inside one
    /// of `writable` (canonical paths), where the command could rewrite it.
    pub fn load(state_dir: Option<&Path>, writable: &[&Path]) -> Cache {
        let Some(dir) = state_dir else { return Cache::off() };
        if !dir.is_dir() && std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).is_err() {
            return Cache::off();
        }
        // Canonical, so that a link into a writable root does not pass for a path outside.
        let Ok(dir) = std::fs::canonicalize(dir) else { return Cache::off() };
        if writable.iter().any(|w| dir.starts_with(w)) {
            return Cache::off();
        }
        let file = dir.join(FILE_NAME);
        let entries = read_limited(&file).map(|b| decode(&b)).unwrap_or_default();
        Cache { file: Some(file), entries, changed: false }
    }

    /// The gitlinks cached for `key`.
    pub fn get(&self, key: &Key) -> Option<Vec<PathBuf>> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, links)| links.clone())
    }

    /// Caches `links` for `key` (nothing when the cache is off).
    pub fn put(&mut self, key: Key, links: Vec<PathBuf>) {
        if self.file.is_none() || self.get(&key).as_ref() == Some(&links) {
            return;
        }
        self.entries.retain(|(k, _)| *k != key);
        self.entries.insert(0, (key, links));
        self.entries.truncate(MAX_ENTRIES);
        self.changed = true;
    }

    /// Writes the cache back if anything was added: to a new file renamed over the old one,
    /// so that a concurrent run reads either version whole. Best effort: a cache that could
    /// not be written only costs the next run a read of its index.
    pub fn save(&self) {
        let Some(file) = self.file.as_ref().filter(|_| self.changed) else { return };
        let tmp = file.with_file_name(format!(".{FILE_NAME}.{}", std::process::id()));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .and_then(|mut f| f.write_all(&encode(&self.entries)));
        if written.and_then(|()| std::fs::rename(&tmp, file)).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

/// Reads `p` if it is a regular file (not followed if a link) of at most [`MAX_FILE`] bytes.
fn read_limited(p: &Path) -> Option<Vec<u8>> {
    use std::io::Read as _;
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(p).ok()?;
    let m = f.metadata().ok()?;
    if !m.is_file() || m.len() > MAX_FILE {
        return None;
    }
    let mut data = Vec::with_capacity(m.len() as usize);
    f.take(MAX_FILE).read_to_end(&mut data).ok()?;
    Some(data)
}

/// The file's text: [`HEADER`], then per entry a line of the key's numbers and the number of
/// gitlinks, and a line per gitlink path in hex (paths are bytes and may hold a newline).
fn encode(entries: &[(Key, Vec<PathBuf>)]) -> Vec<u8> {
    let mut out = format!("{HEADER}\n");
    for (k, links) in entries {
        out.push_str(&format!(
            "{} {} {} {} {} {} {} {} {}\n",
            k.dev,
            k.ino,
            k.size,
            k.mtime.0,
            k.mtime.1,
            k.ctime.0,
            k.ctime.1,
            k.oid_len,
            links.len()
        ));
        for l in links {
            out.extend(l.as_os_str().as_bytes().iter().map(|b| format!("{b:02x}")));
            out.push('\n');
        }
    }
    out.into_bytes()
}

/// The entries of a file [`encode`] wrote; none if anything does not fit.
fn decode(data: &[u8]) -> Vec<(Key, Vec<PathBuf>)> {
    fn parse(text: &str) -> Option<Vec<(Key, Vec<PathBuf>)>> {
        let mut lines = text.lines();
        if lines.next()? != HEADER {
            return None;
        }
        let mut out = Vec::new();
        while let Some(line) = lines.next() {
            let n: Vec<&str> = line.split(' ').collect();
            let [dev, ino, size, ms, mns, cs, cns, oid_len, count] = n[..] else { return None };
            let key = Key {
                dev: dev.parse().ok()?,
                ino: ino.parse().ok()?,
                size: size.parse().ok()?,
                mtime: (ms.parse().ok()?, mns.parse().ok()?),
                ctime: (cs.parse().ok()?, cns.parse().ok()?),
                oid_len: oid_len.parse().ok()?,
            };
            let count: usize = count.parse().ok()?;
            let mut links = Vec::new();
            for _ in 0..count {
                let hex = lines.next()?.as_bytes();
                if hex.len() % 2 != 0 {
                    return None;
                }
                let bytes = hex
                    .chunks(2)
                    .map(|h| std::str::from_utf8(h).ok().and_then(|h| u8::from_str_radix(h, 16).ok()))
                    .collect::<Option<Vec<u8>>>()?;
                links.push(PathBuf::from(std::ffi::OsString::from_vec(bytes)));
            }
            out.push((key, links));
        }
        Some(out)
    }
    std::str::from_utf8(data).ok().and_then(parse).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(ino: u64) -> Key {
        Key { dev: 2049, ino, size: 265_030, mtime: (1_700_000_000, 5), ctime: (1_700_000_001, 999), oid_len: 20 }
    }

    #[test]
    fn entries_survive_a_round_trip_and_garbage_reads_as_empty() {
        let odd = PathBuf::from(std::ffi::OsString::from_vec(b"a b\nc\xff".to_vec()));
        let entries = vec![(key(1), vec![PathBuf::from("sub"), odd]), (key(2), vec![])];
        assert_eq!(decode(&encode(&entries)), entries);
        assert_eq!(decode(b"stockade gitlinks cache 2\n"), vec![]);
        assert_eq!(decode(b"stockade gitlinks cache 1\n1 2 3\n"), vec![]);
        let mut truncated = encode(&entries);
        truncated.truncate(truncated.len() - 3);
        assert_eq!(decode(&truncated), vec![]);
    }

    #[test]
    fn a_cache_the_run_could_write_is_off() {
        let base = crate::testutil::scratch_dir("gitlinks-cache");
        let state = base.join("state");
        let mut c = Cache::load(Some(&state), &[Path::new("/nonexistent-root")]);
        c.put(key(1), vec!["sub".into()]);
        c.save();
        let again = Cache::load(Some(&state), &[]);
        assert_eq!(again.get(&key(1)), Some(vec![PathBuf::from("sub")]));
        assert_eq!(again.get(&key(2)), None, "another version of the file");

        // Inside a writable root, directly or through a link: never read, never written.
        let canonical = std::fs::canonicalize(&base).unwrap();
        let off = Cache::load(Some(&state), &[canonical.as_path()]);
        assert_eq!(off.get(&key(1)), None);
        std::os::unix::fs::symlink(&state, base.join("link")).unwrap();
        let mut off = Cache::load(Some(&base.join("link")), &[canonical.join("state").as_path()]);
        assert_eq!(off.get(&key(1)), None);
        off.put(key(3), vec![]);
        off.save();
        assert_eq!(Cache::load(Some(&state), &[]).get(&key(3)), None);
        let _ = std::fs::remove_dir_all(&base);
    }
}
