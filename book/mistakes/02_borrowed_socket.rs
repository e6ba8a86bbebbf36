// Step 02's classic mistake: a task that borrows the socket from the accept loop.
use std::future::Future;
use std::net::{TcpListener, TcpStream};

/// A stand-in with `tokio::spawn`'s bounds: the task may outlive the function that spawned it,
/// so its future must own everything it uses (`'static`) and be able to move between threads.
pub fn spawn<F: Future + Send + 'static>(task: F) {
    drop(task);
}

async fn serve(socket: &TcpStream) {
    let _ = socket;
}

pub fn accept_loop(listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (socket, _) = listener.accept()?;
        spawn(async { serve(&socket).await });
    }
}
