//! Passing the network bridge's listener from the sandbox's pid 1 to the supervisor.
//!
//! Pid 1 creates a TCP listener inside the sandbox's private network namespace and sends it over
//! a socketpair with `SCM_RIGHTS` (see unix(7), cmsg(3)); the supervisor receives it and relays
//! the command's proxy connections. The sending half runs between fork and exec, so it only
//! makes system calls on stack data.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use libc::{c_int, c_long};

use super::{close, errno};

/// A message header for passing one fd: one data byte (`iov`) and the whole `control` buffer
/// (aligned for `cmsghdr`). Stack only, so the sandbox's pid 1 may use it.
fn fd_msghdr(iov: &mut libc::iovec, control: &mut [u64; 4]) -> libc::msghdr {
    // SAFETY: a zeroed msghdr is valid; the pointers set below stay valid while the caller
    // keeps `iov` and `control` alive, which it does for the one send or receive.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // `usize` on glibc, `u32` on musl.
    msg.msg_controllen = std::mem::size_of_val(control) as _;
    msg
}

/// A connected pair of unix datagram-ordered sockets (SOCK_SEQPACKET, close-on-exec), for the
/// network bridge hand-over.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: valid out-array of two ints.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Receives one fd sent with SCM_RIGHTS on `sock` (blocking). `Ok(None)` when the peer closed
/// without sending (the sandbox failed before creating the listener).
pub fn recv_fd(sock: &OwnedFd) -> io::Result<Option<OwnedFd>> {
    let mut control = [0u64; 4];
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    let mut msg = fd_msghdr(&mut iov, &mut control);
    let n = loop {
        // SAFETY: valid socket and message buffers.
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        break n;
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if n == 0 || msg.msg_controllen == 0 {
        return Ok(None);
    }
    // SAFETY: the kernel filled the control buffer; CMSG_FIRSTHDR/DATA stay inside it.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() || (*cmsg).cmsg_level != libc::SOL_SOCKET || (*cmsg).cmsg_type != libc::SCM_RIGHTS {
            return Ok(None);
        }
        let mut fd: c_int = -1;
        std::ptr::copy_nonoverlapping(
            libc::CMSG_DATA(cmsg),
            (&mut fd as *mut c_int).cast::<u8>(),
            std::mem::size_of::<c_int>(),
        );
        Ok((fd >= 0).then(|| OwnedFd::from_raw_fd(fd)))
    }
}

/// Creates a TCP listener on `127.0.0.1:port` in this (the sandbox's) network namespace and
/// sends it to the supervisor over `fd` with SCM_RIGHTS. The listener belongs to the sandbox's
/// namespace for its whole life, so the supervisor can accept the command's proxy connections
/// on it without any process of its own inside the sandbox. Only system calls on stack data.
pub(super) fn send_bridge_listener(fd: c_int, port: u16) -> c_long {
    // SAFETY: plain socket call.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return -1;
    }
    let one: c_int = 1;
    // SAFETY: valid socket and option buffer.
    unsafe {
        libc::setsockopt(
            s,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&one as *const c_int).cast(),
            std::mem::size_of::<c_int>() as libc::socklen_t,
        )
    };
    // SAFETY: zeroed sockaddr_in is valid; fields set below.
    let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    addr.sin_family = libc::AF_INET as libc::sa_family_t;
    addr.sin_port = port.to_be();
    addr.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
    // SAFETY: valid socket and address of the stated length.
    let r = unsafe {
        libc::bind(
            s,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    // SAFETY: valid socket.
    if r < 0 || unsafe { libc::listen(s, 128) } < 0 {
        close(s);
        return -1;
    }
    // One fd in an SCM_RIGHTS control message, built on the stack.
    let mut control = [0u64; 4];
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    let mut msg = fd_msghdr(&mut iov, &mut control);
    // SAFETY: CMSG_SPACE is a pure size computation.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<c_int>() as u32) } as _;
    // SAFETY: the control buffer (32 bytes) holds one cmsghdr with one int; CMSG_FIRSTHDR
    // returns a pointer into it because msg_controllen is non-zero.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<c_int>() as u32) as _;
        std::ptr::copy_nonoverlapping(
            (&s as *const c_int).cast::<u8>(),
            libc::CMSG_DATA(cmsg),
            std::mem::size_of::<c_int>(),
        );
    }
    // SAFETY: valid socket and message.
    let r = unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) };
    close(s);
    if r < 0 {
        -1
    } else {
        0
    }
}
