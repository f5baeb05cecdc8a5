//! Build script: records the git commit the binary is built from, for `ferry --version`
//! (`FERRY_COMMIT`, which a packager may also set). Outside a git checkout (a source tarball, a crate unpacked by cargo) or
//! without git installed, the commit is `unknown`; building never fails over it.

use std::process::Command;

fn main() {
    // A packager building outside git can say which commit it is.
    let commit = std::env::var("FERRY_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| git(&["rev-parse", "--short=7", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=FERRY_COMMIT={commit}");
    println!("cargo:rerun-if-env-changed=FERRY_COMMIT");
    // Build again when HEAD moves: HEAD itself (a checkout), the branch it points at (a
    // commit), and packed refs (a branch packed by git gc). Paths come from git, so a worktree,
    // whose `.git` is a file, works too.
    for path in [
        git(&["rev-parse", "--git-path", "HEAD"]),
        git(&["rev-parse", "--symbolic-full-name", "HEAD"])
            .and_then(|branch| git(&["rev-parse", "--git-path", &branch])),
        git(&["rev-parse", "--git-path", "packed-refs"]),
    ]
    .into_iter()
    .flatten()
    {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// What git prints for `args`, trimmed; `None` when git is missing, fails, or prints nothing.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}
