//! Compose's merge rules, for a service that `extends` another and for several files read as one
//! (an `include` whose `path` is a list).
//!
//! A mapping merges key by key; a sequence appends the overriding file's items. The exceptions are
//! compose's: `command`, `entrypoint` and `healthcheck.test` are replaced; `volumes`, `secrets`,
//! `configs` and `ports` keep one item per target (per address, port and protocol for `ports`),
//! the later one winning; `environment`, `labels`, `build.args`, `sysctls`, `depends_on` and
//! `networks` merge as mappings whichever form each side uses; lists such as `dns` or `cap_add`
//! append only what they lack. A value tagged `!reset` removes what it overrides, and one tagged
//! `!override` replaces it whole.

use serde_yaml_ng::value::{Tag, TaggedValue};
use serde_yaml_ng::{Mapping, Value};

/// Keys of a service whose value replaces the overridden one.
const REPLACED: &[&str] = &["command", "entrypoint", "healthcheck.test"];

/// Keys of a service that hold `KEY=VALUE` lists or `KEY: VALUE` maps.
const KEY_VALUES: &[&str] = &["environment", "labels", "build.args", "build.labels", "sysctls", "annotations"];

/// Keys of a service that hold a list (or one string) whose items are kept once.
const SETS: &[&str] = &[
    "dns",
    "dns_search",
    "dns_opt",
    "tmpfs",
    "env_file",
    "cap_add",
    "cap_drop",
    "security_opt",
    "profiles",
    "expose",
    "group_add",
    "extra_hosts",
];

/// Merges the service `over` into the service `base` (both as written in compose).
pub(crate) fn service(base: Value, over: Value) -> Value {
    merge(Some(base), over, "").unwrap_or(Value::Null)
}

/// Merges the compose file `over` into the file `base`: services by the service rules, the other
/// sections key by key. Tags of what `base` lacks are kept, for `extends` to merge by; [`strip`]
/// removes them when the file is read.
pub(crate) fn file(base: Value, over: Value) -> Value {
    match (base, over) {
        (Value::Mapping(mut base), Value::Mapping(over)) => {
            for (k, v) in over {
                let merged = match (k.as_str(), base.remove(&k)) {
                    (Some("services"), Some(Value::Mapping(mut services))) => match v {
                        Value::Mapping(more) => {
                            for (name, svc) in more {
                                let merged = match services.remove(&name) {
                                    Some(old) => merge(Some(old), svc, ""),
                                    None => Some(svc),
                                };
                                if let Some(m) = merged {
                                    services.insert(name, m);
                                }
                            }
                            Some(Value::Mapping(services))
                        }
                        other => merge(Some(Value::Mapping(services)), other, "?"),
                    },
                    (_, old) => merge(old, v, "?"),
                };
                if let Some(m) = merged {
                    base.insert(k, m);
                }
            }
            Value::Mapping(base)
        }
        (_, over) => over,
    }
}

/// Removes compose's merge tags from a file read alone: a `!reset` key goes, an `!override` value
/// stays as it is.
pub(crate) fn strip(v: Value) -> Value {
    match v {
        Value::Tagged(t) if is(&t.tag, "override") || is(&t.tag, "reset") => strip(t.value),
        Value::Tagged(t) => Value::Tagged(Box::new(TaggedValue { tag: t.tag, value: strip(t.value) })),
        Value::Mapping(m) => Value::Mapping(
            m.into_iter()
                .filter(|(_, v)| !matches!(v, Value::Tagged(t) if is(&t.tag, "reset")))
                .map(|(k, v)| (k, strip(v)))
                .collect(),
        ),
        Value::Sequence(items) => Value::Sequence(items.into_iter().map(strip).collect()),
        other => other,
    }
}

fn is(tag: &Tag, name: &str) -> bool {
    *tag == name
}

/// `over` merged into `base` at `path` (the key path inside a service, `""` for the service
/// itself, `"?"` outside services); `None` when `over` is `!reset`.
fn merge(base: Option<Value>, over: Value, path: &str) -> Option<Value> {
    let over = match over {
        Value::Tagged(t) if is(&t.tag, "reset") => return None,
        Value::Tagged(t) if is(&t.tag, "override") => return Some(strip(t.value)),
        other => other,
    };
    // With nothing to merge into, tags stay for a later merge (a service that extends this one);
    // [`strip`] removes what is left when the file is read.
    let Some(base) = base else { return Some(over) };
    let at = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else if path == "?" {
            "?".into()
        } else {
            format!("{path}.{k}")
        }
    };
    Some(match path {
        p if REPLACED.contains(&p) => strip(over),
        p if KEY_VALUES.contains(&p) => by_key(key_values(base), key_values(over), "?"),
        "depends_on" => by_key(named(base, depends_on_default()), named(over, depends_on_default()), "depends_on.?"),
        "networks" => by_key(named(base, Value::Null), named(over, Value::Null), "?"),
        "build" => by_key(build(base), build(over), "build"),
        "volumes" | "secrets" | "configs" | "ports" => unique(base, over, path),
        p if SETS.contains(&p) => {
            let mut items = list(base);
            for item in list(strip(over)) {
                if !items.contains(&item) {
                    items.push(item);
                }
            }
            Value::Sequence(items)
        }
        _ => match (base, over) {
            (Value::Mapping(base), Value::Mapping(over)) => {
                let mut out = base;
                for (k, v) in over {
                    let key = k.as_str().map(at).unwrap_or_else(|| "?".into());
                    let old = out.remove(&k);
                    if let Some(m) = merge(old, v, &key) {
                        out.insert(k, m);
                    }
                }
                Value::Mapping(out)
            }
            (Value::Sequence(mut base), Value::Sequence(over)) => {
                base.extend(over.into_iter().map(strip));
                Value::Sequence(base)
            }
            (_, over) => strip(over),
        },
    })
}

/// Two mappings merged key by key, the values by the rules at `path.KEY` (`?`: the generic ones).
fn by_key(base: Mapping, over: Mapping, path: &str) -> Value {
    let mut out = base;
    for (k, v) in over {
        let key = match (path, k.as_str()) {
            ("build", Some(k)) => format!("build.{k}"),
            _ => "?".into(),
        };
        let old = out.remove(&k);
        if let Some(m) = merge(old, v, &key) {
            out.insert(k, m);
        }
    }
    Value::Mapping(out)
}

/// `KEY=VALUE` items (or `KEY`, a null value) as a mapping; a mapping as it is.
fn key_values(v: Value) -> Mapping {
    match v {
        Value::Sequence(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => match s.split_once('=') {
                    Some((k, v)) => (Value::String(k.into()), Value::String(v.into())),
                    None => (Value::String(s), Value::Null),
                },
                other => (other, Value::Null),
            })
            .collect(),
        Value::Mapping(m) => m,
        _ => Mapping::new(),
    }
}

/// A list of names (`[db, cache]`) as a mapping of each name to `default`; a mapping as it is.
fn named(v: Value, default: Value) -> Mapping {
    match v {
        Value::Sequence(items) => items.into_iter().map(|name| (name, default.clone())).collect(),
        Value::Mapping(m) => m,
        _ => Mapping::new(),
    }
}

fn depends_on_default() -> Value {
    let mut m = Mapping::new();
    m.insert("condition".into(), "service_started".into());
    Value::Mapping(m)
}

/// `build: DIR` as `{context: DIR}`.
fn build(v: Value) -> Mapping {
    match v {
        Value::Mapping(m) => m,
        other => {
            let mut m = Mapping::new();
            m.insert("context".into(), other);
            m
        }
    }
}

/// A list, or one value as a list of one; a mapping (`extra_hosts: {name: address}`) as
/// `name=address` items.
fn list(v: Value) -> Vec<Value> {
    match v {
        Value::Sequence(items) => items,
        Value::Mapping(m) => m
            .into_iter()
            .flat_map(|(k, v)| {
                let name = scalar(&k).unwrap_or_default();
                list(v).into_iter().map(move |a| Value::String(format!("{name}={}", scalar(&a).unwrap_or_default())))
            })
            .collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// Items of `base` and `over` with one per key (see [`unique_key`]); an item of `over` replaces the
/// item of `base` with its key, in place.
fn unique(base: Value, over: Value, section: &str) -> Value {
    let mut items = list(base);
    for item in list(over) {
        let item = strip(item);
        let key = unique_key(section, &item);
        match items.iter().position(|x| key.is_some() && unique_key(section, x) == key) {
            Some(i) => items[i] = item,
            None => items.push(item),
        }
    }
    Value::Sequence(items)
}

/// What makes an item of `volumes`, `secrets`, `configs` or `ports` one of a kind: the target
/// (for a port its host address, published port, target and protocol).
fn unique_key(section: &str, item: &Value) -> Option<String> {
    let field = |k: &str| item.get(k).map(|v| scalar(v).unwrap_or_default());
    match (section, item) {
        ("volumes", Value::String(s)) => {
            let parts: Vec<&str> = s.split(':').collect();
            Some(parts.get(1).unwrap_or(&parts[0]).to_string())
        }
        ("volumes", Value::Mapping(_)) => field("target"),
        ("secrets" | "configs", Value::String(s)) => Some(s.clone()),
        ("secrets" | "configs", Value::Mapping(_)) => field("target").or_else(|| field("source")),
        ("ports", Value::Mapping(_)) => {
            let proto = field("protocol").unwrap_or_else(|| "tcp".into());
            Some(format!(
                "{}|{}|{}|{proto}",
                field("host_ip").unwrap_or_default(),
                field("published").unwrap_or_default(),
                field("target").unwrap_or_default()
            ))
        }
        ("ports", v) => {
            let s = scalar(v)?;
            let (spec, proto) = s.split_once('/').unwrap_or((s.as_str(), "tcp"));
            // [[IP:]PUBLISHED:]TARGET, an IPv6 address in brackets.
            let (rest, target) = spec.rsplit_once(':').unwrap_or(("", spec));
            let (ip, published) = match rest.rsplit_once(':') {
                Some((ip, p)) => (ip, p),
                None if rest.starts_with('[') || rest.contains('.') => (rest, ""),
                None => ("", rest),
            };
            Some(format!("{ip}|{published}|{target}|{proto}"))
        }
        _ => None,
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_yaml_ng::from_str(text).unwrap()
    }

    #[test]
    fn services_merge_by_compose_rules() {
        let base = yaml(
            "image: a\ncommand: [echo, a]\nenvironment: [A=1, B=2]\nlabels: {x: '1'}\nports: ['8080:80', '9000:9000/udp']\n\
             volumes: ['data:/data', './conf:/etc/conf:ro']\ndns: 1.1.1.1\ncap_add: [NET_ADMIN]\n\
             depends_on: [db]\nnetworks: [front]\nhealthcheck: {test: [CMD, a], interval: 1s}\nbuild: ./app\n\
             deploy: {replicas: 2, resources: {limits: {memory: 64m}}}\n",
        );
        let over = yaml(
            "command: [echo, b]\nenvironment: {B: '3', C: '4'}\nlabels: [y=2]\nports: ['8081:80', {target: 80, \
             published: 8080}]\nvolumes: [{type: volume, source: other, target: /data}, 'logs:/logs']\n\
             dns: [8.8.8.8, 1.1.1.1]\ncap_add: [NET_ADMIN, SYS_TIME]\ndepends_on: {cache: {condition: service_healthy}}\n\
             networks: {back: {aliases: [b]}}\nhealthcheck: {test: [CMD, b]}\nbuild: {dockerfile: D}\n\
             deploy: {resources: {limits: {cpus: '0.5'}}}\n",
        );
        let got = service(base, over);
        let want = yaml(
            "image: a\ncommand: [echo, b]\nenvironment: {A: '1', B: '3', C: '4'}\nlabels: {x: '1', y: '2'}\n\
             ports: [{target: 80, published: 8080}, '9000:9000/udp', '8081:80']\n\
             volumes: [{type: volume, source: other, target: /data}, './conf:/etc/conf:ro', 'logs:/logs']\n\
             dns: [1.1.1.1, 8.8.8.8]\ncap_add: [NET_ADMIN, SYS_TIME]\n\
             depends_on: {db: {condition: service_started}, cache: {condition: service_healthy}}\n\
             networks: {front: null, back: {aliases: [b]}}\nhealthcheck: {test: [CMD, b], interval: 1s}\n\
             build: {context: ./app, dockerfile: D}\n\
             deploy: {replicas: 2, resources: {limits: {memory: 64m, cpus: '0.5'}}}\n",
        );
        assert_eq!(got, want, "{}", serde_yaml_ng::to_string(&got).unwrap());
    }

    #[test]
    fn reset_and_override_tags() {
        let base = yaml("image: a\nports: ['8080:80']\nenvironment: {FOO: bar, KEEP: '1'}\n");
        let over = yaml("ports: !override ['8443:443']\nenvironment: {FOO: !reset null}\nimage: !reset null\n");
        assert_eq!(service(base, over), yaml("ports: ['8443:443']\nenvironment: {KEEP: '1'}\n"));
        // A file read alone: the tags go, and so does a key set to !reset.
        assert_eq!(strip(yaml("a: !override [1]\nb: !reset x\nc: 2\n")), yaml("a: [1]\nc: 2\n"));
        // Other tags are left for the reader to refuse.
        assert!(matches!(strip(yaml("a: !Ref x\n")).get("a"), Some(Value::Tagged(_))));
    }

    #[test]
    fn files_merge_services_by_service_rules_and_add_the_rest() {
        let a = yaml("services:\n  web: {image: a, ports: ['80:80']}\nnetworks:\n  n: {labels: {a: '1'}}\n");
        let b =
            yaml("services:\n  web: {ports: [80:80, 81:81]}\n  db: {image: d}\nnetworks:\n  n: {labels: {b: '2'}}\n");
        let got = file(a, b);
        let want = yaml(
            "services:\n  web: {image: a, ports: ['80:80', '81:81']}\n  db: {image: d}\n\
             networks:\n  n: {labels: {a: '1', b: '2'}}\n",
        );
        assert_eq!(got, want, "{}", serde_yaml_ng::to_string(&got).unwrap());
    }

    #[test]
    fn port_keys() {
        let key = |s: &str| unique_key("ports", &Value::String(s.into())).unwrap();
        assert_eq!(key("8080:80"), "|8080|80|tcp");
        assert_eq!(key("127.0.0.1:8080:80/udp"), "127.0.0.1|8080|80|udp");
        assert_eq!(key("80"), "||80|tcp");
        assert_eq!(key("[::1]:8080:80"), "[::1]|8080|80|tcp");
        assert_eq!(unique_key("ports", &Value::Number(80.into())).unwrap(), "||80|tcp");
    }
}
