//! `stepwise watch DIR`: a terminal dashboard of a running or finished sweep, from its files
//! only (see `run_folder::watch`). Refreshes every second; `q` quits.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use formats::progress::{unix_ms, SweepState};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Gauge, Paragraph, Row, Table};
use ratatui::Frame;
use run_folder::watch::{Liveness, SweepWatch, WatchSnapshot};

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// A sweep's --out directory (it may still be running, on this node or another).
    pub dir: PathBuf,
}

const REFRESH: Duration = Duration::from_secs(1);

pub fn run(args: WatchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.dir.is_dir(),
        "{} is not a directory (pass a sweep's --out folder)",
        args.dir.display()
    );
    let mut watch = SweepWatch::new(&args.dir);
    let mut terminal = ratatui::init();
    let outcome = (|| -> anyhow::Result<()> {
        loop {
            // A bad line is shown, not fatal: the sweep may fix it (a resume cuts a torn line).
            let problem = watch.refresh().err().map(|e| e.to_string());
            let snapshot = watch.snapshot(unix_ms());
            terminal.draw(|frame| render(frame, &snapshot, problem.as_deref()))?;
            let next = Instant::now() + REFRESH;
            while let Some(wait) = next.checked_duration_since(Instant::now()) {
                if !event::poll(wait)? {
                    break;
                }
                if let Event::Key(key) = event::read()? {
                    let ctrl_c = key.modifiers.contains(KeyModifiers::CONTROL)
                        && key.code == KeyCode::Char('c');
                    if key.kind == KeyEventKind::Press
                        && (ctrl_c || matches!(key.code, KeyCode::Char('q') | KeyCode::Esc))
                    {
                        return Ok(());
                    }
                }
            }
        }
    })();
    ratatui::restore();
    outcome
}

fn duration(s: f64) -> String {
    match s {
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7200.0 => format!("{:.1} min", s / 60.0),
        s => format!("{:.1} h", s / 3600.0),
    }
}

fn state_line(s: &WatchSnapshot) -> Line<'static> {
    let (text, colour) = match &s.liveness {
        Liveness::Running(SweepState::Stopping) => (
            "stopping: finishing the theorems in flight".to_owned(),
            Color::Yellow,
        ),
        Liveness::Running(_) => ("running".to_owned(), Color::Green),
        Liveness::Ended(SweepState::Finished) => {
            ("the sweep has ended: finished".to_owned(), Color::Cyan)
        }
        Liveness::Ended(_) => (
            "the sweep has ended: stopped before the end (--resume continues it)".to_owned(),
            Color::Yellow,
        ),
        Liveness::Silent(secs) => (
            format!(
                "no update for {}: the sweep was probably killed (--resume continues it)",
                duration(*secs)
            ),
            Color::Red,
        ),
        Liveness::Unknown => (
            "no progress.json: not started yet, or a sweep from before `watch`".to_owned(),
            Color::DarkGray,
        ),
    };
    Line::from(vec![
        Span::styled(
            format!("stepwise watch {}  ", s.dir),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::styled(text, Style::default().fg(colour)),
    ])
}

/// One frame. `problem`: why the last refresh failed, shown under the header.
pub fn render(frame: &mut Frame, s: &WatchSnapshot, problem: Option<&str>) {
    let [header, gauge, numbers, middle, errors, footer] = Layout::vertical([
        Constraint::Length(if problem.is_some() { 2 } else { 1 }),
        Constraint::Length(1),
        Constraint::Length(2),
        Constraint::Min(8),
        Constraint::Length(7),
        Constraint::Length(1),
    ])
    .areas(frame.area());

    let mut head = vec![state_line(s)];
    if let Some(problem) = problem {
        head.push(Line::styled(
            problem.to_owned(),
            Style::default().fg(Color::Red),
        ));
    }
    frame.render_widget(Paragraph::new(head), header);

    let total = s.total.unwrap_or(s.finished).max(1);
    let ratio = (s.finished as f64 / total as f64).clamp(0.0, 1.0);
    frame.render_widget(
        Gauge::default()
            .gauge_style(Style::default().fg(Color::Blue))
            .ratio(ratio)
            .label(format!("{:.0}%", ratio * 100.0)),
        gauge,
    );

    let total_text = s.total.map_or_else(|| "?".to_owned(), |t| t.to_string());
    let rate = s
        .per_hour
        .map_or_else(|| "-".to_owned(), |r| format!("{r:.0} theorems/hour"));
    let eta = match (&s.liveness, s.eta_s) {
        (Liveness::Ended(_), _) => "-".to_owned(),
        (_, Some(eta)) => duration(eta),
        _ => "-".to_owned(),
    };
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(format!(
                "proved {} / finished {} / total {total_text}    errors {}",
                s.proved, s.finished, s.errors
            )),
            Line::from(format!("rate {rate}    ETA {eta}")),
        ]),
        numbers,
    );

    let [left, right] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(middle);
    let [split, servers] =
        Layout::vertical([Constraint::Length(8), Constraint::Min(3)]).areas(left);
    let bar = |share: f64| "█".repeat((share * 20.0).round() as usize);
    frame.render_widget(
        Table::new(
            s.time_shares.iter().map(|(phase, share)| {
                Row::new(vec![
                    phase.to_string(),
                    format!("{:5.1}%", share * 100.0),
                    bar(*share),
                ])
            }),
            [
                Constraint::Length(12),
                Constraint::Length(7),
                Constraint::Min(10),
            ],
        )
        .block(Block::bordered().title(" time split so far ")),
        split,
    );
    let server_rows: Vec<Row> = if s.generate.is_empty() {
        vec![Row::new(vec!["(no generate timeline)".to_owned()])]
    } else {
        s.generate
            .iter()
            .map(|(url, busy, prompts)| {
                Row::new(vec![
                    url.clone(),
                    format!("busy {:.0}%", busy * 100.0),
                    format!("{prompts:.1} in flight"),
                ])
            })
            .collect()
    };
    frame.render_widget(
        Table::new(
            server_rows,
            [
                Constraint::Min(16),
                Constraint::Length(9),
                Constraint::Length(14),
            ],
        )
        .block(Block::bordered().title(" generate, last minute ")),
        servers,
    );
    let running: Vec<Row> = s
        .in_flight
        .iter()
        .map(|(name, secs)| Row::new(vec![name.clone(), duration(*secs)]))
        .collect();
    frame.render_widget(
        Table::new(running, [Constraint::Min(20), Constraint::Length(9)]).block(
            Block::bordered().title(format!(
                " in flight ({}), slowest first ",
                s.in_flight.len()
            )),
        ),
        right,
    );

    let error_lines: Vec<Line> = if s.last_errors.is_empty() {
        vec![Line::from("(none)")]
    } else {
        s.last_errors
            .iter()
            .map(|(name, error)| Line::from(format!("{name}: {error}")))
            .collect()
    };
    frame.render_widget(
        Paragraph::new(error_lines).block(Block::bordered().title(" last errors, newest first ")),
        errors,
    );
    frame.render_widget(
        Paragraph::new("q quits · refreshes every second · reads only the sweep's files")
            .style(Style::default().fg(Color::DarkGray)),
        footer,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use std::path::Path;

    /// A results line as a sweep writes it (only the fields watch reads differ).
    fn line(name: &str, status: &str, error: Option<&str>, finished_unix_ms: u64) -> String {
        serde_json::json!({
            "name": name,
            "proved": status == "proved",
            "status": status,
            "error": error,
            "finished_unix_ms": finished_unix_ms,
            "wall_ms": 2000.0,
            "gen_ms": 1500.0,
            "lean_ms": 500.0,
        })
        .to_string()
            + "\n"
    }

    fn append(path: &Path, text: &str) {
        formats::append::append_text(path, text).unwrap();
    }

    fn screen(watch: &mut SweepWatch, now: u64) -> String {
        watch.refresh().unwrap();
        let snapshot = watch.snapshot(now);
        let mut terminal = Terminal::new(TestBackend::new(110, 30)).unwrap();
        terminal
            .draw(|frame| render(frame, &snapshot, None))
            .unwrap();
        let buffer = terminal.backend().buffer();
        buffer
            .content()
            .chunks(buffer.area.width as usize)
            .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn shows_the_counts_of_the_results_and_follows_new_lines() {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join("results.jsonl");
        let start = 1_700_000_000_000u64;
        append(&results, &line("t1", "proved", None, start + 10_000));
        append(&results, &line("t2", "timeout", None, start + 20_000));
        append(
            &results,
            &line("t3", "error", Some("the REPL died\nstack"), start + 30_000),
        );
        let progress = serde_json::json!({
            "state": "running",
            "updated_unix_ms": start + 59_000,
            "interval_ms": 2000,
            "run_started_unix_ms": start,
            "total": 12,
            "skipped": 0,
            "in_flight": [
                {"name": "slow_one", "started_unix_ms": start + 1_000},
                {"name": "quick_one", "started_unix_ms": start + 50_000},
            ],
            "generate_last_minute": [{
                "url": "http://gpu0:30000", "requests": 30, "prompts": 960,
                "busy_ms": 45_000.0, "prompt_ms": 900_000.0,
            }],
            "generate_window_ms": 60_000.0,
        });
        std::fs::write(dir.path().join("progress.json"), progress.to_string()).unwrap();

        let mut watch = SweepWatch::new(dir.path());
        let now = start + 60_000;
        let text = screen(&mut watch, now);
        assert!(text.contains("running"), "{text}");
        assert!(
            text.contains("proved 1 / finished 3 / total 12    errors 1"),
            "{text}"
        );
        // 3 theorems in the run's first minute: 180 per hour, 9 left take 3 minutes.
        assert!(
            text.contains("rate 180 theorems/hour    ETA 3.0 min"),
            "{text}"
        );
        assert!(text.contains("generate      75.0%"), "{text}");
        assert!(
            text.contains("busy 75%") && text.contains("15.0 in flight"),
            "{text}"
        );
        let slow = text.find("slow_one").expect(&text);
        let quick = text.find("quick_one").expect(&text);
        assert!(slow < quick, "slowest first: {text}");
        assert!(text.contains("t3: the REPL died"), "{text}");

        // A line half-written is not counted; once complete it is.
        let t4 = line("t4", "proved", None, start + 61_000);
        let (head, tail) = t4.split_at(30);
        append(&results, head);
        assert!(screen(&mut watch, now).contains("proved 1 / finished 3"));
        append(&results, tail);
        let text = screen(&mut watch, now + 1000);
        assert!(text.contains("proved 2 / finished 4 / total 12"), "{text}");
    }

    #[test]
    fn says_when_the_sweep_has_ended_or_went_silent() {
        let dir = tempfile::tempdir().unwrap();
        let mut progress = serde_json::json!({
            "state": "finished",
            "updated_unix_ms": 1_000_000u64,
            "interval_ms": 2000,
            "run_started_unix_ms": 900_000u64,
            "total": 1,
            "skipped": 0,
            "in_flight": [],
            "generate_last_minute": [],
            "generate_window_ms": 0.0,
        });
        let path = dir.path().join("progress.json");
        std::fs::write(&path, progress.to_string()).unwrap();
        let mut watch = SweepWatch::new(dir.path());
        let text = screen(&mut watch, 5_000_000);
        assert!(text.contains("the sweep has ended: finished"), "{text}");

        progress["state"] = "running".into();
        std::fs::write(&path, progress.to_string()).unwrap();
        let text = screen(&mut watch, 1_060_000);
        assert!(text.contains("no update for 60 s"), "{text}");
    }
}
