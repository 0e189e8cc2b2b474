//! A TCP proxy on 127.0.0.1 that can cut the link it stands for: the network between two
//! processes of a test, with faults injected on demand.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards every connection it accepts to `upstream`, until [`FaultyProxy::cut`]:
///
/// - connections being forwarded are closed (both sides);
/// - new connections are still accepted, but blackholed: nothing is read from them or sent to
///   `upstream`, as when packets are dropped (a client's requests time out, its TCP connect does
///   not fail fast);
///
/// until [`FaultyProxy::heal`]: the held connections are then connected to `upstream` and
/// forwarded with whatever the client had sent meanwhile, as TCP retransmission delivers it once
/// a network recovers, and new ones are forwarded again. A cut and a heal in quick succession
/// may leave a connection untouched. Dropping the proxy closes everything.
pub struct FaultyProxy {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FaultyProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyProxy")
            .field("addr", &self.addr)
            .field("cut", &*self.cut.borrow())
            .finish()
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        // The connection tasks end when the sender goes (their `wait_for` fails).
        self.task.abort();
    }
}

impl FaultyProxy {
    /// Listens on a free port of 127.0.0.1, forwarding to `upstream` (healed).
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind faulty proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (cut, state) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(forward(client, upstream, state.clone()));
            }
        });
        Self { addr, cut, task }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes the forwarded connections and blackholes new ones until [`FaultyProxy::heal`].
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Forwards again, the connections held since the cut included.
    pub fn heal(&self) {
        self.cut.send_replace(false);
    }
}

async fn forward(mut client: TcpStream, upstream: SocketAddr, mut cut: watch::Receiver<bool>) {
    // Held, unread, while cut.
    if cut.wait_for(|c| !*c).await.is_err() {
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        // As a refused connection: the client sees it closed.
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        // Cut (or the proxy dropped): both sockets close when dropped here.
        _ = cut.wait_for(|c| *c) => {}
    }
}
