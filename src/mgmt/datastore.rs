//! A rule set held as files: a map from relative path to text, loaded from and written to a
//! rules directory, versioned, compared, compiled.
//!
//! Paths are `*.toml` at the top level and `lists/<name>`, names of `[A-Za-z0-9._-]+` that do
//! not start with a dot (so a path can never leave the directory, and our temp files, which
//! start with a dot, are never taken for rule files).

use crate::rules::compile::Source;
use crate::rules::{compile_files, CompileErrors, CompileOptions, RuleSet};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Relative path -> text.
pub type Files = BTreeMap<String, String>;

/// The subdirectory of list files.
pub const LISTS_DIR: &str = "lists";

fn valid_name(n: &str) -> bool {
    !n.is_empty() && !n.starts_with('.') && n.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Checks a datastore path: `NAME.toml` or `lists/NAME`.
pub fn check_path(path: &str) -> Result<(), String> {
    let ok = match path.split_once('/') {
        None => valid_name(path) && path.ends_with(".toml") && path.len() > ".toml".len(),
        Some((dir, name)) => dir == LISTS_DIR && valid_name(name),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("bad path {path:?}: expected NAME.toml or lists/NAME, names of [A-Za-z0-9._-] not starting with a dot"))
    }
}

/// Checks every path of a map.
pub fn check_paths(files: &Files) -> Result<(), String> {
    files.keys().try_for_each(|p| check_path(p))
}

/// Reads the rule files of `dir`: top-level `*.toml` and every regular file of `lists/`.
/// Anything else (a README, examples/) is not part of the rule set and is left alone.
pub fn load_dir(dir: &Path) -> std::io::Result<Files> {
    let mut files = Files::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if check_path(&name).is_ok() && e.path().is_file() {
            files.insert(name, std::fs::read_to_string(e.path())?);
        }
    }
    let lists = dir.join(LISTS_DIR);
    if lists.is_dir() {
        for e in std::fs::read_dir(&lists)? {
            let e = e?;
            let rel = format!("{LISTS_DIR}/{}", e.file_name().to_string_lossy());
            if check_path(&rel).is_ok() && e.path().is_file() {
                files.insert(rel, std::fs::read_to_string(e.path())?);
            }
        }
    }
    Ok(files)
}

/// The directory that keeps the previous version of `dir`'s files: `<dir>.prev`.
pub fn prev_dir(dir: &Path) -> PathBuf {
    let mut s = dir.as_os_str().to_owned();
    s.push(".prev");
    PathBuf::from(s)
}

fn write_durably(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // A dot name: load_dir never takes a leftover temp file for a rule file.
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Writes `files` into `dir`: the current rule files are first copied to `<dir>.prev/`
/// (replacing what was there), then each new file goes to a temp file in its directory,
/// fsync, rename; rule files no longer in the set are removed. Files that are not rule files
/// are not touched. Each file is replaced atomically, the set as a whole is not: a reader
/// between two renames sees a mix, which is why the daemon reloads only on request.
pub fn write_dir(dir: &Path, files: &Files) -> std::io::Result<()> {
    check_paths(files).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    std::fs::create_dir_all(dir.join(LISTS_DIR))?;
    let old = load_dir(dir)?;
    let prev = prev_dir(dir);
    if prev.exists() {
        std::fs::remove_dir_all(&prev)?;
    }
    std::fs::create_dir_all(prev.join(LISTS_DIR))?;
    for (p, text) in &old {
        std::fs::write(prev.join(p), text)?;
    }
    sync_dir(&prev)?;
    for (p, text) in files {
        if old.get(p) != Some(text) {
            write_durably(&dir.join(p), text)?;
        }
    }
    for p in old.keys().filter(|p| !files.contains_key(*p)) {
        std::fs::remove_file(dir.join(p))?;
    }
    sync_dir(&dir.join(LISTS_DIR))?;
    sync_dir(dir)
}

/// A content hash of the map (paths and texts).
pub fn content_hash(files: &Files) -> u64 {
    // DefaultHasher::new() has fixed keys: the same content hashes the same in every process.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    files.hash(&mut h);
    h.finish()
}

/// A version string: a write counter and the content hash.
pub fn version(counter: u64, files: &Files) -> String {
    format!("{counter}-{:016x}", content_hash(files))
}

/// Total bytes of the texts.
pub fn bytes(files: &Files) -> usize {
    files.values().map(String::len).sum()
}

/// How one file differs between two maps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDiff {
    /// The path.
    pub path: String,
    /// `added`, `removed` or `modified`.
    pub status: &'static str,
    /// Unified diff text (`--- from/path`, `+++ to/path`, hunks).
    pub diff: String,
}

/// Differences from `a` to `b`, by path; unchanged files are left out.
pub fn diff(a: &Files, b: &Files, a_name: &str, b_name: &str) -> Vec<FileDiff> {
    let paths: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let mut out = Vec::new();
    for p in paths {
        let (old, new) = (a.get(p), b.get(p));
        let status = match (old, new) {
            (Some(x), Some(y)) if x == y => continue,
            (Some(_), Some(_)) => "modified",
            (None, Some(_)) => "added",
            _ => "removed",
        };
        let (o, n) = (old.map_or("", String::as_str), new.map_or("", String::as_str));
        let text = similar::TextDiff::from_lines(o, n)
            .unified_diff()
            .context_radius(3)
            .header(&format!("{a_name}/{p}"), &format!("{b_name}/{p}"))
            .to_string();
        out.push(FileDiff { path: p.clone(), status, diff: text });
    }
    out
}

/// The rule sources of a map: its top-level `*.toml`, in path order (as a directory loads).
pub fn sources(files: &Files) -> Vec<Source> {
    files
        .iter()
        .filter(|(p, _)| !p.contains('/') && p.ends_with(".toml"))
        .map(|(p, t)| Source { path: PathBuf::from(p), text: t.clone() })
        .collect()
}

/// Compiles a map; errors name paths relative to it (`20-scanners.toml:3:7`).
pub fn compile(files: &Files, opts: &CompileOptions) -> Result<RuleSet, CompileErrors> {
    compile_files(&sources(files), files, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("secsip-ds-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::remove_dir_all(prev_dir(&d));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn map(items: &[(&str, &str)]) -> Files {
        items.iter().map(|(p, t)| (p.to_string(), t.to_string())).collect()
    }

    #[test]
    fn paths_are_toml_at_top_or_lists_one_level() {
        for ok in ["a.toml", "20-scanners.toml", "lists/scanner-ua.txt", "lists/x", "lists/a.b_c-d"] {
            assert!(check_path(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".toml", "a.txt", "../a.toml", "lists/../a.toml", "lists/", "lists/a/b", "x/a.toml", "/a.toml", ".hidden.toml", "lists/.x", "a b.toml", "lists/é"] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn write_is_atomic_keeps_prev_and_leaves_other_files() {
        let d = tmp("write");
        std::fs::write(d.join("README.md"), "not a rule").unwrap();
        let v1 = map(&[("a.toml", "# one\n"), ("b.toml", "# b\n"), ("lists/x.txt", "1.2.3.4\n")]);
        write_dir(&d, &v1).unwrap();
        assert_eq!(load_dir(&d).unwrap(), v1);
        let v2 = map(&[("a.toml", "# two\n"), ("lists/y.txt", "5.6.7.8\n")]);
        write_dir(&d, &v2).unwrap();
        assert_eq!(load_dir(&d).unwrap(), v2, "b.toml and lists/x.txt removed, a.toml replaced");
        assert_eq!(load_dir(&prev_dir(&d)).unwrap(), v1, "the previous version is kept");
        assert_eq!(std::fs::read_to_string(d.join("README.md")).unwrap(), "not a rule");
        let leftovers: Vec<_> = std::fs::read_dir(&d).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().contains(".tmp-")).collect();
        assert!(leftovers.is_empty(), "temp files left behind");
        let bad = map(&[("../evil.toml", "x")]);
        assert!(write_dir(&d, &bad).is_err());
        assert_eq!(load_dir(&d).unwrap(), v2, "a bad path changes nothing");
        let _ = std::fs::remove_dir_all(prev_dir(&d));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn versions_change_with_counter_and_content() {
        let a = map(&[("a.toml", "x")]);
        let b = map(&[("a.toml", "y")]);
        assert_eq!(version(1, &a), version(1, &a));
        assert_ne!(version(1, &a), version(2, &a));
        assert_ne!(version(1, &a), version(1, &b));
        assert!(version(7, &a).starts_with("7-"));
    }

    #[test]
    fn diff_lists_added_removed_modified_only() {
        let a = map(&[("same.toml", "s\n"), ("mod.toml", "one\ntwo\n"), ("gone.toml", "g\n")]);
        let b = map(&[("same.toml", "s\n"), ("mod.toml", "one\nTWO\n"), ("lists/new", "n\n")]);
        let d = diff(&a, &b, "running", "candidate");
        let st: Vec<(&str, &str)> = d.iter().map(|f| (f.path.as_str(), f.status)).collect();
        assert_eq!(st, vec![("gone.toml", "removed"), ("lists/new", "added"), ("mod.toml", "modified")]);
        let m = &d[2].diff;
        assert!(m.contains("--- running/mod.toml") && m.contains("+++ candidate/mod.toml"), "{m}");
        assert!(m.contains("-two\n") && m.contains("+TWO\n") && m.contains(" one\n"), "{m}");
        assert!(d[1].diff.contains("+n\n"));
    }

    #[test]
    fn compile_from_memory_names_relative_paths_and_reads_list_files() {
        let files = map(&[
            ("10-a.toml", "[[list]]\nid = \"ua\"\nkind = \"ua_prefix\"\nfile = \"lists/ua.txt\"\n\n[[rule]]\nid = \"r\"\nwhen = 'sip.ua in list.ua'\naction = \"drop\"\n"),
            ("lists/ua.txt", "friendly-scanner\n"),
        ]);
        let rs = compile(&files, &CompileOptions::standard()).unwrap();
        assert_eq!(rs.lists[0].entries, vec!["friendly-scanner"]);
        let mut broken = files.clone();
        broken.insert("20-b.toml".into(), "[[rule]]\nid = \"x\"\nwhen = 'sip.method == '\n".into());
        let e = compile(&broken, &CompileOptions::standard()).unwrap_err();
        assert_eq!(e.0[0].file, PathBuf::from("20-b.toml"));
        assert_eq!(e.0[0].line, 3);
        assert!(e.to_string().starts_with("20-b.toml:3:"), "{e}");
        let mut missing = files.clone();
        missing.remove("lists/ua.txt");
        let e = compile(&missing, &CompileOptions::standard()).unwrap_err();
        assert!(e.to_string().contains("10-a.toml:4:") && e.to_string().contains("lists/ua.txt"), "{e}");
    }
}
