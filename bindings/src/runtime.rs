//! The tokio runtime the library owns. The libp2p swarm, the registry's
//! blocking HTTP calls and every `async` export run on it, so an app never
//! needs a Rust runtime of its own: Kotlin coroutines and Swift tasks only
//! await a `JoinHandle`, which any executor can poll.

use std::future::Future;
use std::sync::OnceLock;
use tokio::runtime::Runtime;

/// Worker threads: phones have few big cores, and the work is mostly waiting.
const WORKERS: usize = 2;

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// Why the wallet or the runtime cannot do a call now (a p2p node is
/// starting or stopping, the runtime failed). Each error enum has a variant for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unavailable(pub(crate) String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) fn runtime() -> Result<&'static Runtime, Unavailable> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(WORKERS)
                .thread_name("tessera-ffi")
                .enable_all()
                .build()
                .map_err(|e| format!("the library could not start its runtime: {e}"))
        })
        .as_ref()
        .map_err(|e| Unavailable(e.clone()))
}

/// Runs `future` on the library's runtime and waits for it from whatever
/// executor polls the returned future (the foreign side's).
pub(crate) async fn spawn<T, E>(future: impl Future<Output = Result<T, E>> + Send + 'static) -> Result<T, E>
where
    T: Send + 'static,
    E: From<Unavailable> + Send + 'static,
{
    let handle = runtime()?.spawn(future);
    match handle.await {
        Ok(result) => result,
        Err(e) => Err(Unavailable(format!("the task failed: {e}")).into()),
    }
}

/// Runs `future` on the runtime and blocks this (foreign) thread until it
/// is done. Never called from inside the runtime.
pub(crate) fn block_on<T>(future: impl Future<Output = T>) -> Result<T, Unavailable> {
    Ok(runtime()?.block_on(future))
}
