//! `clone3(2)` for the one thing `clone(2)` cannot do: start a child inside a cgroup v2 group
//! (`CLONE_INTO_CGROUP`, Linux 5.7).
//!
//! Why not let the child move itself, as it joins a cgroup v1 group (writing `0` to `tasks`)?
//! Under cgroup v2 a process moves by writing to `cgroup.procs`, which takes the global lock
//! that makes a whole thread group move at once, and taking it for writing waits for an RCU
//! grace period: 13.1 ms for the first move here, a few microseconds for the next ones only
//! while the lock is still in its slow mode. A child cloned into the group takes that lock for
//! reading, as every fork does: 55 to 66 µs for the whole `clone3`, the same as without the flag.
//!
//! Two forms. [`clone3_fork`] behaves like `fork(2)` (a copy of the address space, the child
//! returns 0 here), which a plain system call can do. [`clone3_vm`] shares the caller's memory
//! and runs the child on its own stack, like `clone(2)` with `CLONE_VM`: no C library wraps
//! `clone3` so, and a child that returned from the system call into Rust would return through
//! frames that live on the parent's stack, so a few instructions of assembly call the child's
//! function on its new stack instead. It exists for x86-64 only (the architecture CI checks);
//! elsewhere it fails with `ENOSYS`, and the caller does without the group.
//!
//! Reference: [clone(2)](https://man7.org/linux/man-pages/man2/clone.2.html) (`clone3`,
//! `CLONE_INTO_CGROUP`).

use std::io;

use libc::{c_int, c_long, c_void};

const SYS_CLONE3: c_long = 435;

/// `CLONE_INTO_CGROUP` (Linux 5.7; not in every `libc` crate version).
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` up to its `cgroup` field (`CLONE_ARGS_SIZE_VER2`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

fn args(flags: u64, cgroup_fd: c_int) -> CloneArgs {
    let into = if cgroup_fd >= 0 { CLONE_INTO_CGROUP } else { 0 };
    CloneArgs {
        flags: flags | into,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: if cgroup_fd >= 0 { cgroup_fd as u64 } else { 0 },
        ..CloneArgs::default()
    }
}

/// Like `fork(2)`, into the cgroup v2 group open at `cgroup_fd` (a directory opened for
/// reading; negative for none): returns 0 in the child, which must keep to async-signal-safe
/// code and end in `execve` or `_exit`, as after `fork`.
pub fn clone3_fork(flags: u64, cgroup_fd: c_int) -> io::Result<libc::pid_t> {
    let mut a = args(flags, cgroup_fd);
    // SAFETY: a valid `clone_args` of the size passed; without CLONE_VM and without a stack the
    // child gets a copy of the address space and returns here, as from fork.
    let r = unsafe { libc::syscall(SYS_CLONE3, &mut a as *mut CloneArgs, std::mem::size_of::<CloneArgs>()) };
    super::cvt(r).map(|p| p as libc::pid_t)
}

/// Starts a child that shares the caller's memory (`CLONE_VM`, plus `flags`) and runs `f(arg)`
/// on the stack whose lowest address is `stack` and size `size` (its top 16-byte aligned), in
/// the cgroup v2 group open at `cgroup_fd` (negative for none). `f` must never return (it ends
/// in `execve` or `_exit`); if it does, the child exits with what it returned. Returns the
/// child's pid.
///
/// # Safety
///
/// The stack must stay mapped, and be used by nothing else, until the child has exec'd or
/// exited; `f` runs with the caller's thread pointer, so it must not rely on thread-local
/// state that the caller changes meanwhile (see `sys::launch` for how pid 1 and the command
/// keep to that).
pub unsafe fn clone3_vm(
    flags: u64,
    f: extern "C" fn(*mut c_void) -> c_int,
    arg: *mut c_void,
    stack: *mut c_void,
    size: usize,
    cgroup_fd: c_int,
) -> io::Result<libc::pid_t> {
    let mut a = args(flags | libc::CLONE_VM as u64, cgroup_fd);
    a.stack = stack as u64;
    a.stack_size = size as u64;
    // SAFETY: the caller's contract; see `raw_clone3_vm`.
    let r = unsafe { raw_clone3_vm(&mut a, f, arg) };
    // The raw call returns `-errno` (nothing here writes `errno`, which the child shares).
    if r < 0 {
        Err(io::Error::from_raw_os_error(-r as i32))
    } else {
        Ok(r as libc::pid_t)
    }
}

#[cfg(target_arch = "x86_64")]
unsafe fn raw_clone3_vm(a: &mut CloneArgs, f: extern "C" fn(*mut c_void) -> c_int, arg: *mut c_void) -> c_long {
    let ret: c_long;
    // SAFETY: the system call returns twice. In the parent, only rax, rcx and r11 change (the
    // ones declared). The child starts with the parent's registers, its stack pointer at
    // `stack + stack_size` (16-byte aligned, so `call` leaves the callee the alignment the ABI
    // expects), and calls `f(arg)` from r13 and r12, which the kernel preserves; it never
    // comes back into the parent's code or stack, and exits with f's result if f returns.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "mov edi, eax",
            "mov eax, 60", // exit
            "syscall",
            "ud2",
            "2:",
            inlateout("rax") SYS_CLONE3 => ret,
            in("rdi") a as *mut CloneArgs,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") arg,
            in("r13") f,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn raw_clone3_vm(_: &mut CloneArgs, _: extern "C" fn(*mut c_void) -> c_int, _: *mut c_void) -> c_long {
    -(libc::ENOSYS as c_long)
}

/// Whether [`clone3_vm`] exists on this architecture: where it does not, a `namespaces` run
/// cannot start its command in a cgroup v2 group, and uses none.
pub const CLONE3_VM: bool = cfg!(target_arch = "x86_64");
