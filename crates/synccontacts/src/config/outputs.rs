//! Output paths the command line names (`--report FILE`, `--junit FILE`) and the state file
//! (`--state`), checked before the first request: a report that cannot be written must refuse the
//! run (exit 2, nothing requested), not fail after an hour of writes.
//!
//! The check proves what it can without writing anything the user would see: a new file is
//! created and removed at once, an existing one is opened for appending and left untouched. It
//! never makes a request; it creates a missing folder only when asked to ([`MissingFolder::Create`]),
//! and a path that is only read (a dry run's state file, [`check_input_path`]) is never written.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use super::env::{Env, STATE};
use super::problem::Problem;

/// Where the state file is when neither `--state` nor [`STATE`] names one: under the working
/// directory (a CI job's checkout), in a folder of its own that a cache can keep.
pub const DEFAULT_STATE: &str = ".synccontacts/state.sqlite";

/// The state file of a run and the setting that named it (for messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatePath {
    pub path: PathBuf,
    /// `--state`, the variable [`STATE`], or `"--state (default)"`.
    pub origin: String,
}

impl StatePath {
    /// [`STATE`] when set and not blank, else [`DEFAULT_STATE`]; `--state` overrides both (the
    /// command line sets it over this).
    pub fn from_env(env: &Env) -> Self {
        match env.non_blank(STATE) {
            Some(p) => Self {
                path: PathBuf::from(p.trim()),
                origin: STATE.into(),
            },
            None => Self {
                path: PathBuf::from(DEFAULT_STATE),
                origin: "--state (default)".into(),
            },
        }
    }

    /// The path given with `--state`.
    pub fn option(path: PathBuf) -> Self {
        Self {
            path,
            origin: "--state".into(),
        }
    }

    /// Checks the path before the first request: a real run writes it (its folder is created
    /// when missing, like the default `.synccontacts/`); a dry run and `check` only read it and
    /// create nothing.
    pub fn check(&self, writes: bool) -> Result<(), Problem> {
        if writes {
            check_output_path(&self.origin, &self.path, MissingFolder::Create)
        } else {
            check_input_path(&self.origin, &self.path)
        }
    }
}

/// What [`check_output_path`] does when the folder of the path does not exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingFolder {
    /// Refuse the path: a folder the user named and that is missing is usually a typo, or a CI
    /// step that did not run (`--report`, `--junit`).
    Refuse,
    /// Create the folder and its parents: for a default location nobody had to create first (the
    /// state store's `.synccontacts/`).
    Create,
}

/// Checks that `path`, given with `option` (e.g. `--report`), can be written: it names a file,
/// not a folder; its folder exists (or was created, with [`MissingFolder::Create`]) and is a
/// folder; and the file can be created there — or, when it exists, opened for writing. The
/// problem names the option and says what to do.
pub fn check_output_path(option: &str, path: &Path, missing: MissingFolder) -> Result<(), Problem> {
    let refuse = |problem: String, fix: String| Problem {
        variable: option.to_owned(),
        tenant: None,
        field: None,
        problem,
        fix,
    };
    let shown = path.display();
    let example = example_file(option);
    if path.as_os_str().is_empty() {
        return Err(refuse(
            "is empty".into(),
            format!("give a file path, e.g. {option} {example}"),
        ));
    }
    // `out/` names a folder even when `out` does not exist yet.
    let names_folder = path.as_os_str().to_string_lossy().ends_with(['/', '\\']);
    if names_folder || path.is_dir() {
        return Err(refuse(
            format!("`{shown}` is a folder, not a file"),
            format!(
                "give a file name in it, e.g. {}",
                path.join(example).display()
            ),
        ));
    }
    if path.exists() {
        // Appending changes nothing; the run replaces the file at its end.
        return OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
            .map_err(|e| {
                refuse(
                    format!("`{shown}` exists and cannot be written: {e}"),
                    "make it writable for the job, or choose another path".into(),
                )
            });
    }
    let folder = folder_of(path);
    if !folder.exists() {
        match missing {
            MissingFolder::Refuse => {
                return Err(refuse(
                    format!("the folder `{}` does not exist", folder.display()),
                    format!(
                        "create it before the run (mkdir -p {}), or write the file into an existing folder",
                        folder.display()
                    ),
                ));
            }
            MissingFolder::Create => fs::create_dir_all(&folder).map_err(|e| {
                refuse(
                    format!("cannot create the folder `{}`: {e}", folder.display()),
                    "choose a path the job may create folders in".into(),
                )
            })?,
        }
    }
    if !folder.is_dir() {
        return Err(refuse(
            format!("`{}` is not a folder", folder.display()),
            "choose a path inside a folder".into(),
        ));
    }
    // Only trying proves it: permission bits say nothing about ACLs, read-only mounts or quotas.
    match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(file) => {
            drop(file);
            let _ = fs::remove_file(path);
            Ok(())
        }
        Err(e) => Err(refuse(
            format!("cannot create `{shown}`: {e}"),
            format!(
                "choose a folder the job may write to, or make `{}` writable",
                folder.display()
            ),
        )),
    }
}

/// Checks a path that is only read and may not exist yet (a dry run's state file): it must name
/// a file, not a folder, and when it exists it must be readable. Creates and changes nothing.
pub fn check_input_path(option: &str, path: &Path) -> Result<(), Problem> {
    let refuse = |problem: String, fix: &str| Problem {
        variable: option.to_owned(),
        tenant: None,
        field: None,
        problem,
        fix: fix.to_owned(),
    };
    let shown = path.display();
    if path.as_os_str().is_empty() {
        return Err(refuse("is empty".into(), "give a file path"));
    }
    let names_folder = path.as_os_str().to_string_lossy().ends_with(['/', '\\']);
    if names_folder || path.is_dir() {
        return Err(refuse(
            format!("`{shown}` is a folder, not a file"),
            "give a file name in it",
        ));
    }
    if path.exists()
        && let Err(e) = fs::File::open(path)
    {
        return Err(refuse(
            format!("`{shown}` exists and cannot be read: {e}"),
            "make it readable for the job, or choose another path",
        ));
    }
    Ok(())
}

/// A file name to suggest for `option`'s path.
fn example_file(option: &str) -> &'static str {
    match option {
        "--junit" => "junit.xml",
        o if o.starts_with("--state") || o == STATE => "state.sqlite",
        _ => "report.json",
    }
}

/// The folder a file goes into; `.` for a bare file name.
fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(path: &Path, missing: MissingFolder) -> Problem {
        check_output_path("--report", path, missing).expect_err("refused")
    }

    #[test]
    fn a_new_file_in_an_existing_folder_is_accepted_and_not_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        check_output_path("--report", &path, MissingFolder::Refuse).unwrap();
        assert!(!path.exists(), "the check left its probe behind");
    }

    #[test]
    fn an_existing_file_is_accepted_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        fs::write(&path, "previous").unwrap();
        check_output_path("--report", &path, MissingFolder::Refuse).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "previous");
    }

    #[test]
    fn a_missing_folder_is_refused_or_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir
            .path()
            .join("missing")
            .join("deeper")
            .join("report.json");
        let p = problem(&path, MissingFolder::Refuse);
        assert_eq!(p.variable, "--report");
        assert!(p.problem.contains("does not exist"), "{p}");
        assert!(p.fix.contains("mkdir -p"), "{p}");
        assert!(!dir.path().join("missing").exists());

        check_output_path("--state", &path, MissingFolder::Create).unwrap();
        assert!(dir.path().join("missing").join("deeper").is_dir());
        assert!(!path.exists());
    }

    #[test]
    fn a_folder_is_not_a_file() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [MissingFolder::Refuse, MissingFolder::Create] {
            let p = problem(dir.path(), mode);
            assert!(p.problem.contains("is a folder"), "{p}");
        }
        let p = problem(&dir.path().join("new-folder/"), MissingFolder::Create);
        assert!(p.problem.contains("is a folder"), "{p}");
        assert!(!dir.path().join("new-folder").exists());
        let p = problem(Path::new(""), MissingFolder::Refuse);
        assert!(p.problem.contains("empty"), "{p}");
    }

    #[test]
    fn a_file_in_the_way_of_the_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        fs::write(&file, "x").unwrap();
        let p = problem(&file.join("report.json"), MissingFolder::Refuse);
        assert!(p.problem.contains("plain"), "{p}");
        let p = problem(
            &file.join("sub").join("state.sqlite"),
            MissingFolder::Create,
        );
        assert!(p.problem.contains("cannot create the folder"), "{p}");
    }

    #[test]
    fn a_state_path_read_only_creates_nothing_and_refuses_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let missing = StatePath::option(dir.path().join("new").join("state.sqlite"));
        missing.check(false).unwrap();
        assert!(
            !dir.path().join("new").exists(),
            "a dry run created a folder"
        );
        missing.check(true).unwrap();
        assert!(dir.path().join("new").is_dir(), "a real run creates it");
        let p = StatePath::option(dir.path().to_owned())
            .check(false)
            .expect_err("a folder");
        assert_eq!(p.variable, "--state");
        assert!(p.problem.contains("is a folder"), "{p}");
    }

    #[test]
    fn the_state_path_comes_from_the_option_the_variable_or_the_default() {
        let env: Env = [(STATE, " /tmp/s.sqlite ")].into_iter().collect();
        assert_eq!(
            StatePath::from_env(&env),
            StatePath {
                path: PathBuf::from("/tmp/s.sqlite"),
                origin: STATE.into()
            }
        );
        let blank: Env = [(STATE, " ")].into_iter().collect();
        assert_eq!(
            StatePath::from_env(&blank).path,
            PathBuf::from(DEFAULT_STATE)
        );
    }

    #[test]
    fn the_fix_suggests_a_file_name_that_fits_the_option() {
        let dir = tempfile::tempdir().unwrap();
        let junit = check_output_path("--junit", dir.path(), MissingFolder::Refuse).unwrap_err();
        assert_eq!(junit.variable, "--junit");
        assert!(junit.fix.ends_with("junit.xml"), "{junit}");
        let empty = check_output_path("--junit", Path::new(""), MissingFolder::Refuse).unwrap_err();
        assert!(empty.fix.ends_with("--junit junit.xml"), "{empty}");
        assert!(
            problem(dir.path(), MissingFolder::Refuse)
                .fix
                .ends_with("report.json")
        );
        // The state file, named by the option, its variable or the default.
        for origin in ["--state", STATE, "--state (default)"] {
            let state = check_output_path(origin, dir.path(), MissingFolder::Create).unwrap_err();
            assert!(state.fix.ends_with("state.sqlite"), "{state}");
        }
    }

    #[test]
    fn a_bare_file_name_goes_into_the_current_folder() {
        assert_eq!(folder_of(Path::new("report.json")), PathBuf::from("."));
        assert_eq!(folder_of(Path::new("out/r.json")), PathBuf::from("out"));
    }
}
