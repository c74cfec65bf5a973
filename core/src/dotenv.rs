//! `.env` and `env_file` files, read as compose reads them.
//!
//! One `KEY=VALUE` per line; blank lines and lines starting with `#` are skipped, and a leading
//! `export ` is dropped. A value in single quotes is taken as written; one in double quotes takes the
//! escapes `\n`, `\r`, `\t`, `\\`, `\"` and `\$`; both may span lines. An unquoted value ends at a
//! ` #` comment and is trimmed. Unquoted and double-quoted values have their variables substituted
//! (`${VAR}` and the other compose forms), from the keys above them in the file and then from the
//! environment given. A line `KEY` without `=` takes the environment's value, and is left out when
//! the environment has none.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};

/// How large an env file may be: they are read whole.
const MAX_BYTES: u64 = 1 << 20;

/// Reads the env file `path`, naming `field` in its errors (with the file's line). Variables come
/// from the file's earlier keys, then from `env`.
pub(crate) fn read(field: &str, path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<BTreeMap<String, String>> {
    let text =
        crate::files::read_text(path, MAX_BYTES).map_err(|why| Error::invalid(field, format!("env file {why}")))?;
    parse(&text, env).map_err(|(line, why)| Error::invalid(field, format!("{}:{line}: {why}", path.display())))
}

/// Parses env-file text; an error is the 1-based line and why.
pub(crate) fn parse(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<BTreeMap<String, String>, (usize, String)> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let line_no = n + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map(str::trim_start).unwrap_or(line);
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim_start())),
            None => (line, None),
        };
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
            return Err((line_no, format!("{key:?} is not a variable name (expected KEY=VALUE)")));
        }
        let Some(value) = value else {
            if let Some(v) = env(key) {
                out.insert(key.to_string(), v);
            }
            continue;
        };
        let lookup = |k: &str| out.get(k).cloned().or_else(|| env(k));
        let substitute = |v: &str| {
            crate::stack::interpolate(key, v, &lookup).map_err(|e| match e {
                Error::InvalidArgument { message, .. } => (line_no, message),
                other => (line_no, other.to_string()),
            })
        };
        let value = match value.chars().next() {
            Some(q @ ('\'' | '"')) => {
                // The quoted value, continued on the following lines until its closing quote.
                let mut raw = value[1..].to_string();
                let end = loop {
                    if let Some(end) = closing_quote(&raw, q) {
                        break end;
                    }
                    let Some((_, next)) = lines.next() else {
                        return Err((line_no, format!("the value of {key} has no closing {q}")));
                    };
                    raw.push('\n');
                    raw.push_str(next);
                };
                let after = raw[end + 1..].trim();
                if !(after.is_empty() || after.starts_with('#')) {
                    return Err((line_no, format!("text after the closing quote of {key}: {after:?}")));
                }
                raw.truncate(end);
                if q == '\'' {
                    raw
                } else {
                    substitute(&unescape(&raw))?
                }
            }
            _ => {
                let v = match value.find(" #").or_else(|| value.find("\t#")) {
                    Some(i) => &value[..i],
                    None => value,
                };
                substitute(v.trim_end())?
            }
        };
        out.insert(key.to_string(), value);
    }
    Ok(out)
}

/// Where the quote `q` closing `raw` is (a double quote may be escaped with `\`).
fn closing_quote(raw: &str, q: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in raw.char_indices() {
        match c {
            '\\' if q == '"' && !escaped => escaped = true,
            c if c == q && !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

/// A double-quoted value's escapes. `\$` stays `$$`, which substitution then turns into a `$`.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('$') => out.push_str("$$"),
            Some(c @ ('\\' | '"')) => out.push(c),
            Some(c) => {
                out.push('\\');
                out.push(c);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "HOME" => Some("/home/me".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn parsed(text: &str) -> BTreeMap<String, String> {
        parse(text, &env).unwrap()
    }

    #[test]
    fn plain_quoted_and_commented_values() {
        let got = parsed(
            "# a comment\n\nA=1\nexport B = two words  # said\nC='single ${HOME} # kept'\nD=\"x\\ty\\\"z\\$HOME\"\nE=\nF=a#b\n",
        );
        assert_eq!(got["A"], "1");
        assert_eq!(got["B"], "two words");
        assert_eq!(got["C"], "single ${HOME} # kept");
        assert_eq!(got["D"], "x\ty\"z$HOME");
        assert_eq!(got["E"], "");
        assert_eq!(got["F"], "a#b", "a # inside a word is not a comment");
    }

    #[test]
    fn variables_come_from_earlier_keys_then_the_environment() {
        let got = parsed("A=1\nB=${A}-$HOME\nC=\"${MISSING:-dflt}\"\nHOME=/over\nD=$HOME\nE\nUNSET_ONE\n");
        assert_eq!(got["B"], "1-/home/me");
        assert_eq!(got["C"], "dflt");
        assert_eq!(got["D"], "/over", "a key of the file wins over the environment below it");
        assert_eq!(got.get("E"), None, "a bare key the environment lacks is left out");
        let got = parse("EMPTY\nHOME\n", &env).unwrap();
        assert_eq!(got["HOME"], "/home/me");
        assert_eq!(got["EMPTY"], "");
    }

    #[test]
    fn quoted_values_span_lines() {
        let got = parsed("KEY=\"-----BEGIN\nabc\n-----END\"\nNEXT='a\nb' # c\nLAST=1\n");
        assert_eq!(got["KEY"], "-----BEGIN\nabc\n-----END");
        assert_eq!(got["NEXT"], "a\nb");
        assert_eq!(got["LAST"], "1");
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(parse("A=1\n=2\n", &env).unwrap_err().0, 2);
        assert!(parse("A=1\nBAD KEY=2\n", &env).unwrap_err().1.contains("not a variable name"));
        let (line, why) = parse("A=1\nB=\"open\nstill\n", &env).unwrap_err();
        assert_eq!(line, 2);
        assert!(why.contains("no closing"), "{why}");
        assert!(parse("A='x' y\n", &env).unwrap_err().1.contains("after the closing quote"));
        assert!(parse("A=${NOPE:?must be set}\n", &env).unwrap_err().1.contains("must be set"));
    }
}
