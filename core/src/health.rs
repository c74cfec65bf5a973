//! Active health checks: TCP connect or HTTP GET, with an interval, a timeout, and rise/fall counts
//! (HAProxy's `inter`, `timeout check`, `rise`, `fall`).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, Result};

/// How to check an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthCheck {
    /// `tcp` (default: the port accepts a connection) or `http` (a GET answers with a status in range).
    pub kind: String,
    /// Path of the HTTP GET (default `/`).
    pub path: String,
    /// Lowest passing HTTP status (default 200).
    pub min_status: u16,
    /// Highest passing HTTP status (default 399).
    pub max_status: u16,
    /// Time between checks (default 2 s).
    #[serde(with = "crate::serde_ms")]
    pub interval: Duration,
    /// Time one check may take (default 1 s).
    #[serde(with = "crate::serde_ms")]
    pub timeout: Duration,
    /// Consecutive successes that make a failing instance pass again (default 2).
    pub rise: u32,
    /// Consecutive failures that make a passing instance fail (default 3).
    pub fall: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            kind: "tcp".into(),
            path: "/".into(),
            min_status: 200,
            max_status: 399,
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            rise: 2,
            fall: 3,
        }
    }
}

impl HealthCheck {
    /// Checks the settings; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if self.kind != "tcp" && self.kind != "http" {
            return Err(Error::invalid("kind", format!("{:?} is not tcp or http", self.kind)));
        }
        if !self.path.starts_with('/') || self.path.contains(char::is_whitespace) {
            return Err(Error::invalid("path", format!("{:?} must start with / and have no spaces", self.path)));
        }
        if self.min_status > self.max_status || self.min_status < 100 || self.max_status > 599 {
            return Err(Error::invalid("min_status", "the status range must lie within 100-599, min ≤ max"));
        }
        if self.interval < Duration::from_millis(10) {
            return Err(Error::invalid("interval", "must be at least 10 ms"));
        }
        if self.timeout.is_zero() {
            return Err(Error::invalid("timeout", "must be positive"));
        }
        if self.rise == 0 || self.fall == 0 {
            return Err(Error::invalid(if self.rise == 0 { "rise" } else { "fall" }, "must be at least 1"));
        }
        Ok(())
    }

    /// Runs one check against `address:port`; `Err` says why it failed.
    pub async fn probe(&self, address: &str, port: u16) -> std::result::Result<(), String> {
        let work = async {
            let mut s = tokio::net::TcpStream::connect((address, port)).await.map_err(|e| format!("connect: {e}"))?;
            if self.kind == "tcp" {
                return Ok(());
            }
            let req = format!("GET {} HTTP/1.0\r\nHost: {address}\r\nUser-Agent: dockfleet-health\r\n\r\n", self.path);
            s.write_all(req.as_bytes()).await.map_err(|e| format!("send: {e}"))?;
            let mut head = [0u8; 32];
            let mut n = 0;
            while n < 12 {
                let k = s.read(&mut head[n..]).await.map_err(|e| format!("read: {e}"))?;
                if k == 0 {
                    break;
                }
                n += k;
            }
            let line = String::from_utf8_lossy(&head[..n]);
            let status: u16 = line
                .strip_prefix("HTTP/1.")
                .and_then(|r| r.get(2..5))
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| format!("not an HTTP answer: {line:?}"))?;
            if (self.min_status..=self.max_status).contains(&status) {
                Ok(())
            } else {
                Err(format!("HTTP {status}"))
            }
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        }
    }
}

/// The rise/fall state of one instance's checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CheckState {
    passing: Option<bool>,
    streak: u32,
}

impl CheckState {
    /// Feeds one result; returns the new verdict when it changed. The first result decides at once
    /// (an instance is not held back `rise` intervals at start); after that `rise` successes or `fall`
    /// failures in a row flip it.
    pub(crate) fn feed(&mut self, ok: bool, check: &HealthCheck) -> Option<bool> {
        let Some(passing) = self.passing else {
            self.passing = Some(ok);
            return Some(ok);
        };
        if ok == passing {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        if self.streak >= if ok { check.rise } else { check.fall } {
            self.passing = Some(ok);
            self.streak = 0;
            return Some(ok);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rise_and_fall() {
        let c = HealthCheck { rise: 2, fall: 3, ..Default::default() };
        let mut s = CheckState::default();
        assert_eq!(s.feed(true, &c), Some(true), "the first result decides");
        assert_eq!(s.feed(false, &c), None);
        assert_eq!(s.feed(false, &c), None);
        assert_eq!(s.feed(true, &c), None, "a success resets the failure streak");
        assert_eq!((s.feed(false, &c), s.feed(false, &c), s.feed(false, &c)), (None, None, Some(false)));
        assert_eq!((s.feed(true, &c), s.feed(true, &c)), (None, Some(true)));
    }

    #[test]
    fn validation_names_the_field() {
        for (field, c) in [
            ("kind", HealthCheck { kind: "udp".into(), ..Default::default() }),
            ("path", HealthCheck { path: "health".into(), ..Default::default() }),
            ("min_status", HealthCheck { min_status: 500, max_status: 200, ..Default::default() }),
            ("rise", HealthCheck { rise: 0, ..Default::default() }),
        ] {
            assert!(c.validate().unwrap_err().to_string().contains(field), "{field}");
        }
        HealthCheck::default().validate().unwrap();
    }

    #[tokio::test]
    async fn tcp_and_http_probes_on_loopback() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut n = 0;
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                n += 1;
                let status = if n % 2 == 1 { "200 OK" } else { "503 Service Unavailable" };
                let mut buf = [0u8; 256];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes()).await;
            }
        });
        let http = HealthCheck { kind: "http".into(), ..Default::default() };
        assert_eq!(http.probe("127.0.0.1", port).await, Ok(()));
        assert_eq!(http.probe("127.0.0.1", port).await, Err("HTTP 503".into()));
        let tcp = HealthCheck::default();
        assert_eq!(tcp.probe("127.0.0.1", port).await, Ok(()));
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        assert!(tcp.probe("127.0.0.1", closed).await.unwrap_err().starts_with("connect"));
    }
}
