// Step 04's classic mistake: the balances moved into the first connection's task.
use std::collections::HashMap;
use std::future::Future;
use std::net::TcpListener;

/// A stand-in with `tokio::spawn`'s bounds (see step 02).
pub fn spawn<F: Future + Send + 'static>(task: F) {
    drop(task);
}

pub fn accept_loop(listener: TcpListener) -> std::io::Result<()> {
    let mut balances: HashMap<String, i64> = HashMap::new();
    loop {
        let (_socket, _) = listener.accept()?;
        spawn(async move {
            *balances.entry("alice".to_string()).or_default() += 10;
        });
    }
}
