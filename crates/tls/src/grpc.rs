//! gRPC (tonic) over mutual TLS: a listener stream that hands tonic only connections whose
//! handshake succeeded, and a connector for tonic channels.

use crate::{client_config, server_config, ClientTlsConfig, ServerTlsConfig, TlsError, ALPN_H2};
use futures::future::BoxFuture;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::transport::{Channel, Endpoint, Uri};

/// A client that opens a connection and never finishes its handshake is dropped after this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS side of a gRPC server (`server.grpc_tls`): its certificate, and the CA every
/// client's certificate must chain to.
#[derive(Debug, Clone)]
pub struct GrpcServerTls {
    config: Arc<rustls::ServerConfig>,
}

impl GrpcServerTls {
    /// Loads the files; `cfg.client_ca_file` must be set (gRPC peers authenticate).
    pub fn new(cfg: &ServerTlsConfig) -> Result<Self, TlsError> {
        cfg.validate("server.grpc_tls", true)?;
        Ok(Self {
            config: server_config(cfg, &[ALPN_H2])?,
        })
    }

    /// The rustls configuration (certificate resolver and client verifier reload by
    /// themselves).
    pub fn config(&self) -> Arc<rustls::ServerConfig> {
        self.config.clone()
    }
}

/// The TLS side of gRPC clients (`grpc_client.tls`).
#[derive(Debug, Clone)]
pub struct GrpcClientTls {
    config: Arc<rustls::ClientConfig>,
}

impl GrpcClientTls {
    /// Loads the files.
    pub fn new(cfg: &ClientTlsConfig) -> Result<Self, TlsError> {
        cfg.validate("grpc_client.tls", false)?;
        Ok(Self {
            config: client_config(cfg, &[ALPN_H2])?,
        })
    }

    /// A connector for [`Endpoint::connect_with_connector_lazy`]; outgoing connections bind
    /// `local_ip` when set.
    pub fn connector(&self, local_ip: Option<IpAddr>) -> TlsConnector {
        TlsConnector {
            tls: tokio_rustls::TlsConnector::from(self.config.clone()),
            local_ip,
        }
    }

    /// A lazily connected channel to `endpoint` (an `http://host:port` URI: the scheme only
    /// shapes the URI, the connection is TLS) with the endpoint's other settings.
    pub fn channel(&self, endpoint: Endpoint, local_ip: Option<IpAddr>) -> Channel {
        endpoint.connect_with_connector_lazy(self.connector(local_ip))
    }
}

/// Opens TLS connections for tonic: TCP (no delay, bound to the local IP), then the handshake
/// for the host of the URI (or the configured `server_name`).
#[derive(Clone)]
pub struct TlsConnector {
    tls: tokio_rustls::TlsConnector,
    local_ip: Option<IpAddr>,
}

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnector")
            .field("local_ip", &self.local_ip)
            .finish_non_exhaustive()
    }
}

async fn tcp_connect(addr: SocketAddr, local_ip: Option<IpAddr>) -> io::Result<TcpStream> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = local_ip.filter(|ip| ip.is_ipv4() == addr.is_ipv4()) {
        sock.bind(SocketAddr::new(ip, 0))?;
    }
    let s = sock.connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

impl tower_service::Service<Uri> for TlsConnector {
    type Response = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;
    type Error = io::Error;
    type Future = BoxFuture<'static, io::Result<Self::Response>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidInput, m.to_owned());
            let host = uri.host().ok_or_else(|| bad("no host in the address"))?;
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = uri
                .port_u16()
                .ok_or_else(|| bad("no port in the address"))?;
            let name =
                ServerName::try_from(host.clone()).map_err(|_| bad("host is not a valid name"))?;
            let mut last = None;
            for addr in tokio::net::lookup_host((host.as_str(), port)).await? {
                match tcp_connect(addr, this.local_ip).await {
                    Ok(tcp) => {
                        let tls = this.tls.connect(name, tcp).await?;
                        return Ok(TokioIo::new(tls));
                    }
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| bad("the host resolves to no address")))
        })
    }
}

/// A connection accepted by [`incoming`]: TLS, or plain TCP when the server has no TLS.
#[derive(Debug)]
pub enum ServerIo {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl ServerIo {
    fn tcp(&self) -> &TcpStream {
        match self {
            ServerIo::Plain(t) => t,
            ServerIo::Tls(s) => s.get_ref().0,
        }
    }
}

impl Connected for ServerIo {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        TcpConnectInfo {
            local_addr: self.tcp().local_addr().ok(),
            remote_addr: self.tcp().peer_addr().ok(),
        }
    }
}

impl AsyncRead for ServerIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ServerIo::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ServerIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ServerIo::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_flush(cx),
            ServerIo::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ServerIo::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ServerIo::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            ServerIo::Tls(s) => Pin::new(&mut **s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ServerIo::Plain(s) => s.is_write_vectored(),
            ServerIo::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// The connections of a gRPC server, for `serve_with_incoming(_shutdown)`.
#[derive(Debug)]
pub struct Incoming {
    rx: mpsc::Receiver<ServerIo>,
}

impl futures::Stream for Incoming {
    type Item = Result<ServerIo, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx).map(|o| o.map(Ok))
    }
}

/// Accepts connections on `listener` until the returned stream is dropped. With `tls`, each
/// connection is handed on only once its handshake succeeded (a client without a valid
/// certificate is refused there and never reaches a service); handshakes run concurrently, so
/// a slow client holds up no other.
pub fn incoming(listener: TcpListener, tls: Option<GrpcServerTls>) -> Incoming {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(accept_loop(
        listener,
        tls.map(|t| tokio_rustls::TlsAcceptor::from(t.config)),
        tx,
    ));
    Incoming { rx }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    tx: mpsc::Sender<ServerIo>,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "cannot accept a gRPC connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = tx.closed() => return,
        };
        let _ = tcp.set_nodelay(true);
        let Some(acceptor) = tls.clone() else {
            if tx.send(ServerIo::Plain(tcp)).await.is_err() {
                return;
            }
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => {
                    let _ = tx.send(ServerIo::Tls(Box::new(s))).await;
                }
                Ok(Err(e)) => {
                    tracing::warn!(%peer, error = %e, "gRPC connection refused: TLS handshake failed")
                }
                Err(_) => tracing::warn!(%peer, "gRPC connection refused: TLS handshake timed out"),
            }
        });
    }
}
