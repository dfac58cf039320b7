//! A cache of the submodule entries (gitlinks) read from git index files, so that a run whose
//! index is a version an earlier run read does not read it again.
//!
//! `git_nested` needs each watched repository's gitlinks from before the command starts,
//! which meant reading the whole index on every launch: about 0.1 ms for 3,000 files, on the
//! way to the command's `execve`, and milliseconds for the largest repositories. Between an
//! agent's commands the index rarely changes, so the lists of the last few versions are kept.
//!
//! What the cache says decides what `git_nested` believes a repository recorded, so whoever
//! could write it could hide a submodule. A file is no place for it: an earlier run with
//! another policy (writable roots over the state directory, `landlock-only`, which does not
//! enforce deny-write inside a writable root) could have rewritten it. It is one key in the
//! caller's user keyring instead ([`sys::keyring`]): the seccomp filter of both
//! implementations denies the keyring system calls, so no sandboxed command writes it. What
//! can is an unconfined process of the caller's uid: a `danger-full-access` run, or whatever
//! a `landlock-only` command reaches through a host socket it is not kept from (see
//! docs/linux.md), both of which could as well plant hooks that git runs.
//!
//! A version of an index is named by its device, inode, size, modification and change times
//! (a command can set the first time, not the second), the object name length it was read
//! with, and its trailing checksum. Git does not check that checksum when it reads the index,
//! so the name holds only while every change to the file moves its change time. Three rules
//! keep it so, in `git_nested`: a version is cached only if nobody had the file open for
//! writing when it was read ([`sys::lease`]; a write through a mapping made earlier can skip
//! the time update), the file did not change while it was read, and its times are at least
//! [`RACY_SECS`] old, past the granule of any filesystem clock (git's own rule for racily clean
//! entries); and a cached list is used only while nobody has the file open for writing. All
//! of that holds only where every change moves a file's times and a lease sees every writer:
//! ext4, XFS and Btrfs (on tmpfs a write through a shared mapping moves no time; a network or
//! FUSE filesystem has writers and clocks a local lease does not see), so indexes elsewhere are
//! never cached. Where leases or keyrings are unavailable (files of another owner, a
//! container's seccomp profile), every index is read as before.

use std::ffi::CStr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use crate::sys;

/// What identifies one version of an index file, and how it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The index's trailing checksum (`oid_len` bytes, not all zero).
    pub checksum: Vec<u8>,
}

/// The cache of one run: read when the run starts, written back at its end if anything was
/// added.
#[derive(Debug, Default)]
pub struct Cache {
    /// The keyring and key name, when keyrings work here (`None`: the cache is off).
    store: Option<(libc::c_long, &'static CStr)>,
    /// Most recently added first.
    entries: Vec<(Key, Vec<PathBuf>)>,
    changed: bool,
}

/// The key runs use, in the user keyring.
pub const KEY_NAME: &CStr = c"stockade:gitlinks-cache:1";
/// Index versions kept (one per watched repository is what a run needs).
const MAX_ENTRIES: usize = 8;
/// Largest payload written or read: a tenth of the 20,000 bytes of keys the kernel lets an
/// unprivileged user keep by default (`kernel.keys.maxbytes`), which other programs share.
const MAX_PAYLOAD: usize = 2048;
/// Seconds the key stays in the keyring after it was last written.
const TTL_SECS: u32 = 7 * 24 * 3600;
/// How old a version's times must be before it is cached: more than the coarsest filesystem
/// clock (FAT's two seconds), so that a later change cannot leave them as they were.
pub const RACY_SECS: i64 = 3;

/// First line of the payload: the format, and the version of the index reader whose lists it
/// holds; another line means another format or reader, read as empty.
fn header() -> String {
    format!("stockade gitlinks cache 2 reader {}", crate::git_index::READER_VERSION)
}

impl Cache {
    /// A cache that never hits and is never written.
    pub fn off() -> Cache {
        Cache::default()
    }

    /// The cache runs use: [`KEY_NAME`] in the user keyring.
    pub fn for_runs() -> Cache {
        Cache::load(sys::keyring::USER_KEYRING, KEY_NAME)
    }

    /// The cache in the key `name` of `keyring` (runs: [`KEY_NAME`] in
    /// [`sys::keyring::USER_KEYRING`]); off where the keyring cannot be used.
    pub fn load(keyring: libc::c_long, name: &'static CStr) -> Cache {
        match sys::keyring::read_user_key(keyring, name, MAX_PAYLOAD) {
            Ok(payload) => Cache {
                store: Some((keyring, name)),
                entries: payload.map(|p| decode(&p)).unwrap_or_default(),
                changed: false,
            },
            Err(_) => Cache::off(),
        }
    }

    /// Whether the keyring could be read (when not, nothing is cached).
    pub fn is_on(&self) -> bool {
        self.store.is_some()
    }

    /// The gitlinks cached for `key`.
    pub fn get(&self, key: &Key) -> Option<Vec<PathBuf>> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, links)| links.clone())
    }

    /// Caches `links` for `key` (nothing when the cache is off, or when the list alone would
    /// take half the payload).
    pub fn put(&mut self, key: Key, links: Vec<PathBuf>) {
        if self.store.is_none() || self.get(&key).as_ref() == Some(&links) {
            return;
        }
        let entry = (key, links);
        if encode(std::slice::from_ref(&entry)).len() > MAX_PAYLOAD / 2 {
            return;
        }
        let (key, links) = entry;
        self.entries.retain(|(k, _)| *k != key);
        self.entries.insert(0, (key, links));
        self.entries.truncate(MAX_ENTRIES);
        self.changed = true;
    }

    /// Writes the cache back if anything was added, dropping the oldest versions until it
    /// fits its bound (2 KiB; each entry takes at most half). Best effort: a cache that could
    /// not be written only costs a later run a read of its index.
    pub fn save(&self) {
        let Some((keyring, name)) = self.store.filter(|_| self.changed) else { return };
        let mut kept = self.entries.len();
        let payload = loop {
            let p = encode(&self.entries[..kept]);
            if p.len() <= MAX_PAYLOAD || kept <= 1 {
                break p;
            }
            kept -= 1;
        };
        let _ = sys::keyring::write_user_key(keyring, name, &payload, TTL_SECS);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    s.as_bytes().chunks(2).map(|h| std::str::from_utf8(h).ok().and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

/// The payload: the [`header`], then per entry a line of the key (the checksum in hex) and the
/// number of gitlinks, and a line per gitlink path in hex (paths are bytes, newlines included).
fn encode(entries: &[(Key, Vec<PathBuf>)]) -> Vec<u8> {
    let mut out = header() + "\n";
    for (k, links) in entries {
        out.push_str(&format!(
            "{} {} {} {} {} {} {} {} {} {}\n",
            k.dev,
            k.ino,
            k.size,
            k.mtime.0,
            k.mtime.1,
            k.ctime.0,
            k.ctime.1,
            k.oid_len,
            hex(&k.checksum),
            links.len()
        ));
        for l in links {
            out.push_str(&hex(l.as_os_str().as_bytes()));
            out.push('\n');
        }
    }
    out.into_bytes()
}

/// The entries of a payload [`encode`] wrote; none if anything does not fit.
fn decode(data: &[u8]) -> Vec<(Key, Vec<PathBuf>)> {
    fn parse(text: &str) -> Option<Vec<(Key, Vec<PathBuf>)>> {
        let mut lines = text.lines();
        if lines.next()? != header() {
            return None;
        }
        let mut out = Vec::new();
        while let Some(line) = lines.next() {
            let f: Vec<&str> = line.split(' ').collect();
            let [dev, ino, size, ms, mns, cs, cns, oid_len, checksum, count] = f[..] else { return None };
            let key = Key {
                dev: dev.parse().ok()?,
                ino: ino.parse().ok()?,
                size: size.parse().ok()?,
                mtime: (ms.parse().ok()?, mns.parse().ok()?),
                ctime: (cs.parse().ok()?, cns.parse().ok()?),
                oid_len: oid_len.parse().ok()?,
                checksum: unhex(checksum)?,
            };
            let count: usize = count.parse().ok()?;
            let mut links = Vec::new();
            for _ in 0..count {
                links.push(PathBuf::from(std::ffi::OsString::from_vec(unhex(lines.next()?)?)));
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
        Key {
            dev: 2049,
            ino,
            size: 265_030,
            mtime: (1_700_000_000, 5),
            ctime: (1_700_000_001, 999),
            oid_len: 20,
            checksum: vec![0xab; 20],
        }
    }

    #[test]
    fn entries_survive_a_round_trip_and_garbage_reads_as_empty() {
        let odd = PathBuf::from(std::ffi::OsString::from_vec(b"a b\nc\xff".to_vec()));
        let entries = vec![(key(1), vec![PathBuf::from("sub"), odd]), (key(2), vec![])];
        assert_eq!(decode(&encode(&entries)), entries);
        assert_eq!(decode(b"stockade gitlinks cache 1\n"), vec![]);
        assert_eq!(decode(format!("{}\n1 2 3\n", header()).as_bytes()), vec![]);
        let mut other_reader = encode(&entries);
        other_reader[header().len() - 1] ^= 1;
        assert_eq!(decode(&other_reader), vec![], "lists of another reader version");
        let mut truncated = encode(&entries);
        truncated.truncate(truncated.len() - 3);
        assert_eq!(decode(&truncated), vec![]);
    }

    /// Through a keyring (the test thread's own, gone with it): what one run saves the next
    /// reads, another version of the file misses, and the payload stays within its bound.
    #[test]
    fn a_saved_cache_is_read_back_from_the_keyring() {
        let (ring, name) = (sys::keyring::THREAD_KEYRING, KEY_NAME);
        let mut c = Cache::load(ring, name);
        if !c.is_on() {
            eprintln!("skipped: keyrings cannot be used here");
            return;
        }
        c.put(key(1), vec!["sub".into()]);
        c.save();
        let again = Cache::load(ring, name);
        assert_eq!(again.get(&key(1)), Some(vec![PathBuf::from("sub")]));
        assert_eq!(again.get(&key(2)), None, "another version of the file");
        let mut changed = key(1);
        changed.checksum[0] = 0;
        assert_eq!(again.get(&changed), None, "another checksum");

        let mut big = Cache::load(ring, name);
        for i in 0..20 {
            big.put(key(100 + i), (0..10).map(|j| PathBuf::from(format!("module-{i}-{j}"))).collect());
        }
        big.put(key(200), (0..100).map(|j| PathBuf::from(format!("module-{j}"))).collect());
        assert_eq!(big.get(&key(200)), None, "a list that would take half the payload is not kept");
        big.save();
        let read = sys::keyring::read_user_key(ring, name, 1 << 16).unwrap().unwrap();
        assert!(read.len() <= MAX_PAYLOAD, "{}", read.len());
        assert_eq!(Cache::load(ring, name).get(&key(119)).map(|l| l.len()), Some(10), "the newest is kept");
        sys::keyring::remove_user_key(ring, name).unwrap();
        assert!(Cache::load(ring, name).get(&key(119)).is_none());
    }
}
