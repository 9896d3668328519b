//! Helpers for tests of process-wide state: the metrics and the event sink
//! are shared by every context of a test binary, so such tests take one
//! lock ([`serial`]) and check deltas ([`scrape`], [`delta`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tinymls::events::{self, Level};
use tinymls::metrics;

static SERIAL: Mutex<()> = Mutex::new(());

/// Held by every test of a binary that reads or sets process-wide state.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// `metric{labels}` -> value, from the exposition text.
pub fn scrape() -> HashMap<String, f64> {
    metrics::render()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse::<f64>().unwrap())
        })
        .collect()
}

/// How much the metric `key` grew from `before` to `after`.
pub fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>, key: &str) -> f64 {
    after.get(key).unwrap_or_else(|| panic!("no metric {key}")) - before.get(key).copied().unwrap_or(0.0)
}

/// The events delivered to [`capture`]'s sink: level and JSON text.
pub type Captured = Arc<Mutex<Vec<(Level, String)>>>;

/// Sets the process's event sink to one that records every event at or
/// above `min`.
pub fn capture(min: Level) -> Captured {
    let got: Captured = Arc::default();
    let sink = got.clone();
    events::set_sink(Some(Arc::new(move |lvl, json: &str| sink.lock().unwrap().push((lvl, json.to_string())))), min);
    got
}
