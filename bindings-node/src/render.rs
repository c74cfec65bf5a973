//! The core `render` module in Node: nginx and HAProxy configurations from discovery.

use std::time::Duration;

use dockfleet as df;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::balancer::BalancerOptions;
use crate::discovery::{Discovery, Instance};
use crate::error::js_error;
use crate::proxy::Route;
use crate::{object, stream_class, Conv, Number};

object! { in
    #[doc = "What to render (`kind` `nginx` or `haproxy`, `protocol`, `listen`, `routes`, `balancer`, an optional"]
    #[doc = "minijinja `template`), where (`path`) and how to check and reload it; times in milliseconds."]
    RenderOptions => df::RenderOptions {
        kind: String, protocol: String, listen: String, routes: Vec<Route>, balancer: BalancerOptions,
        template: Option<String>, path: String, check_command: Vec<String>, reload_command: Vec<String>,
        debounce: Number<Duration>, command_timeout: Number<Duration>,
    }
}

object! { out
    #[doc = "One step of `syncConfig`: `written`, `unchanged`, `invalid`, `reloaded`, `reload_failed` or `error`."]
    RenderEvent => df::RenderEvent { kind: String, path: String, routes: Number<u32>, servers: Number<u32>, message: String }
}

stream_class!(
    #[doc = "What `syncConfig` does: `for await (const e of syncConfig(discovery, options))`; `close()` stops it."]
    RenderStream, df::RenderEvent => RenderEvent
);

/// Renders the configuration for `instances` (only the routed services' passing ones are used).
#[napi(catch_unwind)]
pub fn render_config(env: Env, options: RenderOptions, instances: Vec<Instance>) -> Result<String> {
    let options: df::RenderOptions = options.conv();
    let instances: Vec<df::Instance> = instances.conv();
    df::render_config(&options, &instances).map_err(|e| js_error(&env, e))
}

/// The built-in template for `kind` and `protocol`, to start a template of your own from.
#[napi(catch_unwind)]
pub fn default_template(env: Env, kind: String, protocol: String) -> Result<String> {
    df::default_template(&kind, &protocol).map_err(|e| js_error(&env, e))
}

/// Keeps `options.path` rendered from `discovery`, checked and reloaded, until the stream is closed.
#[napi(catch_unwind)]
pub fn sync_config(discovery: &Discovery, options: RenderOptions) -> RenderStream {
    RenderStream::new(df::sync_config(discovery.inner.clone(), options.conv()))
}
