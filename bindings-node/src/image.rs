//! The core `image` module in Node: `copyImage` (host to host, streamed, with progress) and
//! `distributeImage`.

use dockfleet as df;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::host::{CopyProgress, DockerHost};
use crate::{call, stream_class};

stream_class!(
    #[doc = "Progress of an image copy: `for await (const p of copyImage(source, target, ref))`."]
    CopyStream, df::CopyProgress => CopyProgress
);

/// Streams `reference` from `source` to `target` (save → load, no registry, no temporary file).
#[napi(catch_unwind)]
pub fn copy_image(source: &DockerHost, target: &DockerHost, reference: String) -> CopyStream {
    CopyStream::new(df::copy_image(source.inner.clone(), target.inner.clone(), &reference))
}

/// Copies `reference` from `source` to every host of `targets` that lacks it; resolves to their names.
#[napi(catch_unwind)]
pub fn distribute_image<'env>(
    env: &'env Env,
    source: &DockerHost,
    targets: Vec<&DockerHost>,
    reference: String,
) -> Result<PromiseRaw<'env, Vec<String>>> {
    let source = source.inner.clone();
    let targets: Vec<_> = targets.into_iter().map(|t| t.inner.clone()).collect();
    call(env, async move { df::distribute_image(source, &targets, &reference).await })
}
