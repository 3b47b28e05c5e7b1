//! `redpool._native`: the PyO3 binding of the redpool core, used by the Python package in
//! `python/`. It only converts types, releases the GIL around blocking calls (or runs them on the
//! core's worker threads for asyncio, `completions.rs`) and maps errors; every pooling decision is
//! the core's.

mod blocking;
mod codec;
mod completions;
mod config;
mod errors;
mod events;
mod pool;
mod reply;
mod report;

use pyo3::prelude::*;

#[pymodule(gil_used = true)]
mod _native {
    #[pymodule_export]
    use super::codec::{Codec, Commands};
    #[pymodule_export]
    use super::completions::Completions;
    #[pymodule_export]
    use super::errors::secret_arguments;
    #[pymodule_export]
    use super::pool::{Connection, Pool, metrics_text};

    /// The library version (the Cargo version of the core).
    #[allow(non_upper_case_globals)]
    #[pymodule_export]
    const __version__: &str = redpool::VERSION;

    /// Fills the binding's caches of Python objects (exception classes, functions it calls)
    /// now, at import: filled lazily, one being filled by a thread at the time of a `fork()`
    /// would stay "being filled" in the child, and the child's first use would wait forever.
    #[pymodule_init]
    fn init(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
        let py = m.py();
        super::errors::prepare(py)?;
        super::events::prepare(py)
    }
}
