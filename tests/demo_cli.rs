//! `stepwise demo` runs the whole pipeline on its simulated backends and leaves every output.

use std::process::Command;

#[test]
fn demo_proves_theorems_and_writes_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let output = Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .args(["demo", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("SIMULATED"),
        "the demo must say its backends are simulated"
    );

    let proved_line = stdout
        .lines()
        .find(|l| l.starts_with("proved "))
        .expect(&stdout);
    let proved: usize = proved_line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(proved > 0, "{proved_line}");

    let results = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    assert_eq!(results.lines().count(), 8, "one line per bundled theorem");
    let false_claim = results
        .lines()
        .find(|l| l.contains("\"demo_false_claim\""))
        .unwrap();
    assert!(false_claim.contains("\"proved\":false"), "{false_claim}");
    assert!(
        stdout.contains("hang") && stdout.contains("Lean worker fault"),
        "the demo must say which faults it simulates: {stdout}"
    );
    let html_line = stdout
        .lines()
        .find(|l| l.contains("report.html"))
        .expect(&stdout);
    assert!(
        html_line.contains(&out.join("report.html").display().to_string()),
        "{html_line}"
    );
    for file in ["summary.json", "report.md", "report.html", "config.json"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let nodes = std::fs::read_dir(out.join("trajectories"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("nodes-")
        })
        .count();
    assert!(nodes > 0, "no trajectory files");
    // One table per folder: the node files alone in trajectories/, failed attempts beside it.
    let others = std::fs::read_dir(out.join("trajectories"))
        .unwrap()
        .filter(|e| {
            !e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("nodes-")
        })
        .count();
    assert_eq!(others, 0, "trajectories/ must hold only node files");
    assert!(
        std::fs::read_dir(out.join("failed_attempts"))
            .unwrap()
            .count()
            > 0
    );

    // A second run replaces the first instead of refusing or appending.
    let again = Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .args(["demo", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(again.status.success());
    let results = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    assert_eq!(results.lines().count(), 8);

    // `compare --html` of two demo runs draws both.
    let other = dir.path().join("demo-2");
    let second = Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .args(["demo", "--out"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(second.status.success());
    let page = dir.path().join("compare.html");
    let compare = Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .arg("compare")
        .args([&out, &other])
        .arg("--html")
        .arg(&page)
        .output()
        .unwrap();
    assert!(
        compare.status.success(),
        "{}",
        String::from_utf8_lossy(&compare.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    let figure = html
        .split("<figure id=\"proved-vs-time\">")
        .nth(1)
        .and_then(|rest| rest.split("</figure>").next())
        .expect(&html);
    for dir in [&out, &other] {
        let legend = format!(">\n{}\n</text>", dir.display());
        assert!(figure.contains(&legend), "no curve for {}", dir.display());
    }
}

#[test]
fn demo_refuses_to_clear_a_folder_it_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .args(["demo", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(dir.path().join("notes.txt").is_file());
}
