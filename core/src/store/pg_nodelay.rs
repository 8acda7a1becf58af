//! `TCP_NODELAY` on the PostgreSQL connections, which sqlx 0.9.0 no longer sets
//! (launchbadge/sqlx#4335; fixed upstream by #4336, not yet released).
//!
//! Without it, a statement larger than one TCP segment (a batch insert of mail, a long
//! reply) often waits for the server's delayed ACK before its last segment leaves: 40 ms on
//! Linux, per statement. A 10,000-message backfill into PostgreSQL took 22 s instead of a
//! few, the time spent almost entirely in those waits.
//!
//! sqlx does not expose its sockets, so after each new connection the process's TCP sockets
//! whose peer is the database port get the option set (Linux, through `/proc/self/fd`).
//! Setting it twice, or on another process socket to that port, is harmless: it only
//! stops small segments from being held back. Remove this module once sqlx sets the option
//! again.

/// Sets `TCP_NODELAY` on this process's TCP sockets connected to `port`. Returns how many
/// sockets were set (0 elsewhere than Linux).
pub fn set_on_sockets_to(port: u16) -> usize {
    #[cfg(target_os = "linux")]
    {
        linux::set_on_sockets_to(port)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = port;
        0
    }
}

/// Whether the TCP socket `fd` has `TCP_NODELAY`.
#[cfg(all(test, target_os = "linux"))]
pub fn is_set(fd: i32) -> bool {
    linux::nodelay(fd) == Some(true)
}

#[cfg(target_os = "linux")]
mod linux {
    use std::mem::size_of;

    pub fn set_on_sockets_to(port: u16) -> usize {
        let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
            return 0;
        };
        let mut set = 0;
        for entry in dir.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            let is_socket = std::fs::read_link(entry.path())
                .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"));
            if is_socket && peer_port(fd) == Some(port) && nodelay(fd) == Some(false) {
                let one: libc::c_int = 1;
                // SAFETY: setsockopt reads `one` (a c_int, its size given) and touches only
                // the socket's options; a descriptor closed meanwhile fails with EBADF.
                let rc = unsafe {
                    libc::setsockopt(
                        fd,
                        libc::IPPROTO_TCP,
                        libc::TCP_NODELAY,
                        (&raw const one).cast(),
                        size_of::<libc::c_int>() as libc::socklen_t,
                    )
                };
                if rc == 0 {
                    set += 1;
                }
            }
        }
        set
    }

    /// The peer port of a connected IPv4/IPv6 stream socket.
    fn peer_port(fd: i32) -> Option<u16> {
        if int_option(fd, libc::SOL_SOCKET, libc::SO_TYPE)? != libc::SOCK_STREAM {
            return None;
        }
        // SAFETY: an all-zero sockaddr_storage is a valid value of the type.
        let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: getpeername writes at most `len` bytes into `addr`.
        let rc = unsafe { libc::getpeername(fd, (&raw mut addr).cast(), &mut len) };
        if rc != 0 {
            return None;
        }
        match i32::from(addr.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in.
                let a: &libc::sockaddr_in = unsafe { &*(&raw const addr).cast() };
                Some(u16::from_be(a.sin_port))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the storage holds a sockaddr_in6.
                let a: &libc::sockaddr_in6 = unsafe { &*(&raw const addr).cast() };
                Some(u16::from_be(a.sin6_port))
            }
            _ => None,
        }
    }

    pub fn nodelay(fd: i32) -> Option<bool> {
        int_option(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY).map(|v| v != 0)
    }

    /// An integer socket option, if `fd` is a socket that has it.
    fn int_option(fd: i32, level: libc::c_int, name: libc::c_int) -> Option<libc::c_int> {
        let mut value: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `value`.
        let rc = unsafe { libc::getsockopt(fd, level, name, (&raw mut value).cast(), &mut len) };
        (rc == 0).then_some(value)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::os::fd::AsRawFd;

    #[test]
    fn sockets_to_the_port_get_the_option_and_others_do_not() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let other = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let to_port = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let to_other =
            std::net::TcpStream::connect(other.local_addr().expect("addr")).expect("connect");
        assert!(!super::is_set(to_port.as_raw_fd()));
        assert!(super::set_on_sockets_to(port) >= 1);
        assert!(super::is_set(to_port.as_raw_fd()));
        assert!(!super::is_set(to_other.as_raw_fd()));
    }
}
