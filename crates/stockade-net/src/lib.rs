//! # stockade-net: the network allowlist proxy
//!
//! This crate will hold the HTTP/CONNECT/SOCKS5 proxy that is the only way out of a sandbox
//! whose policy names allowed hosts (issue 4). It is empty until then.
#![deny(missing_docs)]
#![deny(unsafe_code)]
