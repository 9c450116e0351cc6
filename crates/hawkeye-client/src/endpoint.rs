//! Where the background task connects: the server's Unix socket, or a
//! [`SpyServer`](crate::spy::SpyServer) in memory. Either way it gets a
//! byte stream it reads answers from and writes requests to.

use std::io;
use std::path::PathBuf;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::UnixStream;

use crate::spy::SpyEndpoint;

pub(crate) type Reader = Box<dyn AsyncRead + Send + Unpin>;
pub(crate) type Writer = Box<dyn AsyncWrite + Send + Unpin>;

#[derive(Debug)]
pub(crate) enum Endpoint {
    Unix(PathBuf),
    Spy(SpyEndpoint),
}

impl Endpoint {
    pub(crate) async fn connect(&self) -> io::Result<(Reader, Writer)> {
        match self {
            Endpoint::Unix(path) => {
                let (read, write) = UnixStream::connect(path).await?.into_split();
                Ok((Box::new(read), Box::new(write)))
            }
            Endpoint::Spy(spy) => {
                let (read, write) = tokio::io::split(spy.connect()?);
                Ok((Box::new(read), Box::new(write)))
            }
        }
    }
}
