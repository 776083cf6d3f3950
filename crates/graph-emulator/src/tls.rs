//! Serving: the emulator's listener, plain HTTP or HTTPS (`--tls`), and the per-connection kill
//! switch the fault plan's `drop` actions use to close a connection without any response.
//!
//! With TLS, a fresh CA and a server certificate for `127.0.0.1` and `localhost` are generated at
//! start (rcgen); the CA's PEM is what a client trusts (`--ca-out FILE`). The keys exist only in
//! memory and must never be written anywhere. Plain HTTP stays the default.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A generated CA plus a server certificate it signed, ready for rustls.
pub struct TlsMaterial {
    /// The CA certificate, PEM: what clients trust and `--ca-out` writes.
    pub ca_pem: String,
    /// Server config presenting the leaf certificate (HTTP/1.1 only, as the server speaks).
    pub server_config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for TlsMaterial {
    // The server config holds the private key; never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("ca_pem", &self.ca_pem)
            .finish_non_exhaustive()
    }
}

/// Why the TLS material could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("generating the certificates: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("building the TLS server configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Generates a CA and a server certificate for `127.0.0.1` and `localhost`.
pub fn generate() -> Result<TlsMaterial, TlsError> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "graph-emulator local CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    leaf.distinguished_name
        .push(DnType::CommonName, "graph-emulator");
    leaf.use_authority_key_identifier_extension = true;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf_cert.der().clone(), ca_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        ca_pem: ca_cert.pem(),
        server_config: Arc::new(config),
    })
}

/// Closes one connection on demand: reads and writes fail from then on, so the server's answer
/// never leaves and hyper drops the socket.
#[derive(Debug, Clone, Default)]
pub struct KillSwitch(Arc<AtomicBool>);

impl KillSwitch {
    pub fn kill(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_killed(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Per-connection info, available to handlers as `ConnectInfo<ConnInfo>` when the router is
/// served with `into_make_service_with_connect_info::<ConnInfo>()`.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub remote: SocketAddr,
    pub kill: KillSwitch,
}

impl Connected<IncomingStream<'_, EmuListener>> for ConnInfo {
    fn connect_info(stream: IncomingStream<'_, EmuListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// A connection's byte stream, plain or TLS, that fails once its kill switch is thrown.
pub struct EmuIo {
    inner: IoKind,
    kill: KillSwitch,
}

enum IoKind {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

fn killed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection dropped by fault plan",
    )
}

impl AsyncRead for EmuIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.kill.is_killed() {
            return Poll::Ready(Err(killed()));
        }
        match &mut self.inner {
            IoKind::Plain(s) => Pin::new(s).poll_read(cx, buf),
            IoKind::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for EmuIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.kill.is_killed() {
            return Poll::Ready(Err(killed()));
        }
        match &mut self.inner {
            IoKind::Plain(s) => Pin::new(s).poll_write(cx, buf),
            IoKind::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.kill.is_killed() {
            return Poll::Ready(Err(killed()));
        }
        match &mut self.inner {
            IoKind::Plain(s) => Pin::new(s).poll_flush(cx),
            IoKind::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.inner {
            IoKind::Plain(s) => Pin::new(s).poll_shutdown(cx),
            IoKind::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The emulator's listener: accepts TCP, completes TLS handshakes off the accept path (a slow
/// or broken client must not stall others), and hands out [`EmuIo`] + [`ConnInfo`].
pub struct EmuListener {
    local: SocketAddr,
    rx: mpsc::Receiver<(EmuIo, ConnInfo)>,
    accept_task: tokio::task::JoinHandle<()>,
}

impl Drop for EmuListener {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl EmuListener {
    /// Binds `addr` (port 0 picks a free port); with `tls`, serves HTTPS with that config.
    pub async fn bind(
        addr: SocketAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> io::Result<Self> {
        let tcp = TcpListener::bind(addr).await?;
        Ok(Self::from_tcp(tcp, tls))
    }

    /// Wraps an already bound listener.
    pub fn from_tcp(tcp: TcpListener, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let local = tcp
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let (tx, rx) = mpsc::channel(64);
        let acceptor = tls.map(TlsAcceptor::from);
        let accept_task = tokio::spawn(async move {
            loop {
                let (stream, remote) = match tcp.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        // Typically EMFILE; back off briefly instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let kill = KillSwitch::default();
                let info = ConnInfo {
                    remote,
                    kill: kill.clone(),
                };
                match &acceptor {
                    None => {
                        if tx
                            .send((
                                EmuIo {
                                    inner: IoKind::Plain(stream),
                                    kill,
                                },
                                info,
                            ))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Some(acc) => {
                        let acc = acc.clone();
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            match acc.accept(stream).await {
                                Ok(tls) => {
                                    let _ = tx
                                        .send((
                                            EmuIo {
                                                inner: IoKind::Tls(Box::new(tls)),
                                                kill,
                                            },
                                            info,
                                        ))
                                        .await;
                                }
                                Err(e) => {
                                    tracing::debug!(error = %e, %remote, "TLS handshake failed")
                                }
                            }
                        });
                    }
                }
            }
        });
        EmuListener {
            local,
            rx,
            accept_task,
        }
    }

    pub fn local_socket_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Listener for EmuListener {
    type Io = EmuIo;
    type Addr = ConnInfo;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(x) => x,
            // The accept task only ends when the listener is dropped; never resolve then.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(ConnInfo {
            remote: self.local,
            kill: KillSwitch::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::extract::ConnectInfo;
    use axum::routing::get;

    async fn serve(
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let app = Router::new().route("/ok", get(|| async { "fine" })).route(
            "/drop",
            get(|ConnectInfo(c): ConnectInfo<ConnInfo>| async move {
                c.kill.kill();
                "never seen"
            }),
        );
        let listener = EmuListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)), tls)
            .await
            .unwrap();
        let addr = listener.local_socket_addr();
        let task = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<ConnInfo>(),
            )
            .await
            .unwrap();
        });
        (addr, task)
    }

    #[tokio::test]
    async fn https_round_trip_trusting_only_the_generated_ca() {
        let m = generate().unwrap();
        assert!(m.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let (addr, task) = serve(Some(m.server_config.clone())).await;
        let ca = reqwest::Certificate::from_pem(m.ca_pem.as_bytes()).unwrap();
        let client = reqwest::Client::builder()
            .tls_certs_only([ca])
            .build()
            .unwrap();
        for host in ["127.0.0.1", "localhost"] {
            let body = client
                .get(format!("https://{host}:{}/ok", addr.port()))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert_eq!(body, "fine");
        }
        // A client that does not trust the CA is refused: the certificate is not a public one.
        let other_ca = generate().unwrap();
        let stranger = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(other_ca.ca_pem.as_bytes()).unwrap()])
            .build()
            .unwrap();
        assert!(
            stranger
                .get(format!("https://127.0.0.1:{}/ok", addr.port()))
                .send()
                .await
                .is_err()
        );
        task.abort();
    }

    #[tokio::test]
    async fn kill_switch_closes_the_connection_without_a_response() {
        for tls in [None, Some(generate().unwrap())] {
            let scheme = if tls.is_some() { "https" } else { "http" };
            let client = match &tls {
                Some(m) => reqwest::Client::builder()
                    .tls_certs_only([reqwest::Certificate::from_pem(m.ca_pem.as_bytes()).unwrap()])
                    .build()
                    .unwrap(),
                None => reqwest::Client::new(),
            };
            let (addr, task) = serve(tls.map(|m| m.server_config)).await;
            let base = format!("{scheme}://127.0.0.1:{}", addr.port());
            assert_eq!(
                client
                    .get(format!("{base}/ok"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap(),
                "fine"
            );
            let err = client.get(format!("{base}/drop")).send().await.unwrap_err();
            assert!(!err.is_status() && !err.is_timeout(), "{err:?}");
            // The server keeps serving other connections.
            assert_eq!(
                client
                    .get(format!("{base}/ok"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap(),
                "fine"
            );
            task.abort();
        }
    }
}
