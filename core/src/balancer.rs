//! Load-balancing strategies with passive health: which endpoint gets the next request.
//!
//! [`Balancer`] holds a set of endpoints and picks one per request with the configured strategy:
//! `round-robin`, `weighted` (nginx's smooth weighted round robin), `least-connections`, `p2c` (power
//! of two choices on requests in flight), `p2c-ewma` (two choices on latency EWMA × load),
//! `consistent-hash` (a ring with virtual nodes: when an endpoint leaves, only its keys move) and
//! `random`. Random choices come from a seeded generator, so a seed replays the same picks.
//!
//! Passive health follows nginx's `max_fails`/`fail_timeout` and Envoy's outlier detection: `max_fails`
//! failures within `fail_window` eject an endpoint for `ejection`. The last endpoint is never ejected:
//! the refusal is logged and counted instead, so a fully failing backend is visible, not silently empty.
//! Endpoints can be replaced at any time (from a discovery watch); the counters of those that stay are
//! kept.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::Later;

/// One endpoint requests can go to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Endpoint {
    /// Stable identity (a discovery instance ID, say).
    pub id: String,
    /// Address.
    pub address: String,
    /// Port.
    pub port: u16,
    /// Relative weight for `weighted` (and the ring share for `consistent-hash`); default 1.
    pub weight: u32,
}

impl Default for Endpoint {
    fn default() -> Self {
        Endpoint { id: String::new(), address: String::new(), port: 0, weight: 1 }
    }
}

/// How a [`Balancer`] chooses and when it ejects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BalancerOptions {
    /// `round-robin` (default), `weighted`, `least-connections`, `p2c`, `p2c-ewma`,
    /// `consistent-hash` or `random`.
    pub strategy: String,
    /// Seed of the random choices (`p2c`, `p2c-ewma`, `random`).
    pub seed: u64,
    /// Failures within `fail_window` that eject an endpoint (default 3; 0 disables ejection).
    pub max_fails: u32,
    /// Window in which failures are counted (default 10 s).
    #[serde(with = "crate::serde_ms")]
    pub fail_window: Duration,
    /// How long an ejected endpoint gets no requests (default 10 s).
    #[serde(with = "crate::serde_ms")]
    pub ejection: Duration,
    /// Points per unit of weight on the consistent-hash ring (default 160).
    pub virtual_nodes: u32,
}

impl Default for BalancerOptions {
    fn default() -> Self {
        BalancerOptions {
            strategy: "round-robin".into(),
            seed: 0,
            max_fails: 3,
            fail_window: Duration::from_secs(10),
            ejection: Duration::from_secs(10),
            virtual_nodes: 160,
        }
    }
}

const STRATEGIES: &[&str] =
    &["round-robin", "weighted", "least-connections", "p2c", "p2c-ewma", "consistent-hash", "random"];

impl BalancerOptions {
    /// Checks the options; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if !STRATEGIES.contains(&self.strategy.as_str()) {
            return Err(Error::invalid(
                "strategy",
                format!("{:?} is not one of {}", self.strategy, STRATEGIES.join(", ")),
            ));
        }
        if self.max_fails > 0 && self.fail_window.is_zero() {
            return Err(Error::invalid("fail_window", "must be positive when max_fails is set"));
        }
        if self.virtual_nodes == 0 || self.virtual_nodes > 10_000 {
            return Err(Error::invalid("virtual_nodes", "must be 1-10000"));
        }
        Ok(())
    }
}

/// An endpoint's counters, readable from code.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointStats {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Requests picked for it.
    pub requests: u64,
    /// Requests reported failed.
    pub failures: u64,
    /// Requests picked and not yet released.
    pub in_flight: u64,
    /// Latency EWMA of successful requests, milliseconds.
    pub ewma_ms: f64,
    /// Whether it is ejected now.
    pub ejected: bool,
    /// Times it was ejected.
    pub ejections: u64,
    /// Times ejecting it was refused because it was the last one available.
    pub ejections_refused: u64,
}

#[derive(Debug)]
struct Slot {
    stats: EndpointStats,
    recent_failures: Vec<Instant>,
    ejected_until: Option<Instant>,
    current_weight: i64,
}

#[derive(Debug)]
struct Inner {
    slots: Vec<Slot>,
    ring: Vec<(u64, usize)>,
    next: usize,
    rng: u64,
    /// Reused for the available endpoints of each pick (no allocation per request).
    scratch: Vec<usize>,
}

/// Picks endpoints for requests; safe to share between tasks.
#[derive(Debug)]
pub struct Balancer {
    options: BalancerOptions,
    inner: Mutex<Inner>,
}

/// SplitMix64: small, fast and seedable.
fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub(crate) fn hash(bytes: &[u8]) -> u64 {
    // FNV-1a, then a SplitMix64 finaliser for spread.
    let mut h =
        bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3));
    next_random(&mut h)
}

const EWMA_DECAY: f64 = 0.3;

impl Balancer {
    /// A balancer with no endpoints yet.
    pub fn new(options: BalancerOptions) -> Result<Self> {
        options.validate()?;
        let rng = options.seed ^ 0x5eed;
        Ok(Balancer {
            options,
            inner: Mutex::new(Inner { slots: Vec::new(), ring: Vec::new(), next: 0, rng, scratch: Vec::new() }),
        })
    }

    /// The options it was made with.
    pub fn options(&self) -> &BalancerOptions {
        &self.options
    }

    /// Replaces the endpoint set; endpoints that stay (same ID) keep their counters and ejection.
    pub fn set_endpoints(&self, endpoints: Vec<Endpoint>) -> Result<()> {
        for (i, e) in endpoints.iter().enumerate() {
            if e.id.is_empty() {
                return Err(Error::invalid(format!("endpoints[{i}].id"), "must not be empty"));
            }
            if e.weight == 0 {
                return Err(Error::invalid(format!("endpoints[{i}].weight"), "must be at least 1"));
            }
        }
        let mut inner = self.inner.lock().expect("balancer lock");
        let mut old: BTreeMap<String, Slot> = inner.slots.drain(..).map(|s| (s.stats.endpoint.id.clone(), s)).collect();
        let mut seen = std::collections::BTreeSet::new();
        for e in endpoints {
            if !seen.insert(e.id.clone()) {
                continue;
            }
            let slot = match old.remove(&e.id) {
                Some(mut s) => {
                    s.stats.endpoint = e;
                    s
                }
                None => Slot {
                    stats: EndpointStats { endpoint: e, ..Default::default() },
                    recent_failures: Vec::new(),
                    ejected_until: None,
                    current_weight: 0,
                },
            };
            inner.slots.push(slot);
        }
        let mut ring = Vec::new();
        for (i, s) in inner.slots.iter().enumerate() {
            for v in 0..self.options.virtual_nodes * s.stats.endpoint.weight.min(100) {
                ring.push((hash(format!("{}#{v}", s.stats.endpoint.id).as_bytes()), i));
            }
        }
        ring.sort_unstable();
        inner.ring = ring;
        Ok(())
    }

    /// Picks an endpoint for a request (`key` is used by `consistent-hash`: a client address or a
    /// header value). `None` when there is no endpoint. Call [`Balancer::release`] when it is done.
    pub fn pick(&self, key: Option<&str>) -> Option<Endpoint> {
        self.pick_at(key, Instant::now())
    }

    /// [`Balancer::pick`] at a given time (for tests and simulations).
    pub fn pick_at(&self, key: Option<&str>, now: Instant) -> Option<Endpoint> {
        self.pick_except(key, &[], now)
    }

    /// [`Balancer::pick_at`] among the endpoints whose ID is not in `except` (those a request already
    /// failed on); `None` when none is left.
    pub(crate) fn pick_except(&self, key: Option<&str>, except: &[String], now: Instant) -> Option<Endpoint> {
        let mut inner = self.inner.lock().expect("balancer lock");
        let inner = &mut *inner;
        if inner.slots.is_empty() {
            return None;
        }
        for s in &mut inner.slots {
            if s.ejected_until.is_some_and(|t| t <= now) {
                s.ejected_until = None;
            }
        }
        let mut available = std::mem::take(&mut inner.scratch);
        available.clear();
        // Everything ejected cannot happen (the last one is never ejected), but be safe.
        let all_ejected = inner.slots.iter().all(|s| s.ejected_until.is_some());
        available.extend((0..inner.slots.len()).filter(|i| {
            let s = &inner.slots[*i];
            (all_ejected || s.ejected_until.is_none()) && !except.contains(&s.stats.endpoint.id)
        }));
        if available.is_empty() {
            inner.scratch = available;
            return None;
        }
        let chosen = match self.options.strategy.as_str() {
            "weighted" => {
                let total: i64 = available.iter().map(|i| i64::from(inner.slots[*i].stats.endpoint.weight)).sum();
                for i in &available {
                    let s = &mut inner.slots[*i];
                    s.current_weight += i64::from(s.stats.endpoint.weight);
                }
                let best = *available
                    .iter()
                    .max_by_key(|i| (inner.slots[**i].current_weight, std::cmp::Reverse(**i)))
                    .expect("available is not empty");
                inner.slots[best].current_weight -= total;
                best
            }
            "least-connections" => {
                let start = inner.next;
                inner.next = inner.next.wrapping_add(1);
                let n = available.len();
                *(0..n)
                    .map(|k| &available[(start + k) % n])
                    .min_by_key(|i| inner.slots[**i].stats.in_flight)
                    .expect("available is not empty")
            }
            "p2c" | "p2c-ewma" => {
                let n = available.len();
                let a = available[(next_random(&mut inner.rng) % n as u64) as usize];
                let b = if n > 1 {
                    let k = (next_random(&mut inner.rng) % (n as u64 - 1)) as usize;
                    let bi = available.iter().position(|x| *x == a).expect("a is available");
                    available[if k >= bi { k + 1 } else { k }]
                } else {
                    a
                };
                let cost = |i: usize| {
                    let s = &inner.slots[i].stats;
                    if self.options.strategy == "p2c" {
                        s.in_flight as f64
                    } else {
                        (s.ewma_ms.max(0.001)) * (s.in_flight as f64 + 1.0)
                    }
                };
                if cost(b) < cost(a) {
                    b
                } else {
                    a
                }
            }
            "consistent-hash" => {
                let h = hash(key.unwrap_or_default().as_bytes());
                let start = inner.ring.partition_point(|(p, _)| *p < h);
                let len = inner.ring.len();
                (0..len)
                    .map(|k| inner.ring[(start + k) % len].1)
                    .find(|i| available.contains(i))
                    .unwrap_or(available[0])
            }
            "random" => available[(next_random(&mut inner.rng) % available.len() as u64) as usize],
            _ => {
                let i = available[inner.next % available.len()];
                inner.next = inner.next.wrapping_add(1);
                i
            }
        };
        inner.scratch = available;
        let s = &mut inner.slots[chosen];
        s.stats.requests += 1;
        s.stats.in_flight += 1;
        Some(s.stats.endpoint.clone())
    }

    /// Picks this endpoint (a sticky session's) when it is present and not ejected.
    pub(crate) fn pick_id(&self, id: &str, now: Instant) -> Option<Endpoint> {
        let mut inner = self.inner.lock().expect("balancer lock");
        let s = inner.slots.iter_mut().find(|s| s.stats.endpoint.id == id)?;
        if s.ejected_until.is_some_and(|t| t > now) {
            return None;
        }
        s.stats.requests += 1;
        s.stats.in_flight += 1;
        Some(s.stats.endpoint.clone())
    }

    /// Reports a request picked with [`Balancer::pick`] as done: `ok` or failed, and how long it took.
    pub fn release(&self, id: &str, ok: bool, latency: Duration) {
        self.release_at(id, ok, latency, Instant::now())
    }

    /// [`Balancer::release`] at a given time.
    pub fn release_at(&self, id: &str, ok: bool, latency: Duration, now: Instant) {
        let mut inner = self.inner.lock().expect("balancer lock");
        let available_others =
            inner.slots.iter().filter(|s| s.stats.endpoint.id != id && s.ejected_until.is_none()).count();
        let Some(s) = inner.slots.iter_mut().find(|s| s.stats.endpoint.id == id) else { return };
        s.stats.in_flight = s.stats.in_flight.saturating_sub(1);
        if ok {
            let ms = latency.as_secs_f64() * 1e3;
            s.stats.ewma_ms =
                if s.stats.ewma_ms == 0.0 { ms } else { EWMA_DECAY * ms + (1.0 - EWMA_DECAY) * s.stats.ewma_ms };
            return;
        }
        s.stats.failures += 1;
        if self.options.max_fails == 0 {
            return;
        }
        let window = self.options.fail_window;
        s.recent_failures.retain(|t| now.duration_since(*t) < window);
        s.recent_failures.push(now);
        if s.recent_failures.len() as u32 >= self.options.max_fails && s.ejected_until.is_none() {
            if available_others == 0 {
                s.stats.ejections_refused += 1;
                tracing::warn!(endpoint = %id, "not ejecting the last available endpoint although it keeps failing");
            } else {
                s.ejected_until = Some(now.later(self.options.ejection));
                s.stats.ejections += 1;
                s.recent_failures.clear();
                tracing::info!(endpoint = %id, for_ = ?self.options.ejection, "endpoint ejected after repeated failures");
            }
        }
    }

    /// Every endpoint's counters.
    pub fn stats(&self) -> Vec<EndpointStats> {
        let now = Instant::now();
        let inner = self.inner.lock().expect("balancer lock");
        inner
            .slots
            .iter()
            .map(|s| EndpointStats { ejected: s.ejected_until.is_some_and(|t| t > now), ..s.stats.clone() })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eps(weights: &[u32]) -> Vec<Endpoint> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| Endpoint {
                id: format!("e{i}"),
                address: "10.0.0.1".into(),
                port: 8000 + i as u16,
                weight: *w,
            })
            .collect()
    }

    fn balancer(strategy: &str, weights: &[u32]) -> Balancer {
        let b = Balancer::new(BalancerOptions { strategy: strategy.into(), seed: 7, ..Default::default() }).unwrap();
        b.set_endpoints(eps(weights)).unwrap();
        b
    }

    fn picks(b: &Balancer, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                let e = b.pick(None).unwrap();
                b.release(&e.id, true, Duration::from_millis(1));
                e.id
            })
            .collect()
    }

    #[test]
    fn round_robin_and_smooth_weighted() {
        assert_eq!(picks(&balancer("round-robin", &[1, 1, 1]), 6), ["e0", "e1", "e2", "e0", "e1", "e2"]);
        // nginx's smooth weighted round robin for weights 5, 1, 1: a a b a c a a.
        assert_eq!(picks(&balancer("weighted", &[5, 1, 1]), 7), ["e0", "e0", "e1", "e0", "e2", "e0", "e0"]);
    }

    #[test]
    fn least_connections_and_p2c_avoid_busy_endpoints() {
        for strategy in ["least-connections", "p2c"] {
            let b = balancer(strategy, &[1, 1, 1]);
            // e0 and e1 are each busy with 5 requests that have not finished.
            {
                let mut inner = b.inner.lock().unwrap();
                inner.slots[0].stats.in_flight = 5;
                inner.slots[1].stats.in_flight = 5;
            }
            let next: Vec<String> = (0..20).map(|_| b.pick(None).unwrap().id).collect();
            let to_idle = next.iter().filter(|id| *id == "e2").count();
            assert!(to_idle >= 10, "{strategy}: only {to_idle} of 20 went to the idle endpoint");
        }
    }

    #[test]
    fn p2c_ewma_prefers_the_fast_endpoint() {
        let b = balancer("p2c-ewma", &[1, 1]);
        for _ in 0..50 {
            let e = b.pick(None).unwrap();
            let slow = e.id == "e0";
            b.release(&e.id, true, Duration::from_millis(if slow { 50 } else { 1 }));
        }
        let fast = picks(&b, 100).iter().filter(|id| *id == "e1").count();
        assert!(fast >= 90, "{fast} of 100 to the fast endpoint");
    }

    #[test]
    fn consistent_hashing_moves_only_the_keys_of_a_leaving_endpoint() {
        let b = balancer("consistent-hash", &[1, 1, 1, 1, 1]);
        let keys: Vec<String> = (0..2000).map(|i| format!("10.1.{}.{}", i / 256, i % 256)).collect();
        let before: Vec<String> = keys.iter().map(|k| b.pick(Some(k)).unwrap().id).collect();
        assert_eq!(keys.iter().map(|k| b.pick(Some(k)).unwrap().id).collect::<Vec<_>>(), before, "stable");
        b.set_endpoints(eps(&[1, 1, 1, 1, 1]).into_iter().filter(|e| e.id != "e2").collect()).unwrap();
        let after: Vec<String> = keys.iter().map(|k| b.pick(Some(k)).unwrap().id).collect();
        let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        let owned = before.iter().filter(|id| *id == "e2").count();
        assert_eq!(moved, owned, "only e2's keys moved");
        assert!((250..550).contains(&owned), "e2 owned {owned} of 2000 keys (about a fifth)");
    }

    #[test]
    fn random_is_seeded_and_spread() {
        let a = picks(&balancer("random", &[1, 1, 1, 1]), 400);
        let b = picks(&balancer("random", &[1, 1, 1, 1]), 400);
        assert_eq!(a, b, "same seed, same picks");
        for id in ["e0", "e1", "e2", "e3"] {
            let n = a.iter().filter(|x| *x == id).count();
            assert!((60..140).contains(&n), "{id}: {n} of 400");
        }
    }

    #[test]
    fn failures_eject_for_a_while_but_never_the_last_endpoint() {
        let b = Balancer::new(BalancerOptions {
            max_fails: 2,
            fail_window: Duration::from_secs(10),
            ejection: Duration::from_secs(5),
            ..Default::default()
        })
        .unwrap();
        b.set_endpoints(eps(&[1, 1])).unwrap();
        let t0 = Instant::now();
        for _ in 0..2 {
            b.pick_at(None, t0);
            b.release_at("e0", false, Duration::ZERO, t0);
        }
        let during: Vec<String> = (0..4).map(|_| b.pick_at(None, t0 + Duration::from_secs(1)).unwrap().id).collect();
        assert_eq!(during, ["e1"; 4]);
        // e1 fails too: it is the last one available, so it stays (and the refusal is counted).
        for _ in 0..3 {
            b.release_at("e1", false, Duration::ZERO, t0 + Duration::from_secs(1));
        }
        assert_eq!(b.pick_at(None, t0 + Duration::from_secs(2)).unwrap().id, "e1");
        let stats = b.stats();
        assert_eq!(
            (stats[0].ejections, stats[1].ejections_refused),
            (1, 2),
            "each failure past the limit is a refusal"
        );
        // After the ejection e0 is back.
        let later: Vec<String> = (0..4).map(|_| b.pick_at(None, t0 + Duration::from_secs(6)).unwrap().id).collect();
        assert!(later.contains(&"e0".to_string()), "{later:?}");
    }

    #[test]
    fn an_ejection_of_any_length_ejects_without_a_panic() {
        // `Instant + Duration::MAX` panics; an ejection "for ever" must not.
        let b = Balancer::new(BalancerOptions {
            max_fails: 1,
            fail_window: Duration::MAX,
            ejection: Duration::MAX,
            ..Default::default()
        })
        .unwrap();
        b.set_endpoints(eps(&[1, 1])).unwrap();
        let t0 = Instant::now();
        b.pick_at(None, t0);
        b.release_at("e0", false, Duration::ZERO, t0);
        let picks: Vec<String> =
            (0..4).map(|_| b.pick_at(None, t0 + Duration::from_secs(365 * 24 * 3600)).unwrap().id).collect();
        assert_eq!(picks, ["e1"; 4], "still ejected a year later");
        assert_eq!(b.stats()[0].ejections, 1);
    }

    #[test]
    fn endpoints_that_stay_keep_their_counters_and_bad_input_is_refused() {
        let b = balancer("round-robin", &[1, 1]);
        picks(&b, 4);
        b.set_endpoints(eps(&[1, 1, 1])).unwrap();
        let stats = b.stats();
        assert_eq!(stats.iter().map(|s| s.requests).collect::<Vec<_>>(), [2, 2, 0]);
        let e = Balancer::new(BalancerOptions { strategy: "fastest".into(), ..Default::default() }).unwrap_err();
        assert!(e.to_string().contains("strategy"));
        let e = b.set_endpoints(vec![Endpoint { id: "x".into(), weight: 0, ..Default::default() }]).unwrap_err();
        assert!(e.to_string().contains("endpoints[0].weight"));
        assert!(Balancer::new(BalancerOptions::default()).unwrap().pick(None).is_none());
    }
}
