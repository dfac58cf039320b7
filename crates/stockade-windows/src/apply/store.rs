//! stockade's state on disk: the ledger (`ledger.json`) and the sandbox users' credentials,
//! in `%LOCALAPPDATA%\stockade`, which only the user (and SYSTEM, administrators) can write.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::ledger::{Ledger, LEDGER_VERSION};

fn state_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::State { path: path.display().to_string(), detail: e.to_string() }
}

/// The ledger file in `state_dir`.
pub fn ledger_path(state_dir: &Path) -> PathBuf {
    state_dir.join("ledger.json")
}

/// Loads the ledger, or starts one with a fresh random seed.
pub fn load(state_dir: &Path) -> Result<Ledger, Error> {
    let path = ledger_path(state_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let l = Ledger::from_json(&text).map_err(|e| state_err(&path, e))?;
            if l.version > LEDGER_VERSION {
                return Err(state_err(&path, format!("written by a newer stockade (version {})", l.version)));
            }
            Ok(l)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ledger::new(super::sys::random_bytes::<16>()?)),
        Err(e) => Err(state_err(&path, e)),
    }
}

/// Saves the ledger atomically (write a sibling, then rename over).
pub fn save(state_dir: &Path, ledger: &Ledger) -> Result<(), Error> {
    std::fs::create_dir_all(state_dir).map_err(|e| state_err(state_dir, e))?;
    let path = ledger_path(state_dir);
    let tmp = path.with_extension("json.new");
    std::fs::write(&tmp, ledger.to_json()).map_err(|e| state_err(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| state_err(&path, e))
}

/// Removes the ledger after a complete cleanup.
pub fn remove(state_dir: &Path) -> Result<(), Error> {
    match std::fs::remove_file(ledger_path(state_dir)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(state_err(state_dir, e)),
        _ => Ok(()),
    }
}
