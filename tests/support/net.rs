//! Addresses where nothing answers.

use std::net::SocketAddr;

use tokio::net::TcpSocket;

/// A port of 127.0.0.1 held by a socket that is bound but does not listen: every connection to it
/// is refused at once, and no other socket (another test's node or proxy on port 0) can take the
/// port while this lives. A port bound and released instead could be handed to a live node.
pub struct RefusingPort {
    _socket: TcpSocket,
    addr: SocketAddr,
}

impl RefusingPort {
    pub fn bind() -> RefusingPort {
        let socket = TcpSocket::new_v4().expect("a TCP socket");
        socket.bind(([127, 0, 0, 1], 0).into()).expect("bind a port of 127.0.0.1");
        let addr = socket.local_addr().expect("the bound address");
        RefusingPort { _socket: socket, addr }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}
