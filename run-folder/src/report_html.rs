//! `DIR/report.html`: a sweep's curves as inline SVG above the numbers tables of `report.md`,
//! and the HTML of `stepwise compare --html`. One self-contained file each: no scripts, no
//! fonts or images fetched, so it reads offline after `scp`.
//!
//! The charts are drawn by plotters' SVG backend built without its font features: plotters
//! then estimates text extents itself and the SVG backend writes `<text>` elements, which the
//! browser renders in its own sans-serif, so no font file is ever loaded.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use plotters::coord::combinators::IntoLogRange;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::Serialize;

use formats::manifest::{ConfigDefaults, Difference, Manifest, Scope};
use formats::progress::{read_timeline, InFlightStep, TimelineSample, STEPPED_INTERVALS};
use formats::results::{latest_by_name, read_results, SearchStatus, TheoremResult, RESULTS_FILE};
use formats::runs::{read_runs, RunRecord};
use formats::stats::{Histogram, TimeAccount};

use crate::compare::compare_table;
use crate::report::{escape_html, pct, render_headline, render_tables, secs};
use crate::summary::{Summary, SummaryError};

pub const REPORT_HTML_FILE: &str = "report.html";

/// One finished theorem on the sweep's cumulative curves (in finishing order).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProgressPoint {
    /// Since the sweep started (pauses between resumed runs included).
    pub seconds: f64,
    pub finished: usize,
    pub proved: usize,
    /// Generate calls of the theorems finished so far.
    pub gen_calls: u64,
    /// Tokens generated for them, when the result lines count tokens.
    pub tokens: Option<u64>,
}

/// The result-line counter of generated tokens. Looked up by name in the stats' field list, so
/// the token curve appears as soon as the counter is added to `formats::stats`.
const TOKENS_FIELD: &str = "tokens_generated";

fn tokens(r: &TheoremResult) -> Option<u64> {
    r.stats
        .fields()
        .into_iter()
        .find_map(|(name, v)| (name == TOKENS_FIELD).then_some(v))
}

/// One theorem's wall time by phase (ms).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TheoremSplit {
    pub name: String,
    pub wall_ms: f64,
    /// In [`PHASES`] order.
    pub phases_ms: [f64; PHASES.len()],
}

/// The phases of [`TheoremSplit::phases_ms`], as `summary.json`'s `time` rows name them.
pub const PHASES: [&str; 7] = [
    "generate",
    "lean",
    "ebm",
    "wait",
    "plan",
    "engine",
    "unaccounted",
];

/// A theorem's phase times (ms) in [`PHASES`] order.
pub fn phase_times(t: &TimeAccount) -> [f64; PHASES.len()] {
    [
        t.gen_ms,
        t.lean_ms,
        t.ebm_ms,
        t.wait_ms,
        t.plan_ms,
        t.engine_ms,
        t.unaccounted_ms,
    ]
}

/// One generate server's prompts in flight over the sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerTimeline {
    pub url: String,
    /// (seconds since the sweep started, prompts in flight), as [`Series::generate_points`]
    /// says.
    pub points: Vec<(f64, f64)>,
    pub requests: u64,
}

/// What [`ServerTimeline::points`] are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InFlightPoints {
    /// Each interval's mean, at the interval's end.
    IntervalMeans,
    /// The level after each change: every run was short enough for the timeline to carry all
    /// its steps ([`STEPPED_INTERVALS`]).
    Steps,
}

/// Everything the plots draw, from the sweep's own files. Its totals are `summary.json`'s
/// (the tests hold them to it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub started_unix_ms: u64,
    pub progress: Vec<ProgressPoint>,
    /// Longest first.
    pub theorems: Vec<TheoremSplit>,
    /// Tactics in each proof -> proved theorems.
    pub proof_depths: BTreeMap<usize, usize>,
    /// Deepest open (unfinished) proof state reached -> theorems.
    pub tree_depths: BTreeMap<u64, usize>,
    pub lean_latency: Histogram,
    /// Why unproved theorems ended: the status, or for `error` the reason (as in
    /// `summary.json`'s `errors`), most frequent first.
    pub failures: Vec<(String, usize)>,
    pub generate: Vec<ServerTimeline>,
    pub generate_points: InFlightPoints,
}

impl Series {
    pub fn new(results: &[TheoremResult], runs: &[RunRecord], timeline: &[TimelineSample]) -> Self {
        let start = |r: &TheoremResult| r.finished_unix_ms.saturating_sub(r.time.wall_ms as u64);
        let started_unix_ms = results
            .iter()
            .map(start)
            .chain(runs.iter().map(|r| r.started_unix_ms))
            .min()
            .unwrap_or(0);
        let seconds = |unix_ms: u64| unix_ms.saturating_sub(started_unix_ms) as f64 / 1000.0;

        let mut by_finish: Vec<&TheoremResult> = results.iter().collect();
        by_finish.sort_by_key(|r| r.finished_unix_ms);
        let (mut proved, mut gen_calls, mut tokens_so_far) = (0, 0, 0);
        let progress = by_finish
            .iter()
            .enumerate()
            .map(|(i, r)| {
                proved += usize::from(r.proved);
                gen_calls += r.stats.gen_calls;
                let tokens = tokens(r).map(|t| {
                    tokens_so_far += t;
                    tokens_so_far
                });
                ProgressPoint {
                    seconds: seconds(r.finished_unix_ms),
                    finished: i + 1,
                    proved,
                    gen_calls,
                    tokens,
                }
            })
            .collect();

        let mut theorems: Vec<TheoremSplit> = results
            .iter()
            .map(|r| TheoremSplit {
                name: r.name.clone(),
                wall_ms: r.time.wall_ms,
                phases_ms: phase_times(&r.time),
            })
            .collect();
        theorems.sort_by(|a, b| b.wall_ms.total_cmp(&a.wall_ms));

        let mut proof_depths = BTreeMap::new();
        let mut tree_depths = BTreeMap::new();
        let mut lean_latency = Histogram::default();
        let mut failures: BTreeMap<String, usize> = BTreeMap::new();
        for r in results {
            if r.proved {
                *proof_depths.entry(r.proof_tactics.len()).or_default() += 1;
            } else {
                let why = match r.status {
                    SearchStatus::Error => crate::summary::reason(r.error.as_deref()),
                    status => status.as_str().to_owned(),
                };
                *failures.entry(why).or_default() += 1;
            }
            *tree_depths.entry(r.stats.max_depth_reached).or_default() += 1;
            lean_latency.merge(&r.time.lean_latency);
        }
        let mut failures: Vec<(String, usize)> = failures.into_iter().collect();
        failures.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));

        let mut generate: Vec<ServerTimeline> = Vec::new();
        for sample in timeline {
            for u in &sample.servers {
                let i = match generate.iter().position(|g| g.url == u.url) {
                    Some(i) => i,
                    None => {
                        generate.push(ServerTimeline {
                            url: u.url.clone(),
                            points: Vec::new(),
                            requests: 0,
                        });
                        generate.len() - 1
                    }
                };
                let mean = if sample.interval_ms > 0.0 {
                    u.prompt_ms / sample.interval_ms
                } else {
                    0.0
                };
                generate[i].points.push((seconds(sample.unix_ms), mean));
                generate[i].requests += u.requests;
            }
        }

        // Merged shards' timelines follow each other in the file; plot them in time order.
        for g in &mut generate {
            g.points.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        let generate_points = match in_flight_steps(timeline) {
            Some(mut stepped) => {
                for g in &mut generate {
                    g.points = stepped
                        .remove(g.url.as_str())
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(unix_ms, prompts)| (seconds(unix_ms), prompts as f64))
                        .collect();
                }
                InFlightPoints::Steps
            }
            None => InFlightPoints::IntervalMeans,
        };
        Series {
            started_unix_ms,
            progress,
            theorems,
            proof_depths,
            tree_depths,
            lean_latency,
            failures,
            generate,
            generate_points,
        }
    }

    /// From `DIR/results.jsonl` (latest line per theorem), `runs.jsonl` and
    /// `generate_timeline.jsonl`.
    pub fn from_dir(dir: &Path) -> Result<Self, SummaryError> {
        let results = latest_by_name(read_results(&dir.join(RESULTS_FILE))?);
        Ok(Self::new(&results, &read_runs(dir)?, &read_timeline(dir)?))
    }
}

/// Per server, (unix ms, prompts in flight) after each change, added up over the runs (shards
/// that ran at once share a server); `None` unless the timeline carries every run's steps.
fn in_flight_steps(timeline: &[TimelineSample]) -> Option<BTreeMap<&str, Vec<(u64, u64)>>> {
    // Per run: its lines, and whether they carry steps (its first line always does).
    let mut runs: BTreeMap<u64, (usize, bool)> = BTreeMap::new();
    for sample in timeline {
        let run = runs.entry(sample.run_started_unix_ms).or_default();
        run.0 += 1;
        run.1 |= !sample.in_flight_steps.is_empty();
    }
    if runs.is_empty()
        || runs
            .values()
            .any(|&(lines, stepped)| lines > STEPPED_INTERVALS || !stepped)
    {
        return None;
    }
    let mut steps: Vec<(u64, &InFlightStep)> = timeline
        .iter()
        .flat_map(|s| {
            s.in_flight_steps
                .iter()
                .map(|step| (s.run_started_unix_ms, step))
        })
        .collect();
    // Stable: a run's steps at the same millisecond stay in their order.
    steps.sort_by_key(|(_, step)| step.unix_ms);
    let mut levels: BTreeMap<(&str, u64), u64> = BTreeMap::new();
    let mut out: BTreeMap<&str, Vec<(u64, u64)>> = BTreeMap::new();
    for (run, step) in steps {
        let url = step.url.as_str();
        levels.insert((url, run), step.prompts);
        let total = levels
            .range((url, 0)..=(url, u64::MAX))
            .map(|(_, prompts)| prompts)
            .sum();
        out.entry(url).or_default().push((step.unix_ms, total));
    }
    Some(out)
}

/// Writes `DIR/report.html` for the sweep in `dir`, whose statistics are `summary`.
pub fn write(dir: &Path, summary: &Summary) -> Result<(), SummaryError> {
    let path = dir.join(REPORT_HTML_FILE);
    let html = render(&dir.display().to_string(), summary, &Series::from_dir(dir)?)
        .and_then(|html| std::fs::write(&path, html).map_err(|e| e.to_string()));
    html.map_err(|message| SummaryError::File { path, message })
}

const WIDTH: u32 = 960;
const HEIGHT: u32 = 360;
const FONT: &str = "sans-serif";

/// Phase colours in [`PHASES`] order (a colour-blind-safe palette); `unaccounted` is a light
/// grey. Sized by `PHASES`, so a new phase cannot go undrawn.
const PHASE_COLOURS: [RGBColor; PHASES.len()] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(153, 153, 153),
    RGBColor(86, 180, 233),
    RGBColor(204, 121, 167),
    RGBColor(220, 220, 220),
];
/// Colours of the sweeps of a comparison, in order (repeating).
const SERIES_COLOURS: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
];

type PlotResult = Result<(), Box<dyn std::error::Error>>;

/// Draws one chart into an SVG string.
fn svg(draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> PlotResult) -> Result<String, String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// The chart layout every plot shares: margins and the axis label areas.
fn frame<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut builder = ChartBuilder::on(root);
    builder
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64);
    builder
}

/// The series legend, in one style for every plot.
fn legend<'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
    position: SeriesLabelPosition,
) -> PlotResult {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

/// Axis labels of counts: whole numbers only (plotters also places ticks between them).
fn whole(v: &f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        String::new()
    }
}

/// A step curve through `(x, y)` points sorted by x, starting at (0, 0).
fn steps(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = vec![(0.0, 0.0)];
    for &(x, y) in points {
        let last = out[out.len() - 1].1;
        out.push((x, last));
        out.push((x, y));
    }
    out
}

/// A legend, the points, the colour.
type Curve = (String, Vec<(f64, f64)>, RGBColor);

/// Cumulative curves on shared axes: `(legend, points, colour)`. `x_counts`: the x axis
/// counts things (calls, tokens), so its labels are whole numbers.
fn cumulative_chart(
    x_desc: &str,
    x_counts: bool,
    y_desc: &str,
    curves: &[Curve],
) -> Result<String, String> {
    let max = |f: fn(&(f64, f64)) -> f64| {
        curves
            .iter()
            .flat_map(|c| c.1.iter().map(f))
            .fold(0.0, f64::max)
    };
    let (x_max, y_max) = (max(|p| p.0).max(1e-9) * 1.02, max(|p| p.1).max(1.0) * 1.05);
    svg(|root| {
        let mut chart = frame(root).build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .y_label_formatter(&whole)
            .x_label_formatter(&|x| {
                if x_counts {
                    whole(x)
                } else {
                    // Tick positions carry float noise (0.6000000000000001).
                    format!("{}", (x * 1000.0).round() / 1000.0)
                }
            })
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .draw()?;
        for (legend, points, colour) in curves {
            let colour = *colour;
            chart
                .draw_series(LineSeries::new(steps(points), colour.stroke_width(2)))?
                .label(legend.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    })
}

/// Bars per theorem, longest first, each split into the phases; more than `MAX_BARS`
/// theorems are drawn as the means of equal groups.
fn time_split_chart(theorems: &[TheoremSplit]) -> Result<(String, usize), String> {
    const MAX_BARS: usize = 400;
    let group = theorems.len().div_ceil(MAX_BARS).max(1);
    let bars: Vec<[f64; PHASES.len()]> = theorems
        .chunks(group)
        .map(|chunk| {
            let mut mean = [0.0; PHASES.len()];
            for t in chunk {
                for (m, v) in mean.iter_mut().zip(t.phases_ms) {
                    *m += v.max(0.0) / 1000.0 / chunk.len() as f64;
                }
            }
            mean
        })
        .collect();
    let y_max = bars
        .iter()
        .map(|b| b.iter().sum::<f64>())
        .fold(0.0, f64::max)
        .max(1e-3)
        * 1.05;
    let chart = svg(|root| {
        let mut chart =
            frame(root).build_cartesian_2d(0.0..bars.len().max(1) as f64, 0.0..y_max)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(if group > 1 {
                format!("theorems, longest first ({group} per bar, their mean)")
            } else {
                "theorems, longest first".to_owned()
            })
            .y_desc("wall time (s)")
            .x_label_formatter(&|x| format!("{}", (*x as usize) * group))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .draw()?;
        for (p, (name, colour)) in PHASES.iter().zip(PHASE_COLOURS).enumerate() {
            let rects = bars.iter().enumerate().map(move |(i, b)| {
                let below: f64 = b[..p].iter().sum();
                Rectangle::new(
                    [(i as f64 + 0.1, below), (i as f64 + 0.9, below + b[p])],
                    colour.filled(),
                )
            });
            chart
                .draw_series(rects)?
                .label(*name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled())
                });
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })?;
    Ok((chart, group))
}

/// Proof depths and tree depths as side-by-side bars per depth.
fn depth_chart(s: &Series) -> Result<String, String> {
    let proof: Vec<(f64, usize)> = s
        .proof_depths
        .iter()
        .map(|(d, n)| (*d as f64, *n))
        .collect();
    let tree: Vec<(f64, usize)> = s.tree_depths.iter().map(|(d, n)| (*d as f64, *n)).collect();
    let x_max = proof.iter().chain(&tree).map(|p| p.0).fold(0.0, f64::max) + 1.0;
    let y_max = proof.iter().chain(&tree).map(|p| p.1).max().unwrap_or(1) as f64 * 1.1;
    svg(|root| {
        let mut chart = frame(root).build_cartesian_2d(-0.5..x_max - 0.5, 0.0..y_max)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("depth (tactics from the root)")
            .y_desc("theorems")
            .x_label_formatter(&whole)
            .y_label_formatter(&whole)
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .draw()?;
        let sets = [
            (
                "proof length (proved theorems)",
                &proof,
                SERIES_COLOURS[0],
                -0.4,
            ),
            (
                "deepest open state reached (all theorems)",
                &tree,
                SERIES_COLOURS[1],
                0.0,
            ),
        ];
        for (legend, data, colour, offset) in sets {
            chart
                .draw_series(data.iter().map(|(d, n)| {
                    Rectangle::new(
                        [(d + offset, 0.0), (d + offset + 0.4, *n as f64)],
                        colour.filled(),
                    )
                }))?
                .label(legend)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled())
                });
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}

/// The Lean call latencies as a cumulative distribution on a log time axis, read from the
/// merged histogram's quantiles (its buckets are 1/8 of a doubling wide).
fn lean_latency_points(h: &Histogram) -> Vec<(f64, f64)> {
    (1..=200)
        .filter_map(|i| {
            let q = i as f64 / 200.0;
            h.quantile(q).map(|ms| (ms, q))
        })
        .collect()
}

fn latency_chart(points: &[(f64, f64)]) -> Result<String, String> {
    let lo = points.first().map_or(0.1, |p| p.0) / 2.0;
    let hi = points.last().map_or(1.0, |p| p.0) * 2.0;
    svg(|root| {
        let mut chart = frame(root).build_cartesian_2d((lo..hi).log_scale(), 0.0..1.0)?;
        chart
            .configure_mesh()
            .x_desc("Lean call latency (ms, log scale)")
            .y_desc("share of calls at most this slow")
            .y_label_formatter(&|y| format!("{:.0}%", y * 100.0))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .draw()?;
        let mut curve = vec![(lo, 0.0)];
        for &(x, y) in points {
            let last = curve[curve.len() - 1].1;
            curve.push((x, last));
            curve.push((x, y));
        }
        chart.draw_series(LineSeries::new(curve, SERIES_COLOURS[0].stroke_width(2)))?;
        Ok(())
    })
}

fn timeline_chart(generate: &[ServerTimeline], kind: InFlightPoints) -> Result<String, String> {
    let x_max = generate
        .iter()
        .flat_map(|g| g.points.iter().map(|p| p.0))
        .fold(1e-9, f64::max)
        * 1.02;
    let y_max = generate
        .iter()
        .flat_map(|g| g.points.iter().map(|p| p.1))
        .fold(1.0, f64::max)
        * 1.1;
    svg(|root| {
        let mut chart = frame(root).build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc("time since the sweep started (s)")
            .y_desc(match kind {
                InFlightPoints::Steps => "prompts in flight",
                InFlightPoints::IntervalMeans => "prompts in flight (interval mean)",
            })
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .draw()?;
        for (g, colour) in generate.iter().zip(SERIES_COLOURS.iter().cycle()) {
            let colour = *colour;
            let curve = match kind {
                InFlightPoints::Steps => steps(&g.points),
                InFlightPoints::IntervalMeans => g.points.clone(),
            };
            chart
                .draw_series(LineSeries::new(curve, colour.stroke_width(2)))?
                .label(g.url.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}

/// Horizontal bars, one per reason, most frequent at the top, each labelled at its end (the
/// reasons are too long for an axis).
fn failures_chart(failures: &[(String, usize)]) -> Result<String, String> {
    let n = failures.len();
    let most = failures.iter().map(|f| f.1).max().unwrap_or(1) as f64;
    let short = |s: &str| match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    };
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(24)
            .build_cartesian_2d(0.0..most * 2.2, -0.6..n as f64 - 0.4)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc("theorems")
            .x_label_formatter(&whole)
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .draw()?;
        // Row 0 at the top.
        let row = |i: usize| (n - 1 - i) as f64;
        chart.draw_series(failures.iter().enumerate().map(|(i, f)| {
            Rectangle::new(
                [(0.0, row(i) - 0.35), (f.1 as f64, row(i) + 0.35)],
                SERIES_COLOURS[1].filled(),
            )
        }))?;
        let style = TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        chart.draw_series(failures.iter().enumerate().map(|(i, (why, count))| {
            Text::new(
                format!("{}: {count}", short(why)),
                (*count as f64 + most * 0.02, row(i)),
                style.clone(),
            )
        }))?;
        Ok(())
    })
}

/// Markdown to HTML. Raw HTML in the text (an error message quoting `<stdin>`, a theorem
/// name) is shown as text, never passed through as markup.
fn markdown(text: &str) -> String {
    use pulldown_cmark::{html, Event, Options, Parser};
    let events = Parser::new_ext(text, Options::ENABLE_TABLES).map(|e| match e {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        e => e,
    });
    let mut out = String::new();
    html::push_html(&mut out, events);
    out
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;\
color:#222;line-height:1.45}figure{margin:2em 0}figcaption{margin-bottom:.4em}\
figcaption b{font-size:1.1em}svg{max-width:100%;height:auto;border:1px solid #ddd}\
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.25em .6em}\
td:not(:first-child){text-align:right}pre{background:#f6f6f6;padding:1em;overflow:auto}\
p.note{color:#666;font-style:italic}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape_html(title)
    )
}

/// A plot with its title and what it shows in numbers.
fn figure(out: &mut String, id: &str, title: &str, caption: &str, svg: &str) {
    let _ = writeln!(
        out,
        "<figure id=\"{id}\">\n<figcaption><b>{}</b> {}</figcaption>\n{svg}</figure>",
        escape_html(title),
        escape_html(caption)
    );
}

fn note(out: &mut String, id: &str, title: &str, why: &str) {
    let _ = writeln!(
        out,
        "<figure id=\"{id}\">\n<figcaption><b>{}</b></figcaption>\n<p class=\"note\">{}</p>\n</figure>",
        escape_html(title),
        escape_html(why)
    );
}

/// `report.html` of the sweep `name`.
pub fn render(name: &str, s: &Summary, series: &Series) -> Result<String, String> {
    let mut body = String::new();
    let b = &mut body;
    let _ = writeln!(b, "<h1>Sweep report: {}</h1>", escape_html(name));
    b.push_str(&markdown(&render_headline(s)));

    let last = series.progress.last();
    let span_s = last.map_or(0.0, |p| p.seconds);
    let time_points: Vec<(f64, f64)> = series
        .progress
        .iter()
        .map(|p| (p.seconds, p.proved as f64))
        .collect();
    let finished_points: Vec<(f64, f64)> = series
        .progress
        .iter()
        .map(|p| (p.seconds, p.finished as f64))
        .collect();
    figure(
        b,
        "proved-vs-time",
        "Theorems proved against wall time.",
        &format!(
            "{} of {} proved, {} finished, over {} since the sweep started (pauses between resumed runs included).",
            s.proved,
            s.theorems,
            last.map_or(0, |p| p.finished),
            secs(span_s * 1000.0)
        ),
        &cumulative_chart(
            "wall time since the sweep started (s)",
            false,
            "theorems",
            &[
                ("proved".into(), time_points, SERIES_COLOURS[0]),
                ("finished".into(), finished_points, PHASE_COLOURS[3]),
            ],
        )?,
    );
    let gen_points: Vec<(f64, f64)> = series
        .progress
        .iter()
        .map(|p| (p.gen_calls as f64, p.proved as f64))
        .collect();
    figure(
        b,
        "proved-vs-generate-calls",
        "Theorems proved against generate calls (the budget curve).",
        &format!(
            "{} proved with {} generate calls; theorems in finishing order.",
            s.proved, s.totals.gen_calls
        ),
        &cumulative_chart(
            "generate calls (cumulative)",
            true,
            "theorems proved",
            &[("proved".into(), gen_points, SERIES_COLOURS[0])],
        )?,
    );
    let token_points: Vec<(f64, f64)> = series
        .progress
        .iter()
        .filter_map(|p| Some((p.tokens? as f64, p.proved as f64)))
        .collect();
    if token_points.is_empty() {
        note(
            b,
            "proved-vs-tokens",
            "Theorems proved against generated tokens.",
            &format!("results.jsonl has no `{TOKENS_FIELD}` counts, so there is no token curve."),
        );
    } else {
        figure(
            b,
            "proved-vs-tokens",
            "Theorems proved against generated tokens.",
            &format!(
                "{} proved with {} tokens generated.",
                s.proved,
                token_points.last().map_or(0.0, |p| p.0)
            ),
            &cumulative_chart(
                "tokens generated (cumulative)",
                true,
                "theorems proved",
                &[("proved".into(), token_points, SERIES_COLOURS[0])],
            )?,
        );
    }

    let (split, group) = time_split_chart(&series.theorems)?;
    let shares: Vec<String> = s
        .time
        .iter()
        .map(|p| format!("{} {}", p.phase, pct(p.share)))
        .collect();
    figure(
        b,
        "time-split",
        "Where each theorem's wall time went.",
        &format!(
            "{} theorems{}, {} of theorem time in all: {}.",
            series.theorems.len(),
            if group > 1 {
                format!(" in bars of {group}")
            } else {
                String::new()
            },
            secs(s.theorem_wall_ms),
            shares.join(", ")
        ),
        &split,
    );

    let busy: Vec<String> = s
        .generate_servers
        .iter()
        .map(|g| {
            format!(
                "{}: busy {}, {:.1} prompts in flight on average",
                g.url,
                pct(g.busy_share),
                g.mean_prompts_in_flight
            )
        })
        .collect();
    if series.generate.iter().any(|g| !g.points.is_empty()) {
        figure(
            b,
            "prompts-in-flight",
            "Generate servers: prompts in flight over the sweep.",
            &format!(
                "From the client's request timeline: {}. {}.",
                match series.generate_points {
                    InFlightPoints::Steps =>
                        "a step at every change (the sweep was short enough to record them all)",
                    InFlightPoints::IntervalMeans => "the mean of each interval",
                },
                busy.join("; ")
            ),
            &timeline_chart(&series.generate, series.generate_points)?,
        );
    } else {
        note(
            b,
            "prompts-in-flight",
            "Generate servers: prompts in flight over the sweep.",
            "No generate_timeline.jsonl in this directory (the sweep used no HTTP policy, or predates the timeline).",
        );
    }

    let proofs: usize = series.proof_depths.values().sum();
    figure(
        b,
        "depths",
        "Proof lengths and tree depths.",
        &format!(
            "{proofs} proofs, mean length {:.1} tactics; deepest open state over all theorems: {}.",
            series
                .proof_depths
                .iter()
                .map(|(d, n)| (*d * *n) as f64)
                .sum::<f64>()
                / proofs.max(1) as f64,
            series.tree_depths.keys().max().copied().unwrap_or(0)
        ),
        &depth_chart(series)?,
    );

    let lean = s.time.iter().find(|p| p.phase == "lean");
    let latency = lean_latency_points(&series.lean_latency);
    if latency.is_empty() {
        note(
            b,
            "lean-latency",
            "Lean call latency.",
            "No Lean calls were timed.",
        );
    } else {
        let ms = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.1} ms"));
        figure(
            b,
            "lean-latency",
            "Lean call latency.",
            &format!(
                "{} calls: p50 {}, p95 {}, p99 {} (bucket upper edges, 1/8 of a doubling wide).",
                series.lean_latency.count(),
                ms(lean.and_then(|p| p.p50_ms)),
                ms(lean.and_then(|p| p.p95_ms)),
                ms(lean.and_then(|p| p.p99_ms))
            ),
            &latency_chart(&latency)?,
        );
    }

    let unproved: usize = series.failures.iter().map(|f| f.1).sum();
    if series.failures.is_empty() {
        note(
            b,
            "failures",
            "Unproved theorems by reason.",
            "Every theorem was proved.",
        );
    } else {
        let top: Vec<String> = series
            .failures
            .iter()
            .take(3)
            .map(|(why, n)| format!("{why}: {n}"))
            .collect();
        figure(
            b,
            "failures",
            "Unproved theorems by reason.",
            &format!("{unproved} unproved; {}.", top.join("; ")),
            &failures_chart(&series.failures)?,
        );
    }

    b.push_str("<h2>The numbers</h2>\n");
    b.push_str(&markdown(&render_tables(s)));
    Ok(page(&format!("Sweep report: {name}"), &body))
}

/// Every leaf of a JSON value by its pointer.
fn leaves(value: &serde_json::Value, pointer: String, out: &mut BTreeMap<String, String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                leaves(v, format!("{pointer}/{k}"), out);
            }
        }
        v => {
            out.insert(pointer, v.to_string());
        }
    }
}

/// One sweep of `stepwise compare --html`.
pub struct ComparedSweep {
    pub name: String,
    pub summary: Summary,
    pub series: Series,
    /// `DIR/manifest.json`, when the sweep wrote one.
    pub manifest: Option<Manifest>,
}

/// `stepwise compare --html`: the sweeps' curves on shared axes, the outcome table, every
/// config value that differs between them, and what else their manifests disagree on.
pub fn render_compare(sweeps: &[ComparedSweep]) -> Result<String, String> {
    let mut body = String::new();
    let b = &mut body;
    let names: Vec<String> = sweeps.iter().map(|c| c.name.clone()).collect();
    let _ = writeln!(
        b,
        "<h1>Sweeps compared</h1>\n<p>{}</p>",
        escape_html(&names.join(", "))
    );
    let curves = |f: fn(&ProgressPoint) -> f64| -> Vec<Curve> {
        sweeps
            .iter()
            .zip(SERIES_COLOURS.iter().cycle())
            .map(|(c, colour)| {
                let points = c
                    .series
                    .progress
                    .iter()
                    .map(|p| (f(p), p.proved as f64))
                    .collect();
                (c.name.clone(), points, *colour)
            })
            .collect()
    };
    let proved: Vec<String> = sweeps
        .iter()
        .map(|c| format!("{}: {} of {}", c.name, c.summary.proved, c.summary.theorems))
        .collect();
    figure(
        b,
        "proved-vs-time",
        "Theorems proved against wall time.",
        &format!("{}.", proved.join("; ")),
        &cumulative_chart(
            "wall time since the sweep started (s)",
            false,
            "theorems proved",
            &curves(|p| p.seconds),
        )?,
    );
    let calls: Vec<String> = sweeps
        .iter()
        .map(|c| format!("{}: {} calls", c.name, c.summary.totals.gen_calls))
        .collect();
    figure(
        b,
        "proved-vs-generate-calls",
        "Theorems proved against generate calls.",
        &format!("{}.", calls.join("; ")),
        &cumulative_chart(
            "generate calls (cumulative)",
            true,
            "theorems proved",
            &curves(|p| p.gen_calls as f64),
        )?,
    );

    b.push_str("<h2>Outcomes</h2>\n");
    b.push_str(&html_table(&compare_table(
        &sweeps
            .iter()
            .map(|c| (c.name.clone(), c.summary.clone()))
            .collect::<Vec<_>>(),
    )));

    let configs: Vec<BTreeMap<String, String>> = sweeps
        .iter()
        .map(|sweep| {
            let mut out = BTreeMap::new();
            if let Some(c) = &sweep.summary.config {
                leaves(c, String::new(), &mut out);
            }
            out
        })
        .collect();
    let mut keys: Vec<&String> = configs.iter().flat_map(|c| c.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut diff = vec![std::iter::once("config key".to_owned())
        .chain(names.iter().cloned())
        .collect::<Vec<_>>()];
    for key in keys {
        let values: Vec<String> = configs
            .iter()
            .map(|c| c.get(key).cloned().unwrap_or_else(|| "(absent)".into()))
            .collect();
        if values.iter().any(|v| *v != values[0]) {
            diff.push(std::iter::once(key.clone()).chain(values).collect());
        }
    }
    b.push_str("<h2>Config differences</h2>\n");
    if diff.len() > 1 {
        b.push_str(&html_table(&diff));
    } else {
        b.push_str("<p>The sweeps ran with the same config.</p>\n");
    }
    b.push_str("<h2>Manifest differences</h2>\n");
    match manifest_table(sweeps) {
        Some(rows) if rows.len() > 1 => b.push_str(&html_table(&rows)),
        Some(_) => b.push_str("<p>The manifests agree (config aside).</p>\n"),
        None => b.push_str("<p>Not every sweep has a manifest.json.</p>\n"),
    }
    Ok(page("Sweeps compared", &body))
}

/// What the manifests disagree on beyond the config (model, Lean, Mathlib, template, theorems,
/// shard, EBM), each sweep against the first as `--resume` judges; `None` when a sweep has
/// no manifest.
fn manifest_table(sweeps: &[ComparedSweep]) -> Option<Vec<Vec<String>>> {
    let manifests: Vec<&Manifest> = sweeps
        .iter()
        .map(|c| c.manifest.as_ref())
        .collect::<Option<_>>()?;
    let first = manifests.first()?;
    let differences: Vec<Vec<Difference>> = manifests
        .iter()
        .map(|m| {
            // Config keys are left out below, so their defaults do not matter.
            first
                .differences(m, Scope::Resume, &ConfigDefaults::default())
                .into_iter()
                .filter(|d| !d.field.starts_with("config "))
                .collect()
        })
        .collect();
    let mut fields: Vec<(&str, &str)> = differences
        .iter()
        .flatten()
        .map(|d| (d.field.as_str(), d.before.as_str()))
        .collect();
    fields.sort();
    fields.dedup_by(|a, b| a.0 == b.0);
    let mut rows = vec![std::iter::once("manifest field".to_owned())
        .chain(sweeps.iter().map(|c| c.name.clone()))
        .collect::<Vec<_>>()];
    for (field, first_value) in fields {
        let cells = differences.iter().map(|ds| {
            ds.iter()
                .find(|d| d.field == field)
                .map_or(first_value, |d| d.after.as_str())
                .to_owned()
        });
        rows.push(std::iter::once(field.to_owned()).chain(cells).collect());
    }
    Some(rows)
}

fn html_table(rows: &[Vec<String>]) -> String {
    let mut out = String::from("<table>\n");
    for (i, row) in rows.iter().enumerate() {
        let cell = if i == 0 { "th" } else { "td" };
        out.push_str("<tr>");
        for c in row {
            let _ = write!(out, "<{cell}>{}</{cell}>", escape_html(c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::tests::result;
    use formats::progress::GENERATE_TIMELINE_FILE;
    use formats::results::ResultsWriter;
    use formats::utilisation::UrlUtilisation;
    use scraper::{Html, Selector};

    const FIGURES: [&str; 6] = [
        "proved-vs-time",
        "proved-vs-generate-calls",
        "time-split",
        "prompts-in-flight",
        "depths",
        "lean-latency",
    ];

    fn server(requests: u64, busy_ms: f64) -> Vec<UrlUtilisation> {
        vec![UrlUtilisation {
            url: "http://gpu0:30000".into(),
            requests,
            prompts: requests * 8,
            busy_ms,
            prompt_ms: busy_ms * 6.0,
        }]
    }

    /// A sweep directory: five theorems over ten seconds, one run, its timeline in five intervals.
    fn sweep_dir() -> tempfile::TempDir {
        let timeline = (1..=5)
            .map(|i| TimelineSample {
                run_started_unix_ms: 1_000_000,
                unix_ms: 1_000_000 + 2000 * i,
                interval_ms: 2000.0,
                servers: server(i, 500.0 * i as f64),
                in_flight_steps: Vec::new(),
            })
            .collect();
        sweep_dir_with(timeline)
    }

    /// [`sweep_dir`] with another timeline.
    fn sweep_dir_with(timeline: Vec<TimelineSample>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ResultsWriter::create(&dir.path().join(RESULTS_FILE)).unwrap();
        let statuses = [
            (SearchStatus::Proved, None),
            (SearchStatus::NodeBudget, None),
            (SearchStatus::Proved, None),
            (
                SearchStatus::Error,
                Some("Lean infrastructure failure: <crash> & more"),
            ),
            (SearchStatus::Proved, None),
        ];
        for (i, (status, error)) in statuses.into_iter().enumerate() {
            let mut r = result(&format!("thm_{i}"), status, error);
            r.finished_unix_ms = 1_000_000 + 2000 * (i as u64 + 1);
            r.stats.gen_calls = i as u64 + 1;
            r.stats.max_depth_reached = i as u64 + 2;
            r.proof_tactics = vec!["simp".into(); i + 1];
            for ms in [3.0, 30.0, 300.0] {
                r.time.lean_latency.record(ms * (i + 1) as f64);
            }
            w.append(&r).unwrap();
        }
        formats::runs::append_run(
            dir.path(),
            &RunRecord {
                started_unix_ms: 1_000_000,
                wall_ms: 10_000.0,
                searched: 5,
                stopped: false,
                generate_servers: server(15, 7500.0),
            },
        )
        .unwrap();
        let timeline: String = timeline
            .iter()
            .map(|sample| serde_json::to_string(sample).unwrap() + "\n")
            .collect();
        std::fs::write(dir.path().join(GENERATE_TIMELINE_FILE), timeline).unwrap();
        crate::write_reports(dir.path()).unwrap();
        dir
    }

    fn select<'a>(html: &'a Html, css: &str) -> Vec<scraper::ElementRef<'a>> {
        html.select(&Selector::parse(css).unwrap()).collect()
    }

    fn text(e: &scraper::ElementRef) -> String {
        e.text().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn report_html_holds_every_plot_with_its_labels_and_numbers() {
        let dir = sweep_dir();
        let source = std::fs::read_to_string(dir.path().join(REPORT_HTML_FILE)).unwrap();
        let html = Html::parse_document(&source);
        assert!(html.errors.is_empty(), "{:?}", html.errors);

        let mut figures = FIGURES.to_vec();
        figures.push("failures");
        for id in figures {
            let figure = select(&html, &format!("figure#{id}"));
            assert_eq!(figure.len(), 1, "{id}");
            let svgs = select(&html, &format!("figure#{id} svg"));
            assert_eq!(svgs.len(), 1, "{id} has no SVG");
            let labels: Vec<String> = select(&html, &format!("figure#{id} svg text"))
                .iter()
                .map(text)
                .collect();
            assert!(labels.len() > 4, "{id}: axis labels missing: {labels:?}");
        }
        let labels = |id: &str| {
            select(&html, &format!("figure#{id} svg text"))
                .iter()
                .map(text)
                .collect::<Vec<_>>()
                .join("|")
        };
        assert!(labels("proved-vs-time").contains("wall time since the sweep started (s)"));
        assert!(labels("time-split").contains("generate") && labels("time-split").contains("lean"));
        assert!(labels("prompts-in-flight").contains("http://gpu0:30000"));
        assert!(labels("failures").contains("node_budget"));
        assert!(
            labels("failures").contains("Lean infrastructure failure: <crash>"),
            "text is escaped once, shown as written: {}",
            labels("failures")
        );

        let caption = |id: &str| text(&select(&html, &format!("figure#{id} figcaption"))[0]);
        assert!(
            caption("proved-vs-time").contains("3 of 5 proved"),
            "{}",
            caption("proved-vs-time")
        );
        assert!(caption("proved-vs-generate-calls").contains("15 generate calls"));
        assert!(
            caption("time-split").contains("generate 80.0%"),
            "{}",
            caption("time-split")
        );
        assert!(caption("lean-latency").contains("15 calls"));
        // Result lines count tokens (`tokens_generated`), so the token curve is drawn.
        assert!(
            caption("proved-vs-tokens").contains("tokens generated"),
            "{}",
            caption("proved-vs-tokens")
        );
        // The tables of report.md follow the plots.
        let tables = select(&html, "table");
        assert!(tables.len() >= 3, "{source}");
        assert!(text(&tables[0]).contains("node_budget"));
    }

    #[test]
    fn report_html_references_nothing_over_the_network() {
        let dir = sweep_dir();
        let source = std::fs::read_to_string(dir.path().join(REPORT_HTML_FILE)).unwrap();
        let html = Html::parse_document(&source);
        for tag in [
            "script", "link", "img", "iframe", "object", "embed", "use", "image",
        ] {
            assert!(select(&html, tag).is_empty(), "<{tag}> in report.html");
        }
        for e in html
            .root_element()
            .descendants()
            .filter_map(scraper::ElementRef::wrap)
        {
            for (name, value) in e.value().attrs() {
                // The SVG namespace name is an identifier, never fetched.
                if name == "xmlns" {
                    continue;
                }
                assert!(
                    !value.contains("://") && !value.starts_with("//"),
                    "<{} {name}=\"{value}\"> points elsewhere",
                    e.value().name()
                );
            }
        }
        let styles: String = select(&html, "style").iter().map(text).collect();
        assert!(!styles.contains("url(") && !styles.contains("@import"));
    }

    #[test]
    fn plotted_series_add_up_to_summary_json() {
        let dir = sweep_dir();
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("summary.json")).unwrap(),
        )
        .unwrap();
        let series = Series::from_dir(dir.path()).unwrap();
        let last = series.progress.last().unwrap();
        assert_eq!(last.proved as u64, json["proved"].as_u64().unwrap());
        assert_eq!(last.finished as u64, json["theorems"].as_u64().unwrap());
        assert_eq!(last.gen_calls, json["gen_calls"].as_u64().unwrap());
        // From the run's start, which is before the first theorem's.
        assert_eq!(last.seconds, 10.0);

        for (p, phase) in PHASES.iter().enumerate() {
            let row = json["time"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["phase"] == *phase)
                .unwrap();
            let plotted: f64 = series.theorems.iter().map(|t| t.phases_ms[p]).sum();
            assert_eq!(plotted, row["total_ms"].as_f64().unwrap(), "{phase}");
        }
        let lean = json["time"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["phase"] == "lean")
            .unwrap();
        assert_eq!(series.lean_latency.count(), lean["calls"].as_u64().unwrap());
        let points = lean_latency_points(&series.lean_latency);
        let at = |q: f64| points.iter().find(|p| p.1 >= q).unwrap().0;
        assert_eq!(at(0.5), lean["p50_ms"].as_f64().unwrap());
        assert_eq!(at(0.95), lean["p95_ms"].as_f64().unwrap());

        // Unproved by reason: the statuses other than proved and error, and the error reasons.
        let mut expected: Vec<(String, u64)> = json["statuses"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k != "proved" && *k != "error")
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
            .chain(
                json["errors"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap())),
            )
            .collect();
        expected.sort();
        let mut plotted: Vec<(String, u64)> = series
            .failures
            .iter()
            .map(|(k, n)| (k.clone(), *n as u64))
            .collect();
        plotted.sort();
        assert_eq!(plotted, expected);

        assert_eq!(
            series.proof_depths.values().sum::<usize>() as u64,
            json["proved"].as_u64().unwrap()
        );
        assert_eq!(
            series.tree_depths.values().sum::<usize>() as u64,
            json["theorems"].as_u64().unwrap()
        );
        assert_eq!(
            series.tree_depths.keys().max().copied(),
            json["max_depth_reached"].as_u64()
        );
        let server = &json["generate_servers"][0];
        assert_eq!(series.generate[0].url, server["url"].as_str().unwrap());
        assert_eq!(
            series.generate[0].requests,
            server["requests"].as_u64().unwrap()
        );
        // Mean prompts in flight: the timeline's integral over the run's wall time.
        let integral: f64 = series.generate[0].points.iter().map(|p| p.1 * 2000.0).sum();
        assert_eq!(
            integral / json["sweep_wall_ms"].as_f64().unwrap(),
            server["mean_prompts_in_flight"].as_f64().unwrap()
        );
    }

    #[test]
    fn compare_puts_every_sweep_on_the_same_axes() {
        let (a, b) = (sweep_dir(), sweep_dir());
        let mut config =
            serde_json::json!({"search": {"num_candidates": 8}, "policy": {"temperature": 1.0}});
        let load = |dir: &Path, config: &serde_json::Value| {
            let mut s = Summary::from_dir(dir).unwrap();
            s.config = Some(config.clone());
            s
        };
        let first = load(a.path(), &config);
        config["search"]["num_candidates"] = 32.into();
        let second = load(b.path(), &config);
        let manifest = |lean: &str| {
            serde_json::from_value::<Manifest>(serde_json::json!({
                "config": {}, "config_sha256": "c",
                "theorems": {"sha256": "t", "count": 5, "shard": null, "benchmark": null},
                "models": [{"name": "prover-7b", "weight_version": null}],
                "template": {"name": "deepseek", "sha256": "s"},
                "stop": [], "lean": {"version": lean, "mathlib": "abc"},
                "ebm": null, "runs": [],
            }))
            .unwrap()
        };
        let compared = |name: &str, summary, dir: &Path, lean| ComparedSweep {
            name: name.into(),
            summary,
            series: Series::from_dir(dir).unwrap(),
            manifest: Some(manifest(lean)),
        };
        let html = render_compare(&[
            compared("run-a", first, a.path(), "4.24.0"),
            compared("run-b", second, b.path(), "4.25.0"),
        ])
        .unwrap();
        let doc = Html::parse_document(&html);
        assert!(doc.errors.is_empty(), "{:?}", doc.errors);
        for id in ["proved-vs-time", "proved-vs-generate-calls"] {
            let legend: String = select(&doc, &format!("figure#{id} svg text"))
                .iter()
                .map(text)
                .collect();
            assert!(
                legend.contains("run-a") && legend.contains("run-b"),
                "{id}: {legend}"
            );
            // One curve per sweep.
            let curves = select(
                &doc,
                &format!("figure#{id} svg polyline[stroke-width=\"2\"]"),
            );
            assert_eq!(curves.len(), 4, "{id}: a curve and a legend mark per sweep");
        }
        let tables: Vec<String> = select(&doc, "table").iter().map(text).collect();
        assert!(tables[1].contains("/search/num_candidates"), "{tables:?}");
        assert!(
            tables[2].contains("Lean version") && tables[2].contains("4.25.0"),
            "{tables:?}"
        );
        assert!(
            !tables[2].contains("Mathlib"),
            "only what differs: {tables:?}"
        );
        assert!(
            !tables[1].contains("temperature"),
            "only what differs: {tables:?}"
        );
    }

    fn step(unix_ms: u64, url: &str, prompts: u64) -> InFlightStep {
        InFlightStep {
            unix_ms,
            url: url.into(),
            requests: prompts.div_ceil(8),
            prompts,
        }
    }

    /// A run's timeline of `lines` 2-second intervals, the first `stepped` of them carrying
    /// `steps`, two to a line.
    fn stepped_run(
        run_started_unix_ms: u64,
        lines: usize,
        stepped: usize,
        steps: &[InFlightStep],
    ) -> Vec<TimelineSample> {
        let mut chunks = steps.chunks(2);
        (1..=lines as u64)
            .map(|i| TimelineSample {
                run_started_unix_ms,
                unix_ms: run_started_unix_ms + 2000 * i,
                interval_ms: 2000.0,
                servers: server(1, 1000.0),
                in_flight_steps: if i as usize <= stepped {
                    chunks.next().map_or_else(Vec::new, <[_]>::to_vec)
                } else {
                    Vec::new()
                },
            })
            .collect()
    }

    #[test]
    fn a_short_sweep_s_prompts_in_flight_are_drawn_from_its_steps() {
        let url = "http://gpu0:30000";
        let changes = [
            step(1_000_000, url, 0),
            step(1_000_500, url, 8),
            step(1_001_200, url, 16),
            step(1_002_500, url, 8),
            step(1_003_000, url, 0),
        ];
        let dir = sweep_dir_with(stepped_run(1_000_000, 5, 5, &changes));
        let series = Series::from_dir(dir.path()).unwrap();
        assert_eq!(series.generate_points, InFlightPoints::Steps);
        assert_eq!(
            series.generate[0].points,
            [(0.0, 0.0), (0.5, 8.0), (1.2, 16.0), (2.5, 8.0), (3.0, 0.0)]
        );
        assert_eq!(
            series.generate[0].requests, 5,
            "still the intervals' counts"
        );

        let html = Html::parse_document(
            &std::fs::read_to_string(dir.path().join(REPORT_HTML_FILE)).unwrap(),
        );
        let figure = "figure#prompts-in-flight";
        let caption = text(&select(&html, &format!("{figure} figcaption"))[0]);
        assert!(caption.contains("every change"), "{caption}");
        // The curve (the legend's mark has two vertices): from the origin, a horizontal and a
        // vertical segment per change.
        let vertices: Vec<usize> = select(&html, &format!("{figure} svg polyline"))
            .iter()
            .map(|p| p.value().attr("points").unwrap().split_whitespace().count())
            .collect();
        assert!(vertices.contains(&(1 + 2 * changes.len())), "{vertices:?}");
    }

    #[test]
    fn shards_that_share_a_server_add_up_their_prompts_in_flight() {
        let url = "http://gpu0:30000";
        let mut timeline = stepped_run(
            1_000_000,
            2,
            2,
            &[
                step(1_000_000, url, 0),
                step(1_001_000, url, 8),
                step(1_003_000, url, 0),
            ],
        );
        timeline.extend(stepped_run(
            1_000_500,
            2,
            2,
            &[
                step(1_000_500, url, 0),
                step(1_002_000, url, 4),
                step(1_004_000, url, 0),
            ],
        ));
        let run = |started_unix_ms| RunRecord {
            started_unix_ms,
            wall_ms: 4000.0,
            searched: 1,
            stopped: false,
            generate_servers: server(2, 2000.0),
        };
        let series = Series::new(&[], &[run(1_000_000), run(1_000_500)], &timeline);
        assert_eq!(series.generate_points, InFlightPoints::Steps);
        let levels: Vec<f64> = series.generate[0].points.iter().map(|p| p.1).collect();
        assert_eq!(levels, [0.0, 0.0, 8.0, 12.0, 4.0, 0.0]);
    }

    #[test]
    fn a_sweep_longer_than_its_stepped_intervals_is_drawn_from_interval_means() {
        let url = "http://gpu0:30000";
        let changes: Vec<InFlightStep> = (0..2 * STEPPED_INTERVALS as u64)
            .map(|i| step(1_000_000 + 1000 * i, url, 8 * (i % 2)))
            .collect();
        let lines = STEPPED_INTERVALS + 1;
        let dir = sweep_dir_with(stepped_run(1_000_000, lines, STEPPED_INTERVALS, &changes));
        let series = Series::from_dir(dir.path()).unwrap();
        assert_eq!(series.generate_points, InFlightPoints::IntervalMeans);
        assert_eq!(series.generate[0].points.len(), lines);
        assert!(series.generate[0].points.iter().all(|p| p.1 == 3.0));
        let html = std::fs::read_to_string(dir.path().join(REPORT_HTML_FILE)).unwrap();
        assert!(html.contains("the mean of each interval"));

        // A timeline from before the steps (the fixture's) is drawn from its means too.
        let old = Series::from_dir(sweep_dir().path()).unwrap();
        assert_eq!(old.generate_points, InFlightPoints::IntervalMeans);
    }
}
