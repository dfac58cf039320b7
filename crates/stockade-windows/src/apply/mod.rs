//! Applies plans on Windows: the only part of the crate that calls Win32.
//!
//! Each submodule wraps one mechanism behind a few safe functions; OS handles live in RAII
//! owners ([`std::os::windows::io::OwnedHandle`], [`sys::LocalBox`], [`desktop::Desktop`]) and
//! no function returns a raw pointer. Descriptors move between the model and Windows as SDDL
//! ([`crate::sddl`]), so the logic of what to change stays in the pure modules.

pub mod acl;
pub mod backend;
pub mod desktop;
pub mod firewall;
pub mod job;
pub mod launch;
pub mod pipe;
pub mod probe;
pub mod runner;
pub mod store;
pub mod sys;
pub mod token;
pub mod users;
pub mod wfp;
