//! The operator's commands that move data (`parley import`, `parley export`, `parley demo`). They
//! work on the store directly, as the other operator commands do, and through the same rules as
//! the API: rows come in through [`crate::ingest`], as over HTTP, and go out through the OData
//! reads, so that what a command writes or shows is what the API would.

pub mod checkpoint;
pub mod collection;
pub mod demo;
pub mod export;
pub mod feed;
pub mod import;
pub mod progress;
pub mod source;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use collection::Collection;

/// Set once Ctrl-C (or SIGTERM) arrives: a long command looks at it between two batches, so that
/// it stops with every batch either stored whole or not at all.
#[derive(Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Starts listening for Ctrl-C and SIGTERM.
    pub fn listen() -> Interrupt {
        let interrupt = Interrupt::default();
        let flag = interrupt.0.clone();
        tokio::spawn(async move {
            crate::shutdown_signal().await;
            flag.store(true, Ordering::SeqCst);
        });
        interrupt
    }

    pub fn raised(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Why a data command failed, in words for the operator.
pub type OpsResult<T> = Result<T, String>;
