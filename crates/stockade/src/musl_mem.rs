//! `memcpy` and `memmove` for the static musl build, replacing musl's.
//!
//! Why: musl's x86-64 `memcpy` copies with `rep movsq`, plus single `movsb` instructions for
//! the unaligned head and tail, at every size. On the 2-vCPU VMs stockade is measured on, that
//! costs 28 to 39 ns per call for anything from 1 to 150 bytes, where loads and stores of
//! whole words take a few. The supervisor copies small strings and paths about 2,300 times a
//! run (resolving the policy's paths above all), so musl's `memcpy` was about a fifth of its
//! CPU time. Its preparation before the go message got 66 µs shorter; that became a shorter
//! run once the supervisor also took over writing pid 1's id maps (see docs/linux-log.md, "A
//! twelfth session"). Only the musl build links this; glibc's `memcpy` is fast at every size.
//!
//! How: up to 32 bytes, two possibly overlapping loads of the widest word that fits, from
//! both ends, then two stores (every load comes before any store, so this is also a correct
//! `memmove`); above that, `rep movsb`, which CPUs with ERMS/FSRM run at full speed and every
//! x86-64 CPU runs correctly. `memmove` copies backwards when the destination overlaps the
//! end of the source. Nothing here loops or copies a run-time length through Rust, so the
//! compiler cannot turn it back into a call to `memcpy`.
//!
//! Defining both keeps musl's `memcpy.o` out of the link: its `memmove` calls a helper
//! (`__memcpy_fwd`) defined there.
#![allow(unsafe_code)] // The C library's contract: raw pointers in, raw pointers out.

use std::ffi::c_void;
use std::ptr::{read_unaligned as load, write_unaligned as store};

/// Copies `n` bytes from `src` to `dest`; the C contract (no overlap). It is [`memmove`]:
/// the overlap check costs one comparison, and only above 32 bytes.
///
/// # Safety
///
/// `src` must be readable and `dest` writable for `n` bytes.
#[cfg_attr(target_env = "musl", unsafe(no_mangle))]
pub unsafe extern "C" fn memcpy(dest: *mut c_void, src: *const c_void, n: usize) -> *mut c_void {
    // SAFETY: the caller's contract, which is `memmove`'s too.
    unsafe { memmove(dest, src, n) }
}

/// Copies `n` bytes from `src` to `dest`, which may overlap; the C contract.
///
/// # Safety
///
/// `src` must be readable and `dest` writable for `n` bytes.
#[cfg_attr(target_env = "musl", unsafe(no_mangle))]
pub unsafe extern "C" fn memmove(dest: *mut c_void, src: *const c_void, n: usize) -> *mut c_void {
    let (d, s) = (dest.cast::<u8>(), src.cast::<u8>());
    // SAFETY: the caller's contract.
    unsafe {
        if n <= 32 {
            copy_small(d, s, n);
        } else if (d as usize).wrapping_sub(s as usize) >= n {
            // `dest` starts before `src`, or after its end: a forward copy never reads a byte
            // it has already overwritten.
            rep_movsb_forward(d, s, n);
        } else {
            rep_movsb_backward(d, s, n);
        }
    }
    dest
}

/// Copies `n <= 32` bytes, loading everything before storing anything.
///
/// # Safety
///
/// As for [`memmove`], with `n <= 32`.
#[inline(always)]
unsafe fn copy_small(d: *mut u8, s: *const u8, n: usize) {
    // SAFETY: each access is within the first or last `n` bytes of `s` and `d`.
    unsafe {
        if n >= 16 {
            let (a, b) = (load(s.cast::<[u64; 2]>()), load(s.add(n - 16).cast::<[u64; 2]>()));
            store(d.cast::<[u64; 2]>(), a);
            store(d.add(n - 16).cast::<[u64; 2]>(), b);
        } else if n >= 8 {
            let (a, b) = (load(s.cast::<u64>()), load(s.add(n - 8).cast::<u64>()));
            store(d.cast::<u64>(), a);
            store(d.add(n - 8).cast::<u64>(), b);
        } else if n >= 4 {
            let (a, b) = (load(s.cast::<u32>()), load(s.add(n - 4).cast::<u32>()));
            store(d.cast::<u32>(), a);
            store(d.add(n - 4).cast::<u32>(), b);
        } else if n > 0 {
            let (a, b, c) = (*s, *s.add(n / 2), *s.add(n - 1));
            *d = a;
            *d.add(n / 2) = b;
            *d.add(n - 1) = c;
        }
    }
}

/// `rep movsb` upwards (the direction flag is clear at every function boundary by the ABI).
///
/// # Safety
///
/// As for [`memmove`], with `dest` not inside `(src, src + n)`.
#[inline(always)]
unsafe fn rep_movsb_forward(d: *mut u8, s: *const u8, n: usize) {
    // SAFETY: the caller's contract; the instruction touches only the `n` bytes at each.
    unsafe {
        std::arch::asm!(
            "rep movsb",
            inout("rcx") n => _,
            inout("rdi") d => _,
            inout("rsi") s => _,
            options(nostack, preserves_flags),
        );
    }
}

/// `rep movsb` downwards from the last byte, for a destination that overlaps the end of the
/// source. Rare and slower; the direction flag is set only around the one instruction.
///
/// # Safety
///
/// As for [`memmove`], with `n > 0`.
#[inline(always)]
unsafe fn rep_movsb_backward(d: *mut u8, s: *const u8, n: usize) {
    // SAFETY: the caller's contract; the instruction touches only the `n` bytes at each.
    unsafe {
        std::arch::asm!(
            "std",
            "rep movsb",
            "cld",
            inout("rcx") n => _,
            inout("rdi") d.add(n - 1) => _,
            inout("rsi") s.add(n - 1) => _,
            options(nostack),
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A buffer with a distinct byte at every offset, so that a wrong copy shows.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + 3) as u8).collect()
    }

    /// `memmove` one byte at a time, through volatile accesses that the compiler cannot turn
    /// into a call to the functions under test (the musl build's tests link them as the C
    /// library's).
    fn reference_move(buf: &mut [u8], s: usize, d: usize, n: usize) {
        // SAFETY: in-bounds references.
        let tmp: Vec<u8> = (0..n).map(|i| unsafe { std::ptr::read_volatile(&buf[s + i]) }).collect();
        for (i, b) in tmp.into_iter().enumerate() {
            // SAFETY: an in-bounds reference.
            unsafe { std::ptr::write_volatile(&mut buf[d + i], b) };
        }
    }

    #[test]
    fn memcpy_copies_every_length_and_alignment_without_touching_neighbours() {
        for n in 0..300 {
            for off in 0..9 {
                let src = pattern(n + 16);
                let mut dst = vec![0xAAu8; n + 32];
                // SAFETY: both buffers hold `off + n` bytes and more.
                unsafe { memcpy(dst.as_mut_ptr().add(off).cast(), src.as_ptr().add(3).cast(), n) };
                for i in 0..n {
                    assert_eq!(dst[off + i], src[3 + i], "n={n} off={off} i={i}");
                }
                assert!(dst[..off].iter().all(|&b| b == 0xAA), "n={n} off={off}: before");
                assert!(dst[off + n..].iter().all(|&b| b == 0xAA), "n={n} off={off}: after");
            }
        }
    }

    #[test]
    fn memmove_matches_a_reference_for_every_overlap() {
        for n in 0..200 {
            for shift in -40isize..=40 {
                let len = n + 100;
                let mut buf = pattern(len);
                let mut want = buf.clone();
                let s = 50usize;
                let d = (50 + shift) as usize;
                reference_move(&mut want, s, d, n);
                // SAFETY: `s + n` and `d + n` are within `len`.
                unsafe { memmove(buf.as_mut_ptr().add(d).cast(), buf.as_ptr().add(s).cast(), n) };
                assert_eq!(buf, want, "n={n} shift={shift}");
            }
        }
    }
}
