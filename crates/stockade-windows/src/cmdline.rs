//! Building a Windows command line from an argv.
//!
//! `CreateProcessW` takes one string; the child's C runtime splits it back into arguments
//! following [the documented rules](https://learn.microsoft.com/en-us/cpp/c-language/parsing-c-command-line-arguments)
//! (the same as [`CommandLineToArgvW`](https://learn.microsoft.com/en-us/windows/win32/api/shellapi/nf-shellapi-commandlinetoargvw)):
//! an argument is quoted when it is empty or has a space, tab, newline or quote; inside
//! quotes, backslashes are literal unless they precede a quote, where `2n` backslashes + `"`
//! stand for `n` backslashes and `2n+1` for `n` backslashes and a literal quote.
//!
//! Batch files (`.bat`, `.cmd`) are parsed by `cmd.exe` with other rules, where `%`, `^`, `&`
//! and quotes in an argument can run commands; arguments with such characters are refused
//! rather than escaped.
//!
//! Strings are UTF-16 code units so unpaired surrogates (non-Unicode names, which Windows
//! allows) pass through unchanged.

use crate::error::Error;

const QUOTE: u16 = b'"' as u16;
const BACKSLASH: u16 = b'\\' as u16;

fn needs_quotes(arg: &[u16]) -> bool {
    arg.is_empty()
        || arg.iter().any(|&c| c == b' ' as u16 || c == b'\t' as u16 || c == b'\n' as u16 || c == 0x0b || c == QUOTE)
}

/// Appends `arg` to `out`, quoted as the C runtime expects.
pub fn push_arg(out: &mut Vec<u16>, arg: &[u16]) {
    if !needs_quotes(arg) {
        out.extend_from_slice(arg);
        return;
    }
    out.push(QUOTE);
    let mut backslashes = 0usize;
    for &c in arg {
        if c == BACKSLASH {
            backslashes += 1;
            continue;
        }
        if c == QUOTE {
            out.extend(std::iter::repeat_n(BACKSLASH, backslashes * 2 + 1));
        } else {
            out.extend(std::iter::repeat_n(BACKSLASH, backslashes));
        }
        backslashes = 0;
        out.push(c);
    }
    out.extend(std::iter::repeat_n(BACKSLASH, backslashes * 2));
    out.push(QUOTE);
}

/// Whether `program` names a batch file, which `CreateProcessW` runs through `cmd.exe`.
pub fn is_batch(program: &[u16]) -> bool {
    let lower: Vec<u16> =
        program.iter().map(|&c| if (b'A' as u16..=b'Z' as u16).contains(&c) { c + 32 } else { c }).collect();
    lower.ends_with(&[b'.' as u16, b'b' as u16, b'a' as u16, b't' as u16])
        || lower.ends_with(&[b'.' as u16, b'c' as u16, b'm' as u16, b'd' as u16])
}

/// The command line for `program` and `args`. The program is quoted like an argument (a path
/// with spaces). Refuses arguments a batch file's `cmd.exe` parsing could misread.
pub fn command_line(program: &[u16], args: &[Vec<u16>]) -> Result<Vec<u16>, Error> {
    if is_batch(program) {
        const RISKY: &[u8] = b"\"%^&|<>()!\r\n";
        if let Some(index) = args.iter().position(|a| a.iter().any(|&c| c < 128 && RISKY.contains(&(c as u8)))) {
            return Err(Error::UnsafeBatchArgument { index });
        }
    }
    let mut out = Vec::new();
    push_arg(&mut out, program);
    for a in args {
        out.push(b' ' as u16);
        push_arg(&mut out, a);
    }
    Ok(out)
}

/// Splits a command line back into arguments with the C runtime's rules (the inverse of
/// [`push_arg`], used by tests and by the runner to check what it received).
pub fn split(line: &[u16]) -> Vec<Vec<u16>> {
    let mut args = Vec::new();
    let mut i = 0;
    let ws = |c: u16| c == b' ' as u16 || c == b'\t' as u16;
    while i < line.len() {
        while i < line.len() && ws(line[i]) {
            i += 1;
        }
        if i >= line.len() {
            break;
        }
        let mut arg = Vec::new();
        let mut in_quotes = false;
        while i < line.len() && (in_quotes || !ws(line[i])) {
            let mut n = 0;
            while i < line.len() && line[i] == BACKSLASH {
                n += 1;
                i += 1;
            }
            if i < line.len() && line[i] == QUOTE {
                arg.extend(std::iter::repeat_n(BACKSLASH, n / 2));
                if n % 2 == 1 {
                    arg.push(QUOTE);
                } else if in_quotes && line.get(i + 1) == Some(&QUOTE) {
                    arg.push(QUOTE);
                    i += 1;
                } else {
                    in_quotes = !in_quotes;
                }
                i += 1;
            } else {
                arg.extend(std::iter::repeat_n(BACKSLASH, n));
                if i < line.len() && (in_quotes || !ws(line[i])) {
                    arg.push(line[i]);
                    i += 1;
                }
            }
        }
        args.push(arg);
    }
    args
}

/// Resolves `program` the way a shell would for the *sandbox's* environment: a name with a
/// separator is used as given; otherwise each `PATH` directory is tried with the name as is
/// and with each `PATHEXT` extension. `exists` answers for a candidate path. Returns `None`
/// when nothing is found (the run ends as "not found", 127).
pub fn resolve_program(program: &str, path: &str, pathext: &str, exists: &dyn Fn(&str) -> bool) -> Option<String> {
    if program.contains(['\\', '/', ':']) {
        return Some(program.to_owned());
    }
    let has_ext = program.rsplit_once('.').is_some_and(|(_, e)| !e.is_empty());
    let exts: Vec<&str> = pathext.split(';').filter(|e| !e.is_empty()).collect();
    for dir in path.split(';').filter(|d| !d.is_empty()) {
        let base = format!("{}\\{program}", dir.trim_end_matches(['\\', '/']));
        if has_ext && exists(&base) {
            return Some(base);
        }
        for e in &exts {
            let cand = format!("{base}{}", e.to_ascii_lowercase());
            if exists(&cand) {
                return Some(cand);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn quoting_table() {
        let table: &[(&str, &str)] = &[
            ("plain", "plain"),
            ("", "\"\""),
            ("two words", "\"two words\""),
            ("say \"hi\"", "\"say \\\"hi\\\"\""),
            (r"C:\dir\", r"C:\dir\"),
            (r"C:\my dir\", "\"C:\\my dir\\\\\""),
            (r#"a\"b"#, r#""a\\\"b""#),
            ("line\nbreak", "\"line\nbreak\""),
            ("tab\there", "\"tab\there\""),
            ("日本語 ü", "\"日本語 ü\""),
        ];
        for (arg, want) in table {
            let mut out = Vec::new();
            push_arg(&mut out, &w(arg));
            assert_eq!(String::from_utf16(&out).unwrap(), *want, "quoting {arg:?}");
        }
    }

    #[test]
    fn round_trips_including_unpaired_surrogates() {
        let args = vec![
            w(""),
            w("a b"),
            w("\"quoted\""),
            w(r"trailing\"),
            w(r"\\server\share\"),
            w("new\nline"),
            w("ü日本"),
            vec![0xd800, b'x' as u16],
        ];
        let line = command_line(&w(r"C:\Program Files\tool.exe"), &args).unwrap();
        let back = split(&line);
        assert_eq!(back[0], w(r"C:\Program Files\tool.exe"));
        assert_eq!(&back[1..], &args[..]);
    }

    #[test]
    fn refuses_risky_batch_arguments() {
        assert!(matches!(
            command_line(&w("build.CMD"), &[w("ok"), w("a&calc")]),
            Err(Error::UnsafeBatchArgument { index: 1 })
        ));
        assert!(command_line(&w("build.bat"), &[w("x%PATH%")]).is_err());
        assert!(command_line(&w("build.bat"), &[w("plain"), w("a b")]).is_ok());
        assert!(command_line(&w("tool.exe"), &[w("a&b")]).is_ok());
    }

    #[test]
    fn resolves_programs_on_the_sandbox_path_with_pathext() {
        let exists = |p: &str| [r"C:\Git\cmd\git.exe", r"C:\tools\build.cmd", r"C:\tools\x.py"].contains(&p);
        let pathext = ".COM;.EXE;.BAT;.CMD";
        let path = r"C:\nothing;C:\Git\cmd\;C:\tools";
        assert_eq!(resolve_program("git", path, pathext, &exists).as_deref(), Some(r"C:\Git\cmd\git.exe"));
        assert_eq!(resolve_program("build", path, pathext, &exists).as_deref(), Some(r"C:\tools\build.cmd"));
        assert_eq!(resolve_program("x.py", path, pathext, &exists).as_deref(), Some(r"C:\tools\x.py"));
        assert_eq!(resolve_program("missing", path, pathext, &exists), None);
        assert_eq!(resolve_program(r".\local.exe", path, pathext, &exists).as_deref(), Some(r".\local.exe"));
    }
}
