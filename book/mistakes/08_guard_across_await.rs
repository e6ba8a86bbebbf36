// Step 08's classic mistake: a user's lock held across an `.await`.
use std::future::Future;
use std::sync::{Arc, Mutex};

/// A stand-in with `tokio::spawn`'s bounds (see step 02).
pub fn spawn<F: Future + Send + 'static>(task: F) {
    drop(task);
}

async fn write_reply() {}

pub fn apply(balance: Arc<Mutex<i64>>) {
    spawn(async move {
        let mut guard = balance.lock().unwrap();
        *guard += 10;
        write_reply().await;
    });
}
