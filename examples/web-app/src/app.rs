//! Starting and stopping the app: hawkeye (embedded, or a standalone server
//! at a socket), the client, and the HTTP server.

use std::net::SocketAddr;
use std::path::PathBuf;

use hawkeye::embed::{EmbedConfig, EmbedError, Embedded};
use hawkeye_client::{Client, ClientConfig, ClientError};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Where the app's metrics go.
pub enum Hawkeye {
    /// Server and agent run inside the app, configured by `config`.
    Embedded(Box<EmbedConfig>),
    /// A server already runs at this socket (and an agent next to it).
    Standalone { socket: PathBuf },
}

pub struct AppConfig {
    pub listen: SocketAddr,
    pub hawkeye: Hawkeye,
    /// Settings of the client, except its socket (which comes from `hawkeye`).
    pub client: ClientConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot start hawkeye: {0}")]
    Hawkeye(#[from] EmbedError),
    #[error("cannot start the hawkeye client: {0}")]
    Client(#[from] ClientError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The running app.
pub struct App {
    local_addr: SocketAddr,
    client: Client,
    hawkeye: Option<Embedded>,
    stop_http: oneshot::Sender<()>,
    http: JoinHandle<std::io::Result<()>>,
}

impl App {
    /// Starts hawkeye (when embedded), the client and the HTTP server.
    pub async fn start(config: AppConfig) -> Result<App, AppError> {
        let (hawkeye, socket) = match config.hawkeye {
            Hawkeye::Embedded(embed) => {
                let embedded = hawkeye::embed::start(*embed).await?;
                let socket = embedded.socket_path().to_path_buf();
                (Some(embedded), socket)
            }
            Hawkeye::Standalone { socket } => (None, socket),
        };
        let client = Client::new(ClientConfig {
            socket_path: socket,
            ..config.client
        })?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| AppError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| AppError::Listen {
            addr: config.listen,
            source,
        })?;
        let (stop_http, stopped) = oneshot::channel::<()>();
        let router = crate::routes::router(&client);
        let http = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(App {
            local_addr,
            client,
            hawkeye,
            stop_http,
            http,
        })
    }

    /// The address the HTTP server listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The embedded hawkeye, if any.
    pub fn hawkeye(&self) -> Option<&Embedded> {
        self.hawkeye.as_ref()
    }

    /// Stops taking requests, sends the last metrics, stops hawkeye.
    pub async fn shutdown(self) {
        let _ = self.stop_http.send(());
        match self.http.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the HTTP server stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "the HTTP server task failed"),
        }
        if let Err(e) = self.client.shutdown().await {
            tracing::warn!(error = %e, "the last metrics could not be confirmed");
        }
        if let Some(hawkeye) = self.hawkeye {
            hawkeye.shutdown().await;
        }
    }
}
