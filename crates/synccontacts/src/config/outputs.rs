//! Output paths the command line names (`--report FILE`, `--junit FILE`; the state store's path
//! next), checked before the first request: a report that cannot be written must
//! refuse the run (exit 2, nothing requested), not fail after an hour of writes.
//!
//! The check proves what it can without writing anything the user would see: a new file is
//! created and removed at once, an existing one is opened for appending and left untouched. It
//! never makes a request; it creates a missing folder only when asked to ([`MissingFolder::Create`]).

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use super::problem::Problem;

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

/// A file name to suggest for `option`'s path.
fn example_file(option: &str) -> &'static str {
    match option {
        "--junit" => "junit.xml",
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
    }

    #[test]
    fn a_bare_file_name_goes_into_the_current_folder() {
        assert_eq!(folder_of(Path::new("report.json")), PathBuf::from("."));
        assert_eq!(folder_of(Path::new("out/r.json")), PathBuf::from("out"));
    }
}
