//! Socket files: refusing a path where a live server listens, replacing a
//! stale file left by a dead one, setting the mode, removing it at the end.

use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::ServerError;

#[derive(Clone, Copy)]
pub(crate) enum SocketKind {
    Stream,
    Datagram,
}

/// Makes `path` free to bind: absent, or a stale socket (which is removed).
pub(crate) fn clear_stale(path: &Path, kind: SocketKind) -> Result<(), ServerError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ServerError::io(path, e)),
    };
    if !meta.file_type().is_socket() {
        return Err(ServerError::NotASocket(path.to_path_buf()));
    }
    let probe = match kind {
        SocketKind::Stream => std::os::unix::net::UnixStream::connect(path).map(drop),
        SocketKind::Datagram => {
            std::os::unix::net::UnixDatagram::unbound().and_then(|s| s.connect(path))
        }
    };
    match probe {
        Ok(()) => return Err(ServerError::AlreadyRunning(path.to_path_buf())),
        // Only "refused" proves nobody listens; anything else (permission,
        // a busy server) must not make us delete a live server's socket.
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
        Err(e) => return Err(ServerError::io(path, e)),
    }
    std::fs::remove_file(path).map_err(|e| ServerError::io(path, e))
}

pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<(), ServerError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| ServerError::io(path, e))
}

pub(crate) fn bind_stream(path: &Path, mode: u32) -> Result<tokio::net::UnixListener, ServerError> {
    clear_stale(path, SocketKind::Stream)?;
    let listener = tokio::net::UnixListener::bind(path).map_err(|e| ServerError::io(path, e))?;
    set_mode(path, mode)?;
    Ok(listener)
}

pub(crate) fn bind_datagram(
    path: &Path,
    mode: u32,
) -> Result<tokio::net::UnixDatagram, ServerError> {
    clear_stale(path, SocketKind::Datagram)?;
    let socket = tokio::net::UnixDatagram::bind(path).map_err(|e| ServerError::io(path, e))?;
    set_mode(path, mode)?;
    Ok(socket)
}

/// Removes a socket file this server created; a file already gone is fine.
pub(crate) fn remove(path: &PathBuf) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "could not remove the socket file");
        }
    }
}
