//! `stepwise doctor` fails cleanly, naming each missing part and its fix.

use std::process::Command;

/// A loopback port nobody listens on: bind, read the port, drop the listener.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn doctor_names_missing_lean_and_down_policy() {
    let out = tempfile::tempdir().unwrap();
    let port = closed_port();
    let output = Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .args([
            "doctor",
            "--config",
            "configs/default.toml",
            "--timeout",
            "5",
        ])
        .arg("--out")
        .arg(out.path())
        .args([
            "--set",
            "lean.command=[\"/nonexistent/lake\", \"env\", \"repl\"]",
        ])
        .args([
            "--set",
            &format!("policy.urls=[\"http://127.0.0.1:{port}\"]"),
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "doctor must fail: {stdout}");
    assert!(stdout.contains("[FAIL] lean"), "{stdout}");
    assert!(stdout.contains("/nonexistent/lake"), "{stdout}");
    assert!(
        stdout.contains(&format!("[FAIL] policy http://127.0.0.1:{port}")),
        "{stdout}"
    );
    assert!(stdout.contains("fix:"), "{stdout}");
    assert!(stdout.contains("[ok]   output folder"), "{stdout}");
}

#[test]
fn doctor_rejects_a_misspelt_key_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[search]\nnum_candidate = 8\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .args(["doctor", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("num_candidate"), "{text}");
    assert!(text.contains("bad.toml"), "{text}");
}
