//! How the decisions word what they found, where several of them need the same.

/// How many errors or warnings a message lists before it says how many more there are: a condition
/// message is read in `kubectl get`/`describe`, and the event carries the same text.
const LISTED: usize = 3;

/// Up to [`LISTED`] entries joined with `; `, then how many were left out.
pub fn listing(entries: &[String]) -> String {
    let mut text = entries.iter().take(LISTED).cloned().collect::<Vec<_>>().join("; ");
    if entries.len() > LISTED {
        text.push_str(&format!("; and {} more", entries.len() - LISTED));
    }
    text
}
