//! `stockade-runner.exe`: started by stockade as the sandbox account for the elevated Windows
//! implementation; receives one command over a named pipe and starts it under a
//! write-restricted token. Not meant to be run by hand.

#[cfg(windows)]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    std::process::exit(stockade_windows::apply::runner::runner_main(&args));
}

#[cfg(not(windows))]
fn main() {
    eprintln!("stockade-runner: only used by stockade's elevated Windows sandbox");
    std::process::exit(2);
}
