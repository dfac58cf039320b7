//! `sbx-probe ID [ARGS...]`: perform exactly one action with raw syscalls and print one JSON line
//! `{"probe":ID,"outcome":"allowed"|"denied","errno":N|null,"detail":"..."}`.
//!
//! "allowed" means the action the probe attempts succeeded (for an escape probe, that is the
//! escape); "denied" means the kernel refused it and `errno` says how. Nothing retries or falls
//! back: the first refusal is reported as is. Usage errors exit 2 without a JSON line.
//!
//! `sbx-probe list` prints the probe ids.

#[cfg(target_os = "linux")]
mod probes;

#[cfg(target_os = "linux")]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(probes::main(&args));
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("sbx-probe: only Linux probes exist so far");
    std::process::exit(2);
}
