//! A TCP proxy that can be frozen: bytes stop flowing both ways while every connection stays
//! open, which is what a half-open database connection looks like to creditd.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct TcpProxy {
    pub addr: SocketAddr,
    frozen: watch::Sender<bool>,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> TcpProxy {
        Self::start_on(0, target).await
    }

    /// Listens on a chosen local port, e.g. one creditd was told about while nothing listened.
    pub async fn start_on(port: u16, target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let frozen = watch::Sender::new(false);
        let gate = frozen.subscribe();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let gate = gate.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        pipe(client_read, server_write, gate.clone()),
                        pipe(server_read, client_write, gate),
                    );
                });
            }
        });
        TcpProxy { addr, frozen }
    }

    /// Stops forwarding; connections stay open and silent.
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    pub fn thaw(&self) {
        self.frozen.send_replace(false);
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut gate: watch::Receiver<bool>,
) {
    let mut buffer = vec![0_u8; 16 * 1024];
    loop {
        let Ok(read) = from.read(&mut buffer).await else {
            return;
        };
        if read == 0 {
            let _ = to.shutdown().await;
            return;
        }
        // Held here while frozen: nothing read is passed on until thawed.
        if gate.wait_for(|frozen| !*frozen).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
