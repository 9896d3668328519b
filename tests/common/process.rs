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

/// Sleeps into the next wall-clock second, 20 ms in: the event limiters'
/// windows are wall-clock seconds.
pub fn next_second() {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1020 - u64::from(now.subsec_millis())));
}

/// Among the JSON texts of delivered events: how many events of `kind`,
/// and how many the `events_suppressed` summaries for `kind` say were
/// suppressed.
pub fn flood_counts<'a>(events: impl IntoIterator<Item = &'a str>, kind: &str) -> (usize, u64) {
    let (event, summarised) = (format!(r#""event":"{kind}""#), format!(r#""kind":"{kind}""#));
    let (mut delivered, mut suppressed) = (0, 0);
    for j in events {
        if j.contains(&event) {
            delivered += 1;
        } else if j.contains(r#""event":"events_suppressed""#) && j.contains(&summarised) {
            suppressed += serde_json::from_str::<serde_json::Value>(j).unwrap()["count"].as_u64().unwrap();
        }
    }
    (delivered, suppressed)
}
