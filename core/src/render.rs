//! nginx and HAProxy configurations rendered from discovery: what consul-template does, without its
//! reload gaps.
//!
//! [`render_config`] turns routes (the same [`Route`]s the built-in [`crate::Proxy`] serves) and the
//! passing instances of their services into an nginx or HAProxy configuration, from a built-in
//! template or your own ([minijinja](https://docs.rs/minijinja) syntax; see [`RenderOptions::template`]
//! for its context). [`sync_config`] keeps a file up to date from a discovery watch:
//!
//! - bursts of changes are debounced into one render;
//! - nothing is written, checked or reloaded when the output is unchanged;
//! - the new file is written atomically (a temporary file in the same directory, then a rename);
//! - it is validated before it is used: with a `{path}` in `check_command` the candidate file is
//!   checked before it replaces the old one (`haproxy -c -f main.cfg -f {path}`); without one (a
//!   fragment included by the main configuration: `nginx -t`) the new file is put in place, checked,
//!   and the previous one restored when the check fails;
//! - the previous configuration stays in place when validation fails, and no reload happens;
//! - then `reload_command` runs (`nginx -s reload`, `kill -USR2 <haproxy master>`).
//!
//! Every step is reported as a [`RenderEvent`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::balancer::BalancerOptions;
use crate::discovery::{Discovery, Instance};
use crate::error::{Error, Result};
use crate::host::ResultStream;
use crate::proxy::Route;

/// What to render, where, and how to check and reload it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RenderOptions {
    /// `nginx` (default) or `haproxy`.
    pub kind: String,
    /// `http` (default) or `tcp`.
    pub protocol: String,
    /// Address the rendered server listens on (default `127.0.0.1:8080`).
    pub listen: String,
    /// Routes (`tcp`: exactly one).
    pub routes: Vec<Route>,
    /// Strategy and passive-health settings, mapped to the target's directives (`p2c-ewma` has no
    /// equivalent in either and is refused).
    pub balancer: BalancerOptions,
    /// A minijinja template replacing the built-in one. Its context: `listen`, `listen_host`,
    /// `listen_port`, `protocol`, `strategy`, `max_fails`, `fail_timeout_s`, and `routes`, each with
    /// `name` (a safe identifier), `service`, `host`, `path_prefix`, `tag` and `servers` (each `id`,
    /// `name`, `address`, `port`, `weight`).
    pub template: Option<String>,
    /// The file [`sync_config`] keeps up to date.
    pub path: PathBuf,
    /// Validation command; `{path}` is replaced by the candidate file. Empty: no validation.
    pub check_command: Vec<String>,
    /// Reload command, run after a new configuration is in place. Empty: no reload.
    pub reload_command: Vec<String>,
    /// Quiet time collecting changes before a render (default 200 ms).
    #[serde(with = "crate::serde_ms")]
    pub debounce: Duration,
    /// Limit on each check and reload command (default 30 s).
    #[serde(with = "crate::serde_ms")]
    pub command_timeout: Duration,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            kind: "nginx".into(),
            protocol: "http".into(),
            listen: "127.0.0.1:8080".into(),
            routes: Vec::new(),
            balancer: BalancerOptions::default(),
            template: None,
            path: PathBuf::new(),
            check_command: Vec::new(),
            reload_command: Vec::new(),
            debounce: Duration::from_millis(200),
            command_timeout: Duration::from_secs(30),
        }
    }
}

/// One step of [`sync_config`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderEvent {
    /// `written` (a new configuration is in place), `unchanged`, `invalid` (the check failed; the
    /// previous configuration was kept), `reloaded`, `reload_failed` or `error` (rendering or writing
    /// failed; nothing changed).
    pub kind: String,
    /// The configuration file.
    pub path: String,
    /// Routes rendered.
    pub routes: u32,
    /// Servers rendered over all routes.
    pub servers: u32,
    /// The command's output, or what went wrong.
    pub message: String,
}

macro_rules! nginx_upstream {
    () => {
        r#"
upstream {{ r.name }} {
{%- if strategy == "least-connections" %}
    least_conn;
{%- elif strategy == "consistent-hash" %}
    hash $remote_addr consistent;
{%- elif strategy == "random" %}
    random;
{%- elif strategy == "p2c" %}
    random two least_conn;
{%- endif %}
{%- for s in r.servers %}
    server {{ s.address }}:{{ s.port }} weight={{ s.weight }} max_fails={{ max_fails }} fail_timeout={{ fail_timeout_s }}s;  # {{ s.id }}
{%- else %}
    server 127.0.0.1:1 down;  # no passing instance of {{ r.service }}
{%- endfor %}
{%- if protocol == "http" %}
    keepalive 32;
{%- endif %}
}"#
    };
}

const NGINX_HTTP: &str = concat!(
    r#"# Rendered by dockfleet from discovery; changes here are overwritten.
{%- macro location(r, match) %}
    location {{ match }} {
        proxy_pass http://{{ r.name }};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_next_upstream error timeout;
    }
{%- endmacro %}
{%- for r in routes %}
"#,
    nginx_upstream!(),
    r#"
{%- endfor %}
{% for host in hosts %}
server {
    listen {{ listen }}{% if not host %} default_server{% endif %};
    server_name {{ host or "_" }};
{%- for r in routes if r.host == host %}
{%- if r.segment_prefix %}
{{- location(r, "= " ~ r.path_prefix) }}
{{- location(r, r.path_prefix ~ "/") }}
{%- else %}
{{- location(r, r.path_prefix) }}
{%- endif %}
{%- endfor %}
{%- if not host and not has_default %}
    return 404;
{%- endif %}
}
{% endfor -%}
"#
);

const NGINX_TCP: &str = concat!(
    r#"# Rendered by dockfleet from discovery; changes here are overwritten.
{%- for r in routes %}
"#,
    nginx_upstream!(),
    r#"
server {
    listen {{ listen }};
    proxy_pass {{ r.name }};
}
{%- endfor %}
"#
);

const HAPROXY: &str = r#"# Rendered by dockfleet from discovery; changes here are overwritten.
frontend dockfleet_{{ listen_port }}
    mode {{ protocol }}
    bind {{ listen }}
{%- if protocol == "http" %}
    option forwardfor
{%- for r in routes %}
{%- if r.host_suffix %}
    acl {{ r.name }}_host hdr(host),field(1,:) -m end -i {{ r.host_suffix }}
{%- elif r.host %}
    acl {{ r.name }}_host hdr(host),field(1,:) -i {{ r.host }}
{%- endif %}
{%- if r.segment_prefix %}
    acl {{ r.name }}_path path {{ r.path_prefix }}
    acl {{ r.name }}_path path_beg {{ r.path_prefix }}/
{%- elif r.path_prefix != "/" %}
    acl {{ r.name }}_path path_beg {{ r.path_prefix }}
{%- endif %}
{%- if r.host or r.path_prefix != "/" %}
    use_backend {{ r.name }} if{% if r.host %} {{ r.name }}_host{% endif %}{% if r.path_prefix != "/" %} {{ r.name }}_path{% endif %}
{%- endif %}
{%- endfor %}
{%- endif %}
{%- for r in routes if not r.host and r.path_prefix == "/" %}
    default_backend {{ r.name }}
{%- endfor %}
{% for r in routes %}
backend {{ r.name }}
    mode {{ protocol }}
{%- if strategy == "least-connections" %}
    balance leastconn
{%- elif strategy == "consistent-hash" %}
    balance source
    hash-type consistent
{%- elif strategy == "random" %}
    balance random
{%- elif strategy == "p2c" %}
    balance random(2)
{%- else %}
    balance roundrobin
{%- endif %}
{%- if protocol == "http" %}
    http-reuse safe
{%- endif %}
    default-server check inter 2s fall {{ max_fails or 3 }} rise 2
{%- for s in r.servers %}
    server {{ s.name }} {{ s.address }}:{{ s.port }} weight {{ s.weight }}
{%- endfor %}
{% endfor -%}
"#;

/// A name safe as an nginx upstream, HAProxy backend or server name.
fn ident(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

impl RenderOptions {
    /// Checks the options without rendering or touching files; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if !["nginx", "haproxy"].contains(&self.kind.as_str()) {
            return Err(Error::invalid("kind", format!("{:?} is not nginx or haproxy", self.kind)));
        }
        // The routes, listen address and balancer follow the built-in proxy's rules.
        crate::proxy::ProxyOptions {
            listen: self.listen.clone(),
            protocol: self.protocol.clone(),
            routes: self.routes.clone(),
            balancer: self.balancer.clone(),
            ..Default::default()
        }
        .validate()?;
        if self.balancer.strategy == "p2c-ewma" {
            return Err(Error::invalid(
                "balancer.strategy",
                format!("{} has no latency-aware balancing; use p2c or least-connections", self.kind),
            ));
        }
        if let Some(h) = self.routes.iter().position(|r| r.hash_header.is_some()) {
            return Err(Error::invalid(
                format!("routes[{h}].hash_header"),
                "the rendered configurations hash on the client address",
            ));
        }
        if let Some(t) = &self.template {
            environment(t).map_err(|e| Error::invalid("template", e))?;
        }
        for (field, cmd) in [("check_command", &self.check_command), ("reload_command", &self.reload_command)] {
            if cmd.first().is_some_and(|c| c.trim().is_empty()) {
                return Err(Error::invalid(field, "the program name is empty"));
            }
        }
        if self.command_timeout.is_zero() {
            return Err(Error::invalid("command_timeout", "must be positive"));
        }
        Ok(())
    }
}

/// The built-in template for `kind` (`nginx`, `haproxy`) and `protocol` (`http`, `tcp`): a starting
/// point for a [`RenderOptions::template`] of your own.
pub fn default_template(kind: &str, protocol: &str) -> Result<String> {
    match (kind, protocol) {
        ("haproxy", "http" | "tcp") => Ok(HAPROXY.into()),
        ("nginx", "tcp") => Ok(NGINX_TCP.into()),
        ("nginx", "http") => Ok(NGINX_HTTP.into()),
        ("nginx" | "haproxy", p) => Err(Error::invalid("protocol", format!("{p:?} is not http or tcp"))),
        (k, _) => Err(Error::invalid("kind", format!("{k:?} is not nginx or haproxy"))),
    }
}

fn environment(template: &str) -> std::result::Result<minijinja::Environment<'static>, String> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_template_owned("config", template.to_string()).map_err(|e| describe(&e))?;
    Ok(env)
}

fn describe(e: &minijinja::Error) -> String {
    match e.line() {
        Some(line) => format!("{} (line {line})", e),
        None => e.to_string(),
    }
}

/// Renders the configuration for `instances` (any services; only the routed ones' passing instances
/// are used). Pure: no file or process is touched.
pub fn render_config(options: &RenderOptions, instances: &[Instance]) -> Result<String> {
    options.validate()?;
    // Each is checked where it is written (`register`), but a registry may hold what another writer put
    // there: nothing unchecked reaches a configuration.
    for (i, x) in instances.iter().enumerate() {
        x.validate().map_err(|e| e.with_field_prefix(&format!("instances[{i}]")))?;
    }
    // Most specific first, as the built-in proxy matches: exact hosts, wildcards, any host; longer
    // prefixes first.
    let mut ordered: Vec<(usize, &Route)> = options.routes.iter().enumerate().collect();
    ordered.sort_by_key(|(_, r)| crate::proxy::route_rank(r.host.as_deref(), &r.path_prefix));
    let mut hosts: Vec<Option<String>> = Vec::new();
    for (_, r) in &ordered {
        if !hosts.contains(&r.host) {
            hosts.push(r.host.clone());
        }
    }
    if !hosts.contains(&None) {
        hosts.push(None);
    }
    let has_default = options.routes.iter().any(|r| r.host.is_none());
    let routes: Vec<minijinja::Value> = ordered
        .into_iter()
        .map(|(i, r)| {
            let mut servers: Vec<&Instance> =
                instances.iter().filter(|x| x.service == r.service && x.serves(r.tag.as_ref())).collect();
            servers.sort_by(|a, b| a.id.cmp(&b.id));
            let servers: Vec<minijinja::Value> = servers
                .into_iter()
                .map(|x| {
                    minijinja::context! {
                        id => x.id, name => ident(&x.id), address => x.address, port => x.port, weight => x.weight(),
                    }
                })
                .collect();
            minijinja::context! {
                name => format!("{}_{i}", ident(&r.service)),
                service => r.service,
                host => r.host,
                host_suffix => r.host.as_deref().and_then(|h| h.strip_prefix('*')),
                path_prefix => r.path_prefix,
                segment_prefix => r.path_prefix != "/" && !r.path_prefix.ends_with('/'),
                tag => r.tag,
                servers => servers,
            }
        })
        .collect();
    let (listen_host, listen_port) = options.listen.rsplit_once(':').unwrap_or(("", ""));
    let ctx = minijinja::context! {
        listen => options.listen,
        listen_host => listen_host,
        listen_port => listen_port,
        protocol => options.protocol,
        strategy => options.balancer.strategy,
        max_fails => options.balancer.max_fails,
        fail_timeout_s => options.balancer.ejection.as_secs().max(1),
        routes => routes,
        hosts => hosts,
        has_default => has_default,
    };
    let template = match &options.template {
        Some(t) => t.clone(),
        None => default_template(&options.kind, &options.protocol)?,
    };
    let env = environment(&template).map_err(|e| Error::invalid("template", e))?;
    let tmpl = env.get_template("config").map_err(|e| Error::invalid("template", describe(&e)))?;
    tmpl.render(ctx).map_err(|e| Error::invalid("template", describe(&e)))
}

/// Runs a command with a time limit; `Err` carries its output.
async fn run(cmd: &[String], limit: Duration) -> std::result::Result<String, String> {
    let Some((program, args)) = cmd.split_first() else { return Ok(String::new()) };
    let child =
        tokio::process::Command::new(program).args(args).stdin(std::process::Stdio::null()).kill_on_drop(true).output();
    match tokio::time::timeout(limit, child).await {
        Err(_) => Err(format!("{program} did not finish within {limit:?}")),
        Ok(Err(e)) => Err(format!("{program}: {e}")),
        Ok(Ok(out)) => {
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            if out.status.success() {
                Ok(text.trim().to_string())
            } else {
                Err(format!("{program} exited with {}: {}", out.status, text.trim()))
            }
        }
    }
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io { path: path.display().to_string(), source }
}

/// Writes `text` next to `path` under a temporary name; returns that name.
async fn write_candidate(path: &Path, text: &str) -> Result<PathBuf> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "config".into());
    let tmp = dir.join(format!(".{name}.dockfleet-{}.tmp", std::process::id()));
    tokio::fs::write(&tmp, text).await.map_err(|e| io_error(&tmp, e))?;
    Ok(tmp)
}

/// One render-check-install-reload pass. Returns the events it produced.
async fn apply(options: &RenderOptions, instances: &[Instance]) -> Vec<RenderEvent> {
    let path = options.path.display().to_string();
    let event = |kind: &str, message: String| RenderEvent {
        kind: kind.into(),
        path: path.clone(),
        routes: options.routes.len() as u32,
        servers: options
            .routes
            .iter()
            .map(|r| instances.iter().filter(|i| i.service == r.service && i.serves(r.tag.as_ref())).count() as u32)
            .sum(),
        message,
    };
    let text = match render_config(options, instances) {
        Ok(t) => t,
        Err(e) => return vec![event("error", e.to_string())],
    };
    let current = tokio::fs::read_to_string(&options.path).await.ok();
    if current.as_deref() == Some(text.as_str()) {
        return vec![event("unchanged", String::new())];
    }
    let tmp = match write_candidate(&options.path, &text).await {
        Ok(t) => t,
        Err(e) => return vec![event("error", e.to_string())],
    };
    let checks_candidate = options.check_command.iter().any(|a| a.contains("{path}"));
    let install = |from: &Path| {
        let (from, to) = (from.to_path_buf(), options.path.clone());
        async move { tokio::fs::rename(&from, &to).await.map_err(|e| io_error(&to, e)) }
    };
    if checks_candidate {
        let cmd: Vec<String> =
            options.check_command.iter().map(|a| a.replace("{path}", &tmp.display().to_string())).collect();
        if let Err(out) = run(&cmd, options.command_timeout).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return vec![event("invalid", out)];
        }
        if let Err(e) = install(&tmp).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return vec![event("error", e.to_string())];
        }
    } else {
        // The check reads the live file: put the new one in place, check, restore the old one if it fails.
        let backup = match &current {
            Some(old) => match write_candidate(&options.path.with_extension("previous"), old).await {
                Ok(b) => Some(b),
                Err(e) => {
                    let _ = tokio::fs::remove_file(&tmp).await;
                    return vec![event("error", e.to_string())];
                }
            },
            None => None,
        };
        if let Err(e) = install(&tmp).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return vec![event("error", e.to_string())];
        }
        if let Err(out) = run(&options.check_command, options.command_timeout).await {
            let restored = match &backup {
                Some(b) => install(b).await.map(|_| "the previous configuration was restored".to_string()),
                None => tokio::fs::remove_file(&options.path)
                    .await
                    .map(|_| "there was no previous configuration; the file was removed".to_string())
                    .map_err(|e| io_error(&options.path, e)),
            };
            let note = restored.unwrap_or_else(|e| format!("restoring failed: {e}"));
            return vec![event("invalid", format!("{out}\n({note})"))];
        }
        if let Some(b) = backup {
            let _ = tokio::fs::remove_file(&b).await;
        }
    }
    let mut events = vec![event("written", String::new())];
    if !options.reload_command.is_empty() {
        events.push(match run(&options.reload_command, options.command_timeout).await {
            Ok(out) => event("reloaded", out),
            Err(out) => event("reload_failed", out),
        });
    }
    events
}

/// Keeps `options.path` rendered from the routed services' passing instances in `discovery`, for as
/// long as the stream is polled. The first render happens once every service's current instances are
/// known; later ones after `debounce` of quiet following a change. Invalid options are the stream's
/// only item, as an error.
pub fn sync_config(discovery: Arc<dyn Discovery>, options: RenderOptions) -> ResultStream<RenderEvent> {
    let stream = async_stream::try_stream! {
        options.validate()?;
        if options.path.as_os_str().is_empty() {
            Err(Error::invalid("path", "is required"))?;
        }
        let mut services: Vec<String> = options.routes.iter().map(|r| r.service.clone()).collect();
        services.sort();
        services.dedup();
        loop {
            let watches = services.iter().map(|s| {
                let s = s.clone();
                discovery.watch(&s).map(move |e| (s.clone(), e))
            });
            let mut merged = futures::stream::select_all(watches);
            let mut known: BTreeMap<String, BTreeMap<String, Instance>> = BTreeMap::new();
            let mut dirty = false;
            loop {
                let next = if dirty && known.len() == services.len() {
                    match tokio::time::timeout(options.debounce, merged.next()).await {
                        Ok(n) => n,
                        Err(_) => {
                            dirty = false;
                            // An entry another writer put in the registry unchecked is left out, and
                            // the others still rendered.
                            let all: Vec<Instance> = known
                                .values()
                                .flat_map(|m| m.values().cloned())
                                .filter(|i| i.checked(&options.path.display()))
                                .collect();
                            for e in apply(&options, &all).await {
                                yield e;
                            }
                            continue;
                        }
                    }
                } else {
                    merged.next().await
                };
                let Some((service, item)) = next else { break };
                match item {
                    Ok(ev) => {
                        ev.apply_to(known.entry(service).or_default());
                        dirty = true;
                    }
                    Err(e) => {
                        yield RenderEvent {
                            kind: "error".into(),
                            path: options.path.display().to_string(),
                            message: format!("discovery watch failed ({e}); watching again"),
                            ..Default::default()
                        };
                        break;
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    Box::pin(stream)
}
