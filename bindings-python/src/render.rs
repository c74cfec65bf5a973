//! The core `render` module in Python: nginx and HAProxy configurations from discovery.

use std::path::PathBuf;

use dockfleet as df;
use pyo3::prelude::*;

use crate::balancer::BalancerOptions;
use crate::discovery::{Discovery, Instance};
use crate::proxy::Route;
use crate::Seconds;
use crate::{dto, stream_class, Conv};

dto! {
    /// What to render (`kind` `nginx` or `haproxy`, `protocol`, `listen`, `routes`, `balancer`, an optional
    /// minijinja `template`), where (`path`) and how to check and reload it; times in seconds.
    RenderOptions => df::RenderOptions {
        kind: String, protocol: String, listen: String, routes: Vec<Route>, balancer: BalancerOptions,
        template: Option<String>, path: PathBuf, check_command: Vec<String>, reload_command: Vec<String>,
        debounce: Seconds, command_timeout: Seconds,
    }
}

dto! {
    /// One step of `sync_config`: `written`, `unchanged`, `invalid`, `reloaded`, `reload_failed` or `error`.
    RenderEvent => df::RenderEvent { kind: String, path: String, routes: u32, servers: u32, message: String }
}

stream_class!(
    /// What `sync_config` does: `async for e in sync_config(discovery, options)`; closing it stops it.
    RenderStream, df::RenderEvent => RenderEvent
);

/// Renders the configuration for `instances` (only the routed services' passing ones are used).
#[pyfunction]
fn render_config(options: RenderOptions, instances: Vec<Instance>) -> PyResult<String> {
    let options: df::RenderOptions = options.conv();
    let instances: Vec<df::Instance> = instances.conv();
    crate::sync_call(|| df::render_config(&options, &instances))
}

/// The built-in template for `kind` and `protocol`, to start a template of your own from.
#[pyfunction]
fn default_template(kind: &str, protocol: &str) -> PyResult<String> {
    crate::sync_call(|| df::default_template(kind, protocol))
}

/// Keeps `options.path` rendered from `discovery`, checked and reloaded, until the stream is closed.
#[pyfunction]
fn sync_config(discovery: &Discovery, options: RenderOptions) -> PyResult<RenderStream> {
    RenderStream::open(|| df::sync_config(discovery.inner.clone(), options.conv()))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RenderOptions>()?;
    m.add_class::<RenderEvent>()?;
    m.add_class::<RenderStream>()?;
    m.add_function(wrap_pyfunction!(render_config, m)?)?;
    m.add_function(wrap_pyfunction!(default_template, m)?)?;
    m.add_function(wrap_pyfunction!(sync_config, m)?)?;
    Ok(())
}
