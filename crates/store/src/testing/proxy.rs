use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A TCP proxy in front of the database that can be cut and brought back.
pub struct Proxy {
    /// The port the proxy listens on.
    pub port: u16,
    accept: JoinHandle<()>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    /// Listens on `port` (0 picks one) and forwards every connection to `target`.
    pub async fn start(port: u16, target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("the proxy's port");
        let port = listener.local_addr().expect("the proxy's address").port();
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = tokio::spawn({
            let links = Arc::clone(&links);
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    let link = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    if let Ok(mut links) = links.lock() {
                        links.push(link);
                    }
                }
            }
        });
        Proxy { port, accept, links }
    }

    /// Closes the listening socket and every connection through it.
    pub async fn cut(self) {
        self.accept.abort();
        let _ = self.accept.await;
        let links = self.links.lock().map(|mut links| std::mem::take(&mut *links)).unwrap_or_default();
        for link in links {
            link.abort();
            let _ = link.await;
        }
    }
}
