//! Registry credentials: [`RegistryAuth`], which a pull or push hands to the engine, and
//! [`docker_config_auth`], which finds them where `docker login` keeps them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Credentials for a registry, sent to the engine with a pull or a push (the engine talks to the
/// registry; dockfleet never does). `Debug` leaves the password and token out.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegistryAuth {
    /// The registry as image references name it: `host[:port]` (`registry.example.com:5000`, `ghcr.io`),
    /// or `docker.io` for Docker Hub.
    pub server: String,
    /// User name.
    pub username: String,
    /// Password, or an access token the registry takes as one.
    pub password: String,
    /// An identity (refresh) token instead of a password, as `docker login` keeps for some registries.
    pub identity_token: Option<String>,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |s: &str| if s.is_empty() { "" } else { "<hidden>" };
        f.debug_struct("RegistryAuth")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("password", &hidden(&self.password))
            .field("identity_token", &self.identity_token.as_deref().map(hidden))
            .finish()
    }
}

impl RegistryAuth {
    /// Checks it without contacting anything; the error names the field under `field`.
    pub fn validate(&self, field: &str) -> Result<()> {
        let ok =
            !self.server.is_empty() && self.server.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
        if !ok {
            return Err(Error::invalid(
                format!("{field}.server"),
                format!("{:?} is not a registry: host[:port] as image references name it", self.server),
            ));
        }
        if self.username.is_empty() && self.identity_token.is_none() {
            return Err(Error::invalid(format!("{field}.username"), "must not be empty without an identity_token"));
        }
        Ok(())
    }
}

/// The registry an image reference names: the part before the first `/` when it has a `.` or a `:`
/// or is `localhost`, else Docker Hub (`docker.io`), as the engine reads it.
pub(crate) fn registry_of(reference: &str) -> &str {
    match reference.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => first,
        _ => "docker.io",
    }
}

/// The credentials `docker login` keeps for `server` (`host[:port]`, `docker.io` for Docker Hub), as the
/// docker CLI finds them in its config file (`path`, or else `$DOCKER_CONFIG/config.json`, or else
/// `~/.docker/config.json`): from the credential helper `credHelpers` names for the server, or else the
/// one `credsStore` names (`docker-credential-<name> get`, on `PATH`: `pass`, `secretservice`,
/// `ecr-login`, …), or else from the server's entry in `auths`. `Ok(None)` when the file, the entry or
/// the helper's credentials are missing; an error when the file or what a helper answers cannot be read,
/// or a helper is not installed.
///
/// ```no_run
/// # async fn f(host: &dockfleet::DockerHost) -> dockfleet::Result<()> {
/// use dockfleet::{docker_config_auth, Host, PullOptions};
/// use futures::TryStreamExt;
/// let auth = docker_config_auth("registry.example.com:5000", None)?;
/// let options = PullOptions { auth, ..Default::default() };
/// let mut progress = host.pull_image("registry.example.com:5000/team/app:1.4", &options);
/// while let Some(p) = progress.try_next().await? {
///     tracing::info!(layer = %p.layer, status = %p.status, current = ?p.current, total = ?p.total);
/// }
/// # Ok(()) }
/// ```
pub fn docker_config_auth(server: &str, path: Option<&Path>) -> Result<Option<RegistryAuth>> {
    config_auth(server, path, &|name| PathBuf::from(format!("docker-credential-{name}")))
}

/// [`docker_config_auth`], with the program a helper's name stands for given by `helper`.
fn config_auth(server: &str, path: Option<&Path>, helper: &dyn Fn(&str) -> PathBuf) -> Result<Option<RegistryAuth>> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os("DOCKER_CONFIG") {
            Some(d) => PathBuf::from(d).join("config.json"),
            None => match std::env::var_os("HOME") {
                Some(h) => PathBuf::from(h).join(".docker/config.json"),
                None => return Ok(None),
            },
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::Io { path: path.display().to_string(), source }),
    };
    let file = path.display().to_string();
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::invalid(file.clone(), format!("not JSON: {e}")))?;
    let hub = is_hub(server);
    // Keys are `host[:port]`, or URLs (`https://index.docker.io/v1/`, Docker Hub's key).
    let wanted = |k: &str| {
        let k = k.trim_start_matches("https://").trim_start_matches("http://");
        let k = k.split('/').next().unwrap_or_default();
        k == server || hub && is_hub(k)
    };
    let entry =
        |section: &str| doc.get(section).and_then(|a| a.as_object()).and_then(|a| a.iter().find(|(k, _)| wanted(k)));
    let store = entry("credHelpers").map(|(_, v)| v).or_else(|| doc.get("credsStore"));
    if let Some(name) = store.and_then(|v| v.as_str()).filter(|s| !s.is_empty()) {
        // Docker Hub's credentials are kept under its v1 URL, as `docker login` stores them.
        let key = if hub { "https://index.docker.io/v1/" } else { server };
        return from_helper(name, &helper(name), key, server);
    }
    let Some((_, entry)) = entry("auths") else {
        return Ok(None);
    };
    let text_of = |k: &str| entry.get(k).and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(str::to_string);
    let mut auth = RegistryAuth {
        server: server.to_string(),
        username: text_of("username").unwrap_or_default(),
        password: text_of("password").unwrap_or_default(),
        identity_token: text_of("identitytoken"),
    };
    if let Some(encoded) = text_of("auth") {
        use base64::Engine as _;
        let bad = || Error::invalid(format!("{file}: auths.{server}.auth"), "is not base64 of user:password");
        let raw = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let (user, password) = raw.split_once(':').ok_or_else(bad)?;
        auth.username = user.to_string();
        auth.password = password.to_string();
    }
    if auth.username.is_empty() && auth.identity_token.is_none() {
        return Ok(None);
    }
    Ok(Some(auth))
}

fn is_hub(server: &str) -> bool {
    ["docker.io", "index.docker.io", "registry-1.docker.io"].contains(&server)
}

/// Asks a docker credential helper for `key`'s credentials (its protocol: the key on stdin,
/// `{"ServerURL", "Username", "Secret"}` on stdout; a `Username` of `<token>` makes `Secret` an
/// identity token).
fn from_helper(name: &str, program: &Path, key: &str, server: &str) -> Result<Option<RegistryAuth>> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let field = format!("credential helper {name}");
    let mut child = Command::new(program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::invalid(&field, format!("{} cannot be run: {e}", program.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(key.as_bytes()).map_err(|e| Error::invalid(&field, format!("writing to it: {e}")))?;
    }
    let out = child.wait_with_output().map_err(|e| Error::invalid(&field, format!("waiting for it: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // What every helper says when it has nothing for the key (docker-credential-helpers' wording).
        if stdout.contains("credentials not found")
            || String::from_utf8_lossy(&out.stderr).contains("credentials not found")
        {
            return Ok(None);
        }
        let said = format!("{} {}", stdout.trim(), String::from_utf8_lossy(&out.stderr).trim());
        return Err(Error::invalid(&field, format!("`get` failed ({}): {}", out.status, said.trim())));
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        username: String,
        secret: String,
    }
    let a: Answer = serde_json::from_str(&stdout)
        .map_err(|e| Error::invalid(&field, format!("`get` answered what is not its JSON: {e}")))?;
    let auth = if a.username == "<token>" {
        RegistryAuth { server: server.into(), identity_token: Some(a.secret), ..Default::default() }
    } else {
        RegistryAuth { server: server.into(), username: a.username, password: a.secret, identity_token: None }
    };
    Ok(Some(auth))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::split_reference;

    #[test]
    fn references_split_and_name_their_registry() {
        assert_eq!(split_reference("busybox"), ("busybox", "latest"));
        assert_eq!(split_reference("reg:5000/a/b"), ("reg:5000/a/b", "latest"));
        assert_eq!(split_reference("reg:5000/a/b:1.2"), ("reg:5000/a/b", "1.2"));
        assert_eq!(split_reference("a/b@sha256:ab"), ("a/b", "sha256:ab"));
        for (r, want) in [
            ("busybox", "docker.io"),
            ("library/busybox:1", "docker.io"),
            ("ghcr.io/o/x", "ghcr.io"),
            ("10.250.0.1:5443/t/x:1", "10.250.0.1:5443"),
            ("localhost/x", "localhost"),
        ] {
            assert_eq!(registry_of(r), want, "{r}");
        }
    }

    #[test]
    fn registry_credentials_come_from_a_docker_config_and_never_show() {
        let dir = std::env::temp_dir().join(format!("dockfleet-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        // `auth` is base64 of user:password; Docker Hub's key is a URL.
        std::fs::write(
            &path,
            r#"{"auths": {"reg.example:5000": {"auth": "dTE6cDE6eA=="},
                          "https://index.docker.io/v1/": {"username": "hub", "password": "p2"},
                          "tok.example": {"identitytoken": "t3"},
                          "helper.example": {}}}"#,
        )
        .unwrap();
        let read = |server: &str| docker_config_auth(server, Some(&path)).unwrap();
        let a = read("reg.example:5000").unwrap();
        assert_eq!((a.username.as_str(), a.password.as_str()), ("u1", "p1:x"), "the password may hold a colon");
        assert_eq!(read("docker.io").unwrap().username, "hub");
        assert_eq!(read("tok.example").unwrap().identity_token.as_deref(), Some("t3"));
        assert!(read("helper.example").is_none(), "an entry with nothing in it");
        assert!(read("other.example").is_none());
        assert!(docker_config_auth("x", Some(&dir.join("none.json"))).unwrap().is_none());
        let shown = format!("{a:?}");
        assert!(shown.contains("u1") && !shown.contains("p1"), "{shown}");

        std::fs::write(&path, r#"{"auths": {"reg.example:5000": {"auth": "not base64!"}}}"#).unwrap();
        let e = docker_config_auth("reg.example:5000", Some(&path)).unwrap_err();
        assert!(e.to_string().contains("auths.reg.example:5000.auth"), "{e}");
        std::fs::write(&path, "{").unwrap();
        assert_eq!(docker_config_auth("x", Some(&path)).unwrap_err().code(), "invalid_argument");
        std::fs::remove_dir_all(dir).unwrap();

        for (bad, field) in [
            (RegistryAuth { server: "".into(), username: "u".into(), ..Default::default() }, "auth.server"),
            (
                RegistryAuth { server: "https://x/v1/".into(), username: "u".into(), ..Default::default() },
                "auth.server",
            ),
            (RegistryAuth { server: "x".into(), ..Default::default() }, "auth.username"),
        ] {
            match bad.validate("auth").unwrap_err() {
                Error::InvalidArgument { field: f, .. } => assert_eq!(f, field),
                e => panic!("{e}"),
            }
        }
    }

    #[test]
    fn credential_helpers_are_asked_as_the_docker_cli_asks_them() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("dockfleet-helpers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // The helper protocol: `get`, the key on stdin, the credentials as JSON on stdout.
        let ok = "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nkey=$(cat)\ncase $key in\n\
                  reg.example:5000) echo '{\"ServerURL\":\"reg.example:5000\",\"Username\":\"u9\",\"Secret\":\"s9\"}' ;;\n\
                  https://index.docker.io/v1/) echo '{\"ServerURL\":\"x\",\"Username\":\"<token>\",\"Secret\":\"tok\"}' ;;\n\
                  *) echo 'credentials not found in native keychain'; exit 1 ;;\nesac\n";
        let broken = "#!/bin/sh\necho boom >&2\nexit 2\n";
        let garbled = "#!/bin/sh\necho not json\n";
        for (name, text) in [("ok", ok), ("broken", broken), ("garbled", garbled)] {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path = dir.join("config.json");
        std::fs::write(
            &path,
            r#"{"credsStore": "ok",
                "credHelpers": {"special.example": "broken", "odd.example": "garbled", "gone.example": "absent"},
                "auths": {"reg.example:5000": {}, "plain.example": {"auth": "dTE6cDE="}}}"#,
        )
        .unwrap();
        let find = |name: &str| dir.join(name);
        let read = |server: &str| config_auth(server, Some(&path), &find);
        let a = read("reg.example:5000").unwrap().unwrap();
        assert_eq!((a.server.as_str(), a.username.as_str(), a.password.as_str()), ("reg.example:5000", "u9", "s9"));
        let hub = read("docker.io").unwrap().unwrap();
        assert_eq!((hub.username.as_str(), hub.identity_token.as_deref()), ("", Some("tok")), "{hub:?}");
        assert!(read("other.example").unwrap().is_none(), "the store has nothing for it");
        // The store holds every registry's credentials: `auths` is not read beside it.
        assert!(read("plain.example").unwrap().is_none());
        for (server, says) in
            [("special.example", "boom"), ("odd.example", "not its JSON"), ("gone.example", "cannot be run")]
        {
            let e = read(server).unwrap_err();
            assert!(e.code() == "invalid_argument" && e.to_string().contains(says), "{server}: {e}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
