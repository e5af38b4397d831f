//! An item that reaches a cancellation point every `every_ms` until it is stopped, and
//! counts itself in when it starts, so a bench knows when every one is running.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tend::{Item, ItemCtx, ItemError};

/// Reaches a cancellation point every `every_ms` milliseconds, forever.
#[derive(Serialize, Deserialize)]
pub(crate) struct Ticker {
    pub(crate) every_ms: u64,
}

/// The resource `Ticker` items count themselves in: how many have started.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ticking(pub(crate) Arc<AtomicUsize>);

impl Ticking {
    /// How many ticker attempts have started so far.
    pub(crate) fn started(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Item for Ticker {
    const KIND: &'static str = "ticker";
    type Output = ();

    async fn apply(&self, cx: &mut ItemCtx) -> Result<(), ItemError> {
        if let Some(ticking) = cx.resource::<Ticking>() {
            ticking.0.fetch_add(1, Ordering::SeqCst);
        }
        let every = Duration::from_millis(self.every_ms);
        loop {
            cx.cancellation_point().await?;
            tokio::time::sleep(every).await;
        }
    }
}
