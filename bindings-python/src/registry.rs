//! The core `registry` module in Python: `RegistryAuth` and `docker_config_auth`.

use dockfleet as df;
use pyo3::prelude::*;

use crate::{dto, Conv};

dto! {
    /// Credentials for a registry, sent to the engine with a pull or push; `repr` hides the password.
    RegistryAuth => df::RegistryAuth { server: String, username: String, password: String, identity_token: Option<String> }
}

/// The credentials `docker login` keeps for `server`: from the credential helper the docker CLI's config
/// file (`path`, else `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`) names, or its `auths`;
/// `None` when there are none.
#[pyfunction]
#[pyo3(signature = (server, path=None))]
fn docker_config_auth(
    py: Python<'_>,
    server: String,
    path: Option<std::path::PathBuf>,
) -> PyResult<Option<RegistryAuth>> {
    // A credential helper is a process of its own, which may ask a network service: other threads run.
    let found = py.detach(|| crate::sync_call(|| df::docker_config_auth(&server, path.as_deref())));
    Ok(found?.conv())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RegistryAuth>()?;
    m.add_function(wrap_pyfunction!(docker_config_auth, m)?)?;
    Ok(())
}
