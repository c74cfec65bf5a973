//! The core `image` module in Python: `copy_image` (host to host, streamed, with progress) and
//! `distribute_image`.

use dockfleet as df;
use pyo3::prelude::*;

use crate::host::{CopyProgress, DockerHost};
use crate::stream_class;

stream_class!(
    /// Progress of an image copy: `async for p in copy_image(source, target, ref)`.
    CopyStream, df::CopyProgress => CopyProgress
);

/// Streams `reference` from `source` to `target` (save → load, no registry, no temporary file).
#[pyfunction]
fn copy_image(source: DockerHost, target: DockerHost, reference: String) -> PyResult<CopyStream> {
    CopyStream::open(|| df::copy_image(source.inner, target.inner, &reference))
}

/// Copies `reference` from `source` to every host of `targets` that lacks it; returns their names.
#[pyfunction]
async fn distribute_image(source: DockerHost, targets: Vec<DockerHost>, reference: String) -> PyResult<Vec<String>> {
    let targets: Vec<_> = targets.into_iter().map(|t| t.inner).collect();
    crate::call(async move { df::distribute_image(source.inner, &targets, &reference).await }).await
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<CopyStream>()?;
    m.add_function(wrap_pyfunction!(copy_image, m)?)?;
    m.add_function(wrap_pyfunction!(distribute_image, m)?)?;
    Ok(())
}
