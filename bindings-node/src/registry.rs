//! The core `registry` module in Node: `RegistryAuth` and `dockerConfigAuth`.

use dockfleet as df;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::{object, Conv};

object! { in
    #[doc = "Credentials for a registry, sent to the engine with a pull or push."]
    RegistryAuth => df::RegistryAuth { server: String, username: String, password: String, identity_token: Option<String> }
}

/// The credentials `docker login` keeps for `server`: from the credential helper the docker CLI's config
/// file (`path`, else `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`) names, or its `auths`;
/// `null` when there are none.
#[napi(catch_unwind)]
pub fn docker_config_auth(env: Env, server: String, path: Option<String>) -> Result<Option<RegistryAuth>> {
    df::docker_config_auth(&server, path.as_deref().map(std::path::Path::new))
        .map(Conv::conv)
        .map_err(|e| crate::error::js_error(&env, e))
}
