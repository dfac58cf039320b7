//! Writing `--report FILE` without following anything the sandboxed command planted.
//!
//! The report is often written into the workspace, which the command could write. So the
//! directory is opened *before* the command runs, and afterwards the report is created under a
//! fresh temporary name in that directory (exclusive, never following a symlink) and renamed
//! over the target name. A symlink or file the command left at the target name is replaced,
//! never followed; nothing outside that directory is touched.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::Failure;

/// An opened destination for the report.
pub struct ReportTarget {
    shown: PathBuf,
    name: OsString,
    #[cfg(unix)]
    dir: std::os::fd::OwnedFd,
    #[cfg(not(unix))]
    dir: PathBuf,
}

fn fail(e: anyhow::Error) -> Failure {
    Failure::other("report_unwritable", e, Some("pass `--report` a file in an existing directory you can write".into()))
}

impl ReportTarget {
    /// Opens the directory of `path` now.
    pub fn open(path: &Path) -> Result<Self, Failure> {
        // `dir/` names a directory; `file_name` would quietly take `dir` as the file's name.
        if path.as_os_str().to_string_lossy().ends_with(['/', std::path::MAIN_SEPARATOR]) {
            return Err(fail(anyhow::anyhow!("`{}` names a directory, not a file", path.display())));
        }
        let name = path
            .file_name()
            .ok_or_else(|| fail(anyhow::anyhow!("`{}` does not name a file", path.display())))?
            .to_owned();
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        #[cfg(unix)]
        let dir = {
            use rustix::fs::{Mode, OFlags};
            rustix::fs::open(&parent, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                .map_err(std::io::Error::from)
                .with_context(|| format!("cannot open report directory `{}`", parent.display()))
                .map_err(fail)?
        };
        #[cfg(not(unix))]
        let dir = {
            if !parent.is_dir() {
                return Err(fail(anyhow::anyhow!("report directory `{}` does not exist", parent.display())));
            }
            parent
        };
        let target = ReportTarget { shown: path.to_owned(), name, dir };
        // Refused before the command runs rather than after it, when the failure would hide its
        // result. (A directory the command makes there meanwhile still fails the write, later.)
        if target.is_directory() {
            return Err(fail(anyhow::anyhow!("`{}` is a directory, not a file", path.display())));
        }
        Ok(target)
    }

    /// Whether the target name is a directory now (not following a link there).
    fn is_directory(&self) -> bool {
        #[cfg(unix)]
        {
            rustix::fs::statat(&self.dir, self.name.as_os_str(), rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory)
        }
        #[cfg(not(unix))]
        {
            std::fs::symlink_metadata(self.dir.join(&self.name)).is_ok_and(|m| m.is_dir())
        }
    }

    /// Writes `value` as pretty JSON.
    pub fn write(&self, value: &serde_json::Value) -> Result<(), Failure> {
        let mut text = serde_json::to_string_pretty(value).map_err(|e| fail(e.into()))?;
        text.push('\n');
        self.write_bytes(text.as_bytes())
            .with_context(|| format!("cannot write report `{}`", self.shown.display()))
            .map_err(fail)
    }

    #[cfg(unix)]
    fn write_bytes(&self, bytes: &[u8]) -> anyhow::Result<()> {
        use std::io::Write;

        use rustix::fs::{Mode, OFlags};
        let mut tmp = OsString::from(".");
        tmp.push(&self.name);
        tmp.push(format!(".stockade-{}.tmp", std::process::id()));
        let fd = rustix::fs::openat(
            &self.dir,
            tmp.as_os_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map_err(std::io::Error::from)?;
        let mut file = std::fs::File::from(fd);
        let written = file.write_all(bytes).and_then(|()| file.sync_all());
        if let Err(e) = written {
            let _ = rustix::fs::unlinkat(&self.dir, tmp.as_os_str(), rustix::fs::AtFlags::empty());
            return Err(e.into());
        }
        if let Err(e) = rustix::fs::renameat(&self.dir, tmp.as_os_str(), &self.dir, self.name.as_os_str()) {
            // Nothing of ours is left behind (a directory at the name, made during the run).
            let _ = rustix::fs::unlinkat(&self.dir, tmp.as_os_str(), rustix::fs::AtFlags::empty());
            return Err(std::io::Error::from(e).into());
        }
        Ok(())
    }

    #[cfg(not(unix))]
    fn write_bytes(&self, bytes: &[u8]) -> anyhow::Result<()> {
        let target = self.dir.join(&self.name);
        let mut tmp = self.name.clone();
        tmp.push(format!(".stockade-{}.tmp", std::process::id()));
        let tmp = self.dir.join(tmp);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .and_then(|mut f| std::io::Write::write_all(&mut f, bytes))?;
        if let Err(e) = std::fs::rename(&tmp, &target) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
        Ok(())
    }
}
