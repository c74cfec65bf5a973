//! The median of a benchmark's samples, shared by the bench binaries.

/// The median of `v` (sorted in place); the mean of the two middle ones for an even count.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    }
}
