//! Issue 9's layering rules, checked on the source tree so a change that breaks one fails here.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files
}

/// Every `.rs` file under `src/<dir>` whose text contains `needle`, with the file count, so a
/// wrong directory cannot pass by finding nothing to search.
fn files_containing(dir: &str, needle: &str) -> (usize, Vec<String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
    let files = rust_files(&root);
    let hits = files
        .iter()
        .filter(|path| {
            std::fs::read_to_string(path)
                .expect("a readable source file")
                .contains(needle)
        })
        .map(|path| path.display().to_string())
        .collect();
    (files.len(), hits)
}

/// `app` builds the router from `http`; `http` takes its state from `state`, below both.
#[test]
fn http_does_not_import_the_application() {
    let (searched, hits) = files_containing("http", "crate::app");
    assert!(searched > 5, "src/http has only {searched} files");
    assert!(hits.is_empty(), "http imports crate::app: {hits:?}");
}

/// The database returns rows; the API's JSON is shaped by the wire types in `http/wire`.
#[test]
fn no_json_for_the_api_is_built_in_sql() {
    let (searched, hits) = files_containing("db", "json_build_object");
    assert!(searched > 10, "src/db has only {searched} files");
    assert!(hits.is_empty(), "db builds JSON in SQL: {hits:?}");
}
