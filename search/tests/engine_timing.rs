//! The time accounting of one search: with doubles that charge a manual clock a known cost per
//! call, every phase is exact and the parts sum to the wall time.

use crate::engine_support;

use std::time::Duration;

use engine_support::*;
use formats::results::SearchStatus;
use search::config::SearchConfig;
use sim::world::Effect;

#[tokio::test]
async fn phases_sum_to_the_wall_time() {
    let w = world(
        "acc",
        &["⊢ P"],
        vec![
            state(
                &["⊢ P"],
                vec![
                    tactic("a", -0.1, to(&["⊢ Q"])),
                    tactic("b", -0.2, Effect::Error("no".into())),
                ],
            ),
            state(&["⊢ Q"], vec![tactic("done", -0.1, Effect::Goals(vec![]))]),
        ],
    );
    let costs = Costs {
        start: Duration::from_millis(11),
        generate: Duration::from_millis(300),
        tactic: Duration::from_millis(5),
        score: Duration::from_millis(7),
    };
    let sim = Sim::with(w, costs, false);
    let config = SearchConfig {
        ebm_weight: 0.5,
        ..config()
    };
    let out = run(&sim, &config, true).await;
    assert_eq!(out.status, SearchStatus::Proved);
    let t = out.timer.finish(sim.clock.as_ref());
    // 2 generate calls; 3 tactics + 1 whole-proof check; 2 score calls (root, then ⊢ Q).
    assert_eq!(t.wait_ms, 11.0);
    assert_eq!(t.gen_ms, 600.0);
    assert_eq!(t.lean_ms, 20.0);
    assert_eq!(t.ebm_ms, 14.0);
    assert_eq!(
        t.engine_ms, 0.0,
        "the manual clock does not move during our own work"
    );
    assert_eq!(t.wall_ms, 645.0);
    assert_eq!(t.unaccounted_ms, 0.0);
    assert_eq!(t.gen_latency.count(), 2);
    assert_eq!(t.lean_latency.count(), 4);
    assert_eq!(t.ebm_latency.count(), 2);
}

#[tokio::test]
async fn a_theorem_that_cannot_start_is_all_wait() {
    let mut w = world("x", &["⊢ P"], vec![]);
    w.theorems[0].name = "other".into();
    let costs = Costs {
        start: Duration::from_millis(40),
        ..Costs::default()
    };
    let sim = Sim::with(w.clone(), costs, false);
    let template = search::templates::PromptTemplate::from_config("{state}").unwrap();
    let config = config();
    let params = search::engine::SearchParams {
        config: &config,
        template: &template,
        default_header: "",
        clock: sim.clock.as_ref(),
        width: None,
        planner: None,
    };
    let mut thm = theorem(&w);
    thm.name = "missing".into();
    let out = search::engine::search_theorem(
        &thm,
        &params,
        &SimPolicy(sim.clone()),
        None,
        &SimEnv(sim.clone()),
    )
    .await;
    assert_eq!(out.status, SearchStatus::Error);
    assert!(out.error.unwrap().contains("unknown theorem missing"));
    let t = out.timer.finish(sim.clock.as_ref());
    assert_eq!((t.wait_ms, t.wall_ms, t.unaccounted_ms), (40.0, 40.0, 0.0));
}
