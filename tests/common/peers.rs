//! Outside programs some tests need (tmux, ...). Missing peers skip the test with a clear
//! message, unless `TETHER_TEST_PEERS=require` (as in CI), where a missing peer fails it.

use std::process::Command;

/// Whether `program` can run. Prints why a test is skipped; panics when peers are required.
pub fn available(program: &str, test: &str) -> bool {
    let found = Command::new(program).arg("-V").output().is_ok();
    if found {
        return true;
    }
    if std::env::var("TETHER_TEST_PEERS").as_deref() == Ok("require") {
        panic!("{test}: needs `{program}`, which is not installed, and TETHER_TEST_PEERS=require");
    }
    eprintln!(
        "SKIPPED {test}: needs `{program}` (apt-get install {program}); set TETHER_TEST_PEERS=require to fail instead"
    );
    false
}

/// Whether a file a test needs (a font, say) is installed; same rules as [`available`].
pub fn file_available(path: &str, package: &str, test: &str) -> bool {
    if std::path::Path::new(path).exists() {
        return true;
    }
    if std::env::var("TETHER_TEST_PEERS").as_deref() == Ok("require") {
        panic!(
            "{test}: needs {path} (Debian package {package}), which is missing, and TETHER_TEST_PEERS=require"
        );
    }
    eprintln!(
        "SKIPPED {test}: needs {path} (apt-get install {package}); set TETHER_TEST_PEERS=require to fail instead"
    );
    false
}

/// A python3 that can import `module` (Debian package `package`): Debian's own first, since a
/// pyenv or venv python on PATH does not see Debian's packages. `None` (after saying why) when
/// there is none; panics when peers are required.
pub fn python_with(module: &str, package: &str, test: &str) -> Option<String> {
    for python in ["/usr/bin/python3", "python3"] {
        let found = Command::new(python)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if found {
            return Some(python.to_owned());
        }
    }
    if std::env::var("TETHER_TEST_PEERS").as_deref() == Ok("require") {
        panic!(
            "{test}: needs the python module {module} (Debian package {package}), which is missing, and TETHER_TEST_PEERS=require"
        );
    }
    eprintln!(
        "SKIPPED {test}: needs python3's {module} (apt-get install {package}); set TETHER_TEST_PEERS=require to fail instead"
    );
    None
}
