//! The Dockerfile builds `--locked` and runs as a non-root user.

use super::*;

#[test]
fn dockerfile_builds_locked_and_runs_as_non_root() {
    let text = dockerfile();
    let joined = text.replace("\\\n", " ");
    let builds: Vec<&str> = joined
        .lines()
        .filter(|l| l.trim_start().starts_with("RUN") && l.contains("cargo build"))
        .collect();
    assert!(!builds.is_empty(), "no cargo build");
    for b in &builds {
        assert!(
            b.contains("--release") && b.contains("--locked"),
            "every build is --release --locked: {b}"
        );
    }
    assert!(
        joined
            .lines()
            .filter(|l| l.trim_start().starts_with("FROM "))
            .count()
            >= 2,
        "multi-stage"
    );
    assert!(
        text.contains("COPY migrations"),
        "migrations are embedded at compile time and must be in the build"
    );

    let runtime = runtime_stage(&text);
    let from = &runtime[0];
    assert!(
        from.contains("distroless") || from.contains("slim"),
        "small runtime base: {from}"
    );
    let user = runtime
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the runtime sets USER");
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("a numeric uid, verifiable by runAsNonRoot");
    assert_ne!(uid, 0, "the runtime user is not root");
    assert_eq!(uid, 10001);
    assert!(
        runtime.iter().any(|l| l == r#"ENTRYPOINT ["coffer"]"#),
        "{runtime:?}"
    );
    assert!(
        runtime.iter().any(|l| l == r#"CMD ["serve"]"#),
        "{runtime:?}"
    );
    // Kubernetes runs the same uid.
    let dep = deployment();
    assert_eq!(
        dep["spec"]["template"]["spec"]["securityContext"]["runAsUser"].as_u64(),
        Some(u64::from(uid))
    );

    // The build context keeps what the build needs and drops target/ and .git/.
    let ignore: Vec<String> = read(&root().join(".dockerignore"))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/').to_owned())
        .collect();
    for must in ["target", ".git"] {
        assert!(
            ignore.iter().any(|l| l == must),
            ".dockerignore lacks {must}"
        );
    }
    for needed in ["src", "crates", "migrations", "Cargo.toml", "Cargo.lock"] {
        assert!(
            !ignore.iter().any(|l| l == needed),
            ".dockerignore drops {needed}, which the build needs"
        );
        assert!(root().join(needed).exists());
    }
}
