//! Names the git commit in `bprof --version` when built from a git checkout. Reads `.git`
//! itself (HEAD, the ref it names, packed-refs): no program is started.
use std::path::{Path, PathBuf};

fn git_dir() -> Option<PathBuf> {
    let dot = Path::new(env!("CARGO_MANIFEST_DIR")).join(".git");
    if dot.is_dir() {
        return Some(dot);
    }
    // a worktree or submodule: `.git` is a file `gitdir: PATH`
    let text = std::fs::read_to_string(&dot).ok()?;
    let dir = text.strip_prefix("gitdir:")?.trim();
    Some(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
}

fn commit(git: &Path) -> Option<String> {
    let head = std::fs::read_to_string(git.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(name) = head.strip_prefix("ref:").map(str::trim) else {
        return Some(head.to_string());
    };
    println!("cargo:rerun-if-changed={}", git.join(name).display());
    // a worktree keeps its refs in the common directory
    let common = std::fs::read_to_string(git.join("commondir"))
        .map(|c| git.join(c.trim()))
        .unwrap_or_else(|_| git.to_path_buf());
    for base in [git, common.as_path()] {
        if let Ok(id) = std::fs::read_to_string(base.join(name)) {
            return Some(id.trim().to_string());
        }
        if let Ok(packed) = std::fs::read_to_string(base.join("packed-refs"))
            && let Some(line) = packed.lines().find(|l| l.ends_with(&format!(" {name}")))
        {
            return line.split_whitespace().next().map(str::to_string);
        }
    }
    None
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let version = env!("CARGO_PKG_VERSION");
    let long = match git_dir() {
        Some(git) => {
            println!("cargo:rerun-if-changed={}", git.join("HEAD").display());
            match commit(&git) {
                Some(id) if id.len() >= 12 && id.chars().all(|c| c.is_ascii_hexdigit()) => {
                    format!("{version} (commit {})", &id[..12])
                }
                _ => version.to_string(),
            }
        }
        None => version.to_string(),
    };
    println!("cargo:rustc-env=BPROF_LONG_VERSION={long}");
}
