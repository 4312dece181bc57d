//! The listening socket.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// Pending connections the kernel queues for `accept` (capped by `net.core.somaxconn`):
/// thousands of clients reconnecting at once are queued, not dropped into a
/// one-second SYN retry.
const LISTEN_BACKLOG: u32 = 4096;

/// Listens on `addr`, with `SO_REUSEADDR` so a restart can bind at once.
pub(super) fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}
