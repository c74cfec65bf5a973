//! The core `registrator` module in Node: keeps a registry in step with a fleet's containers.

use std::collections::HashMap;
use std::time::Duration;

use dockfleet as df;
use napi_derive::napi;

use crate::discovery::Discovery;
use crate::fleet::Fleet;
use crate::health::HealthCheck;
use crate::{object, stream_class, Conv, Number};

object! { in
    #[doc = "Options of `registrator`: `resync` and `ttl` in milliseconds; `onUnreachable` is `remove` or"]
    #[doc = "`expire`; `checks` by service name (`*` for the rest)."]
    RegistratorOptions => df::RegistratorOptions {
        resync: Number<Duration>, ttl: Option<Number<Duration>>, on_unreachable: String, checks: HashMap<String, HealthCheck>,
    }
}

object! { out
    #[doc = "Something the registrator did: `register`, `deregister`, `health`, `resync`, `unreachable` or `error`."]
    RegistratorEvent => df::RegistratorEvent { kind: String, host: String, service: String, id: String, message: String }
}

stream_class!(
    #[doc = "What the registrator does: `for await (const e of registrator(fleet, discovery))`; `close()` stops it."]
    RegistratorStream, df::RegistratorEvent => RegistratorEvent
);

/// Registers the fleet's containers into `discovery` and keeps them in step until the stream is closed.
#[napi(catch_unwind)]
pub fn registrator(fleet: &Fleet, discovery: &Discovery, options: Option<RegistratorOptions>) -> RegistratorStream {
    let options: df::RegistratorOptions = options.conv().unwrap_or_default();
    RegistratorStream::new(df::registrator(fleet.snapshot(), discovery.inner.clone(), options))
}
