//! The container image's build, without a container engine: the Dockerfile's planner stage is run
//! as written (its shell steps, on this workspace) and cargo checks its output `--locked` with the
//! builder's feature set, so a manifest the stubs do not satisfy (a `[[bench]]`, a `[[bin]]`, a
//! build script) fails here and not in `docker build`. The release profile and the features that
//! keep the simulators and SQLite out of the image are checked too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn dockerfile() -> String {
    std::fs::read_to_string(root().join("deploy/Dockerfile")).unwrap()
}

/// The instructions of stage `name` (`FROM … AS name`), continuation lines joined, comments
/// dropped.
fn stage(text: &str, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && current.is_empty()) {
            continue;
        }
        current.push_str(t.strip_suffix('\\').unwrap_or(t));
        current.push(' ');
        if t.ends_with('\\') {
            continue;
        }
        let instr = std::mem::take(&mut current).trim().to_owned();
        if instr.starts_with("FROM ") {
            inside = instr.ends_with(&format!(" AS {name}"));
        } else if inside && !instr.is_empty() {
            out.push(instr);
        }
    }
    assert!(!out.is_empty(), "no stage {name} in the Dockerfile");
    out
}

/// The value an `ENV` or `ARG` instruction gives `key`.
fn env_of(instrs: &[String], key: &str) -> String {
    instrs
        .iter()
        .filter_map(|i| i.strip_prefix("ENV ").or_else(|| i.strip_prefix("ARG ")))
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no ENV {key}"))
        .to_owned()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.extension().is_some_and(|e| e == ext) {
            out.push(p);
        }
    }
}

#[test]
fn the_planner_output_is_a_workspace_cargo_accepts_locked() {
    let text = dockerfile();
    let planner = stage(&text, "planner");
    assert!(planner.iter().any(|i| i == "COPY . ."), "{planner:?}");
    let plan_in_image = env_of(&planner, "PLAN");
    let script = planner
        .iter()
        .filter_map(|i| i.strip_prefix("RUN "))
        .next()
        .expect("the planner's RUN");
    assert!(
        !script.contains(&plan_in_image),
        "the steps write through $PLAN only, so they can run here: {script}"
    );

    // The planner's steps, as written, on this workspace (the build context), into a fixed
    // directory so cargo's artefacts are reused between runs. Built in a target dir of its own:
    // cargo hashes path packages by their path inside the workspace, so the stubs' artefacts
    // would pass for the real crates' in the shared one.
    let plan = target_dir().join("image-plan/workspace");
    let _ = std::fs::remove_dir_all(&plan);
    run(
        Command::new("sh")
            .args(["-c", script])
            .current_dir(root())
            .env("PLAN", &plan),
        "the planner's steps",
    );
    let mut stubs = Vec::new();
    files(&plan, "rs", &mut stubs);
    assert!(
        stubs
            .iter()
            .any(|p| p.ends_with("crates/store/benches/store.rs"))
    );
    assert!(stubs.iter().any(|p| p.ends_with("crates/store/build.rs")));
    for s in &stubs {
        assert!(
            std::fs::read_to_string(s).unwrap().contains("fn main() {}"),
            "{} is not a stub",
            s.display()
        );
    }

    // The builder compiles exactly this: the lock file as is, the image's features.
    let builder = stage(&text, "builder");
    let features = env_of(&builder, "BUILD_FEATURES");
    let builds: Vec<&String> = builder
        .iter()
        .filter(|i| i.starts_with("RUN ") && i.contains("cargo build"))
        .collect();
    assert_eq!(
        builds.len(),
        2,
        "dependencies, then the sources: {builds:?}"
    );
    for b in &builds {
        for flag in [
            "--release",
            "--locked",
            "-p coffer",
            "--no-default-features",
            "--features \"$BUILD_FEATURES\"",
        ] {
            assert!(b.contains(flag), "{flag} missing from {b}");
        }
    }
    run(
        cargo()
            .args(["check", "--locked", "--offline", "-p", "coffer"])
            .args(["--no-default-features", "--features", &features])
            .current_dir(&plan)
            .env("CARGO_TARGET_DIR", target_dir().join("image-plan/target"))
            .env("CARGO_TERM_COLOR", "never"),
        "cargo check --locked on the planner's output",
    );
}

/// The image's binary is built without the simulators and the embedded SQLite, stripped, with
/// its debug info split out and exported from its own stage only.
#[test]
fn the_image_carries_a_stripped_postgres_only_binary() {
    let text = dockerfile();
    let builder = stage(&text, "builder");
    assert_eq!(env_of(&builder, "BUILD_FEATURES"), "postgres");
    // The compose stack runs the simulators from its image: it builds them in.
    let compose = std::fs::read_to_string(root().join("deploy/compose.yaml")).unwrap();
    assert!(compose.contains("BUILD_FEATURES: postgres,sim"));
    let manifest: toml::Table = std::fs::read_to_string(root().join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let release = &manifest["profile"]["release"];
    assert_eq!(release["strip"].as_str(), Some("symbols"));
    assert_eq!(release["split-debuginfo"].as_str(), Some("packed"));
    let features = manifest["features"].as_table().unwrap();
    let default: Vec<&str> = features["default"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for f in ["sim", "demo", "sqlite", "postgres"] {
        assert!(default.contains(&f), "{f} is not a default feature");
    }
    // `coffer-sim` is optional (behind `sim`), so the image does not link it.
    assert_eq!(
        manifest["dependencies"]["coffer-sim"]["optional"].as_bool(),
        Some(true)
    );
    let debuginfo = stage(&text, "debuginfo");
    assert!(debuginfo.iter().any(|i| i.contains("coffer.dwp")));
    let runtime = stage(&text, "runtime");
    assert!(
        !runtime.iter().any(|i| i.contains(".dwp")),
        "the runtime image carries the binary only: {runtime:?}"
    );
    assert!(
        runtime
            .iter()
            .any(|i| i == "COPY --from=builder /out/coffer /usr/local/bin/coffer")
    );
}
