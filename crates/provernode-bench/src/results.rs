//! The results file: rows of JSON, merged by their key so a long table is
//! filled over several runs and machines.

use crate::{BenchError, Row};

/// Reads a results file; a missing file is an empty one.
pub fn load(path: &std::path::Path) -> Result<Vec<Row>, BenchError> {
    load_rows(path, "bench results file", "--results")
}

/// Reads a JSON file of rows of any kind (`what` and `flag` name it in
/// errors); a missing file is an empty one.
pub(crate) fn load_rows<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
    what: &str,
    flag: &str,
) -> Result<Vec<T>, BenchError> {
    match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(BenchError::Results {
            path: path.display().to_string(),
            reason: e.to_string(),
        }),
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| BenchError::Results {
            path: path.display().to_string(),
            reason: format!("not a {what} ({e}); move it away or pick another {flag} path"),
        }),
    }
}

/// `old` with every row of `new` added, replacing rows with the same
/// (backend, kind, settings, program, input, host).
pub fn merge(old: Vec<Row>, new: &[Row]) -> Vec<Row> {
    let mut out: Vec<Row> = old
        .into_iter()
        .filter(|o| !new.iter().any(|n| n.key() == o.key()))
        .collect();
    out.extend_from_slice(new);
    out
}

/// Writes a results file atomically.
pub fn save(path: &std::path::Path, rows: &[Row]) -> Result<(), BenchError> {
    save_rows(path, rows)
}

/// Writes a JSON file of rows of any kind atomically.
pub(crate) fn save_rows<T: serde::Serialize>(path: &std::path::Path, rows: &[T]) -> Result<(), BenchError> {
    let err = |reason: String| BenchError::Results {
        path: path.display().to_string(),
        reason,
    };
    let json = serde_json::to_vec_pretty(rows).map_err(|e| err(e.to_string()))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, json).map_err(|e| err(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))
}
