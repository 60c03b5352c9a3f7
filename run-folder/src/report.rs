//! `report.md`: a [`Summary`] as Markdown (headline, then tables), which `report.html` also
//! embeds.

use std::fmt::Write;

use crate::summary::Summary;

pub const REPORT_FILE: &str = "report.md";

pub(crate) fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
}

/// A duration in the unit that keeps it readable.
pub(crate) fn secs(ms: f64) -> String {
    match ms {
        ms if ms < 1000.0 => format!("{ms:.1} ms"),
        ms if ms < 120_000.0 => format!("{:.1} s", ms / 1000.0),
        ms if ms < 7_200_000.0 => format!("{:.1} min", ms / 60_000.0),
        ms => format!("{:.2} h", ms / 3_600_000.0),
    }
}

pub(crate) fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

/// `report.md`: the headline, then the tables.
pub fn render(s: &Summary) -> String {
    let mode = s.mode.as_ref().map_or(String::new(), |m| format!(" ({m})"));
    format!(
        "# Sweep report{mode}\n\n{}\n{}",
        render_headline(s),
        render_tables(s)
    )
}

/// The one-line outcome (Markdown), which `report.html` also puts above its plots.
pub fn render_headline(s: &Summary) -> String {
    // Shards merged from machines that ran at once: say how much machine time that was.
    let machines = if s.machine_wall_ms > s.sweep_wall_ms * 1.01 {
        format!(
            "; {} of machine time, {:.0} theorems per machine-hour",
            secs(s.machine_wall_ms),
            s.theorems as f64 * 3_600_000.0 / s.machine_wall_ms
        )
    } else {
        String::new()
    };
    format!(
        "**Proved {} / {} ({})** in {} of sweep time over {} run(s) ({:.0} theorems/hour{machines}).\n",
        s.proved,
        s.theorems,
        pct(s.prove_rate),
        secs(s.sweep_wall_ms),
        s.runs,
        s.theorems_per_hour
    )
}

/// The numbers tables of `report.md` (Markdown), which `report.html` puts below its plots.
pub fn render_tables(s: &Summary) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "| status | theorems |\n|---|---:|");
    for (status, n) in &s.statuses {
        let _ = writeln!(w, "| {status} | {n} |");
    }

    let _ = writeln!(
        w,
        "\n## Where the time went\n\nShares of the summed per-theorem wall time ({}).\n",
        secs(s.theorem_wall_ms)
    );
    let _ = writeln!(
        w,
        "| phase | total | share of wall | calls | mean per call (ms) | p50 (ms) | p95 (ms) | p99 (ms) |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for p in &s.time {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            p.phase,
            secs(p.total_ms),
            pct(p.share),
            p.calls,
            ms(p.mean_ms_per_call),
            ms(p.p50_ms),
            ms(p.p95_ms),
            ms(p.p99_ms)
        );
    }
    if let Some(t) = &s.theorem_latency_ms {
        let _ = writeln!(
            w,
            "\nPer-theorem wall time: mean {}, p50 {}, p95 {}, p99 {}, max {}.",
            secs(t.mean),
            secs(t.p50),
            secs(t.p95),
            secs(t.p99),
            secs(t.max)
        );
    }

    if !s.generate_servers.is_empty() {
        let _ = writeln!(
            w,
            "\n## Generate servers\n\nFrom the client's request timeline, over the runs' wall time.\n\n\
             | url | requests | prompts | busy (≥1 request in flight) | mean prompts in flight |\n\
             |---|---:|---:|---:|---:|"
        );
        for g in &s.generate_servers {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {:.1} |",
                table_cell(&g.url),
                g.requests,
                g.prompts,
                pct(g.busy_share),
                g.mean_prompts_in_flight
            );
        }
    }

    let num_candidates = s
        .config
        .as_ref()
        .and_then(|c| c.pointer("/search/num_candidates"))
        .and_then(|v| v.as_u64());
    let _ = writeln!(w, "\n## Search\n\n| measure | value |\n|---|---:|");
    let mut rows: Vec<(String, String)> = vec![
        (
            "mean generate latency".into(),
            ms(s.mean_generate_latency_ms) + " ms",
        ),
        (
            "unique tactics per expansion".into(),
            match num_candidates {
                Some(n) => format!("{:.2} of {n}", s.unique_per_expansion),
                None => format!("{:.2}", s.unique_per_expansion),
            },
        ),
        (
            "children per expansion".into(),
            format!("{:.2}", s.children_per_expansion),
        ),
        (
            "Lean pass rate of unique tactics".into(),
            pct(s.lean_pass_rate),
        ),
        (
            "tokens per theorem".into(),
            format!("{:.0}", s.tokens_per_theorem),
        ),
        (
            "tokens per proof".into(),
            format!("{:.0}", s.tokens_per_proof),
        ),
        (
            "tokens per accepted node".into(),
            format!("{:.1}", s.tokens_per_accepted_node),
        ),
    ];
    // Every counter of the result lines, by its field name: a counter added to
    // `SearchStats` shows up here on its own.
    rows.extend(
        s.totals
            .fields()
            .into_iter()
            .map(|(name, value)| (name.replace('_', " "), value.to_string())),
    );
    for (k, v) in rows {
        let _ = writeln!(w, "| {k} | {v} |");
    }

    if !s.errors.is_empty() {
        let _ = writeln!(
            w,
            "\n## Failures by reason\n\n| reason | theorems |\n|---|---:|"
        );
        for (reason, n) in &s.errors {
            let _ = writeln!(w, "| {} | {n} |", table_cell(reason));
        }
    }
    if let Some(config) = &s.config {
        let pretty = serde_json::to_string_pretty(config).expect("config serialises");
        let _ = writeln!(w, "\n## Config\n\n```json\n{pretty}\n```");
    }
    out
}

/// Text from outside (Lean's and the servers' messages, URLs) as one Markdown table cell:
/// a `<crash>` in an error stays text instead of becoming HTML, a `|` does not split the
/// cell, and a newline does not end the table.
fn table_cell(text: &str) -> String {
    escape_html(text)
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

/// Text as HTML element content or a quoted attribute value (`&`, `<`, `>`, quotes).
pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    pulldown_cmark_escape::escape_html(&mut out, text).expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::summary::tests::result;
    use formats::results::SearchStatus;

    pub(crate) fn summary(num_candidates: u64, url: &str) -> Summary {
        let config = serde_json::json!({
            "search": {"num_candidates": num_candidates, "batch_expansion_size": 1, "max_nodes": 10, "ebm_weight": 0.0},
            "policy": {"temperature": 1.3},
            "sweep": {"concurrency": 4},
            "ebm": {"url": url},
        });
        Summary::from_results(
            &[result("a", SearchStatus::Proved, None)],
            &[],
            Some(config),
        )
    }

    /// A REPL's stderr may hold anything; in report.md it must stay one cell of text.
    #[test]
    fn outside_text_in_a_table_is_escaped() {
        let s = Summary::from_results(
            &[result(
                "a",
                SearchStatus::Error,
                Some("REPL died: <crash> | exit & 1"),
            )],
            &[],
            None,
        );
        let r = render(&s);
        assert!(
            r.contains("| REPL died: &lt;crash&gt; \\| exit &amp; 1 | 1 |\n"),
            "{r}"
        );
        assert!(!r.contains("<crash>"), "{r}");
    }

    #[test]
    fn report_has_the_tables() {
        let r = render(&summary(16, ""));
        assert!(r.contains("Proved 1 / 1"), "{r}");
        assert!(r.contains("| generate | 800.0 ms | 80.0% | 2 |"), "{r}");
        assert!(r.contains("5.00 of 16"), "{r}");
        assert!(r.starts_with("# Sweep report (tactic)"), "{r}");
        assert!(r.contains("| tokens per proof | 400 |"), "{r}");
        assert!(r.contains("| tokens generated | 400 |"), "{r}");
    }
}
